"""Banc d'essai de la construction du site : à froid, sans changement, après
la modification d'un chapitre.

Tout se passe dans un clone temporaire du commit courant (``git clone`` dans
/tmp), qui partage l'environnement Python et le cache du modèle de ce dépôt :
rien n'est installé, rien n'est écrit ici. On y chronomètre ``make html`` :

1. à froid (``--froid``, optionnel : le chapitre « Entraînement » prend
   7 minutes, « Recherche » 17) ; sans ``--froid``, la première construction
   reprend les sorties déjà produites dans ce dépôt (``docs/_sorties``), et
   seuls les chapitres périmés se recalculent ;
2. aussitôt après, sans rien changer : rien ne doit se recalculer ;
3. après une modification du module d'un chapitre : lui seul (et les
   chapitres qui importent ce module) doit se recalculer — le cache de
   ``construction/sorties.py`` suit le contenu du code, pas les dates.

Exécutable : ``python -m bench.docs`` (``--rapide`` : les chapitres qui se
recalculent le font en mode rapide, ``AFFINAGE_RAPIDE=1``).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import commun
from bench.commun import Chrono, nombre

CIBLE_TIEDE_S = 60.0  # reconstruction sans changement
CIBLE_PIC_GIO = 4.0  # mémoire résidente du plus gros processus d'un chapitre
MOTIF_EXECUTION = re.compile(r"^\[sorties\] (\w+) : exécution", re.MULTILINE)


def analyser_arguments(argv=None):
    parser = commun.analyseur(
        "python -m bench.docs",
        "Chronomètre « make html » dans un clone temporaire : à "
        "froid (option), sans changement, puis après la "
        "modification du module d'un chapitre.")
    parser.add_argument("--froid", action="store_true",
                        help="mesure aussi la construction à froid, sans aucune "
                             "sortie (une demi-heure sur 2 cœurs)")
    parser.add_argument("--rapide", action="store_true",
                        help="les chapitres recalculés le sont en mode rapide "
                             "(AFFINAGE_RAPIDE=1) : pour vérifier que tout marche")
    parser.add_argument("--sorties", default=None,
                        help="sans --froid : dossier de sorties à reprendre "
                             "(défaut : docs/_sorties de ce dépôt)")
    parser.add_argument("--chapitre", default="introduction",
                        help="chapitre dont on modifie le module (défaut : "
                             "introduction)")
    parser.add_argument("--garder", action="store_true",
                        help="garde le clone temporaire (pour l'inspecter)")
    parser.add_argument("--sans-json", action="store_true",
                        help="n'écrit pas bench/resultats.json")
    return parser.parse_args(argv)


class Clone:
    """Un clone du commit courant, et ``make html`` chronométré dedans."""

    def __init__(self, dossier, rapide):
        self.dossier = Path(dossier)
        python = Path(sys.executable).absolute()  # celui du .venv, sans résoudre
        self.make = ["make", "html", f"PY={python}",
                     "-o", f"{python.parent}/.affinage-installe"]
        self.env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        from tutorial_code.modeles import DOSSIER_CACHE

        self.env["AFFINAGE_CACHE"] = str(Path(DOSSIER_CACHE).resolve())
        if rapide:
            self.env["AFFINAGE_RAPIDE"] = "1"
        self.journaux = 0
        self.autres = []  # part du processeur prise par d'autres, par make

    def cloner(self):
        commit = subprocess.run(["git", "-C", str(commun.RACINE), "rev-parse",
                                 "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", "--no-checkout",
                        str(commun.RACINE), str(self.dossier)], check=True)
        subprocess.run(["git", "-C", str(self.dossier), "checkout", "--quiet",
                        commit], check=True)
        return commit

    def construire(self, etape):
        """``make html`` ; renvoie (durée, chapitres recalculés)."""
        self.journaux += 1
        journal = self.dossier / f"banc_make_html_{self.journaux}.log"
        print(f"make html : {etape} …", flush=True)
        with open(journal, "w", encoding="utf-8") as f, Chrono() as chrono:
            code = subprocess.run(self.make, cwd=self.dossier, env=self.env,
                                  stdout=f, stderr=subprocess.STDOUT).returncode
        texte = journal.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            print(texte[-4000:])
            raise SystemExit(f"Erreur : « make html » a échoué ({etape}), "
                             f"code {code} ; journal : {journal}")
        recalcules = MOTIF_EXECUTION.findall(texte)
        print(f"  {nombre(chrono.duree, 1)} s ; chapitres recalculés : "
              f"{', '.join(recalcules) or 'aucun'}", flush=True)
        self.autres.append(chrono.autres)
        return chrono.duree, recalcules

    def modifier(self, fichier):
        """Change le contenu (pas seulement la date) d'un module du clone."""
        chemin = self.dossier / fichier
        with open(chemin, "a", encoding="utf-8") as f:
            f.write("\n# Modification d'essai du banc (bench/docs.py).\n")


def entrees_hors_depot(chapitres, racine):
    """Les fichiers d'entrée des chapitres qui sont sous ``_travail/`` (ignoré
    par git, donc absent d'un clone)."""
    from construction.sorties import fichiers_du_chapitre

    travail = Path(racine) / "_travail"
    return sorted({f for c in chapitres for f in fichiers_du_chapitre(c)
                   if travail in Path(f).parents})


def mesurer(args, dossier):
    from construction.chapitres import NOMS as CHAPITRES
    from construction.chapitres import PAR_NOM
    from construction.sorties import (
        DOSSIER_SORTIES,
        chapitres_dependants,
        fichier_du_module,
        mesures_des_chapitres,
    )
    from tutorial_code import RACINE

    if args.chapitre not in CHAPITRES:
        raise SystemExit(f"Erreur : chapitre inconnu « {args.chapitre} » "
                         f"(parmi : {', '.join(CHAPITRES)}).")
    # Le producteur du chapitre : lui seul (et ce qui l'importe) se recalcule.
    producteur = fichier_du_module(PAR_NOM[args.chapitre].producteur)
    fichier = str(producteur.relative_to(RACINE))
    attendus = chapitres_dependants(fichier)
    machine = commun.machine()
    clone = Clone(dossier, args.rapide)
    commit = clone.cloner()
    reglages = {
        "clone": f"{dossier} (commit {commit[:7]} ; les modifications non "
                 "commitées ne sont pas mesurées)",
        "environnement": f"{sys.executable}, cache du modèle "
                         f"{clone.env['AFFINAGE_CACHE']}",
        "à froid": "mesuré" if args.froid else "non mesuré (--froid pour le "
                   "mesurer) : sorties reprises de "
                   f"{args.sorties or 'ce dépôt (docs/_sorties)'}",
        "modification": f"{fichier} (recalcul attendu : {', '.join(attendus)})",
        "mode": "rapide : chapitres recalculés avec AFFINAGE_RAPIDE=1"
                if args.rapide else "complet",
    }
    commun.entete("construction du site", reglages, machine)
    mesures = {}
    if args.froid:
        mesures["froid"] = clone.construire("à froid")
    else:
        sorties = Path(args.sorties or DOSSIER_SORTIES)
        if sorties.exists():
            shutil.copytree(sorties, clone.dossier / "docs" / "_sorties")
        # Les fichiers non versionnés qu'un chapitre lit (l'adaptateur
        # d'« Entraînement », que « Recherche » évalue) : sans eux, son
        # empreinte change et il se recalculerait.
        for chemin in entrees_hors_depot(CHAPITRES, RACINE):
            copie = clone.dossier / chemin.relative_to(RACINE)
            copie.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(chemin, copie)
        mesures["premiere"] = clone.construire("première, sorties reprises")
    mesures["tiede"] = clone.construire("sans changement")
    clone.modifier(fichier)
    mesures["modifie"] = clone.construire(f"après modification de {fichier}")
    return section(reglages, machine, mesures, fichier, attendus, clone.autres,
                   mesures_des_chapitres(clone.dossier / "docs" / "_sorties"))


def section(reglages, machine, mesures, fichier, attendus, autres=(),
            memoire=None):
    """Tableaux, cibles et remarques à partir des mesures brutes."""
    noms = {"froid": "à froid (aucune sortie)",
            "premiere": "première (sorties reprises)",
            "tiede": "sans changement",
            "modifie": f"après modification de {fichier}"}
    autres = list(autres) + [None] * (len(mesures) - len(autres))
    lignes = [[noms[k], nombre(duree, 1), ", ".join(recalc) or "aucun",
               "?" if part is None else commun.pourcent(part, 0)]
              for (k, (duree, recalc)), part in zip(mesures.items(), autres)]
    tiede, recalc_tiede = mesures["tiede"]
    _, recalc_modifie = mesures["modifie"]
    cibles = [
        commun.cible("reconstruction sans changement", tiede,
                     f"{nombre(tiede, 1)} s", CIBLE_TIEDE_S, sens="<", unite=" s"),
        {"nom": "sans changement : chapitres recalculés",
         "valeur": len(recalc_tiede), "texte": ", ".join(recalc_tiede) or "aucun",
         "cible": "aucun", "atteinte": not recalc_tiede},
        {"nom": f"après modification de {fichier} : chapitres recalculés",
         "valeur": len(recalc_modifie),
         "texte": ", ".join(recalc_modifie) or "aucun",
         "cible": ", ".join(attendus) + " seulement",
         "atteinte": sorted(recalc_modifie) == sorted(attendus)},
    ]
    tableaux = [{"titre": "Durée de « make html » dans un clone neuf",
                 "entetes": ["construction", "durée (s)", "chapitres recalculés",
                             "CPU pris par d'autres"],
                 "lignes": lignes}]
    if memoire:
        tableaux.append({
            "titre": "Chaque chapitre, tel que mesuré par l'exécution qui a "
                     "produit ses sorties (un processus par chapitre)",
            "entetes": ["chapitre", "durée (s)", "pic de mémoire (Gio)"],
            "lignes": [[c, nombre(m["duree_s"], 0), nombre(m["pic_mio"] / 1024, 1)]
                       for c, m in memoire.items()]})
        pic, chapitre = max((m["pic_mio"] / 1024, c) for c, m in memoire.items())
        cibles.append(commun.cible(
            f"pic de mémoire d'un chapitre ({chapitre})", pic,
            f"{nombre(pic, 1)} Gio", CIBLE_PIC_GIO, sens="<", unite=" Gio"))
    remarques = []
    alerte = commun.alerte_autres(list(autres))
    if alerte:
        remarques.append(alerte)
    if "premiere" in mesures and mesures["premiere"][1]:
        remarques.append(
            "Des sorties de ce dépôt étaient périmées ("
            f"{', '.join(mesures['premiere'][1])}) : la première construction "
            "les a recalculées ; elle ne vaut pas une construction à froid.")
    if "froid" not in mesures:
        remarques.append("Construction à froid non mesurée : relancez avec "
                         "--froid (make bench FROID=1).")
    for c in cibles:
        if c["atteinte"] is False:
            remarques.append(f"Le guide perd ici : {c['nom']} = {c['texte']} "
                             f"(visé {c['cible']}).")
    return {"machine": machine, "config": reglages,
            "durees_s": {k: v[0] for k, v in mesures.items()},
            "recalcules": {k: v[1] for k, v in mesures.items()},
            "cpu_pris_par_autres": list(autres),
            "memoire": memoire or {},
            "tableaux": tableaux, "cibles": cibles, "remarques": remarques}


def main(argv=None):
    args = analyser_arguments(argv)
    dossier = Path(tempfile.mkdtemp(prefix="banc_docs_")) / "clone"
    try:
        resultat = mesurer(args, dossier)
    finally:
        if args.garder:
            print(f"Clone gardé : {dossier}")
        else:
            shutil.rmtree(dossier.parent, ignore_errors=True)
    commun.afficher_section(resultat)
    if not args.sans_json:
        commun.enregistrer("docs", resultat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
