"""Relecture orthographique du guide : sphinxcontrib-spelling, réglé pour le français.

``make orthographe`` (et ``tests/test_site.py``) lance le constructeur ``spelling``
avec le dictionnaire français de Debian (hunspell-fr, via enchant) et la liste
``docs/mots_du_projet.txt``. Ce module l'adapte au guide :

* le texte en **gras** est relu aussi (il est en français) ; l'italique, qui
  donne les termes anglais (*fine-tuning*), ne l'est pas, ni le code, ni les
  littéraux ;
* les sorties produites par le code (``docs/_sorties/``) ne sont pas relues :
  ce sont des sorties, comme celles d'un bloc de code, et le texte qu'y écrit le
  modèle n'a pas à être juste ;
* l'élision est retirée avant de chercher un mot (« d'AdamW » → « AdamW ») :
  la liste du projet n'a pas à contenir chaque forme élidée (``elision.py``).

``make html`` n'a pas besoin d'enchant : sans lui, ce module n'ajoute rien et la
construction du site continue (Read the Docs, GitHub Pages).
"""

from docutils import nodes
from docutils.utils import get_source_line
from sphinx.util import logging

journal = logging.getLogger(__name__)


def _ignorer_les_sorties(doctree):
    """Marque le texte venu de docs/_sorties/ : la relecture le saute."""
    for texte in doctree.findall(nodes.Text):
        source, _ = get_source_line(texte.parent)
        if source and "/_sorties/" in source.replace("\\", "/"):
            texte.spellingIgnore = True


def setup(app):
    meta = {"parallel_read_safe": True, "parallel_write_safe": True}
    try:
        import enchant  # noqa: F401 (la bibliothèque C enchant est-elle là ?)
    except ImportError as erreur:
        # make html n'en a pas besoin : seule la relecture manque (make paquets).
        journal.info(f"relecture orthographique indisponible : {erreur}")
        return meta
    app.setup_extension("sphinxcontrib.spelling")
    from sphinxcontrib.spelling.builder import SpellingBuilder

    class Relecture(SpellingBuilder):
        """Le constructeur ``spelling``, avec les règles du guide (plus haut)."""

        TEXT_NODES = SpellingBuilder.TEXT_NODES | {"strong"}

        def write_doc(self, docname, doctree):
            _ignorer_les_sorties(doctree)
            super().write_doc(docname, doctree)

    app.add_builder(Relecture, override=True)
    return meta
