"""Les sorties de la page « Entraînement », produites par la construction.

Chaque bloc ``# [region:…]`` est montré tel quel dans la page ; ce qu'il
affiche est capturé dans ``docs/_sorties/entrainement/``.
"""

import json
import math
import shutil

import torch
from matplotlib.figure import Figure
from transformers import (
    AutoConfig,
)

from construction.ecrire import capturer
from tutorial_code.affinage import DOSSIER_MODELE, executer
from tutorial_code.entrainement import (
    ConfigEntrainement,
    perte_somme,
)
from tutorial_code.entrainement_trainer import perte_premier_lot
from tutorial_code.evaluation import (
    classer_erreurs,
    contient_faits,
)
from tutorial_code.lots import collate_packing
from tutorial_code.memoire import (
    afficher_tableau,
    compter_lora,
    compter_parametres,
    dimensions,
    llama2_7b,
    tableau_memoire,
)
from tutorial_code.modeles import (
    charger_modele,
    preparer_modele_embarque,
)
from tutorial_code.nombres import formater, pourcent, puissance
from tutorial_code.pretraitement import (
    PROMPT_SYSTEME,
    charger_fiche,
)
from tutorial_code.recette import preparer_exemples
from tutorial_code.runner import BasicModelRunner


def tracer_courbe(historique, chemin):
    """Perte d'entraînement (moyenne glissante) et de validation, par pas."""
    pas, perte = historique["pas"], historique["perte"]
    fenetres = [perte[max(0, i - 9):i + 1] for i in range(len(perte))]
    lissee = [sum(f) / len(f) for f in fenetres]  # moyenne des 10 derniers pas
    fig = Figure(figsize=(7, 3.5), dpi=110)  # sans pyplot : aucun écran requis
    ax = fig.subplots()
    ax.plot(pas, perte, color="#bbb", lw=0.8, label="entraînement (par pas)")
    ax.plot(pas, lissee, color="#1f77b4", lw=2, label="entraînement (moyenne sur 10)")
    if historique["validation"]:
        vp, vl = zip(*historique["validation"])
        ax.plot(vp, vl, "o-", color="#d62728", lw=2, label="validation")
    ax.set_xlabel("pas d'entraînement")
    ax.set_ylabel("perte (par jeton de réponse)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(chemin)


def tableau_avant_apres(bilan, chemin, n=8):
    """Tableau rST : question, faits attendus, réponse avant, réponse après."""
    def cellule(texte):
        return " ".join(str(texte).split()).replace("|", "/") or "—"

    lignes = [".. list-table::", "   :header-rows: 1", "   :widths: 30 12 29 29", "",
              "   * - Question", "     - Faits attendus", "     - Avant",
              "     - Après"]
    paires = list(zip(bilan["avant"]["lignes"], bilan["apres"]["lignes"]))
    # Les questions réussies d'abord, puis des échecs : on voit les deux.
    paires.sort(key=lambda p: not p[1]["correct"])
    choix = paires if len(paires) <= n else paires[:n // 2] + paires[-(n - n // 2):]
    def marque(ligne):
        return "✓ " if ligne["correct"] else "✗ "

    for avant, apres in choix:
        lignes += [f"   * - {cellule(avant['question'])}",
                   f"     - {cellule(', '.join(avant['faits_cles']))}",
                   f"     - {marque(avant)}{cellule(avant['reponse'])}",
                   f"     - {marque(apres)}{cellule(apres['reponse'])}"]
    chemin.write_text("\n".join(lignes) + "\n", encoding="utf-8")


def interpreter(bilan, erreurs, dossier):
    """Les phrases qui lisent les mesures, choisies d'après les mesures de ce
    run (rST) : aucune autre construction ne peut les contredire."""
    avant, apres = bilan["avant"], bilan["apres"]
    test, proches = apres["rappel"], apres["rappel_proches"]
    if proches > test:
        rappel = (f"Le modèle retrouve plus souvent le bon fait quand la question "
                  f"ressemble à celles de la FAQ ({pourcent(proches)}) que quand "
                  f"elle est formulée tout autrement ({pourcent(test)}) : il "
                  "relie mal une situation décrite avec d'autres mots au fait "
                  "qui y répond.")
    else:
        rappel = (f"Le modèle retrouve le bon fait aussi souvent, ou plus, sur "
                  f"les questions de test ({pourcent(test)}) que sur les "
                  f"questions proches de la FAQ ({pourcent(proches)}).")
    genre, n = max(erreurs.items(), key=lambda e: e[1])
    lecture = {
        "autre catégorie": "le modèle n'a pas reconnu de quoi parlait la "
                           "question : il répond avec un fait sans rapport",
        "même catégorie": "le modèle a compris le sujet de la question, mais "
                          "pas le détail : il donne un fait voisin",
        "aucun fait": "le modèle ne donne aucun fait de la fiche : sa réponse "
                      "est vague, ou inventée"}[genre]
    total = sum(erreurs.values())
    erreurs_rst = (f"Le cas le plus fréquent ici, « {genre} » ({n} réponses "
                   f"fausses sur {total}), dit que {lecture}." if total else
                   "Aucune réponse fausse sur ces questions.")
    hausse = apres["perte_generale"] / avant["perte_generale"] - 1
    if hausse > 0:
        oubli = (f"Ici, elle monte de {pourcent(hausse)} : le modèle a oublié "
                 "une part de ce qu'il savait faire.")
    else:
        oubli = f"Ici, elle baisse de {pourcent(-hausse)} : pas d'oubli mesuré."
    (dossier / "lecture_rappel.rst").write_text(rappel + "\n", encoding="utf-8")
    (dossier / "lecture_erreurs.rst").write_text(erreurs_rst + "\n",
                                                 encoding="utf-8")
    (dossier / "lecture_oubli.rst").write_text(oubli + "\n", encoding="utf-8")


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    with capturer(dossier / "memoire.txt"):
        # [region:memoire]
        smollm2 = AutoConfig.from_pretrained(preparer_modele_embarque())
        modeles = {"SmolLM2-135M": smollm2, "Llama-2-7B": llama2_7b()}
        afficher_tableau(tableau_memoire(modeles, r=16))
        # [fin:memoire]
    with capturer(dossier / "lora.txt"):
        # [region:formule-lora]
        for nom, (d_in, d_out) in dimensions(smollm2).items():
            print(f"{nom:<10} {d_in:>5} → {d_out:<5} : 16 × ({d_in} + {d_out}) "
                  f"= {16 * (d_in + d_out):>6} paramètres par couche")
        total = compter_lora(smollm2, r=16)
        print(f"× {smollm2.num_hidden_layers} couches = {formater(total, 0)} "
              "paramètres LoRA")
        modele = compter_parametres(smollm2)
        print(f"soit {pourcent(total / modele, 1)} des {formater(modele, 0)} "
              "poids du modèle")
        # [fin:formule-lora]

    with capturer(dossier / "execution.txt"):
        # [region:executer]
        shutil.rmtree(DOSSIER_MODELE, ignore_errors=True)  # repartir de zéro
        bilan, model, tokenizer = executer(DOSSIER_MODELE, methode="lora")
        # [fin:executer]
    tracer_courbe(bilan["historique"], dossier / "courbe.png")
    tableau_avant_apres(bilan, dossier / "avant_apres.rst")
    with capturer(dossier / "bilan.txt"):
        # [region:bilan]
        avant, apres = bilan["avant"], bilan["apres"]
        print(f"Rappel des faits, questions de test ({len(apres['lignes'])}, "
              f"formulées autrement) : {pourcent(avant['rappel'])} avant, "
              f"{pourcent(apres['rappel'])} après")
        print("Rappel des faits, questions proches de la FAQ (validation) : "
              f"{pourcent(avant['rappel_proches'])} avant, "
              f"{pourcent(apres['rappel_proches'])} après")
        print(f"Entraînement : {bilan['duree_s']:.0f} s, "
              f"{bilan['jetons_par_s']:.0f} jetons/s")
        for quand, b in (("avant", avant), ("après", apres)):
            perte = b["perte_generale"]
            print(f"Conversation générale, {quand} : perte {formater(perte, 3)}, "
                  f"perplexité {formater(math.exp(perte))}")
        # [fin:bilan]
    with capturer(dossier / "erreurs.txt"):
        # [region:erreurs]
        erreurs = classer_erreurs(apres["lignes"], charger_fiche())
        print(f"Réponses fausses après l'affinage : {sum(erreurs.values())} "
              f"sur {len(apres['lignes'])}")
        for genre, n in erreurs.items():
            print(f"  {genre:<16} {n:>3}")
        # [fin:erreurs]
    (dossier / "entrainement_s.txt").write_text(f"{bilan['duree_s']:.0f}")
    interpreter(bilan, erreurs, dossier)

    with capturer(dossier / "fusion.txt"):
        # [region:fusion]
        ids = tokenizer("Combien coûte un pare-brise ?", return_tensors="pt")
        with torch.no_grad():
            avec_adaptateur = model(**ids).logits
            fusionne = model.merge_and_unload()  # W ← W + (alpha / r) · B·A
            apres_fusion = fusionne(**ids).logits
        ecart = (avec_adaptateur - apres_fusion).abs().max().item()
        print("Écart maximal des logits, adaptateur contre fusionné :",
              puissance(ecart))
        fusionne.save_pretrained(DOSSIER_MODELE / "fusionne")
        tokenizer.save_pretrained(DOSSIER_MODELE / "fusionne")
        # [fin:fusion]
    with capturer(dossier / "recharger.txt"):
        # [region:recharger]
        question = "Vous réparez les impacts sur le pare-brise ? C'est combien ?"
        reponses = []
        for chemin in (DOSSIER_MODELE / "modele", DOSSIER_MODELE / "fusionne"):
            runner = BasicModelRunner(str(chemin), max_new_tokens=48,
                                      system_prompt=PROMPT_SYSTEME)
            reponses.append(runner.predict(question))
            print(f"{chemin.name} → {reponses[-1]}")
        juste = contient_faits(reponses[0], ["69 €"])  # fiche, fait F006
        print("Mêmes réponses :", "oui" if reponses[0] == reponses[1] else "non",
              "; le prix de la fiche (69 €) :", "donné" if juste else "absent")
        # [fin:recharger]
    # Mémoire : le modèle entraîné (fusionné) et le dernier rechargé ne
    # servent plus ; rendus avant que la comparaison en charge un autre.
    del model, fusionne, runner
    with capturer(dossier / "trainer.txt"):
        comparer_trainer(tokenizer)
    (dossier / "bilan.json").write_text(json.dumps(
        {k: bilan[k] for k in ("duree_s", "jetons_par_s")}))


def comparer_trainer(tokenizer):
    """Même lot, même modèle : notre perte et celle du Trainer."""
    # [region:trainer]
    model, _ = charger_modele("smollm2-135m-instruct", dtype=torch.float32)
    train, _, _ = preparer_exemples(tokenizer)
    exemples = train[:8]
    with torch.no_grad():
        perte, k = perte_somme(model, collate_packing(exemples))
        perte_trainer = perte_premier_lot(model, exemples, ConfigEntrainement())
    print(f"Notre boucle : {formater(perte.item() / k, 6)} ; Trainer : "
          f"{formater(perte_trainer.item(), 6)} ({k} jetons de réponse)")
    # [fin:trainer]
