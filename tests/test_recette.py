"""La recette d'entraînement : sources, formes du fait, aucune fuite vers le test."""

import pytest

from tutorial_code.evaluation import contient_faits, normaliser
from tutorial_code.nettoyage import trouver_fuites
from tutorial_code.pretraitement import (
    BRUT,
    ROLES_ENTREPRISE,
    charger_fiche,
    charger_questions_test,
    convertir,
    lire_tickets,
)
from tutorial_code.recette import conversations_recette


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
    fiche = charger_fiche()
    tickets, rejets = lire_tickets(BRUT / "tickets_clients.csv", fiche)
    assert rejets == [] and len(tickets) >= 12 * len(fiche)
    faits = {f["id"]: f["fait"] for f in fiche}
    assert {t["ref_fiche"] for _, t in tickets} == set(faits)
    assert all(t["reponse"] == faits[t["ref_fiche"]] for _, t in tickets)


def test_un_ticket_a_reference_inconnue_est_rejete_et_nomme(tmp_path):
    chemin = tmp_path / "tickets.csv"
    chemin.write_text("id,ref_fiche,question\nK1,F001,Fondée quand ?\n"
                      "K2,F999,Une question ?\n", encoding="utf-8")
    tickets, _ = lire_tickets(chemin, charger_fiche())
    exemples, rejets = convertir(tickets, chemin, ROLES_ENTREPRISE, "tickets")
    assert [e["id"] for e in exemples] == ["K1"]
    assert len(rejets) == 1 and rejets[0]["ligne"] == 3


def test_aucune_question_de_test_dans_les_tickets():
    tickets, _ = lire_tickets(BRUT / "tickets_clients.csv", charger_fiche())
    tickets = [{"messages": [{"role": "user", "content": t["question"]}]}
               for _, t in tickets]
    assert trouver_fuites(tickets, charger_questions_test(), seuil=0.5) == []


@pytest.mark.modele_reel
def test_recette_sur_les_vraies_donnees():
    from tutorial_code.pretraitement import charger_jeu

    jeu = charger_jeu()
    conversations = conversations_recette(jeu["train"])
    assert len(conversations) == len(jeu["train"])
    faits = {f["id"]: f["fait"] for f in charger_fiche()}
    tickets = [e for e in jeu["train"] if e["source"] == "tickets"]
    assert len(tickets) > 600  # les tickets passent par le Prétraitement
    for e in tickets:
        assert e["messages"][2] == {"role": "assistant",
                                    "content": faits[e["ref_fiche"]]}
    assert all(c[0]["role"] == "system" for c in conversations)
    sans_tickets = conversations_recette(jeu["train"], sources=("faq", "chat"))
    assert len(sans_tickets) == len(conversations) - len(tickets)


@pytest.mark.modele_reel
@pytest.mark.entrainement
def test_un_court_lora_sur_les_donnees_baisse_la_perte_de_validation():
    import torch

    from tutorial_code.entrainement import (
        ConfigEntrainement,
        appliquer_methode,
        entrainer,
        perte_moyenne,
    )
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
