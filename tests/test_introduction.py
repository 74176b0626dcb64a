"""Le module du chapitre d'introduction : son aide en français, et son script."""

import pytest

from tutorial_code import introduction


def test_aide_en_francais(capsys):
    with pytest.raises(SystemExit) as info:
        introduction.main(["--help"])
    assert info.value.code == 0
    aide = capsys.readouterr().out
    assert aide.startswith("utilisation : python -m tutorial_code.introduction")
    assert "affiche cette aide et quitte" in aide
    assert "gemma3-270m" in aide and "smollm2-135m-instruct" in aide
    assert "usage:" not in aide and "show this help" not in aide


def test_comparer_llama2_hors_ligne_message_clair():
    # Les tests sont hors ligne (conftest.py) : jamais de modèle substitué.
    with pytest.raises(introduction.ModeleIntrouvable, match="Llama-2-7b-hf"):
        introduction.comparer_llama2()


@pytest.mark.modele_reel
def test_script_rapide(capsys):
    assert introduction.main(["--rapide"]) == 0
    sortie = capsys.readouterr().out
    assert sortie.count("gemma3-270m : pas de gabarit") == 2
    assert sortie.count("smollm2-135m-instruct : invite placée") == 2
    assert introduction.PROMPT_FR in sortie
