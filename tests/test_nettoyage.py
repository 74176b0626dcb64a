"""Le nettoyage des textes et le repérage des doublons, sur de petits exemples."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_code.nettoyage import (
    anonymiser,
    dedoublonner,
    jaccard,
    nettoyer_texte,
    normaliser_espaces,
    normaliser_pour_comparaison,
    normaliser_unicode,
    retirer_html,
    trigrammes,
    trouver_fuites,
)


def test_nfc_compose_les_accents():
    nfd = "de\u0301lai"  # « e » + accent aigu combinant : 6 caractères
    assert len(nfd) == 6
    assert normaliser_unicode(nfd) == "délai" and len(normaliser_unicode(nfd)) == 5


def test_html_balises_et_entites():
    assert retirer_html("<p>Pass&eacute; ce d&eacute;lai, 35&nbsp;&euro;</p>") == (
        "Passé ce délai, 35\xa0€\n\n")
    assert retirer_html("a<br/>b") == "a\nb"
    assert retirer_html("prix < 100 € et > 50 €") == "prix < 100 € et > 50 €"


def test_espaces():
    assert normaliser_espaces("  C'est  Marc\tDelorme\n") == "C'est Marc Delorme"
    assert normaliser_espaces("ligne\ncoupée\n\n\xa0\n\nparagraphe") == (
        "ligne coupée\n\nparagraphe")


def test_anonymiser_formats_francais():
    texte = ("Appelez le 06 12 34 56 78, le +33 6 12 34 56 78, le 06.12.34.56.78 "
             "ou le 0612345678 ; écrivez à sophie.lambert@exemple.fr.")
    assert anonymiser(texte) == (
        "Appelez le [TÉLÉPHONE], le [TÉLÉPHONE], le [TÉLÉPHONE] "
        "ou le [TÉLÉPHONE] ; "
        "écrivez à [COURRIEL].")


def test_anonymiser_laisse_prix_dates_et_horaires():
    texte = "Fondée en 2009, 42 agences, 0,50 € par km, de 8 h 30 à 18 h 30."
    assert anonymiser(texte) == texte


def test_nettoyer_texte_complet():
    brut = ("  <p>Vous pouvez annuler gratuitement jusqu&#39;&agrave; 12 h ;"
            "\npass&amp;eacute; ce de\u0301lai, 35&nbsp;&euro;.</p>\n<p>&nbsp;</p>"
            " Rappel au 06.12.34.56.78")
    assert nettoyer_texte(brut) == (
        "Vous pouvez annuler gratuitement jusqu'à 12 h ; passé ce délai, 35 €.\n\n"
        "Rappel au [TÉLÉPHONE]")


def test_une_reponse_vide_le_reste():
    assert nettoyer_texte(" <p>&nbsp;</p>\n ") == ""


# Des morceaux choisis pour provoquer chaque étape, collés au hasard.
TEXTES = st.lists(st.sampled_from(
    list("ae é") + ["e\u0301", "<p>", "</p>", "<br/>", "&amp;", "&eacute;", "&nbsp;",
                    "&amp;lt;b&amp;gt;", "\n", "\t", "\xa0", "06 12 34 56 78", "0",
                    "@", "x@y.fr", ".", "\u037e", "<", ">"]), max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXTES)
def test_nettoyage_idempotent(texte):
    propre = nettoyer_texte(texte)
    assert nettoyer_texte(propre) == propre
    assert unicodedata.is_normalized("NFC", propre)
    assert propre == propre.strip() and "  " not in propre


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_nettoyage_idempotent_sur_tout_texte(texte):
    propre = nettoyer_texte(texte)
    assert nettoyer_texte(propre) == propre


def test_comparaison_et_trigrammes():
    assert normaliser_pour_comparaison("C'EST QUOI le délai ??") == (
        "c est quoi le delai")
    assert trigrammes("abcd") == {" ab", "abc", "bcd", "cd "}
    assert jaccard({"a", "b"}, {"b", "c"}) == 1 / 3
    assert jaccard(set(), set()) == 1.0


def test_dedoublonner_exacts_et_proches():
    textes = ["Combien d'agences avez-vous ?", "Quels sont vos horaires ?",
              "Combien d'agences avez-vous ?", "combien d'agences avez vous ??",
              "Combien d'agences en France ?"]
    gardes, doublons = dedoublonner(textes)
    assert gardes == [0, 1, 4]
    assert doublons == [
        {"indice": 2, "double_de": 0, "type": "exact", "similarite": 1.0},
        {"indice": 3, "double_de": 0, "type": "proche", "similarite": 1.0}]


def exemple(*questions):
    messages = []
    for q in questions:
        messages += [{"role": "user", "content": q},
                     {"role": "assistant", "content": "Réponse."}]
    return {"messages": messages}


def test_fuites():
    questions = [{"id": "T1",
                  "question": "Combien coûte la réparation d'un impact ?"}]
    exemples = [exemple("Quels sont vos horaires ?"),
                exemple("Bonjour", "combien coute la reparation d un impact")]
    assert [(i, qid) for i, qid, _ in trouver_fuites(exemples, questions)] == [
        (1, "T1")]
    assert trouver_fuites(exemples, []) == []
