"""Vérifications du site, sans réseau : orthographe du texte rendu et liens internes.

L'orthographe passe par le constructeur ``spelling`` (sphinxcontrib-spelling,
dictionnaire hunspell-fr de Debian, liste docs/mots_du_projet.txt) : c'est ce que
fait ``make orthographe``. Les liens sont lus dans ``_build/html``.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from site_construit import DOCS, RACINE, liens_casses

LANGUE = "fr_FR"


def relire(source, sortie):
    """Lance la relecture orthographique de ``source`` ; renvoie (code, messages)."""
    try:
        import enchant
    except ImportError as erreur:
        pytest.fail("pyenchant ne trouve pas la bibliothèque enchant : lancez "
                    f"« make paquets » (libenchant-2-2). Détail : {erreur}",
                    pytrace=False)
    if not enchant.dict_exists(LANGUE):
        pytest.fail(f"Pas de dictionnaire {LANGUE} pour enchant : lancez "
                    "« make paquets » (hunspell-fr).", pytrace=False)
    commande = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                "-c", str(RACINE), "-b", "spelling", str(source), str(sortie)]
    resultat = subprocess.run(commande, cwd=RACINE, capture_output=True, text=True,
                              env={**os.environ, "NO_COLOR": "1"}, timeout=600)
    return resultat.returncode, resultat.stdout + resultat.stderr


def test_orthographe_des_pages(tmp_path):
    code, messages = relire(DOCS, tmp_path / "orthographe")
    assert code == 0, (
        "Fautes d'orthographe (ou avertissements) dans les pages. Corrigez-les, ou "
        "ajoutez un terme technique ou un nom propre à docs/mots_du_projet.txt :\n"
        + messages)


def test_la_relecture_trouve_les_fautes_et_laisse_le_code(tmp_path):
    # Un petit site avec des fautes connues, relu avec la configuration du guide.
    source = tmp_path / "source"
    (source / "_sorties").mkdir(parents=True)
    shutil.copy(DOCS / "mots_du_projet.txt", source)
    (source / "_sorties" / "sortie.rst").write_text(
        "Sortie du modèle : je ne sapere pas.\n", encoding="utf-8")
    (source / "index.rst").write_text(textwrap.dedent("""\
        Essai de relecture
        ==================

        Ce paragrafe parle de l'affinage d'un modèle avec AdamW et d'AdamW.

        Un mot en **grassfaute** est relu ; un mot anglais en *italique* non :
        *fine-tuning*, *learning rate*. Le littéral ``motinconnu`` non plus.

        .. code-block:: python

           variabl_inconnue = "texte sans importence"

        .. include:: _sorties/sortie.rst
        """), encoding="utf-8")
    code, messages = relire(source, tmp_path / "sortie")
    assert code != 0, "la relecture aurait dû échouer sur les fautes :\n" + messages
    fautes = {ligne.split("Spell check: ")[1].split(":")[0]
              for ligne in messages.splitlines() if "Spell check: " in ligne}
    assert fautes == {"paragrafe", "grassfaute"}, messages


def test_liens_internes_et_ancres(site):
    problemes = liens_casses(site)
    assert not problemes, "Liens internes cassés :\n" + "\n".join(problemes)


def test_la_verification_des_liens_trouve_les_liens_casses(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "figure.png").write_bytes(b"\x89PNG")
    (tmp_path / "cible.html").write_text('<h1 id="titre">Cible</h1>', encoding="utf-8")
    (tmp_path / "index.html").write_text(textwrap.dedent("""\
        <p id="haut">Liens :
        <a href="cible.html">bon</a> <a href="cible.html#titre">bonne ancre</a>
        <a href="#haut">même page</a> <a href="https://exemple.org/x">externe</a>
        <img src="_images/figure.png">
        <a href="absente.html">fichier absent</a>
        <a href="cible.html#perdue">ancre absente</a>
        <a href="#nulle-part">ancre absente ici</a>
        <img src="_images/manquante.png">
        <a href="../dehors.html">hors du site</a>
        </p>"""), encoding="utf-8")
    problemes = liens_casses(tmp_path)
    attendus = ["absente.html", "#perdue", "#nulle-part", "manquante.png",
                "dehors.html"]
    assert len(problemes) == len(attendus), "\n".join(problemes)
    for attendu, probleme in zip(attendus, problemes):
        assert attendu in probleme
