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
    assert f"entraînements du guide en {calcul}" in texte and f"{duree} s pour" in texte
    assert sorties.nom_processeur() in texte
    monkeypatch.setenv("AFFINAGE_DTYPE", "float32")
    assert "entraînements du guide en fp32 (imposé par" in sorties.decrire_machine(3)
    mesures = sorties.json.loads((tmp_path / "essai" / "memoire.json").read_text())
    assert mesures["pic_mio"] > 0 and mesures["duree_s"] >= 0


def test_pic_de_memoire_mesure_ce_que_le_processus_a_touche():
    """Un processus qui remplit 400 Mio de plus a un pic plus haut d'autant
    (à 100 Mio près) : la mesure suit la mémoire réellement occupée."""
    import subprocess
    import sys

    def pic(mio):
        code = ("from tutorial_code.sorties import pic_memoire_mio\n"
                f"tampon = b\"x\" * ({mio} * 2**20)  # pages écrites\n"
                "print(pic_memoire_mio())")
        sortie = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, check=True, cwd=sorties.RACINE)
        return float(sortie.stdout)

    assert abs(pic(400) - pic(0) - 400) < 100


def test_tableau_de_la_construction(tmp_path, monkeypatch):
    """Le tableau de la page d'accueil : une ligne par chapitre mesuré, et la
    phrase qui nomme le plus gros pic."""
    monkeypatch.setattr(sorties, "DOSSIER_SORTIES", tmp_path)
    for chapitre, pic in {"introduction": 2048, "echelle": 3584}.items():
        (tmp_path / chapitre).mkdir()
        (tmp_path / chapitre / "memoire.json").write_text(sorties.json.dumps(
            {"duree_s": 12.4, "pic_mio": pic}))
    sorties.ecrire_tableau_construction(tmp_path / "construction.rst")
    texte = (tmp_path / "construction.rst").read_text(encoding="utf-8")
    assert "au plus 3,5 Gio de mémoire résidente (chapitre :doc:`echelle`)" in texte
    assert texte.count("   * - ") == 3  # en-tête + 2 chapitres
    assert "* - :doc:`introduction`\n     - 12 s\n     - 2,0 Gio" in texte


def test_tableau_inchange_pas_reecrit(tmp_path, monkeypatch):
    """Un tableau identique n'est pas réécrit (Sphinx reconstruirait la page
    d'accueil) ; un tableau qui change l'est."""
    monkeypatch.setattr(sorties, "DOSSIER_SORTIES", tmp_path)
    (tmp_path / "echelle").mkdir()
    mesure = tmp_path / "echelle" / "memoire.json"
    mesure.write_text(sorties.json.dumps({"duree_s": 12.4, "pic_mio": 3584}))
    chemin = tmp_path / "construction.rst"
    sorties.ecrire_tableau_construction(chemin)
    sorties.os.utime(chemin, ns=(0, 0))  # date connue, très ancienne
    sorties.ecrire_tableau_construction(chemin)
    assert chemin.stat().st_mtime_ns == 0
    mesure.write_text(sorties.json.dumps({"duree_s": 12.4, "pic_mio": 1024}))
    sorties.ecrire_tableau_construction(chemin)
    assert chemin.stat().st_mtime_ns > 0
    assert "au plus 1,0 Gio" in chemin.read_text(encoding="utf-8")


def test_fichier_du_chapitre_est_celui_du_cache():
    """bench.docs prédit les chapitres à recalculer avec le même fichier que
    le cache : un module modifié relance exactement ces chapitres."""
    from bench.docs import chapitres_dependants

    for chapitre in sorties.CHAPITRES:
        fichier = sorties.Path(sorties.module_du_chapitre(chapitre).__file__)
        assert fichier == sorties.fichier_du_chapitre(chapitre)
    for module in sorted((sorties.RACINE / "tutorial_code").glob("*.py")):
        attendus = [c for c in sorties.CHAPITRES if module in sorties.modules_utilises(
            sorties.fichier_du_chapitre(c))]
        assert chapitres_dependants(module.relative_to(sorties.RACINE)) == attendus
    assert "echelle" in chapitres_dependants("tutorial_code/entrainement.py")
