"""La bibliothèque du guide : un module par idée, que les pages montrent et
que le lecteur importe (``from tutorial_code.lots import collate_packing``).

Chaque module s'exécute aussi en ligne de commande : ``python -m
tutorial_code.<module> --help``.
"""

from pathlib import Path

RACINE = Path(__file__).resolve().parent.parent  # la racine du dépôt


def relatif(chemin):
    """Chemin affiché : relatif à la racine du dépôt quand c'est possible."""
    chemin = Path(chemin).resolve()
    return str(chemin.relative_to(RACINE) if chemin.is_relative_to(RACINE) else chemin)
