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


def test_chaque_chapitre_dit_sur_quelle_machine_il_a_ete_construit(
        tmp_path, monkeypatch):
    """produire() écrit, avec les sorties, le paragraphe machine.rst : le
    processeur, le type de calcul choisi pour l'entraînement, la durée mesurée."""
    import types

    import torch

    from tutorial_code.modeles import choisir_device_dtype

    faux = types.ModuleType("tutorial_code.faux_page")
    faux.__file__ = sorties.__file__
    faux.produire_sorties = lambda dossier: (dossier / "a.txt").write_text("1")
    monkeypatch.setattr(sorties, "module_du_chapitre", lambda chapitre: faux)
    monkeypatch.setattr(sorties, "DOSSIER_SORTIES", tmp_path)
    assert sorties.produire("essai")
    texte = (tmp_path / "essai" / "machine.rst").read_text(encoding="utf-8")
    _, dtype, _ = choisir_device_dtype(entrainement=True)
    calcul = "bf16" if dtype == torch.bfloat16 else "fp32"
    duree = (tmp_path / "essai" / "duree.txt").read_text()
    assert texte.startswith(".. note::")
    assert f"entraînement en {calcul}" in texte and f"{duree} s pour" in texte
    assert sorties.nom_processeur() in texte
    monkeypatch.setenv("AFFINAGE_DTYPE", "float32")
    assert "entraînement en fp32 (imposé par" in sorties.decrire_machine(3)
