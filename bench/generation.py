"""Banc d'essai de la génération : par lots contre prompt par prompt, chargement.

* ``BasicModelRunner.predict`` sur 8 prompts d'un coup (un lot, remplissage à
  gauche) contre les mêmes 8 prompts l'un après l'autre : durée, jetons
  générés par seconde, réponses identiques ou non ;
* le chargement du modèle embarqué depuis son cache safetensors, dans un
  processus neuf (ce que vit l'utilisateur) : imports, puis ``charger_modele``.

Décodage glouton en fp32 (le choix de ``choisir_device_dtype`` hors
entraînement). Les jetons générés se comptent en retokenisant les réponses.

Exécutable : ``python -m bench.generation`` (``--rapide`` : 16 jetons, un essai).
"""

import argparse
import json
import subprocess
import sys

from bench import commun
from bench.commun import Chrono, facteur, nombre, pourcent

N_PROMPTS = 8
CIBLE_LOT = 4.0  # le lot de 8 doit aller au moins 4 fois plus vite
CIBLE_CHARGEMENT_S = 2.0


def analyser_arguments(argv=None):
    parser = commun.analyseur(
        "python -m bench.generation",
        "Compare la génération par lots de BasicModelRunner.predict "
        "à la génération prompt par prompt, et mesure le chargement "
        "du modèle depuis le cache.")
    parser.add_argument("--rapide", action="store_true",
                        help="16 jetons par réponse, un seul essai : pour "
                             "vérifier que tout marche (chiffres peu fiables)")
    parser.add_argument("--jetons", type=int, default=None,
                        help="jetons générés au plus par réponse "
                             "(défaut : 64, 16 en rapide)")
    parser.add_argument("--sans-json", action="store_true",
                        help="n'écrit pas bench/resultats.json")
    parser.add_argument("--chargement-seul", action="store_true",
                        help=argparse.SUPPRESS)  # usage interne (sous-processus)
    return parser.parse_args(argv)


def chargement_seul():
    """Dans un processus neuf : durée des imports, puis du chargement (JSON)."""
    with Chrono() as imports:
        from tutorial_code.runner import BasicModelRunner
    with Chrono() as chargement:
        BasicModelRunner(verbeux=False)
    print(json.dumps({"import_s": imports.duree,
                      "chargement_s": chargement.duree}))


def mesurer_chargement(essais):
    """``essais`` processus neufs ; renvoie la liste de leurs mesures."""
    mesures = []
    for _ in range(essais):
        sortie = subprocess.run(
            [sys.executable, "-m", "bench.generation", "--chargement-seul"],
            capture_output=True, text=True, check=True, cwd=commun.RACINE)
        mesures.append(json.loads(sortie.stdout.strip().splitlines()[-1]))
    return mesures


def jetons_generes(tokenizer, reponses):
    """Jetons des réponses (retokenisées, sans jetons spéciaux)."""
    return sum(len(tokenizer(r, add_special_tokens=False)["input_ids"])
               for r in reponses)


def mesurer(args):
    from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_questions_test
    from tutorial_code.runner import BasicModelRunner

    jetons = args.jetons or (16 if args.rapide else 64)
    essais = 1 if args.rapide else 3
    machine = commun.machine()
    prompts = [q["question"] for q in charger_questions_test()[:N_PROMPTS]]
    reglages = {
        "modèle": "smollm2-135m-instruct, fp32, décodage glouton",
        "prompts": f"{len(prompts)} questions de test de Vitrexpress Auto, "
                   "avec le prompt système du guide",
        "génération": f"au plus {jetons} jetons par réponse",
        "essais": f"{essais} par mesure, on garde la meilleure durée "
                  "(la médiane pour le chargement)",
        "mode": "rapide (chiffres indicatifs)" if args.rapide else "complet",
    }
    commun.entete("génération", reglages, machine)
    print("Chargement dans des processus neufs …", flush=True)
    chargements = mesurer_chargement(essais)
    runner = BasicModelRunner(system_prompt=PROMPT_SYSTEME, max_new_tokens=jetons,
                              verbeux=False)
    runner.predict(prompts[:2], max_new_tokens=4)  # chauffe, non chronométrée
    lot, un = [], []  # les chronos de chaque essai
    for _ in range(essais):
        print("Génération : un lot de 8 …", flush=True)
        with Chrono() as chrono:
            reponses_lot = runner.predict(prompts)
        lot.append(chrono)
        print("Génération : un prompt à la fois …", flush=True)
        with Chrono() as chrono:
            reponses_un = [runner.predict(p) for p in prompts]
        un.append(chrono)
    lot, un = min(lot, key=lambda c: c.duree), min(un, key=lambda c: c.duree)
    n_lot = jetons_generes(runner.tokenizer, reponses_lot)
    n_un = jetons_generes(runner.tokenizer, reponses_un)
    identiques = sum(a == b for a, b in zip(reponses_lot, reponses_un))
    longueurs = [jetons_generes(runner.tokenizer, [r]) for r in reponses_lot]
    return section(reglages, machine, chargements, lot, un, n_lot, n_un,
                   identiques, len(prompts), longueurs_lot=longueurs)


def pourquoi_lot(duree_lot, duree_un, longueurs_lot, n_un):
    """Pourquoi le lot va moins vite que « n_prompts × » : deux facteurs mesurés.

    Le lot avance d'un pas pour tous ses prompts à la fois, jusqu'à ce que la
    plus longue réponse finisse (+1 pas pour son jeton de fin) : une réponse
    finie tôt occupe encore sa place. Chaque réponse compte ses jetons plus
    son jeton de fin, des deux côtés : accélération = n × (part des places
    utiles) / (coût d'un pas à n prompts, en pas à 1 prompt), exactement
    quand le lot et un à la fois génèrent les mêmes réponses.
    """
    n = len(longueurs_lot)
    pas_lot = max(longueurs_lot) + 1
    utiles = (sum(longueurs_lot) + n) / (n * pas_lot)  # places qui produisent
    cout_pas = (duree_lot / pas_lot) / (duree_un / (n_un + n))
    return (f"Pourquoi : un pas de décodage à {n} prompts coûte "
            f"{facteur(cout_pas)} un pas à 1 prompt (à 1 prompt, le pas est "
            "limité par la lecture des poids ; à plusieurs, par le calcul des "
            f"{n} lignes sur les cœurs disponibles), et seules "
            f"{pourcent(utiles, 0)} des places du lot produisent un jeton utile "
            "(les réponses finies tôt attendent la plus longue) : "
            f"{n} × {pourcent(utiles, 0)} / {nombre(cout_pas, 2)} ≈ "
            f"{facteur(n * utiles / cout_pas)}.")


def section(reglages, machine, chargements, lot, un, n_lot, n_un, identiques,
            n_prompts, longueurs_lot=None):
    """Tableaux, cibles et remarques ; ``lot`` et ``un`` sont des chronos."""
    duree_lot, duree_un = lot.duree, un.duree
    acceleration = duree_un / duree_lot
    chargement = commun.mediane([c["chargement_s"] for c in chargements])
    imports = commun.mediane([c["import_s"] for c in chargements])
    lignes = [
        [f"un lot de {n_prompts}", nombre(duree_lot, 2), n_lot,
         nombre(n_lot / duree_lot, 1), facteur(acceleration),
         commun.part_autres(lot.autres)],
        ["un prompt à la fois", nombre(duree_un, 2), n_un,
         nombre(n_un / duree_un, 1), facteur(1.0), commun.part_autres(un.autres)],
    ]
    cibles = [
        commun.cible(f"lot de {n_prompts} / un à la fois (durée)", acceleration,
                     facteur(acceleration), CIBLE_LOT),
        commun.cible("chargement du modèle depuis le cache", chargement,
                     f"{nombre(chargement, 2)} s", CIBLE_CHARGEMENT_S, sens="<",
                     unite=" s"),
    ]
    remarques = [f"Réponses identiques entre le lot et un à la fois : "
                 f"{identiques} sur {n_prompts} (le remplissage à gauche peut "
                 "changer un arrondi, donc un jeton glouton)."]
    remarques.append(
        f"Processus neuf : imports {nombre(imports, 2)} s (torch, transformers), "
        f"puis chargement {nombre(chargement, 2)} s (médiane de "
        f"{len(chargements)}) ; seul le chargement est comparé à la cible.")
    alerte = commun.alerte_autres([lot.autres, un.autres])
    if alerte:
        remarques.insert(0, alerte)
    for c in cibles:
        if c["atteinte"] is False:
            remarques.append(f"Le guide perd ici : {c['nom']} = {c['texte']} "
                             f"(visé {c['cible']}).")
    if longueurs_lot and acceleration < CIBLE_LOT:
        remarques.append(pourquoi_lot(duree_lot, duree_un, longueurs_lot, n_un))
    tableau = {"titre": "Génération de BasicModelRunner.predict",
               "entetes": ["mode", "durée (s)", "jetons générés", "jetons/s",
                           "vitesse / un à la fois", "CPU pris par d'autres"],
               "lignes": lignes}
    return {"machine": machine, "config": reglages,
            "chargements": chargements, "chargement_s": chargement,
            "import_s": imports, "duree_lot_s": duree_lot,
            "duree_un_a_un_s": duree_un, "cpu_pris_par_autres": {
                "lot": lot.autres, "un_a_un": un.autres}, "jetons_lot": n_lot,
            "jetons_un_a_un": n_un, "acceleration": acceleration,
            "reponses_identiques": identiques, "tableaux": [tableau],
            "cibles": cibles, "remarques": remarques}


def main(argv=None):
    args = analyser_arguments(argv)
    if args.chargement_seul:
        chargement_seul()
        return 0
    resultat = mesurer(args)
    commun.afficher_section(resultat)
    if not args.sans_json:
        commun.enregistrer("generation", resultat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
