"""Produire les sorties des pages (textes, tableaux, figures) pendant la construction.

Chaque chapitre a un module de ``tutorial_code`` qui définit
``produire_sorties(dossier)`` : ``<chapitre>_page.py`` s'il existe, sinon
``<chapitre>.py``. Il exécute le code montré par la page et écrit ce qu'il
affiche dans ``docs/_sorties/<chapitre>/`` (ignoré par git), d'où la page
l'inclut. Rien n'est collé à la main.

Un cache évite de tout recalculer : l'empreinte d'un chapitre est le SHA-256 du
code des modules de ``tutorial_code`` qu'il importe, des fichiers de données
qu'il déclare (``ENTREES``) et du mode rapide (``AFFINAGE_RAPIDE``, pour que
des sorties de test ne passent jamais pour celles de la construction). Si elle
n'a pas changé, on ne refait rien.

Exécutable : ``python -m tutorial_code.sorties [chapitre ...] [--forcer]``.
"""

import argparse
import ast
import contextlib
import hashlib
import importlib
import io
import os
import shutil
import sys
import time
from pathlib import Path

from tutorial_code.nombres import accorder, formater

RACINE = Path(__file__).resolve().parent.parent
DOSSIER_SORTIES = RACINE / "docs" / "_sorties"

# Dans l'ordre : un chapitre peut lire ce qu'un précédent a produit.
CHAPITRES = ["introduction", "pretraitement", "tokenisation", "entrainement",
             "recherche", "echelle"]


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


def modules_utilises(fichier, vus=None):
    """Les fichiers de ``tutorial_code`` que ``fichier`` importe, récursivement."""
    vus = set() if vus is None else vus
    vus.add(fichier)
    for noeud in ast.walk(ast.parse(fichier.read_text(encoding="utf-8"))):
        noms = []
        if isinstance(noeud, ast.ImportFrom) and noeud.module:
            noms = [noeud.module] + [f"{noeud.module}.{a.name}" for a in noeud.names]
        elif isinstance(noeud, ast.Import):
            noms = [a.name for a in noeud.names]
        for nom in noms:
            if nom.startswith("tutorial_code."):
                dep = RACINE / (nom.replace(".", "/") + ".py")
                if dep.exists() and dep not in vus:
                    modules_utilises(dep, vus)
    return vus


def empreinte(module):
    """SHA-256 du code de ``tutorial_code`` utilisé par ``module`` et de ses entrées."""
    fichiers = sorted(modules_utilises(Path(module.__file__)))
    for motif in getattr(module, "ENTREES", []):
        fichiers += sorted(RACINE.glob(motif))
    h = hashlib.sha256(os.environ.get("AFFINAGE_RAPIDE", "0").encode())
    for f in fichiers:
        h.update(str(f.relative_to(RACINE)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def nom_processeur():
    """Le nom du processeur lu dans /proc/cpuinfo (« inconnu » ailleurs)."""
    try:
        texte = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "inconnu"
    for ligne in texte.splitlines():
        if ligne.startswith("model name"):
            return " ".join(ligne.split(":", 1)[1].split())
    return "inconnu"


def decrire_machine(duree):
    """Le paragraphe (rST) qui dit sur quelle machine la page a été construite."""
    import torch

    from tutorial_code.modeles import bf16_natifs, choisir_device_dtype

    device, dtype, _ = choisir_device_dtype(entrainement=True)
    calcul = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    if device == "cuda":
        machine = f"``{torch.cuda.get_device_name()}``"
    else:
        machine = (f"``{nom_processeur()}``, "
                   + accorder(torch.get_num_threads(), "cœur"))
    natifs = bf16_natifs()
    if os.environ.get("AFFINAGE_DTYPE"):
        pourquoi = " (imposé par ``AFFINAGE_DTYPE``)"
    elif device == "cpu" and natifs:
        pourquoi = f", que ce processeur calcule nativement (``{natifs[0]}``)"
    elif device == "cpu":
        pourquoi = ", ce processeur ne calculant pas le bf16 nativement"
    else:
        pourquoi = ""
    return (".. note::\n\n"
            f"   Sorties de cette construction : {machine} ; "
            f"entraînement en {calcul}{pourquoi} ; {formater(duree, 0)} s pour "
            "tout le code du chapitre. Sur une autre machine, les durées et les "
            "débits diffèrent ; le travail fait (pas, exemples, jetons) est le "
            "même.\n")


def module_du_chapitre(chapitre):
    """``tutorial_code.<chapitre>_page`` s'il existe, sinon ``<chapitre>``."""
    page = RACINE / "tutorial_code" / f"{chapitre}_page.py"
    suffixe = "_page" if page.exists() else ""
    return importlib.import_module(f"tutorial_code.{chapitre}{suffixe}")


def produire(chapitre, forcer=False):
    """Exécute le chapitre si son code ou ses données ont changé."""
    module = module_du_chapitre(chapitre)
    dossier = DOSSIER_SORTIES / chapitre
    temoin = dossier / ".empreinte"
    cle = empreinte(module)
    if not forcer and temoin.exists() and temoin.read_text() == cle:
        print(f"[sorties] {chapitre} : à jour (cache)")
        return False
    print(f"[sorties] {chapitre} : exécution …")
    debut = time.perf_counter()
    provisoire = dossier.with_name(chapitre + ".partiel")
    shutil.rmtree(provisoire, ignore_errors=True)
    provisoire.mkdir(parents=True)
    module.produire_sorties(provisoire)
    duree = time.perf_counter() - debut
    (provisoire / "duree.txt").write_text(formater(duree, 0))
    (provisoire / "machine.rst").write_text(decrire_machine(duree), encoding="utf-8")
    # On ne remplace l'ancien dossier qu'une fois tout réussi.
    shutil.rmtree(dossier, ignore_errors=True)
    provisoire.rename(dossier)
    temoin.write_text(cle)
    print(f"[sorties] {chapitre} : fait en {duree:.0f} s")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_code.sorties",
        description="Produit les sorties des pages du guide (avec cache).")
    parser.add_argument("chapitres", nargs="*", default=CHAPITRES,
                        help=f"parmi : {', '.join(CHAPITRES)} (défaut : tous)")
    parser.add_argument("--forcer", action="store_true",
                        help="recalcule même si le cache est à jour")
    args = parser.parse_args(argv)
    for chapitre in args.chapitres:
        if chapitre not in CHAPITRES:
            parser.error(f"chapitre inconnu « {chapitre} »")
        produire(chapitre, forcer=args.forcer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
