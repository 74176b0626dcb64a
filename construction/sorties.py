"""Produire les sorties des pages (textes, tableaux, figures) pendant la construction.

Chaque chapitre du registre (``construction.chapitres``) a un producteur, un
module qui définit ``produire_sorties(dossier)`` : il exécute le code montré par
la page et écrit ce qu'il affiche dans ``docs/_sorties/<chapitre>/`` (ignoré
par git), d'où la page l'inclut. Rien n'est collé à la main.

Un cache évite de tout recalculer : l'empreinte d'un chapitre est le SHA-256 du
code des modules qu'importe son producteur (``tutorial_code`` et
``construction``, récursivement), des fichiers de données qu'il déclare
(``entrees`` au registre) et du mode rapide (``AFFINAGE_RAPIDE``, pour que des
sorties de test ne passent jamais pour celles de la construction). Si elle n'a
pas changé, on ne refait rien.

Chaque chapitre s'exécute dans son propre processus : la mémoire d'un chapitre
est rendue au système avant le suivant, et le pic de mémoire résidente de
chacun se mesure à part (``memoire.json``, et le tableau ``construction.rst``
que la page d'accueil inclut).

Exécutable : ``python -m construction.sorties [chapitre ...] [--forcer]``.
"""

import argparse
import ast
import hashlib
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from construction.chapitres import NOMS as CHAPITRES
from construction.chapitres import PAR_NOM
from construction.ecrire import ecrire_si_change, texte_tableau
from tutorial_code import RACINE
from tutorial_code.aide import creer_parser
from tutorial_code.nombres import accorder, formater

DOSSIER_SORTIES = RACINE / "docs" / "_sorties"
PAQUETS = ("tutorial_code", "construction")  # ce que suit l'empreinte


def modules_utilises(fichier, vus=None):
    """``fichier`` et les fichiers de ``tutorial_code`` et de ``construction``
    qu'il importe, récursivement."""
    vus = set() if vus is None else vus
    vus.add(fichier)
    for noeud in ast.walk(ast.parse(fichier.read_text(encoding="utf-8"))):
        noms = []
        if isinstance(noeud, ast.ImportFrom) and noeud.module:
            noms = [noeud.module] + [f"{noeud.module}.{a.name}" for a in noeud.names]
        elif isinstance(noeud, ast.Import):
            noms = [a.name for a in noeud.names]
        for nom in noms:
            if nom.split(".")[0] in PAQUETS:
                dep = RACINE / (nom.replace(".", "/") + ".py")
                if dep.exists() and dep not in vus:
                    modules_utilises(dep, vus)
    return vus


def fichier_du_module(nom):
    """Le fichier source d'un module du dépôt (``construction.recherche``)."""
    return RACINE / (nom.replace(".", "/") + ".py")


def fichiers_du_chapitre(chapitre):
    """Les fichiers dont dépendent les sorties de ``chapitre`` : le code
    qu'exécute son producteur, puis ses fichiers d'entrée."""
    info = PAR_NOM[chapitre]
    fichiers = sorted(modules_utilises(fichier_du_module(info.producteur)))
    for motif in info.entrees:
        fichiers += sorted(RACINE.glob(motif))
    return fichiers


def chapitres_dependants(fichier):
    """Les chapitres à recalculer si ``fichier`` change (chemin relatif à la
    racine ou absolu), dans l'ordre du registre."""
    cible = (RACINE / fichier).resolve()
    return [c for c in CHAPITRES if cible in fichiers_du_chapitre(c)]


def empreinte(chapitre):
    """SHA-256 du code qu'exécute le producteur de ``chapitre``, de ses
    entrées et du mode rapide."""
    fichiers = fichiers_du_chapitre(chapitre)
    return empreinte_fichiers(fichiers, RACINE,
                              os.environ.get("AFFINAGE_RAPIDE", "0").encode())


def empreinte_fichiers(fichiers, racine, *autres):
    """SHA-256 des chemins (relatifs à ``racine``) et du contenu de
    ``fichiers``, puis des octets ``autres`` : l'empreinte des caches de la
    construction (sorties des chapitres, carnets)."""
    h = hashlib.sha256()
    for f in fichiers:
        h.update(str(Path(f).relative_to(racine)).encode())
        h.update(Path(f).read_bytes())
    for octets in autres:
        h.update(octets)
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


def allocateur():
    """L'allocateur mémoire du processus : celui que ``LD_PRELOAD`` charge
    (le Makefile y met tcmalloc s'il est installé), sinon celui de glibc."""
    prechargees = os.environ.get("LD_PRELOAD", "")
    return next((nom for nom in ("tcmalloc", "jemalloc") if nom in prechargees),
                "glibc")


def cache_onednn():
    """Le nombre de primitives oneDNN (noyaux de produits matriciels, un par
    forme) que torch garde en cache : 1 024 par défaut, 64 sous le Makefile."""
    return int(os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024"))


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
            f"entraînements du guide en {calcul}{pourquoi} ; allocateur mémoire "
            f"{allocateur()}, cache de {formater(cache_onednn(), 0)} primitives "
            f"oneDNN ; {formater(duree, 0)} s pour "
            "tout le code du chapitre. Sur une autre machine, les durées et les "
            "débits diffèrent ; le travail fait (pas, exemples, jetons) est le "
            "même.\n")


def pic_memoire_mio():
    """Le plus haut niveau de mémoire résidente (Mio) atteint par ce processus
    et par le plus gros de ses sous-processus terminés.

    ``VmHWM`` (/proc/self/status) pour ce processus : ``ru_maxrss`` garderait
    le niveau du parent au moment du fork. Celui des sous-processus
    (``RUSAGE_CHILDREN``) l'inclut : il ne dépasse donc jamais le nôtre à tort.
    """
    enfants = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Kio
    try:
        lignes = Path("/proc/self/status").read_text().splitlines()
        soi = next(int(ligne.split()[1]) for ligne in lignes
                   if ligne.startswith("VmHWM:"))  # Kio
    except (OSError, StopIteration):
        soi = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(soi, enfants) / 1024


def a_jour(chapitre, cle=None):
    """Vrai si les sorties du chapitre viennent de son code et de ses données
    actuels : ``cle`` (son empreinte, calculée si absente) est celle de leur
    production."""
    temoin = DOSSIER_SORTIES / chapitre / ".empreinte"
    cle = cle or empreinte(chapitre)
    return temoin.exists() and temoin.read_text() == cle


def produire(chapitre, forcer=False):
    """Exécute le chapitre, dans ce processus, si son code ou ses données ont
    changé."""
    module = importlib.import_module(PAR_NOM[chapitre].producteur)
    dossier = DOSSIER_SORTIES / chapitre
    cle = empreinte(chapitre)
    if not forcer and a_jour(chapitre, cle):
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
    mesures = {"duree_s": duree, "pic_mio": pic_memoire_mio()}
    (provisoire / "memoire.json").write_text(json.dumps(mesures), encoding="utf-8")
    # On ne remplace l'ancien dossier qu'une fois tout réussi.
    shutil.rmtree(dossier, ignore_errors=True)
    provisoire.rename(dossier)
    (dossier / ".empreinte").write_text(cle)
    print(f"[sorties] {chapitre} : fait en {duree:.0f} s")
    return True


def produire_a_part(chapitre, forcer=False):
    """Comme ``produire``, mais dans un processus Python neuf : sa mémoire est
    rendue au système à la fin, et son pic se mesure seul."""
    if not forcer and a_jour(chapitre):
        print(f"[sorties] {chapitre} : à jour (cache)")
        return False
    commande = [sys.executable, "-m", "construction.sorties", chapitre,
                "--forcer", "--sans-tableau"]
    code = subprocess.run(commande).returncode
    if code != 0:
        raise SystemExit(f"[sorties] {chapitre} : échec (code {code})")
    return True


def gio(mio):
    """« 3,2 Gio » : des Mio en Gio, à la française."""
    return f"{formater(mio / 1024, 1)} Gio"


def mesures_des_chapitres(dossier_sorties):
    """``{chapitre: {"duree_s", "pic_mio"}}`` : ce que l'exécution qui a produit
    les sorties de chaque chapitre a mesuré (``memoire.json``)."""
    fichiers = {c: Path(dossier_sorties) / c / "memoire.json" for c in CHAPITRES}
    return {c: json.loads(f.read_text(encoding="utf-8"))
            for c, f in fichiers.items() if f.exists()}


def ecrire_tableau_construction(chemin):
    """Le tableau (rST) de la durée et du pic de mémoire de chaque chapitre,
    tels que mesurés par l'exécution qui a produit ses sorties."""
    mesures = mesures_des_chapitres(DOSSIER_SORTIES)
    if not mesures:
        return
    pic, chapitre = max((m["pic_mio"], c) for c, m in mesures.items())
    lignes = [[f":doc:`{PAR_NOM[c].page}`", f"{formater(m['duree_s'], 0)} s",
               gio(m["pic_mio"])] for c, m in mesures.items()]
    texte = (
        f"La construction de ce site a demandé au plus {gio(pic)} de mémoire "
        f"résidente (chapitre :doc:`{PAR_NOM[chapitre].page}`). Chaque chapitre "
        "s'exécute dans son propre processus, qui rend sa mémoire en se terminant.\n\n"
        + texte_tableau(["chapitre", "durée", "pic de mémoire"], lignes,
                        "Durée et pic de mémoire de chaque chapitre (le plus gros "
                        "de ses processus)"))
    ecrire_si_change(chemin, texte)


def main(argv=None):
    parser = creer_parser(
        prog="python -m construction.sorties",
        description="Produit les sorties des pages du guide (avec cache).")
    parser.add_argument("chapitres", nargs="*", default=CHAPITRES,
                        help=f"parmi : {', '.join(CHAPITRES)} (défaut : tous)")
    parser.add_argument("--forcer", action="store_true",
                        help="recalcule même si le cache est à jour")
    parser.add_argument("--sans-tableau", action="store_true",
                        help=argparse.SUPPRESS)  # usage interne (produire_a_part)
    args = parser.parse_args(argv)
    for chapitre in args.chapitres:
        if chapitre not in CHAPITRES:
            parser.error(f"chapitre inconnu « {chapitre} »")
    if len(args.chapitres) == 1:
        produire(args.chapitres[0], forcer=args.forcer)
    else:
        for chapitre in args.chapitres:
            produire_a_part(chapitre, forcer=args.forcer)
    if not args.sans_tableau:
        ecrire_tableau_construction(DOSSIER_SORTIES / "construction.rst")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
