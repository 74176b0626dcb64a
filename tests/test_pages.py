"""Les blocs de code d'une page, copiés dans l'ordre dans une même session
Python lancée à la racine du dépôt, s'exécutent (standard du guide).

Les blocs sont pris dans le site construit, ``_build/html/<page>.html`` : les blocs
Python surlignés, dans l'ordre de la page, sans invites, exactement comme le
bouton « copier » les donne au lecteur (test_navigateur.py le vérifie dans
Chromium). ``make test`` construit le site d'abord. L'entraînement passe en mode
rapide (AFFINAGE_RAPIDE=1).
"""

import re

import pytest
from site_construit import DOCS, LANGAGES_PYTHON, RACINE, blocs_python, pages_du_guide

PAGES = {
    "introduction": [],
    "Pretraitement": [],
    "tokenisation": [],
    "Entrainement": [pytest.mark.entrainement],
    "recherche": [pytest.mark.modele_reel],
    "echelle": [pytest.mark.entrainement],
}
DIRECTIVE = re.compile(
    r"^ *\.\. (literalinclude|code-block|imports-de-la-page)::[ \t]*(\S*)\n"
    r"((?: +:.*\n)*)", re.M)


def blocs_python_des_sources(nom):
    """Combien de blocs Python la source rST de la page déclare."""
    nombre = 0
    for genre, argument, options in DIRECTIVE.findall(
            (DOCS / f"{nom}.rst").read_text(encoding="utf-8")):
        if genre == "imports-de-la-page":  # un bloc Python calculé
            langage = "python"
        elif genre == "code-block":
            langage = argument or "python3"
        else:
            langage = (re.findall(r":language: *(\S+)", options) or ["python3"])[0]
        nombre += langage in LANGAGES_PYTHON
    return nombre


@pytest.mark.parametrize("nom", sorted(PAGES))
def test_le_html_montre_chaque_bloc_python_des_sources(nom, site):
    # Garde-fou de l'extraction : rien ne se perd entre la source et la page.
    attendus = blocs_python_des_sources(nom)
    assert attendus > 0, f"aucun bloc Python déclaré dans {nom}.rst"
    assert len(blocs_python(site / f"{nom}.html")) == attendus


def test_chaque_page_avec_du_python_est_executee(site):
    avec_python = {nom for nom in pages_du_guide()
                   if blocs_python(site / f"{nom}.html")}
    assert avec_python == set(PAGES), "ajoutez la page à PAGES dans ce fichier"


@pytest.mark.modele_reel
@pytest.mark.parametrize("nom", [pytest.param(n, marks=m) for n, m in PAGES.items()])
def test_les_blocs_d_une_page_s_executent_dans_l_ordre(nom, site, monkeypatch):
    monkeypatch.chdir(RACINE)
    monkeypatch.setenv("AFFINAGE_RAPIDE", "1")
    session = {"__name__": "__session__"}
    blocs = blocs_python(site / f"{nom}.html")
    assert blocs, f"aucun bloc Python trouvé dans {nom}.html"
    for i, bloc in enumerate(blocs, 1):
        try:
            exec(compile(bloc, f"{nom}.html (bloc {i})", "exec"), session)
        except Exception as erreur:  # le bloc fautif, lisible dans le rapport
            pytest.fail(f"{nom}.html, bloc {i} :\n{bloc}\n→ {erreur!r}")
