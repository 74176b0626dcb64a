"""Écrire les sorties d'une page : ce qu'un bloc affiche, les tableaux."""

import contextlib
import io
import re
import sys
from pathlib import Path


class Tee(io.TextIOBase):
    """Écrit à la fois dans un fichier et dans la console."""

    def __init__(self, *flux):
        self.flux = flux

    def write(self, texte):
        for f in self.flux:
            f.write(texte)
        return len(texte)

    def flush(self):
        for f in self.flux:
            f.flush()


@contextlib.contextmanager
def capturer(chemin):
    """Tout ce que le bloc affiche (print) va aussi dans le fichier ``chemin``."""
    chemin = Path(chemin)
    chemin.parent.mkdir(parents=True, exist_ok=True)
    with open(chemin, "w", encoding="utf-8") as fichier:
        with contextlib.redirect_stdout(Tee(sys.stdout, fichier)):
            yield


def texte_tableau(entetes, lignes, titre=None):
    """Un tableau reStructuredText (``list-table``), une ligne par liste.

    Les options de commande (``--roles``) d'une cellule de texte passent en
    littéral : sans cela, les guillemets typographiques de Sphinx changeraient
    ``--`` en tiret. Une cellule déjà littérale reste telle quelle.
    """
    lignes = [[c if "``" in str(c) else
               re.sub(r"(?<![\w`-])(--[a-z][\w-]*)", r"``\1``", str(c))
               for c in ligne] for ligne in lignes]
    texte = f".. list-table::{' ' + titre if titre else ''}\n   :header-rows: 1\n\n"
    for ligne in [entetes] + lignes:
        texte += "".join(f"   {'*' if k == 0 else ' '} - {c}\n"
                         for k, c in enumerate(ligne))
    return texte


def ecrire_si_change(chemin, texte):
    """Écrit ``texte`` dans ``chemin`` s'il diffère : un fichier inchangé garde
    sa date, et Sphinx ne reconstruit pas la page qui l'inclut."""
    chemin = Path(chemin)
    if not chemin.exists() or chemin.read_text(encoding="utf-8") != texte:
        chemin.write_text(texte, encoding="utf-8")


def ecrire_tableau(chemin, entetes, lignes, titre=None):
    """Le tableau (``list-table``) que la page inclut, dans ``chemin``."""
    ecrire_si_change(chemin, texte_tableau(entetes, lignes, titre))


def rendre_memoire_libre():
    """Rend au système la mémoire que le programme a libérée mais que
    l'allocateur garde (tcmalloc la garde résidente) : sans cela, le pic
    « ajouté » d'une mesure dépend de ce qu'ont libéré les précédentes, et les
    poids d'un modèle projetés depuis son fichier s'ajoutent à cette réserve
    au lieu de la remplacer. Renvoie la mémoire résidente après, en octets."""
    import ctypes
    import gc

    gc.collect()
    processus = ctypes.CDLL(None)  # l'allocateur chargé (LD_PRELOAD) compris
    if hasattr(processus, "MallocExtension_ReleaseFreeMemory"):  # tcmalloc
        processus.MallocExtension_ReleaseFreeMemory()
    elif hasattr(processus, "malloc_trim"):  # glibc
        processus.malloc_trim(0)
    from tutorial_code.echelle_un_gpu import rss_octets

    return rss_octets()
