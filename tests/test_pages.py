"""Les blocs de code d'une page, copiés dans l'ordre dans une même session
Python lancée à la racine du dépôt, s'exécutent (standard du guide).

Les blocs sont pris dans le site construit, ``_build/html/<page>.html`` : les blocs
Python surlignés, dans l'ordre de la page, sans invites, exactement comme le
bouton « copier » les donne au lecteur (test_navigateur.py le vérifie dans
Chromium). ``make test`` construit le site d'abord. L'entraînement passe en mode
rapide (AFFINAGE_RAPIDE=1).
"""

import json
import os
import re
import subprocess
import sys

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


# Exécute les blocs, dans l'ordre, dans un interpréteur neuf : les dossiers de
# travail se choisissent à l'import d'après AFFINAGE_RAPIDE, et un module déjà
# importé par un autre test écrirait le mode rapide dans ceux de la construction.
SESSION = """
import json, sys, traceback
session = {"__name__": "__session__"}
for i, bloc in enumerate(json.load(open(sys.argv[1], encoding="utf-8")), 1):
    try:
        exec(compile(bloc, f"{sys.argv[2]} (bloc {i})", "exec"), session)
    except Exception:
        print(f"{sys.argv[2]}, bloc {i} :\\n{bloc}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def etat_des_dossiers_construits():
    """Fichiers et dates des modèles entraînés par la construction."""
    return {f: f.stat().st_mtime_ns for nom in ("assistant", "assistants")
            for f in (RACINE / "_travail" / nom).rglob("*") if f.is_file()}


@pytest.mark.modele_reel
@pytest.mark.parametrize("nom", [pytest.param(n, marks=m) for n, m in PAGES.items()])
def test_les_blocs_d_une_page_s_executent_dans_l_ordre(nom, site, tmp_path):
    blocs = blocs_python(site / f"{nom}.html")
    assert blocs, f"aucun bloc Python trouvé dans {nom}.html"
    (tmp_path / "blocs.json").write_text(json.dumps(blocs), encoding="utf-8")
    avant = etat_des_dossiers_construits()
    fini = subprocess.run(
        [sys.executable, "-c", SESSION, str(tmp_path / "blocs.json"), f"{nom}.html"],
        cwd=RACINE, env={**os.environ, "AFFINAGE_RAPIDE": "1"},
        capture_output=True, text=True)
    if fini.returncode:
        pytest.fail(fini.stderr[-6000:], pytrace=False)
    # Le mode rapide écrit dans ses propres dossiers (…-rapide) : les modèles
    # de la construction, que --discuter recharge, restent ceux du site.
    assert etat_des_dossiers_construits() == avant
