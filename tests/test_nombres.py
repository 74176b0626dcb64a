"""Les nombres à la française."""

from tutorial_code.nombres import formater, pourcent


def test_milliers_et_decimales():
    assert formater(6738415616, 0) == "6\u202f738\u202f415\u202f616"
    assert formater(1.25, 2) == "1,25"
    assert formater(1234.5) == "1\u202f234,5"


def test_pourcent():
    assert pourcent(0.294) == "29\u00a0%"
    assert pourcent(0.7134, 1) == "71,3\u00a0%"


def test_puissance_ecrit_la_notation_scientifique_a_la_francaise():
    from tutorial_code.nombres import puissance

    assert puissance(9e-5) == "9\u00a0×\u00a010⁻⁵"
    assert puissance(3e2) == "3\u00a0×\u00a010²"
    assert puissance(0.0) == "0"
