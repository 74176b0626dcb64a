"""Les carnets (``docs/carnets/*.md``) : un par chapitre, relié à sa page, qui
n'appelle que le code de ``tutorial_code`` que sa page montre, sans le recopier ;
convertis en ``.ipynb`` à télécharger ; réexécutés quand ce code change. Une fois
le site construit (``make html``), ses pages montrent les sorties exécutées."""

import ast
import importlib
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from site_construit import verifier_site
from test_pages import blocs_python

from construction.chapitres import CHAPITRES
from construction.extensions import carnets
from tutorial_code import RACINE

DOCS = RACINE / "docs"
SITE = RACINE / "_build" / "html"
PAGES = {c.nom: c.page for c in CHAPITRES}  # chapitre → sa page
# Ce qu'un carnet peut importer sans que sa page l'importe : l'affichage HTML.
IMPORTS_CARNET = {"IPython.display"}
INSTRUCTIONS_PAR_CELLULE = 5  # hors imports : des cellules courtes
# Une boucle, une fonction, une condition… : de la logique recopiée ou ajoutée.
INTERDITS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
             ast.For, ast.AsyncFor, ast.While, ast.With, ast.Try, ast.If)


def carnet(nom):
    return carnets.lire_carnet(DOCS / "carnets" / f"{nom}.md")


def cellules_de_code(nom):
    return [c.source for c in carnet(nom).cells if c.cell_type == "code"]


def code_de_la_page(nom):
    """Les blocs Python de la page du chapitre, tels qu'elle les montre."""
    erreur = verifier_site()
    assert not erreur, erreur  # make test construit le site avant les tests
    return "\n".join(blocs_python(SITE / f"{PAGES[nom]}.html"))


def imports(source):
    """(module, [noms]) de chaque import ; [] pour ``import module``."""
    for noeud in ast.walk(ast.parse(source)):
        if isinstance(noeud, ast.ImportFrom):
            yield noeud.module, [a.name for a in noeud.names]
        elif isinstance(noeud, ast.Import):
            for alias in noeud.names:
                yield alias.name, []


def test_un_carnet_par_chapitre():
    trouves = {p.stem for p in carnets.sources_carnets(DOCS)}
    assert trouves == set(PAGES)


@pytest.mark.parametrize("nom", PAGES)
def test_la_page_du_chapitre_cite_son_carnet(nom):
    texte = (DOCS / f"{PAGES[nom]}.rst").read_text(encoding="utf-8")
    assert re.search(rf":doc:`[^`]*<carnets/{nom}>`", texte), "lien vers le carnet"
    assert re.search(rf":download:`[^`]*<_sorties/carnets/{nom}\.ipynb>`", texte)


@pytest.mark.parametrize("nom", PAGES)
def test_le_carnet_renvoie_a_sa_page_et_se_telecharge(nom):
    texte = (DOCS / "carnets" / f"{nom}.md").read_text(encoding="utf-8")
    assert f"](../{PAGES[nom]}.rst)" in texte, "lien vers la page du chapitre"
    assert re.search(rf"\{{download\}}`[^`]*<\.\./_sorties/carnets/{nom}\.ipynb>`",
                     texte)
    # Le lien de téléchargement n'a de sens que sur le site : pas dans le .ipynb.
    assert "{download}" not in carnets.en_ipynb(carnet(nom))


def test_les_carnets_sont_dans_une_toctree():
    index = (DOCS / "carnets" / "index.rst").read_text(encoding="utf-8")
    toctree = index.split(".. toctree::", 1)[1]
    assert re.findall(r"^   (\w+)$", toctree, re.M) == list(PAGES)
    assert re.search(r"^   carnets/index$", (DOCS / "index.rst").read_text(), re.M)


@pytest.mark.parametrize("nom", PAGES)
def test_le_carnet_n_importe_que_ce_que_sa_page_montre(nom):
    page = code_de_la_page(nom)
    texte_page = (DOCS / f"{PAGES[nom]}.rst").read_text(encoding="utf-8")
    modules_page = {m for bloc in blocs_python(SITE / f"{PAGES[nom]}.html")
                    for m, _ in imports(bloc)}
    for source in cellules_de_code(nom):
        for module, noms in imports(source):
            if module.split(".")[0] != "tutorial_code":
                assert module in modules_page | IMPORTS_CARNET, (
                    f"{nom}.md importe {module}, que sa page n'importe pas")
                continue
            objet = importlib.import_module(module)
            inclus = f"../{module.replace('.', '/')}.py" in texte_page
            for n in noms:
                assert hasattr(objet, n), f"{module}.{n} n'existe pas"
                assert inclus or re.search(rf"\b{n}\b", page), (
                    f"{nom}.md utilise {module}.{n}, que sa page ne montre pas")


@pytest.mark.parametrize("nom", PAGES)
def test_le_carnet_appelle_le_code_sans_le_recopier(nom):
    connus = set()  # noms venus de tutorial_code, ou calculés à partir d'eux
    for source in cellules_de_code(nom):
        arbre = ast.parse(source)
        instructions = [i for i in arbre.body
                        if not isinstance(i, (ast.Import, ast.ImportFrom))]
        assert len(instructions) <= INSTRUCTIONS_PAR_CELLULE, (
            f"cellule trop longue :\n{source}")
        interdits = [type(n).__name__ for n in ast.walk(arbre)
                     if isinstance(n, INTERDITS)]
        assert not interdits, f"{interdits} dans la cellule :\n{source}"
        importe = False
        for instruction in arbre.body:
            if (isinstance(instruction, ast.ImportFrom)
                    and instruction.module.startswith("tutorial_code")):
                connus |= {a.asname or a.name for a in instruction.names}
                importe = True
            elif isinstance(instruction, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                if {n.id for n in ast.walk(instruction.value)
                        if isinstance(n, ast.Name)} & connus:
                    cibles = instruction.targets if isinstance(
                        instruction, ast.Assign) else [instruction.target]
                    connus |= {n.id for c in cibles for n in ast.walk(c)
                               if isinstance(n, ast.Name)}
        lus = {n.id for n in ast.walk(arbre)
               if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert importe or lus & connus, (
            f"cette cellule de {nom}.md n'appelle rien de tutorial_code :\n{source}")


@pytest.mark.parametrize("nom", PAGES)
def test_le_ipynb_reprend_les_cellules_du_carnet(nom):
    texte = carnets.en_ipynb(carnet(nom))
    assert carnets.en_ipynb(carnet(nom)) == texte, "le .ipynb doit être stable"
    notebook = nbformat.reads(texte, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code == cellules_de_code(nom)
    assert all(not c.get("outputs") for c in notebook.cells if "outputs" in c)


def test_le_noyau_est_le_python_qui_construit_le_site():
    python = Path(carnets.verifier_noyau("python3"))
    assert python.parent.resolve() == Path(sys.executable).parent.resolve()


def copie_des_carnets(tmp_path):
    """Un dossier docs/ minimal : les carnets, et un témoin par chapitre."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "carnets", docs / "carnets")
    for nom in PAGES:
        (docs / "_sorties" / nom).mkdir(parents=True)
        (docs / "_sorties" / nom / ".empreinte").write_text("témoin 1")
    return docs


def test_l_empreinte_suit_le_code_appele_et_les_sorties(tmp_path, monkeypatch):
    from construction import sorties

    shutil.copytree(RACINE / "tutorial_code", tmp_path / "tutorial_code")
    monkeypatch.setattr(sorties, "RACINE", tmp_path)  # modules lus dans la copie
    docs = copie_des_carnets(tmp_path)
    source = docs / "carnets" / "introduction.md"

    def empreinte():
        return carnets.empreinte_carnet(source, tmp_path, docs / "_sorties")

    depart = empreinte()
    assert empreinte() == depart
    (tmp_path / "tutorial_code" / "echelle.py").write_text("# pas importé\n")
    assert empreinte() == depart
    # runner importe modeles : un module importé indirectement compte aussi.
    modeles = tmp_path / "tutorial_code" / "modeles.py"
    modeles.write_text(modeles.read_text(encoding="utf-8") + "\n# modifié\n")
    apres_code = empreinte()
    assert apres_code != depart
    (docs / "_sorties" / "introduction" / ".empreinte").write_text("témoin 2")
    assert empreinte() != apres_code


def test_un_carnet_change_est_retire_du_cache_et_relu(tmp_path):
    docs = copie_des_carnets(tmp_path)
    cache_dir = tmp_path / "cache"
    env = SimpleNamespace(
        mystnb_config=SimpleNamespace(execution_mode="cache",
                                      execution_cache_path=str(cache_dir)),
        all_docs={f"carnets/{nom}": 0 for nom in PAGES})
    app = SimpleNamespace(srcdir=str(docs), confdir=str(RACINE))
    cache = get_cache(str(cache_dir))

    def mettre_en_cache(nom):
        chemin = docs / "carnets" / f"{nom}.md"
        cache.cache_notebook_bundle(CacheBundleIn(carnets.lire_carnet(chemin),
                                                  str(chemin)),
                                    check_validity=False, overwrite=True)

    def en_cache(nom):
        try:
            cache.match_cache_notebook(carnet(nom))
        except KeyError:
            return False
        return True

    premiere = carnets.carnets_a_reexecuter(app, env, set(), set(), set())
    assert sorted(premiere) == sorted(env.all_docs)  # aucune empreinte connue
    for nom in PAGES:
        mettre_en_cache(nom)
    assert carnets.carnets_a_reexecuter(app, env, set(), set(), set()) == []
    assert all(en_cache(nom) for nom in PAGES)  # sans changement : rien à refaire
    (docs / "_sorties" / "tokenisation" / ".empreinte").write_text("réentraîné")
    relus = carnets.carnets_a_reexecuter(app, env, set(), set(), set())
    assert relus == ["carnets/tokenisation"]
    assert not en_cache("tokenisation")
    assert all(en_cache(nom) for nom in PAGES if nom != "tokenisation")


@pytest.mark.parametrize("nom", PAGES)
def test_le_site_construit_montre_le_carnet_execute(nom):
    page = SITE / "carnets" / f"{nom}.html"
    erreur = verifier_site()
    assert not erreur, erreur  # make test construit le site : jamais ignoré
    html = page.read_text(encoding="utf-8")
    assert html.count('class="cell_input') == len(cellules_de_code(nom))
    assert 'class="cell_output' in html, "aucune sortie : carnet non exécuté ?"
    assert "Traceback" not in html
    # Le lien de téléchargement, sur la page du carnet et sur celle du chapitre.
    lien = re.compile(rf'href="(\.\./)?_downloads/(\w+)/{nom}\.ipynb"')
    trouve = lien.search(html)
    assert trouve, "pas de lien de téléchargement du .ipynb"
    chapitre = (SITE / f"{PAGES[nom]}.html").read_text(encoding="utf-8")
    assert lien.search(chapitre) and f'href="carnets/{nom}.html' in chapitre
    # Le fichier téléchargé reprend les cellules actuelles du carnet.
    telecharge = SITE / "_downloads" / trouve.group(2) / f"{nom}.ipynb"
    notebook = nbformat.read(telecharge, as_version=4)
    assert [c.source for c in notebook.cells if c.cell_type == "code"] == (
        cellules_de_code(nom))
    # Et le cache de jupyter-cache a cette exécution : reconstruire ne la refait pas.
    cache = get_cache(str(RACINE / ".jupyter_cache"))
    assert cache.match_cache_notebook(carnet(nom))
