"""La recette d'entraînement : sources, formes du fait, aucune fuite vers le test."""

import pytest

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
