"""Recherche + affinage : l'index, le format des fiches, « je ne sais pas »."""

import pytest
import torch
from conftest import construire_modele, construire_tokenizer

from tutorial_code.assistant import (
    REPONSE_INCONNUE,
    conversation_rag,
    exemples_rag,
    juste,
    preparer_gabarit,
    prompt_avec_fiches,
    tokeniser,
)
from tutorial_code.entrainement import ConfigEntrainement, entrainer
from tutorial_code.evaluation import contient_faits
from tutorial_code.pretraitement import PROMPT_SYSTEME
from tutorial_code.recherche import IndexFiches, rappel_recherche
from tutorial_code.runner import BasicModelRunner
from tutorial_code.tokenisation import IGNORE

FICHE = [
    {"id": "F1", "fait": "La réparation d'un impact coûte 69 €.", "cles": ["69 €"]},
    {"id": "F2", "fait": "Les agences ferment le dimanche.", "cles": ["dimanche"]},
    {"id": "F3", "fait": "Le chat en ligne répond jusqu'à 22 h.", "cles": ["22 h"]},
]


def test_la_recherche_trouve_le_document_qui_partage_les_mots_rares():
    index = IndexFiches({"F1": "pare-brise impact réparation éclat gravillon",
                         "F2": "agence horaires dimanche fermeture",
                         "F3": "pare-brise remplacement berline"})
    (premier, _), *_ = index.chercher(["un gravillon a fait un éclat"], k=3)[0]
    assert premier == "F1"
    # Accents et pluriels : « réparations » et « reparation » ont la même racine.
    assert index.chercher(["REPARATIONS d'impacts"], k=1)[0][0][0] == "F1"
    rappels, rangs = rappel_recherche(index, [
        {"question": "fermeture le dimanche ?", "ref_fiche": "F2"},
        {"question": "gravillon", "ref_fiche": "F3"}], ks=(1, 3))
    assert rangs[0] == 1 and rangs[1] != 1 and rappels[1] == 0.5


def test_les_fiches_sont_dans_le_prompt_et_hors_de_la_perte(tokenizer_minuscule):
    messages = conversation_rag("Combien pour un impact ?",
                                [f["fait"] for f in FICHE], FICHE[0]["fait"])
    texte = tokenizer_minuscule.apply_chat_template(messages, tokenize=False)
    # Les fiches, numérotées dans l'ordre de la recherche, précèdent la question,
    # dans le tour de l'utilisateur.
    tour_user = texte.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    assert tour_user == prompt_avec_fiches("Combien pour un impact ?",
                                           [f["fait"] for f in FICHE])
    assert tour_user.index("Fiche 1 :") < tour_user.index("Fiche 3 :") < \
        tour_user.index("Question :")
    (exemple,) = tokeniser([messages], tokenizer_minuscule)
    appris = [i for i, e in zip(exemple["input_ids"], exemple["labels"])
              if e != IGNORE]
    # Seule la réponse (et sa fin de tour) compte dans la perte.
    assert tokenizer_minuscule.decode(appris) == FICHE[0]["fait"] + "<|im_end|>"


def exemples_tickets(n=8):
    return [{"ref_fiche": f["id"], "source": "tickets", "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": f"{mot} {i}"},
        {"role": "assistant", "content": f["fait"]}]}
        for f, mot in zip(FICHE, ["impact", "dimanche", "chat"]) for i in range(n)]


def test_sans_la_bonne_fiche_la_reponse_apprise_est_je_ne_sais_pas():
    # k = 1 et aucune fiche retirée : la seule fiche donnée est la bonne.
    conversations, presents = exemples_rag(exemples_tickets(), FICHE, k=1,
                                           part_sans=0)
    assert len(conversations) == 24 and presents == 24
    assert all(c[2]["content"] in c[1]["content"] for c in conversations)
    # Bonne fiche toujours retirée : toujours « je ne sais pas », et la
    # réponse n'est jamais dans les fiches du prompt.
    conversations, presents = exemples_rag(exemples_tickets(), FICHE, k=2,
                                           part_sans=1)
    assert presents == 0
    assert all(c[2]["content"] == REPONSE_INCONNUE for c in conversations)
    # Les questions hors sujet s'ajoutent, avec la même réponse.
    conversations, _ = exemples_rag(exemples_tickets(), FICHE, k=1, part_sans=0,
                                    hors_sujet=["Quelle est la capitale du Japon ?"])
    assert len(conversations) == 25
    (hors,) = [c for c in conversations if "Japon" in c[1]["content"]]
    assert hors[2]["content"] == REPONSE_INCONNUE


def test_une_question_n_est_jamais_cherchee_dans_un_index_qui_la_contient():
    # Chaque question porte un mot qu'elle seule emploie, rattaché à F3 ;
    # si l'index de son pli la contenait, F3 viendrait en tête.
    exemples = exemples_tickets(4)
    for i, e in enumerate(exemples):
        e["messages"][1]["content"] = f"impact mot{i}unique"
        e["ref_fiche"] = "F3" if i % 2 else "F1"
    conversations, _ = exemples_rag(exemples, FICHE, k=1, part_sans=0, plis=4)
    for c in conversations:
        premiere = c[1]["content"].split("\n")[0]
        assert premiere == f"Fiche 1 : {FICHE[0]['fait']}"  # « impact » → F1


def test_la_reponse_inconnue_ne_contient_aucun_fait():
    from tutorial_code.pretraitement import charger_fiche

    assert not any(contient_faits(REPONSE_INCONNUE, f["cles"])
                   for f in charger_fiche())


def test_un_gabarit_de_tours_pour_un_modele_sans_gabarit():
    tokenizer = construire_tokenizer()  # le sien : on le modifie
    tokenizer.chat_template = None  # comme un modèle seulement pré-entraîné
    model = construire_modele(tokenizer)
    assert preparer_gabarit(model, tokenizer)
    texte = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        tokenize=False, add_generation_prompt=True)
    assert texte.endswith("<start_of_turn>user\nS\n\nQ<end_of_turn>\n"
                          "<start_of_turn>model\n")
    fin = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert fin in tokenizer.all_special_ids
    assert fin in model.generation_config.eos_token_id
    assert not preparer_gabarit(model, tokenizer)  # déjà fait : rien ne change


def test_affine_sans_la_bonne_fiche_il_apprend_a_dire_je_ne_sais_pas():
    """Surapprendre une poignée d'exemples : avec la bonne fiche, il la
    recopie ; sans elle, il répond « je ne sais pas »."""
    tokenizer_minuscule = construire_tokenizer()  # predict règle son padding
    avec = conversation_rag("impact ?", [FICHE[0]["fait"]], FICHE[0]["fait"])
    sans = conversation_rag("dimanche ?", [FICHE[2]["fait"]], "Je ne sais pas.")
    model = construire_modele(tokenizer_minuscule)
    train = tokeniser([avec, sans] * 4, tokenizer_minuscule)
    config = ConfigEntrainement(methode="complet", num_epochs=60, lr=3e-3,
                                taille_lot=8, warmup=0.05)
    torch.manual_seed(0)
    entrainer(model, train, [], config)
    runner = BasicModelRunner.depuis_modele(model, tokenizer_minuscule,
                                            max_new_tokens=64,
                                            system_prompt=PROMPT_SYSTEME)
    reponses = runner.predict([avec[1]["content"], sans[1]["content"]])
    assert reponses == [FICHE[0]["fait"], "Je ne sais pas."]


def test_travail_fixe_deux_runs_meme_graine_memes_pas_meme_perte(tokenizer_minuscule):
    conversations, _ = exemples_rag(exemples_tickets(), FICHE, k=2)
    train = tokeniser(conversations, tokenizer_minuscule)
    config = ConfigEntrainement(methode="complet", num_epochs=1, lr=1e-3,
                                taille_lot=2, accumulation=2, max_pas=6)
    historiques = []
    for _ in range(2):
        model = construire_modele(tokenizer_minuscule)
        historiques.append(entrainer(model, train, [], config))
    assert historiques[0]["pas"] == historiques[1]["pas"] == [1, 2, 3, 4, 5, 6]
    assert historiques[0]["perte"] == historiques[1]["perte"]


def test_la_recherche_dit_quand_elle_ne_trouve_rien():
    from tutorial_code.recherche import calibrer_seuil

    index = IndexFiches({f["id"]: f["fait"] for f in FICHE})
    seuil = calibrer_seuil(index, ["capitale du Japon", "recette de crêpes",
                                   "impact"], quantile=0.9)
    assert seuil > 0 and index.seuil == seuil
    score_hors = index.chercher(["capitale du Japon"], k=1)[0][0][1]
    score_vrai = index.chercher(["réparation d'un impact"], k=1)[0][0][1]
    assert score_hors < seuil <= score_vrai


def test_sous_le_seuil_le_modele_n_est_pas_appele():
    from tutorial_code.assistant import repondre

    class RunnerInterdit:
        def predict(self, prompts, max_new_tokens=None):
            assert len(prompts) == 1, "seule la question au-dessus du seuil"
            return ["réponse du modèle"]

    index = IndexFiches({f["id"]: f["fait"] for f in FICHE})
    index.seuil = index.chercher(["réparation impact"], k=1)[0][0][1]
    faits = {f["id"]: f["fait"] for f in FICHE}
    reponses = repondre(RunnerInterdit(), index, faits, [
        {"question": "réparation impact"}, {"question": "capitale du Japon"}])
    assert reponses == ["réponse du modèle", REPONSE_INCONNUE]


def test_mesurer_compte_juste_et_je_ne_sais_pas():
    from tutorial_code.assistant import mesurer

    fiche = [dict(f, cles=f["cles"]) for f in FICHE]
    jeux = {"test": [{"id": "T1", "ref_fiche": "F1", "faits_cles": ["69 €"]},
                     {"id": "T2", "ref_fiche": "F2", "faits_cles": ["dimanche"]}],
            "proches": [{"id": "V1", "ref_fiche": "F3", "faits_cles": ["22 h"]}],
            "hors sujet": [{"id": "H1"}, {"id": "H2"}]}
    reponses = {"test": ["Comptez 69 €.",
                         # toutes les fiches recopiées : ce n'est pas répondre
                         "Les agences ferment le dimanche. Le chat répond "
                         "jusqu'à 22 h."],
                "proches": ["Jusqu'à 22 h."],
                "hors sujet": [REPONSE_INCONNUE, "Tokyo."]}
    mesures = mesurer(reponses, jeux, fiche)
    assert (mesures["test"], mesures["proches"], mesures["hors sujet"]) == (
        0.5, 1.0, 0.5)
    assert mesures["questions"]["test"] == ["T1", "T2"]


def test_aide_en_francais_et_erreur_sans_assistant(tmp_path, capsys, monkeypatch):
    from tutorial_code import assistant

    with pytest.raises(SystemExit):
        assistant.main(["--help"])
    aide = capsys.readouterr().out
    assert "usage:" not in aide and "--discuter" in aide and "options" in aide
    monkeypatch.setattr(assistant, "DOSSIER_ASSISTANTS", tmp_path / "aucun")
    with pytest.raises(SystemExit) as sortie:
        assistant.main(["--discuter"])
    assert sortie.value.code == 2
    assert "Aucun assistant entraîné" in capsys.readouterr().err


@pytest.mark.modele_reel
@pytest.mark.entrainement
def test_recherche_et_affinage_battent_l_affinage_seul(tmp_path):
    """Sur le vrai modèle, même court entraînement (12 mises à jour de 16) :
    avec les fiches, plus de réponses justes qu'avec l'affinage seul."""
    from dataclasses import replace

    from tutorial_code.assistant import (
        RECETTE_RAG,
        entrainer_assistant,
        index_calibre,
        repondre,
    )
    from tutorial_code.entrainement import appliquer_methode
    from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele
    from tutorial_code.pretraitement import charger_fiche, charger_questions_test
    from tutorial_code.recette import preparer_exemples
    from tutorial_code.sonde import Encodeur

    config = replace(RECETTE_RAG, max_pas=48, bf16=False)
    fiche = charger_fiche()
    faits = {f["id"]: f["fait"] for f in fiche}
    jeux = {"test": charger_questions_test()[:12], "proches": [],
            "hors sujet": [{"id": "H", "question": "Quelle est la capitale du "
                                                  "Japon ?"}]}
    encodeur = Encodeur()  # celui de la sonde, partagé : vecteurs calculés une fois
    model, tokenizer, _ = entrainer_assistant(MODELE_EMBARQUE, tmp_path / "rag",
                                              config=config, encodeur=encodeur)
    runner = BasicModelRunner.depuis_modele(model, tokenizer,
                                            system_prompt=PROMPT_SYSTEME)
    index = index_calibre(encodeur, fichier=tmp_path / "sonde.safetensors")
    avec = {nom: repondre(runner, index, faits, qs) for nom, qs in jeux.items()}
    seul, tok_seul = charger_modele(MODELE_EMBARQUE, dtype=torch.float32,
                                    verbeux=False)
    train, _, _ = preparer_exemples(tok_seul)
    seul = appliquer_methode(seul, config)
    torch.manual_seed(0)
    entrainer(seul, train, [], config)
    runner_seul = BasicModelRunner.depuis_modele(seul, tok_seul,
                                                 system_prompt=PROMPT_SYSTEME)
    sans = {nom: runner_seul.predict([q["question"] for q in qs])
            if qs else [] for nom, qs in jeux.items()}
    score = {nom: sum(juste(r, q, fiche) for r, q in zip(rep["test"], jeux["test"]))
             for nom, rep in (("avec", avec), ("sans", sans))}
    assert score["avec"] > score["sans"], score


def test_lora_sur_la_tete_sans_toucher_aux_embeddings_lies(tmp_path):
    """LoRA sur la dernière couche et sur lm_head : la couche du dessous et les
    embeddings (liés à lm_head) restent gelés ; l'adaptateur sauvegardé ne
    recopie pas les embeddings et rend les mêmes logits une fois rechargé."""
    from peft import PeftModel
    from safetensors.torch import load_file

    from tutorial_code.assistant import perte_fin_de_tour
    from tutorial_code.entrainement import appliquer_methode
    tokenizer = construire_tokenizer()
    conversation = conversation_rag("impact ?", [FICHE[0]["fait"]], FICHE[0]["fait"])
    model = construire_modele(tokenizer)
    embeddings = model.get_input_embeddings().weight.detach().clone()
    avant = perte_fin_de_tour(model, tokenizer, [conversation])
    config = ConfigEntrainement(num_epochs=30, lr=1e-2, taille_lot=4, warmup=0.05,
                                lora_couches=1, lora_tete=True)
    model = appliquer_methode(model, config)
    entraines = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lm_head.lora_A" in n for n in entraines)
    assert any(".layers.1." in n for n in entraines)
    assert not any(".layers.0." in n or "embed" in n for n in entraines)
    entrainer(model, tokeniser([conversation] * 4, tokenizer), [], config)
    assert perte_fin_de_tour(model, tokenizer, [conversation]) < avant / 2
    assert torch.equal(model.get_input_embeddings().weight, embeddings)
    model.save_pretrained(tmp_path, save_embedding_layers=False)
    cles = load_file(tmp_path / "adapter_model.safetensors")
    assert not any("embed" in c for c in cles) and any("lm_head" in c for c in cles)
    ids = torch.tensor([tokeniser([conversation], tokenizer)[0]["input_ids"]])
    recharge = PeftModel.from_pretrained(construire_modele(tokenizer), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(recharge(ids).logits, model(ids).logits)


def test_choix_du_modele_sur_la_validation():
    """La phrase du choix suit les mesures : le choix se fait sur la
    validation (« proches »), le test est seulement rapporté."""
    from construction.recherche import phrase_du_choix

    m, a = {"proches": 0.77, "test": 0.46}, {"proches": 0.74, "test": 0.49}
    phrase = phrase_du_choix(m, a, "Gemma 3 270M", "SmolLM2")
    assert "validation est Gemma 3 270M (77\u00a0% contre 74\u00a0%" in phrase
    assert "Sur le test, il fait moins bien (46\u00a0% contre 49\u00a0%)" in phrase
    phrase = phrase_du_choix({"proches": 0.8, "test": 0.6}, a, "G", "S")
    assert "aussi mieux (60\u00a0% contre 49\u00a0%)" in phrase
    phrase = phrase_du_choix({"proches": 0.74, "test": 0.6}, a, "G", "S")
    assert phrase.startswith("Les deux modèles font jeu égal") and "74\u00a0%" in phrase


def test_conclusion_ecart_d_une_question_dans_le_bruit(tmp_path, monkeypatch):
    """Une question d'écart avec la fiche n° 1 ne fait pas dire « moins bien » ;
    cinq, si. Les nombres de questions sont ceux du tableau."""
    from construction import recherche as rp

    monkeypatch.setattr(rp, "TRAVAIL", tmp_path)
    g = rp.NOMS[rp.MODELE_BASE]

    def phrases(test_affine):
        m = {"test": test_affine, "proches": 0.77, "hors sujet": 0.63, "perte": 3.0}
        lignes = {rp.EXTRACTIF:
                  {"test": 39 / 67, "hors sujet": 0.63},
                  f"… sans conversations générales mêlées, {g}": dict(m, perte=3.9),
                  f"recherche + {g} non affiné": dict(m, test=37 / 67, perte=3.5)}
        resultats = {rp.MODELE_BASE: (m,), rp.MODELE_EMBARQUE: (dict(m, proches=0.7),)}
        rp.conclure(tmp_path, lignes, resultats, rp.MODELE_BASE, {"test": 67})
        return (tmp_path / "conclusion.rst").read_text(encoding="utf-8")

    texte = phrases(38 / 67)
    assert "juste à 38 questions de test sur 67" in texte and "à 39" in texte
    assert "trop peu pour les départager" in texte and "moins bien" not in texte
    assert "fait passer Gemma 3 270M de 37 à 38 questions de test justes" in texte
    assert "un écart dans le bruit de la mesure (jusqu'à 2 questions)" in texte
    assert "une question d'écart" in texte
    assert "(−14\u00a0%)" in texte
    assert "aucun oubli mesuré ; sans lui, la perte monte" in texte
    assert "38 questions justes avec le mélange, 38 sans : un écart" in texte
    texte = phrases(34 / 67)
    assert "reste 5 questions sur 67 sous la fiche" in texte


@pytest.mark.parametrize("seuil, refusent, attendu", [
    (1e9, (), "reste sous le seuil"),
    (0.0, ("A",), "seul A dit « je ne sais pas »"),
    (0.0, ("A", "B"), "chacun des deux dit pourtant"),
    (0.0, (), "aucun des deux modèles ne dit"),
])
def test_lecture_hors_sujet_suit_le_score_et_les_reponses(
        monkeypatch, tokenizer_minuscule, seuil, refusent, attendu):
    import construction.recherche as producteur

    reseaux = {nom: construire_modele(tokenizer_minuscule, graine=g)
               for g, nom in enumerate("AB")}
    charges = []  # les modèles se chargent un à un, et seulement s'il le faut

    def chargeur(nom):
        def charger():
            charges.append(nom)
            return BasicModelRunner.depuis_modele(reseaux[nom], tokenizer_minuscule)
        return charger
    qui_refuse = {id(reseaux[nom]) for nom in refusent}
    monkeypatch.setattr(producteur, "repondre", lambda runner, *args: [
        REPONSE_INCONNUE if id(runner.model) in qui_refuse else "Il coûte 69 €."])
    index = IndexFiches({f["id"]: f["fait"] for f in FICHE})
    index.seuil = seuil
    texte = producteur.lire_hors_sujet(index, FICHE, {n: chargeur(n) for n in "AB"},
                                       "capitale du Japon")
    assert attendu in texte
    assert charges == ([] if seuil > 1e8 else ["A", "B"])
