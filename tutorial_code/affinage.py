"""La chaîne complète du chapitre : évaluer, affiner, réévaluer, sauvegarder.

C'est ce que lance ``python -m tutorial_code.affinage`` et ce que la
construction du site exécute pour produire les résultats du chapitre.
"""

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tutorial_code import RACINE
from tutorial_code.aide import creer_parser
from tutorial_code.entrainement import (
    EcritureRepriseImpossible,
    PointDeRepriseIncompatible,
    appliquer_methode,
    entrainer,
    perte_moyenne,
    planifier,
)
from tutorial_code.evaluation import (
    exemples_generaux,
    questions_validation,
    rappel_des_faits,
)
from tutorial_code.modeles import (
    MODELE_EMBARQUE,
    charger_modele,
    choisir_device_dtype,
)
from tutorial_code.nombres import accorder, formater, pourcent
from tutorial_code.pretraitement import (
    PROMPT_SYSTEME,
    charger_fiche,
    charger_jeu,
    charger_questions_test,
)
from tutorial_code.recette import RECETTE, preparer_exemples
from tutorial_code.runner import BasicModelRunner

# L'assistant du chapitre (adaptateur, modèle fusionné), ignoré par git ; le mode
# rapide (tests) n'écrase jamais celui de la construction.
DOSSIER_MODELE = RACINE / "_travail" / (
    "assistant-rapide" if os.environ.get("AFFINAGE_RAPIDE") == "1" else "assistant")



def decrire_plan(train, config):
    """Le travail prévu : pas, mises à jour, exemples et jetons vus."""
    plan = planifier([len(e["input_ids"]) for e in train], config)
    jetons = sum(len(train[i]["input_ids"]) for lot in plan for i in lot)
    exemples = sum(len(lot) for lot in plan)
    return {"pas": len(plan), "mises_a_jour": -(-len(plan) // config.accumulation),
            "exemples": exemples, "epoques": exemples / len(train),
            "jetons": jetons}


def evaluer(model, tokenizer, questions, proches, generaux, config):
    """Rappel des faits sur les questions de test (formulées autrement) et sur
    des questions proches de la FAQ ; perte sur la conversation générale."""
    runner = BasicModelRunner.depuis_modele(model, tokenizer,
                                            system_prompt=PROMPT_SYSTEME)
    score, lignes = rappel_des_faits(runner, questions)
    score_proches, _ = rappel_des_faits(runner, proches)
    return {"rappel": score, "lignes": lignes, "rappel_proches": score_proches,
            "perte_generale": perte_moyenne(model, generaux, config)}


def executer(sortie, methode="lora", num_epochs=None, lr=None, donnees=None,
             rapide=False, sauver_tous=20):
    """Toute la chaîne ; écrit dans ``sortie`` et renvoie le bilan (dict).

    ``AFFINAGE_RAPIDE=1`` dans l'environnement force le mode rapide (tests).
    """
    rapide = rapide or os.environ.get("AFFINAGE_RAPIDE") == "1"
    sortie = Path(sortie)
    sortie.mkdir(parents=True, exist_ok=True)
    _, dtype, raison = choisir_device_dtype(entrainement=True)
    config = replace(RECETTE[methode], bf16=dtype == torch.bfloat16)
    config = replace(config, num_epochs=num_epochs or config.num_epochs,
                     lr=lr or config.lr)
    print(("Poids en float32, calcul en bf16 (autocast)" if config.bf16
           else "Calcul en fp32") + f" : {raison}.")
    model, tokenizer = charger_modele(MODELE_EMBARQUE, dtype=torch.float32)
    train, validation, comptes = preparer_exemples(tokenizer, donnees)
    questions, generaux = charger_questions_test(), exemples_generaux(tokenizer)
    proches = questions_validation(charger_jeu(donnees)["validation"],
                                   charger_fiche())
    if rapide:  # quelques secondes : pour les tests et un premier essai
        train, validation, questions = train[:16], validation[:4], questions[:4]
        proches, config = proches[:4], replace(config, num_epochs=1)
    avant = evaluer(model, tokenizer, questions, proches, generaux, config)
    print(f"Avant : rappel des faits {pourcent(avant['rappel'])}")

    model = appliquer_methode(model, config)
    plan = decrire_plan(train, config)
    maj = accorder(plan["mises_a_jour"], "mise à jour", "mises à jour")
    print(f"Plan fixe : {maj} de {config.taille_lot * config.accumulation} "
          "conversations "
          f"({formater(plan['epoques'], 2)} époque), "
          f"{formater(plan['jetons'], 0)} jetons.")
    debut = time.perf_counter()
    historique = entrainer(model, train, validation, config, sortie=sortie,
                           sauver_tous=sauver_tous)
    duree = time.perf_counter() - debut
    jetons = plan["jetons"]
    apres = evaluer(model, tokenizer, questions, proches, generaux, config)
    print(f"Après : rappel des faits {pourcent(apres['rappel'])} ; entraînement "
          f"{duree:.0f} s, {jetons / duree:.0f} jetons/s")

    model.save_pretrained(sortie / "modele")  # safetensors (adaptateur si LoRA)
    tokenizer.save_pretrained(sortie / "modele")
    bilan = {"config": asdict(config), "comptes": comptes, "duree_s": duree,
             "plan": plan,
             "jetons_par_s": jetons / duree, "historique": historique,
             "avant": avant, "apres": apres, "dtype": str(dtype), "raison": raison}
    (sortie / "bilan.json").write_text(json.dumps(bilan, ensure_ascii=False,
                                                  indent=1))
    return bilan, model, tokenizer


def analyser_arguments(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.affinage",
        description="Affine le modèle embarqué en assistant de Vitrexpress Auto, "
                    "puis mesure le rappel des faits avant et après.")
    parser.add_argument("--donnees", default=None,
                        help="dossier du jeu préparé par le Prétraitement "
                             "(défaut : _travail/donnees, préparé si besoin)")
    parser.add_argument("--sortie", required=True,
                        help="dossier où écrire l'adaptateur (ou le modèle), "
                             "les points de reprise et le bilan")
    parser.add_argument("--methode", choices=["lora", "complet"], default="lora")
    parser.add_argument("--epochs", type=int, default=None, help="nombre d'époques")
    parser.add_argument("--lr", type=float, default=None,
                        help="taux d'apprentissage maximal")
    parser.add_argument("--reprendre", action="store_true",
                        help="reprend depuis le dernier point de reprise de --sortie")
    parser.add_argument("--rapide", action="store_true",
                        help="essai de quelques secondes (16 exemples, 4 questions)")
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = analyser_arguments(argv)
    sortie = Path(args.sortie)
    if args.donnees and not (Path(args.donnees) / "arrow").exists():
        parser.exit(2, f"Erreur : {args.donnees} ne contient pas de jeu préparé "
                       "(dossier « arrow » absent). Lancez d'abord "
                       "« python -m tutorial_code.pretraitement ».\n")
    if sortie.exists() and any(sortie.iterdir()) and not args.reprendre:
        parser.exit(2, f"Erreur : {sortie} existe déjà et n'est pas vide ; il "
                       "serait écrasé. Ajoutez --reprendre pour continuer un "
                       "entraînement interrompu, ou choisissez un autre dossier.\n")
    try:
        executer(sortie, args.methode, args.epochs, args.lr, args.donnees,
                 rapide=args.rapide)
    except (PointDeRepriseIncompatible, EcritureRepriseImpossible) as erreur:
        parser.exit(2, f"Erreur : {erreur}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
