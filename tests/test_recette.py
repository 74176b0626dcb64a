"""La recette d'entraînement : sources, formes du fait, aucune fuite vers le test."""

import pytest

from tutorial_code.evaluation import contient_faits, normaliser
from tutorial_code.nettoyage import trouver_fuites
from tutorial_code.pretraitement import charger_fiche, charger_questions_test
from tutorial_code.recette import charger_tickets, conversations_recette


def test_normalisation_des_faits():
    assert normaliser("8h30") == normaliser("8 h 30") == normaliser("8\u00a0h\u00a030")
    assert contient_faits("Comptez 129 euros et 48h.", ["129 €", "48 h"])
    assert contient_faits("Ouvert dès 8\u00a0h\u00a030.", ["8 h 30"])
    assert contient_faits("Le tarif est de 1.5 €", ["1,5 €"])
    assert not contient_faits("Comptez 129 €.", ["129 €", "48 h"])  # tous requis
    assert not contient_faits("Réparé à Lyons", ["42 agences"])
    assert contient_faits("Réparation à Évry", ["evry"])  # accents
    assert contient_faits("Réponse sous 48 heures.", ["48 h"])
    assert contient_faits("Dès 1 000 €.", ["1000 €"])
    # Mots entiers : un fait n'est pas reconnu à l'intérieur d'un autre mot.
    assert not contient_faits("Le remplacement coûte 290 €", ["remplacé"])
    assert not contient_faits("Comptez 115 €.", ["15 €"])
    assert contient_faits("Il sera remplacé.", ["remplacé"])


def test_tickets_rattaches_a_la_fiche():
    faits = {f["id"] for f in charger_fiche()}
    tickets = charger_tickets()
    assert len(tickets) >= 12 * len(faits)
    assert {ref for ref, _ in tickets} == faits


def test_aucune_question_de_test_dans_les_tickets():
    tickets = [{"messages": [{"role": "user", "content": q}]}
               for _, q in charger_tickets()]
    assert trouver_fuites(tickets, charger_questions_test(), seuil=0.5) == []


@pytest.mark.modele_reel
def test_recette_sur_les_vraies_donnees():
    from tutorial_code.pretraitement import charger_jeu

    jeu = charger_jeu()
    fiche = charger_fiche()
    tickets = charger_tickets()
    conversations = conversations_recette(jeu["train"], fiche, tickets)
    assert len(conversations) == len(jeu["train"]) + len(tickets)
    faits = {f["id"]: f["fait"] for f in fiche}
    ajoutes = conversations[len(jeu["train"]):]
    for (ref, question), c in zip(tickets, ajoutes):
        assert c[1] == {"role": "user", "content": question}
        assert c[2] == {"role": "assistant", "content": faits[ref]}
    assert all(c[0]["role"] == "system" for c in conversations)


@pytest.mark.modele_reel
@pytest.mark.entrainement
def test_un_court_lora_sur_les_donnees_baisse_la_perte_de_validation():
    import torch

    from tutorial_code.entrainement import (ConfigEntrainement, appliquer_methode,
                                            entrainer, perte_moyenne)
    from tutorial_code.modeles import charger_modele
    from tutorial_code.recette import preparer_exemples

    model, tokenizer = charger_modele("smollm2-135m-instruct", dtype=torch.float32,
                                      verbeux=False)
    train, validation, _ = preparer_exemples(tokenizer)
    config = ConfigEntrainement(num_epochs=1, lr=2e-3, taille_lot=16)
    model = appliquer_methode(model, config)
    avant = perte_moyenne(model, validation[:16], config)
    entrainer(model, train[::20], None, config)  # ~70 exemples, 5 pas
    apres = perte_moyenne(model, validation[:16], config)
    assert apres < avant - 0.1


def test_classer_erreurs_par_fait_donne():
    from tutorial_code.evaluation import classer_erreurs

    fiche = [{"id": "F1", "categorie": "tarifs", "cles": ["69 €"]},
             {"id": "F2", "categorie": "tarifs", "cles": ["25 €"]},
             {"id": "F3", "categorie": "agences", "cles": ["42 agences"]}]
    lignes = [
        {"ref_fiche": "F1", "reponse": "Comptez 69 euros.", "correct": True},
        {"ref_fiche": "F1", "reponse": "Chaque impact en plus : 25 €.",
         "correct": False},  # un fait voisin
        {"ref_fiche": "F1", "reponse": "Nous avons 42 agences.", "correct": False},
        {"ref_fiche": "F3", "reponse": "Bonne journée !", "correct": False},
        # 125 € ne contient pas « 25 € » en mot entier : aucun fait
        {"ref_fiche": "F3", "reponse": "Cela coûte 125 €.", "correct": False},
    ]
    assert classer_erreurs(lignes, fiche) == {
        "même catégorie": 1, "autre catégorie": 1, "aucun fait": 2}
