"""La typographie française appliquée au rendu des pages."""

from construction.extensions.typographie import corriger

NBSP = "\u00a0"


def test_espace_insecable_avant_la_ponctuation_haute():
    assert corriger("Bonjour : ça va ?") == f"Bonjour{NBSP}: ça va{NBSP}?"
    assert corriger("Prix: 129 €!") == f"Prix{NBSP}: 129 €{NBSP}!"
    assert corriger("un ; deux") == f"un{NBSP}; deux"


def test_guillemets():
    assert corriger("« bonjour »") == f"«{NBSP}bonjour{NBSP}»"
    assert corriger("«bonjour»") == f"«{NBSP}bonjour{NBSP}»"


def test_ne_touche_pas_aux_adresses_ni_aux_heures():
    assert corriger("https://exemple.fr") == "https://exemple.fr"
    assert corriger("10:30") == "10:30"


def test_idempotent():
    texte = "Attention : « pas deux fois » ?"
    assert corriger(corriger(texte)) == corriger(texte)
