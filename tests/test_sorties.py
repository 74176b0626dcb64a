"""Le cache des sorties : le registre des chapitres, et l'empreinte de chacun."""

import importlib
import os
import shutil
import subprocess
import sys

from construction import sorties
from construction.chapitres import ADAPTATEUR_ENTRAINEMENT, CHAPITRES, PAR_NOM


def test_chaque_chapitre_a_un_producteur_et_une_page():
    for c in CHAPITRES:
        module = importlib.import_module(c.producteur)
        assert callable(module.produire_sorties), c.nom
        assert (sorties.RACINE / "docs" / f"{c.page}.rst").exists(), c.nom


def test_empreinte_suit_le_code_le_mode_rapide_et_les_entrees(monkeypatch, tmp_path):
    normale = sorties.empreinte("entrainement")
    assert sorties.empreinte("entrainement") == normale  # stable
    monkeypatch.setenv("AFFINAGE_RAPIDE", "1")
    assert sorties.empreinte("entrainement") != normale  # jamais confondues
    monkeypatch.delenv("AFFINAGE_RAPIDE")
    # Le même chapitre dans une copie du dépôt dont un module a changé.
    copie = tmp_path / "depot"
    for dossier in ("tutorial_code", "construction", "data"):
        shutil.copytree(sorties.RACINE / dossier, copie / dossier)
    monkeypatch.setattr(sorties, "RACINE", copie)
    assert sorties.empreinte("entrainement") == normale  # même contenu
    with open(copie / "tutorial_code" / "runner.py", "a", encoding="utf-8") as f:
        f.write("\n# modification\n")
    assert sorties.empreinte("entrainement") != normale
    assert sorties.empreinte("introduction") != sorties.empreinte("pretraitement")


def test_un_nouvel_adaptateur_d_entrainement_perime_recherche(monkeypatch, tmp_path):
    # « Recherche » évalue l'adaptateur sauvegardé par « Entraînement » : un
    # autre adaptateur (un nouvel entraînement) la recalcule, elle seule.
    copie = tmp_path / "depot"
    for dossier in ("tutorial_code", "construction", "data"):
        shutil.copytree(sorties.RACINE / dossier, copie / dossier)
    monkeypatch.setattr(sorties, "RACINE", copie)
    avant = {c.nom: sorties.empreinte(c.nom) for c in CHAPITRES}
    modele = copie / ADAPTATEUR_ENTRAINEMENT
    modele.mkdir(parents=True)
    (modele / "adapter_model.safetensors").write_bytes(b"poids")
    apres = {c.nom: sorties.empreinte(c.nom) for c in CHAPITRES}
    assert [nom for nom in avant if avant[nom] != apres[nom]] == ["recherche"]


def test_empreinte_couvre_les_modules_importes():
    noms = {str(f.relative_to(sorties.RACINE))
            for f in sorties.fichiers_du_chapitre("entrainement")}
    # le producteur importe affinage, qui importe entrainement et recette
    assert {"construction/entrainement.py", "tutorial_code/affinage.py",
            "tutorial_code/entrainement.py", "tutorial_code/recette.py"} <= noms
    assert "construction/sorties.py" not in noms  # la machinerie n'en est pas


def test_modifier_un_module_recalcule_exactement_ses_chapitres():
    """Les chapitres à recalculer quand un module change : ceux dont le
    producteur l'importe, directement ou non ; pas les autres."""
    dependants = sorties.chapitres_dependants
    assert dependants("tutorial_code/evaluation.py") == [
        "entrainement", "recherche"]
    assert dependants("tutorial_code/jetons.py") == ["tokenisation"]
    assert "introduction" in dependants("tutorial_code/runner.py")
    assert "pretraitement" not in dependants("tutorial_code/runner.py")
    assert dependants("construction/echelle.py") == ["echelle"]
    assert dependants("construction/sorties.py") == []
    assert dependants("data/brut/fiche_faits.csv") == [
        c.nom for c in CHAPITRES if "data/brut/*" in c.entrees]


def test_chaque_chapitre_dit_sur_quelle_machine_il_a_ete_construit(
        tmp_path, monkeypatch):
    """produire() écrit, avec les sorties, le paragraphe machine.rst : le
    processeur, le type de calcul choisi pour l'entraînement, la durée mesurée."""
    import sys
    import types

    import torch

    from construction.chapitres import Chapitre
    from tutorial_code.modeles import choisir_device_dtype

    faux = types.ModuleType("construction.faux")
    faux.produire_sorties = lambda dossier: (dossier / "a.txt").write_text("1")
    monkeypatch.setitem(sys.modules, "construction.faux", faux)
    monkeypatch.setitem(sorties.PAR_NOM, "essai", Chapitre(
        "essai", "index", "construction.faux"))
    monkeypatch.setattr(sorties, "empreinte", lambda chapitre: "cle")
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
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    assert "cache de 64 primitives oneDNN" in sorties.decrire_machine(3)
    mesures = sorties.json.loads((tmp_path / "essai" / "memoire.json").read_text())
    assert mesures["pic_mio"] > 0 and mesures["duree_s"] >= 0


def test_pic_de_memoire_mesure_ce_que_le_processus_a_touche():
    """Un processus qui remplit 400 Mio de plus a un pic plus haut d'autant
    (à 100 Mio près) : la mesure suit la mémoire réellement occupée."""
    import subprocess
    import sys

    def pic(mio):
        code = ("from construction.sorties import pic_memoire_mio\n"
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


def test_le_banc_de_la_construction_predit_comme_le_cache():
    """bench.docs modifie le producteur d'un chapitre et attend le recalcul
    que prédit le cache : lui seul."""
    for c in CHAPITRES:
        producteur = sorties.fichier_du_module(PAR_NOM[c.nom].producteur)
        assert sorties.chapitres_dependants(
            producteur.relative_to(sorties.RACINE)) == [c.nom]


def test_tableau_options_en_litteral_sauf_cellule_deja_litterale():
    from construction.ecrire import texte_tableau

    texte = texte_tableau(["raison", "message"], [
        ["rôle inconnu (sinon --roles x=…)", "``Erreur : sinon --roles x=…``"]])
    assert "(sinon ``--roles`` x=…)" in texte
    assert "``Erreur : sinon --roles x=…``" in texte  # pas de littéral imbriqué


def test_recherche_lit_l_adaptateur_ou_entrainement_l_ecrit():
    # Le registre nomme l'adaptateur d'« Entraînement » sans importer torch ;
    # il doit rester le dossier où ``affinage`` l'écrit (hors mode rapide).
    code = ("from tutorial_code.affinage import DOSSIER_MODELE\n"
            "from tutorial_code import RACINE\n"
            "print((DOSSIER_MODELE / 'modele').relative_to(RACINE).as_posix())")
    env = {k: v for k, v in os.environ.items() if k != "AFFINAGE_RAPIDE"}
    sortie = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                            capture_output=True, text=True).stdout.strip()
    assert sortie == ADAPTATEUR_ENTRAINEMENT
