"""Le cache des sorties : quel module produit un chapitre, et son empreinte."""

from tutorial_code import sorties


def test_chaque_chapitre_a_un_producteur():
    for chapitre in sorties.CHAPITRES:
        module = sorties.module_du_chapitre(chapitre)
        assert callable(module.produire_sorties), chapitre


def test_le_module_de_page_est_prefere():
    assert sorties.module_du_chapitre("entrainement").__name__.endswith(
        "entrainement_page")
    assert sorties.module_du_chapitre("introduction").__name__.endswith(
        "introduction")


def test_empreinte_suit_le_code_et_le_mode_rapide(monkeypatch):
    module = sorties.module_du_chapitre("entrainement")
    normale = sorties.empreinte(module)
    assert sorties.empreinte(module) == normale  # stable
    monkeypatch.setenv("AFFINAGE_RAPIDE", "1")
    assert sorties.empreinte(module) != normale  # jamais confondues


def test_empreinte_couvre_les_modules_importes():
    module = sorties.module_du_chapitre("entrainement")
    noms = {f.name for f in sorties.modules_utilises(
        sorties.Path(module.__file__))}
    # entrainement_page importe affinage, qui importe entrainement et recette
    assert {"entrainement.py", "affinage.py", "recette.py", "lots.py"} <= noms
