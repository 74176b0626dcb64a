"""Les blocs de code d'une page, copiés dans l'ordre dans une même session
Python lancée à la racine du dépôt, s'exécutent (standard du guide).

On reconstitue les blocs depuis les sources rST, comme Sphinx les rend :
``literalinclude`` (``:pyobject:`` ou paire de marqueurs, ``:dedent:``) et
``code-block:: python``. L'entraînement passe en mode rapide (AFFINAGE_RAPIDE=1).
"""

import ast
import os
import re
import textwrap
from pathlib import Path

import pytest

RACINE = Path(__file__).resolve().parent.parent
DOCS = RACINE / "docs"
DIRECTIVE = re.compile(
    r"^\.\. (literalinclude|code-block):: ?(\S*)\n((?:   :.*\n)*)\n?((?:(?:   .*)?\n)*)",
    re.M)


def extraire_objet(source, nom):
    """Le texte d'une fonction ou classe (``Classe.methode`` accepté)."""
    arbre, lignes = ast.parse(source), source.splitlines()
    noeuds = arbre.body
    for partie in nom.split("."):
        noeud = next(n for n in noeuds if getattr(n, "name", None) == partie)
        noeuds = getattr(noeud, "body", [])
    debut = min([noeud.lineno] + [d.lineno for d in noeud.decorator_list])
    return textwrap.dedent("\n".join(lignes[debut - 1:noeud.end_lineno]))


def blocs_python(page):
    """Les blocs Python de ``page``, dans l'ordre, tels que la page les montre."""
    texte = page.read_text(encoding="utf-8")
    for m in DIRECTIVE.finditer(texte):
        genre, argument, options_txt, corps = m.groups()
        options = dict(re.findall(r":([\w-]+):(?: (.*))?", options_txt))
        if genre == "code-block":
            if argument == "python":
                yield textwrap.dedent(corps)
            continue
        if options.get("language") != "python":
            continue
        source = (page.parent / argument).read_text(encoding="utf-8")
        if "pyobject" in options:
            yield extraire_objet(source, options["pyobject"])
            continue
        debut = source.index(options["start-after"]) + len(options["start-after"])
        extrait = source[debut:source.index(options["end-before"])]
        extrait = extrait.split("\n", 1)[1]  # le reste de la ligne du marqueur
        n = int(options.get("dedent", 0))
        yield "\n".join(ligne[n:] for ligne in extrait.splitlines())


PAGES = {
    "introduction": [],
    "Pretraitement": [],
    "tokenisation": [],
    "Entrainement": [pytest.mark.entrainement],
    "echelle": [pytest.mark.entrainement],
}


@pytest.mark.modele_reel
@pytest.mark.parametrize("nom", [pytest.param(n, marks=m) for n, m in PAGES.items()])
def test_les_blocs_d_une_page_s_executent_dans_l_ordre(nom, monkeypatch):
    monkeypatch.chdir(RACINE)
    monkeypatch.setenv("AFFINAGE_RAPIDE", "1")
    session = {"__name__": "__session__"}
    blocs = list(blocs_python(DOCS / f"{nom}.rst"))
    assert blocs, f"aucun bloc Python trouvé dans {nom}.rst"
    for i, bloc in enumerate(blocs, 1):
        try:
            exec(compile(bloc, f"{nom}.rst (bloc {i})", "exec"), session)
        except Exception as erreur:  # le bloc fautif, lisible dans le rapport
            pytest.fail(f"{nom}.rst, bloc {i} :\n{bloc}\n→ {erreur!r}")
