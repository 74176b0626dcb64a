"""Tokenisation des conversations : étiquettes, gabarit, exemples trop longs.

L'oracle des étiquettes ne réutilise pas le code testé : pour ChatML, on
reconstruit la conversation morceau par morceau (en-tête, contenu, fin de tour)
et on sait donc, jeton par jeton, ce qui doit compter dans la perte. Un décalage
d'un jeton ou une invite non masquée font échouer ces tests.
"""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from tutorial_code import jetons, tokenisation
from tutorial_code.modeles import preparer_modele_embarque
from tutorial_code.tokenisation import (
    CONVERSATION_DEMO,
    IGNORE,
    ExempleTropLong,
    GabaritIncompatible,
    tokeniser_conversation,
    tokeniser_jeu,
)

CONVERSATION = [
    {"role": "system", "content": "Tu es un assistant utile."},
    {"role": "user", "content": "Combien coûte le remplacement d'un pare-brise ?"},
    {"role": "assistant", "content": "Le remplacement coûte 129 € et prend 48 h."},
]


@pytest.fixture(scope="module")
def tokenizer_reel():
    return AutoTokenizer.from_pretrained(preparer_modele_embarque())


def attendu_chatml(tokenizer, messages):
    """(input_ids, labels) attendus, construits morceau par morceau."""
    def ids(texte):
        return tokenizer(texte, add_special_tokens=False)["input_ids"]

    input_ids, labels = [], []
    for m in messages:
        entete = ids(f"<|im_start|>{m['role']}\n")
        tour = ids(m["content"]) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        fin = ids("\n")
        input_ids += entete + tour + fin
        compte = m["role"] == "assistant"
        labels += [IGNORE] * len(entete) + (tour if compte else [IGNORE] * len(tour))
        labels += [IGNORE] * len(fin)
    return input_ids, labels


def reponses_decodees(tokenizer, exemple):
    """Décode chaque suite contiguë de jetons qui comptent dans la perte."""
    morceaux, courant = [], []
    for jeton, etiquette in zip(exemple["input_ids"], exemple["labels"]):
        if etiquette != IGNORE:
            assert etiquette == jeton  # étiquette = le jeton lui-même, sans décalage
            courant.append(jeton)
        elif courant:
            morceaux.append(tokenizer.decode(courant))
            courant = []
    if courant:
        morceaux.append(tokenizer.decode(courant))
    return morceaux


def verifier(tokenizer, messages):
    exemple = tokeniser_conversation(tokenizer, messages)
    assert (exemple["input_ids"], exemple["labels"]) == attendu_chatml(
        tokenizer, messages)
    assert exemple["attention_mask"] == [1] * len(exemple["input_ids"])
    assert reponses_decodees(tokenizer, exemple) == [
        m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant"]


def test_gabarit_chaine_attendue(tokenizer_minuscule):
    texte = tokenizer_minuscule.apply_chat_template(CONVERSATION, tokenize=False)
    assert texte == (
        "<|im_start|>system\nTu es un assistant utile.<|im_end|>\n"
        "<|im_start|>user\nCombien coûte le remplacement d'un pare-brise ?"
        "<|im_end|>\n"
        "<|im_start|>assistant\nLe remplacement coûte 129 € et prend 48 h."
        "<|im_end|>\n")


def test_un_tour(tokenizer_minuscule):
    verifier(tokenizer_minuscule, CONVERSATION)


def test_plusieurs_tours(tokenizer_minuscule):
    verifier(tokenizer_minuscule, CONVERSATION_DEMO)


def test_jeton_de_fin_de_tour_dans_la_perte(tokenizer_minuscule):
    exemple = tokeniser_conversation(tokenizer_minuscule, CONVERSATION)
    fin = tokenizer_minuscule.convert_tokens_to_ids("<|im_end|>")
    # le dernier <|im_end|> (celui de la réponse) compte ; le « \n » final, non
    assert exemple["labels"][-2] == fin == exemple["input_ids"][-2]
    assert exemple["labels"][-1] == IGNORE


TEXTE = st.text(
    alphabet="abcdeéèàçôûEÉ0123456789 ,.;:?!'’«»€%-\n", min_size=1,
    max_size=40).map(str.strip).filter(bool)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXTE)})
    for _ in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(TEXTE)})
        messages.append({"role": "assistant", "content": draw(TEXTE)})
    return messages


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_conversations_generees(tokenizer_minuscule, messages):
    if messages[0]["role"] != "system":  # le gabarit ajoute son message système
        systeme = {"role": "system", "content": "Tu es un assistant utile."}
        exemple = tokeniser_conversation(tokenizer_minuscule, messages)
        assert exemple == tokeniser_conversation(tokenizer_minuscule,
                                                 [systeme] + messages)
        messages = [systeme] + messages
    verifier(tokenizer_minuscule, messages)


@pytest.mark.modele_reel
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_conversations_generees_tokenizer_reel(tokenizer_reel, messages):
    if messages[0]["role"] != "system":
        messages = [{"role": "system", "content": "Assistant."}] + messages
    verifier(tokenizer_reel, messages)


@pytest.mark.modele_reel
def test_tokenizer_reel_demo(tokenizer_reel):
    verifier(tokenizer_reel, CONVERSATION_DEMO)


@pytest.mark.modele_reel
def test_gabarit_reel_systeme_par_defaut(tokenizer_reel):
    texte = tokenizer_reel.apply_chat_template(
        [{"role": "user", "content": "Bonjour"}], tokenize=False,
        add_generation_prompt=True)
    assert texte == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained "
        "by Hugging Face<|im_end|>\n<|im_start|>user\nBonjour<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_trop_long_signale_jamais_tronque(tokenizer_minuscule):
    n = len(tokeniser_conversation(tokenizer_minuscule, CONVERSATION)["input_ids"])
    assert len(tokeniser_conversation(tokenizer_minuscule, CONVERSATION,
                                      max_length=n)["input_ids"]) == n
    with pytest.raises(ExempleTropLong, match=f"{n} jetons.*limite de {n - 1}"):
        tokeniser_conversation(tokenizer_minuscule, CONVERSATION, max_length=n - 1)


def test_tokeniser_jeu(tokenizer_minuscule):
    jeu_brut = [{"messages": CONVERSATION}, {"messages": CONVERSATION_DEMO},
                {"messages": CONVERSATION}]
    n_long = len(tokeniser_conversation(tokenizer_minuscule,
                                        CONVERSATION_DEMO)["input_ids"])
    n_court = len(tokeniser_conversation(tokenizer_minuscule,
                                         CONVERSATION)["input_ids"])
    assert n_court < n_long
    jeu, ecartes = tokeniser_jeu(jeu_brut, tokenizer_minuscule, n_long - 1)
    assert ecartes == [(1, n_long)] and ecartes[0].nb_jetons == n_long
    assert sorted(jeu.column_names) == ["attention_mask", "input_ids", "labels",
                                        "longueur"]
    assert jeu["longueur"] == [n_court, n_court]
    assert all(len(ids) == n for ids, n in zip(jeu["input_ids"], jeu["longueur"]))
    jeu, ecartes = tokeniser_jeu(jeu_brut, tokenizer_minuscule, n_long)
    assert ecartes == [] and len(jeu) == 3


def test_gabarit_sans_propriete_de_prefixe(tokenizer_minuscule):
    # Un gabarit qui écrit le nombre de messages en tête : un préfixe de la
    # conversation n'est plus le début de la conversation entière.
    tokenizer = copy.deepcopy(tokenizer_minuscule)
    tokenizer.chat_template = "{{ messages | length }}" + tokenizer.chat_template
    with pytest.raises(GabaritIncompatible, match="generation"):
        tokeniser_conversation(tokenizer, CONVERSATION)


def test_main_aide_en_francais(capsys):
    with pytest.raises(SystemExit):
        tokenisation.main(["--help"])
    assert "exemples trop longs" in capsys.readouterr().out


def test_jetons_aide_en_francais(capsys):
    with pytest.raises(SystemExit):
        jetons.main(["--help"])
    assert "découpage en jetons" in capsys.readouterr().out


@pytest.mark.modele_reel
def test_erreurs_classiques(tokenizer_reel):
    courte = CONVERSATION_DEMO[:3]
    assert jetons.erreur_bos_double(tokenizer_reel, courte)[:2] == [
        "<|im_start|>", "<|im_start|>"]
    assert jetons.erreur_eos_absent(tokenizer_reel, courte) == (3, 0)  # 3 tours
    double = jetons.erreur_gabarit_double(tokenizer_reel, courte)
    assert double.count("<|im_start|>system") == 2
