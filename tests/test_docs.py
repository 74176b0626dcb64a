"""Chaque literalinclude des pages pointe vers un fichier, une fonction ou une
paire de marqueurs qui existent : renommer une fonction casse les tests."""

import ast
import re

import pytest

from tutorial_code import RACINE

DOCS = RACINE / "docs"
DIRECTIVE = re.compile(r"^( *)\.\. literalinclude:: (\S+)\n((?:\1   :.*\n)*)", re.M)


def inclusions():
    for page in sorted(DOCS.glob("*.rst")):
        texte = page.read_text(encoding="utf-8")
        for m in DIRECTIVE.finditer(texte):
            options = dict(re.findall(r":([\w-]+):(?: (.*))?", m.group(3)))
            yield pytest.param(page, m.group(2), options,
                               id=f"{page.name}:{m.group(2)}:{sorted(options.items())}")


def objets_python(source):
    """Noms qualifiés (f, Classe, Classe.methode) définis dans un module."""
    noms = set()

    def visiter(noeud, prefixe=""):
        for enfant in ast.iter_child_nodes(noeud):
            if isinstance(enfant, (ast.FunctionDef, ast.AsyncFunctionDef,
                                   ast.ClassDef)):
                noms.add(prefixe + enfant.name)
                visiter(enfant, prefixe + enfant.name + ".")

    visiter(ast.parse(source))
    return noms


@pytest.mark.parametrize("page,cible,options", list(inclusions()))
def test_literalinclude_valide(page, cible, options):
    assert "lines" not in options, "jamais :lines: ; :pyobject: ou des marqueurs"
    chemin = (page.parent / cible).resolve()
    if "_sorties" in chemin.parts:
        return  # produit par la construction ; Sphinx -W vérifie sa présence
    assert chemin.exists(), f"{page.name} inclut {cible}, qui n'existe pas"
    source = chemin.read_text(encoding="utf-8")
    if "pyobject" in options:
        assert options["pyobject"] in objets_python(source), (
            f"{page.name} : {options['pyobject']} absent de {cible}")
    debut, fin = options.get("start-after"), options.get("end-before")
    if debut or fin:
        assert debut and fin, "les marqueurs vont par paires"
        assert source.count(debut) == 1, f"marqueur {debut!r} absent ou non unique"
        assert source.count(fin) == 1, f"marqueur {fin!r} absent ou non unique"
        assert source.index(debut) < source.index(fin)
        assert debut.replace("region:", "fin:") == fin, "paire de marqueurs incohérente"
        extrait = source[source.index(debut) + len(debut):source.index(fin)]
        assert "# [region:" not in extrait and "# [fin:" not in extrait, (
            f"{page.name} : la région {debut!r} en contient une autre, dont les "
            "marqueurs s'afficheraient dans la page")


def test_des_inclusions_sont_trouvees():
    # Garde-fou : si l'expression régulière ne trouvait rien, le test ci-dessus
    # passerait à vide.
    assert len(list(inclusions())) >= 8


def test_pas_d_apostrophe_droite_collee_a_un_balisage():
    # « l'**oubli** » : les guillemets intelligents de docutils transforment
    # l'apostrophe en guillemet fermant (« l”oubli »). On écrit « l’**oubli** ».
    for page in DOCS.glob("*.rst"):
        for n, ligne in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            assert not re.search(r"\w'[*`]", ligne), f"{page.name}:{n}"
