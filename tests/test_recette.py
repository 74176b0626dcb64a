"""La recette d'entraînement : sources, formes du fait, aucune fuite vers le test."""

import pytest

from tutorial_code.evaluation import contient_faits, normaliser
from tutorial_code.nettoyage import trouver_fuites
from tutorial_code.pretraitement import charger_fiche, charger_questions_test
from tutorial_code.recette import charger_tickets, conversations_recette


def test_normalisation_des_faits():
    assert normaliser("8h30") == normaliser("8 h 30")
    assert contient_faits("Comptez 129 euros et 48h.", ["129 €", "48 h"])
    assert contient_faits("Ouvert dès 8\u00a0h\u00a030.", ["8 h 30"])
    assert contient_faits("Le tarif est de 1.5 €", ["1,5 €"])
    assert not contient_faits("Comptez 129 €.", ["129 €", "48 h"])  # tous requis
    assert not contient_faits("Réparé à Lyons", ["42 agences"])
    assert contient_faits("Réparation à Évry", ["evry"])  # accents


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
    sans = conversations_recette(jeu["train"], fiche, tickets, fiche_pour_faq=False)
    avec = conversations_recette(jeu["train"], fiche, tickets)
    n_faq = sum(s == "faq" for s in jeu["train"]["source"])
    assert len(sans) == len(jeu["train"]) + len(tickets)
    assert len(avec) == len(sans) + n_faq
    faits = {f["fait"] for f in fiche}
    ajoutes = avec[len(jeu["train"]):]
    assert all(c[-1]["content"] in faits for c in ajoutes)  # la phrase de la fiche
    assert all(c[0]["role"] == "system" for c in avec)
