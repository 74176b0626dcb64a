"""Banc d'essai de la génération : par lots contre prompt par prompt, chargement,
discussion.

* ``BasicModelRunner.predict`` sur 8 prompts d'un coup (un lot, remplissage à
  gauche) contre les mêmes 8 prompts l'un après l'autre : durée, jetons
  générés par seconde, réponses identiques ou non ;
* le chargement du modèle embarqué depuis son cache safetensors, dans un
  processus neuf (ce que vit l'utilisateur) : imports, puis ``charger_modele`` ;
* la discussion de l'assistant (``python -m tutorial_code.assistant
  --discuter``) : pour une question, la recherche des fiches, le premier jeton
  affiché, la réponse complète (les réglages de la discussion : glouton, au
  plus 96 jetons).

Décodage glouton en fp32 (le choix de ``choisir_device_dtype`` hors
entraînement) ; si le processeur calcule le bf16 nativement, ``bench.precision``
mesure aussi le bf16 sur SmolLM2 et sur l'assistant. Les jetons générés se
comptent en retokenisant les réponses.

Exécutable : ``python -m bench.generation`` (``--rapide`` : 16 jetons, un essai).
"""

import argparse
import json
import subprocess
import sys
import time

from bench import commun, precision
from bench.commun import Chrono, facteur, nombre, pourcent

N_PROMPTS = 8
CIBLE_LOT = 4.0  # le lot de 8 doit aller au moins 4 fois plus vite
CIBLE_CHARGEMENT_S = 2.0
N_QUESTIONS = 5  # questions de la discussion chronométrées (après une de chauffe)
JETONS_DISCUSSION = 96  # comme tutorial_code.assistant.discuter
CIBLE_PREMIER_JETON_S = 1.0
CIBLE_REPONSE_S = 5.0


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
    from tutorial_code.modeles import bf16_natifs
    from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_questions_test
    from tutorial_code.runner import BasicModelRunner

    jetons = args.jetons or (16 if args.rapide else 64)
    essais = 1 if args.rapide else 3
    machine = commun.machine()
    prompts = [q["question"] for q in charger_questions_test()[:N_PROMPTS]]
    reglages = {
        "modèle": "smollm2-135m-instruct, fp32, décodage glouton ; discussion : "
                  "l'assistant retenu par la construction",
        "prompts": f"{len(prompts)} questions de test de Vitrexpress Auto, "
                   "avec le prompt système du guide",
        "génération": f"au plus {jetons} jetons par réponse (discussion : "
                      f"{16 if args.rapide else JETONS_DISCUSSION})",
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
    del runner
    print("Discussion de l'assistant …", flush=True)
    questions = [q["question"] for q in charger_questions_test()[
        N_PROMPTS:N_PROMPTS + (2 if args.rapide else N_QUESTIONS)]]
    discussion = mesurer_discussion(questions, 16 if args.rapide
                                    else JETONS_DISCUSSION)
    natifs = bf16_natifs()
    if natifs:  # sinon le bf16 est émulé : plus lent, rien à comparer
        mesures, identiques_bf16 = precision.mesurer(
            prompts, charger_questions_test()[:N_PROMPTS], jetons, essais,
            {"lot": lot.duree, "un": un.duree, "reponses_lot": reponses_lot,
             "reponses_un": reponses_un}, assistant_du_banc)
    resultat = section(reglages, machine, chargements, lot, un, n_lot, n_un,
                       identiques, len(prompts), longueurs_lot=longueurs)
    tableau, cibles, remarque = section_discussion(*discussion)
    resultat["tableaux"].append(tableau)
    resultat["cibles"] += cibles
    resultat["remarques"].append(remarque)
    if natifs:
        tableau, remarque = precision.section(mesures, identiques_bf16, identiques,
                                              len(prompts), natifs)
        resultat["tableaux"].append(tableau)
        resultat["remarques"].append(remarque)
        resultat["precision"] = {"mesures": mesures,
                                 "identiques_lot_un_bf16": identiques_bf16}
    else:
        resultat["remarques"].append(
            "Génération en bf16 non mesurée : ce processeur ne le calcule pas "
            "nativement (il serait émulé, plus lent que le fp32).")
    resultat["discussion"] = {"modele": discussion[0], "demarrage_s": discussion[1],
                              "mesures": discussion[2]}
    for c in cibles:
        if c["atteinte"] is False:
            resultat["remarques"].append(f"Le guide perd ici : {c['nom']} = "
                                         f"{c['texte']} (visé {c['cible']}).")
    return resultat


class Chronometre:
    """Un « streamer » de ``generate`` qui note l'instant de chaque jeton
    généré (le premier appel de ``put`` reçoit l'invite : on l'ignore)."""

    def __init__(self):
        self.instants, self.invite_vue = [], False

    def put(self, valeur):
        if self.invite_vue:
            self.instants.append(time.perf_counter())
        self.invite_vue = True

    def end(self):
        pass


def assistant_du_banc(system_prompt, dtype=None):
    """``(runner, description)`` : l'assistant retenu par la construction du
    site ; à défaut, Gemma 3 270M non affiné avec le même gabarit de tours
    (même modèle, mêmes invites ; ses réponses peuvent aller jusqu'au bout
    des jetons permis : le pire cas pour la durée). ``dtype`` : celui de
    ``choisir_device_dtype`` par défaut."""
    from tutorial_code.assistant import assistant_par_defaut, preparer_gabarit
    from tutorial_code.runner import BasicModelRunner

    try:
        dossier = assistant_par_defaut()
    except FileNotFoundError:
        dossier = None
    if dossier is not None and (dossier / "adapter_config.json").exists():
        return (BasicModelRunner(str(dossier), system_prompt=system_prompt,
                                 dtype=dtype, verbeux=False),
                f"assistant affiné ({dossier.name})")
    runner = BasicModelRunner("gemma3-270m", system_prompt=system_prompt,
                              dtype=dtype, verbeux=False)
    preparer_gabarit(runner.model, runner.tokenizer)
    return runner, "gemma3-270m non affiné (aucun assistant entraîné ici)"


def mesurer_discussion(questions, jetons):
    """Chaque question comme dans ``--discuter`` : recherche, invite, génération
    au fil des jetons. Renvoie ``(description, démarrage_s, mesures)``."""
    import torch

    from tutorial_code.assistant import K_FICHES, index_calibre, prompt_avec_fiches
    from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_fiche

    with Chrono() as demarrage:  # ce qu'attend l'utilisateur avant « Vous : »
        runner, quoi = assistant_du_banc(PROMPT_SYSTEME)
        index = index_calibre()
    faits = {f["id"]: f["fait"] for f in charger_fiche()}
    mesures = []
    for i, question in enumerate([questions[0]] + questions):  # 1re : chauffe
        debut = time.perf_counter()
        trouves = index.chercher([question], K_FICHES)[0]
        recherche = time.perf_counter() - debut
        invite = runner.formater(prompt_avec_fiches(
            question, [faits[j] for j, _ in trouves]))
        ids = runner.tokenizer(invite, return_tensors="pt", add_special_tokens=False)
        chrono = Chronometre()
        with torch.inference_mode():
            runner.model.generate(**ids, streamer=chrono, do_sample=False,
                                  max_new_tokens=jetons,
                                  pad_token_id=runner.tokenizer.pad_token_id)
        fin = time.perf_counter()
        if i > 0 and chrono.instants:
            mesures.append({"recherche_s": recherche,
                            "invite": ids["input_ids"].shape[1],
                            "premier_jeton_s": chrono.instants[0] - debut,
                            "reponse_s": fin - debut, "jetons": len(chrono.instants)})
    return quoi, demarrage.duree, mesures


def section_discussion(quoi, demarrage_s, mesures):
    """Le tableau (médianes) et les deux cibles de la discussion."""
    med = {cle: commun.mediane([m[cle] for m in mesures]) for cle in mesures[0]}
    debit = sum(m["jetons"] for m in mesures) / sum(
        m["reponse_s"] - m["premier_jeton_s"] for m in mesures)
    tableau = {
        "titre": f"Discussion de l'assistant ({quoi}), médianes sur "
                 f"{len(mesures)} questions",
        "entetes": ["recherche (ms)", "invite (jetons)", "premier jeton (s)",
                    "réponse complète (s)", "jetons générés", "jetons/s"],
        "lignes": [[nombre(1000 * med["recherche_s"], 1), round(med["invite"]),
                    nombre(med["premier_jeton_s"], 2), nombre(med["reponse_s"], 2),
                    round(med["jetons"]), nombre(debit, 1)]]}
    cibles = [
        commun.cible("discussion : premier jeton", med["premier_jeton_s"],
                     f"{nombre(med['premier_jeton_s'], 2)} s",
                     CIBLE_PREMIER_JETON_S, sens="<", unite=" s"),
        commun.cible("discussion : réponse complète", med["reponse_s"],
                     f"{nombre(med['reponse_s'], 2)} s", CIBLE_REPONSE_S,
                     sens="<", unite=" s")]
    remarque = (f"Discussion : {nombre(demarrage_s, 1)} s de démarrage (modèle, "
                "index et seuil de la recherche), une fois par session.")
    return tableau, cibles, remarque


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
