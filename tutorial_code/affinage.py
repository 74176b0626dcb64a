"""La chaîne complète du chapitre : évaluer, affiner, réévaluer, sauvegarder.

C'est ce que lance ``python -m tutorial_code.entrainement`` et ce que la
construction du site exécute pour produire les résultats du chapitre.
"""

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tutorial_code.entrainement import (ConfigEntrainement, appliquer_methode,
                                        contexte_calcul, entrainer, perte_moyenne,
                                        perte_somme)
from tutorial_code.lots import collate_packing
from tutorial_code.evaluation import (exemples_generaux, pourcent,
                                      questions_validation, rappel_des_faits)
from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele, choisir_device_dtype
from tutorial_code.pretraitement import (PROMPT_SYSTEME, charger_fiche, charger_jeu,
                                        charger_questions_test)
from tutorial_code.recette import preparer_exemples
from tutorial_code.runner import BasicModelRunner

# [region:reglages]
# La recette du chapitre, dimensionnée pour 2 cœurs de CPU.
RECETTE = {
    "lora": ConfigEntrainement(methode="lora", num_epochs=2, lr=2e-3,
                               taille_lot=16, lora_r=16, lora_alpha=32),
    "complet": ConfigEntrainement(methode="complet", num_epochs=2, lr=1e-4,
                                  taille_lot=16),
}
BUDGET_S = 360  # 6 min d'entraînement au plus, même sur un CPU lent
# [fin:reglages]


# [region:debit]
def mesurer_debit(model, train, config, n_pas=3):
    """Jetons par seconde d'un pas avant + arrière, sans toucher aux poids."""
    lot = collate_packing(train[:config.taille_lot])
    durees = []
    for _ in range(n_pas):
        debut = time.perf_counter()
        with contexte_calcul(config):
            perte, _ = perte_somme(model, lot)
        perte.backward()
        durees.append(time.perf_counter() - debut)
    model.zero_grad(set_to_none=True)
    return lot["input_ids"].shape[1] / min(durees[1:])  # le 1er pas chauffe


def dimensionner(config, train, debit, budget_s=BUDGET_S):
    """Borne le nombre de pas pour tenir dans ``budget_s`` à ce débit."""
    jetons_par_pas = sum(len(e["input_ids"]) for e in train) / len(train) * (
        config.taille_lot)
    max_pas = int(budget_s * debit / jetons_par_pas)
    plan_complet = config.num_epochs * -(-len(train) // config.taille_lot)
    return replace(config, max_pas=max_pas if max_pas < plan_complet else 0)
# [fin:debit]


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
    print(f"Calcul en {'bf16' if config.bf16 else 'fp32'} : {raison}.")
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
    if not rapide:
        debit = mesurer_debit(model, train, config)
        config = dimensionner(config, train, debit)
        pas = config.max_pas or "tous les"
        print(f"Débit mesuré : {debit:.0f} jetons/s ; budget {BUDGET_S} s "
              f"→ {pas} pas d'entraînement.")
    debut = time.perf_counter()
    historique = entrainer(model, train, validation, config, sortie=sortie,
                           sauver_tous=sauver_tous)
    duree = time.perf_counter() - debut
    jetons = sum(len(e["input_ids"]) for e in train) * config.num_epochs
    apres = evaluer(model, tokenizer, questions, proches, generaux, config)
    print(f"Après : rappel des faits {pourcent(apres['rappel'])} ; entraînement "
          f"{duree:.0f} s, {jetons / duree:.0f} jetons/s")

    model.save_pretrained(sortie / "modele")  # safetensors (adaptateur si LoRA)
    tokenizer.save_pretrained(sortie / "modele")
    bilan = {"config": asdict(config), "comptes": comptes, "duree_s": duree,
             "jetons_par_s": jetons / duree, "historique": historique,
             "avant": avant, "apres": apres, "dtype": str(dtype), "raison": raison}
    (sortie / "bilan.json").write_text(json.dumps(bilan, ensure_ascii=False,
                                                  indent=1))
    return bilan, model, tokenizer
