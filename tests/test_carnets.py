"""Les carnets : le notebook de chaque chapitre est tiré de sa page par la
construction (``construction/extensions/carnets.py``) — mêmes blocs de code,
dans le même ordre, aucune copie écrite à la main —, se télécharge depuis la
page, et la construction l'a exécuté (mode rapide) pour le code actuel."""

import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from docutils import nodes
from site_construit import blocs_python, verifier_site

from construction.chapitres import CHAPITRES
from construction.extensions import carnets
from tutorial_code import RACINE

DOCS = RACINE / "docs"
SITE = RACINE / "_build" / "html"
PAGES = {c.nom: c.page for c in CHAPITRES}  # chapitre → sa page


def carnet_construit(nom):
    """Le ``.ipynb`` écrit par la construction (``make test`` la fait d'abord)."""
    erreur = verifier_site()
    assert not erreur, erreur
    chemin = DOCS / carnets.DOSSIER_IPYNB / f"{nom}.ipynb"
    assert chemin.exists(), f"{chemin} absent : la construction ne l'a pas écrit"
    return nbformat.read(chemin, as_version=4)


def page_minuscule():
    """Un petit arbre docutils : titre, paragraphe, bloc Python, sortie texte,
    note, liste, sous-section avec un second bloc Python."""
    doc = nodes.document(None, None)
    section = nodes.section()
    section += nodes.title("", "Mon chapitre")
    section += nodes.paragraph("", "", nodes.Text("On appelle "),
                               nodes.literal("", "f()"), nodes.Text(" ; "),
                               nodes.strong("", "", nodes.Text("voici")),
                               nodes.Text("."))
    section += nodes.literal_block("x = 1", "x = 1", language="python")
    section += nodes.literal_block("1", "1", language="text")  # une sortie
    section += nodes.note("", nodes.paragraph("", "Construit sur telle machine."))
    liste = nodes.bullet_list()
    liste += nodes.list_item("", nodes.paragraph("", "un"))
    liste += nodes.list_item("", nodes.paragraph("", "deux"))
    section += liste
    sous = nodes.section()
    sous += nodes.title("", "Suite")
    sous += nodes.literal_block("print(x)", "print(x)")  # langage par défaut
    ecrit = nodes.paragraph("", "Ce run a donné 57 %.")  # phrase d'une sortie
    ecrit.source = "/depot/docs/_sorties/recherche/conclusion.rst"
    sous += ecrit
    sous += nodes.literal_block("make html", "make html", language="bash")
    section += sous
    doc += section
    return doc


def test_la_page_devient_des_cellules_dans_l_ordre():
    carnet = carnets.carnet_de_la_page(page_minuscule())
    genres = [c.cell_type for c in carnet.cells]
    assert genres == ["markdown", "code", "markdown", "code", "markdown"]
    premiere = carnet.cells[0].source
    assert premiere.startswith("# Mon chapitre\n\nCe carnet est tiré de la page "
                               "« Mon chapitre »")
    assert "On appelle `f()` ; **voici**." in premiere
    assert [c.source for c in carnet.cells if c.cell_type == "code"] == [
        "x = 1", "print(x)"]
    assert carnet.cells[2].source == "- un\n- deux\n\n## Suite"
    assert "Construit sur telle machine" not in str(carnet)  # la note reste
    assert "57 %" not in str(carnet)  # les phrases écrites par la construction aussi
    assert carnet.cells[4].source == "```bash\nmake html\n```"  # commande montrée
    nbformat.validate(carnet)
    assert nbformat.writes(carnet) == nbformat.writes(
        carnets.carnet_de_la_page(page_minuscule()))  # stable : mêmes identifiants


def test_l_empreinte_suit_les_cellules_et_le_code_appele(tmp_path, monkeypatch):
    from construction import sorties

    for dossier in ("tutorial_code", "data"):
        shutil.copytree(RACINE / dossier, tmp_path / dossier)
    monkeypatch.setattr(sorties, "RACINE", tmp_path)  # modules lus dans la copie
    carnet = carnets.carnet_de_la_page(page_minuscule())
    carnet.cells[1].source = "from tutorial_code.runner import BasicModelRunner"

    def empreinte():
        return carnets.empreinte_carnet(carnet, "introduction", tmp_path)

    depart = empreinte()
    assert empreinte() == depart
    (tmp_path / "tutorial_code" / "echelle.py").write_text("# pas importé\n")
    assert empreinte() == depart
    # runner importe modeles : un module importé indirectement compte aussi.
    modeles = tmp_path / "tutorial_code" / "modeles.py"
    modeles.write_text(modeles.read_text(encoding="utf-8") + "\n# modifié\n")
    apres_code = empreinte()
    assert apres_code != depart
    carnet.cells[3].source = "print(x + 1)"
    assert empreinte() != apres_code


@pytest.mark.parametrize("nom", PAGES)
def test_le_carnet_reprend_les_blocs_de_sa_page(nom):
    carnet = carnet_construit(nom)
    code = [c.source for c in carnet.cells if c.cell_type == "code"]
    assert code == [b.strip("\n") for b in blocs_python(SITE / f"{PAGES[nom]}.html")]
    titre = re.search(r"<h1>(.*?)<a", (SITE / f"{PAGES[nom]}.html").read_text(
        encoding="utf-8")).group(1)
    assert carnet.cells[0].source.startswith("# " + titre.replace("&#8217;", "’"))
    assert all(not c.get("outputs") for c in carnet.cells)  # sans sorties


@pytest.mark.parametrize("nom", PAGES)
def test_le_carnet_a_ete_execute_pour_le_code_actuel(nom):
    cle = carnets.empreinte_carnet(carnet_construit(nom), nom)
    assert carnets.lire_registre().get(nom) == cle, (
        f"le carnet {nom} n'a pas été exécuté pour le code actuel")


@pytest.mark.parametrize("nom", PAGES)
def test_la_page_propose_son_carnet(nom):
    texte = (DOCS / f"{PAGES[nom]}.rst").read_text(encoding="utf-8")
    assert re.search(rf":download:`[^`]*<_sorties/carnets/{nom}\.ipynb>`", texte)
    html = (SITE / f"{PAGES[nom]}.html").read_text(encoding="utf-8")
    lien = re.search(rf'href="_downloads/(\w+)/{nom}\.ipynb"', html)
    assert lien, "pas de lien de téléchargement du .ipynb"
    telecharge = SITE / "_downloads" / lien.group(1) / f"{nom}.ipynb"
    assert telecharge.read_text(encoding="utf-8") == (
        DOCS / carnets.DOSSIER_IPYNB / f"{nom}.ipynb").read_text(encoding="utf-8")


def test_aucun_carnet_ecrit_a_la_main():
    assert not list((DOCS / "carnets").glob("*.md"))
    assert not list((DOCS / "carnets").glob("*.ipynb"))


def test_le_noyau_est_le_python_qui_construit_le_site():
    python = Path(carnets.verifier_noyau("python3"))
    assert python.parent.resolve() == Path(sys.executable).parent.resolve()
