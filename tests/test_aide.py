"""Chaque commande du guide (``python -m tutorial_code.X``, ``python -m
bench.X``) a une aide entièrement en français."""

import importlib
import inspect

import pytest

from tutorial_code import RACINE

COMMANDES = sorted(
    f"{dossier}.{chemin.stem}"
    for dossier in ("tutorial_code", "construction", "bench")
    for chemin in (RACINE / dossier).glob("*.py")
    if "\ndef main(" in chemin.read_text(encoding="utf-8"))


def test_les_commandes_sont_trouvees():
    assert "tutorial_code.affinage" in COMMANDES
    assert "bench.entrainement" in COMMANDES
    assert len(COMMANDES) >= 20


@pytest.mark.parametrize("nom", COMMANDES)
def test_aide_en_francais(nom, capsys):
    main = importlib.import_module(nom).main
    assert "argv" in inspect.signature(main).parameters, f"{nom}.main(argv)"
    with pytest.raises(SystemExit) as sortie:
        main(["--help"])
    assert sortie.value.code == 0
    aide = capsys.readouterr().out
    assert aide.startswith(f"utilisation : python -m {nom}"), aide[:80]
    assert "usage:" not in aide and "show this help" not in aide
    assert "options" in aide and "affiche cette aide et quitte" in aide
