"""L'architecture du dépôt : la bibliothèque du lecteur (``tutorial_code``) d'un
côté, la construction des pages (``construction``) et les bancs (``bench``) de
l'autre. Lu dans le code (ast), sans rien importer."""

import ast
import re

import pytest

from tutorial_code import RACINE

PAQUETS = ("tutorial_code", "construction", "bench")
LONGUEUR_MAX_MONTREE = 60  # lignes d'une fonction montrée en entier


def modules():
    """``{nom de module: fichier}`` des trois paquets."""
    return {".".join(f.relative_to(RACINE).with_suffix("").parts): f
            for p in PAQUETS for f in sorted((RACINE / p).rglob("*.py"))
            if f.name != "__init__.py"}


def importes(fichier, connus):
    """Les modules du dépôt que ``fichier`` importe, où que ce soit (y compris
    dans une fonction : un import paresseux reste une dépendance)."""
    trouves = set()
    for n in ast.walk(ast.parse(fichier.read_text(encoding="utf-8"))):
        noms = []
        if isinstance(n, ast.ImportFrom) and n.module:
            noms = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
        elif isinstance(n, ast.Import):
            noms = [a.name for a in n.names]
        trouves |= {m for m in noms if m in connus}
    return trouves


def graphe():
    connus = modules()
    return {m: importes(f, connus) for m, f in connus.items()}


def test_le_graphe_est_lu():
    g = graphe()
    assert "tutorial_code.lots" in g["construction.tokenisation"]
    assert len([m for m in g if m.startswith("tutorial_code.")]) >= 20


def test_aucun_cercle_d_imports():
    g = graphe()
    etat = {}  # 1 : en cours de visite ; 2 : fini

    def visiter(m, chemin):
        etat[m] = 1
        for d in sorted(g[m]):
            if etat.get(d) == 1:
                cercle = chemin[chemin.index(d):] + [d]
                pytest.fail("cercle d'imports : " + " → ".join(cercle))
            if d not in etat:
                visiter(d, chemin + [d])
        etat[m] = 2

    for m in sorted(g):
        if m not in etat:
            visiter(m, [m])


def test_la_bibliotheque_n_importe_ni_la_construction_ni_les_bancs():
    for m, deps in graphe().items():
        if m.startswith("tutorial_code."):
            interdits = {d for d in deps if not d.startswith("tutorial_code.")}
            assert not interdits, f"{m} importe {sorted(interdits)}"


def test_la_bibliotheque_ne_contient_pas_de_code_de_page():
    for f in (RACINE / "tutorial_code").glob("*.py"):
        texte = f.read_text(encoding="utf-8")
        assert "def produire_sorties" not in texte, f.name
        assert "capturer(" not in texte, f.name
        assert not f.stem.endswith("_page"), f.name


def objets_montres():
    """``(page, fichier, objet)`` de chaque ``:pyobject:`` des pages."""
    motif = re.compile(r"^\.\. literalinclude:: (\S+\.py)\n((?: +:.*\n)*)", re.M)
    for page in sorted((RACINE / "docs").glob("*.rst")):
        for chemin, options in motif.findall(page.read_text(encoding="utf-8")):
            objet = re.search(r":pyobject: (\S+)", options)
            if objet:
                yield page.name, (page.parent / chemin).resolve(), objet.group(1)


def test_chaque_fonction_montree_tient_en_60_lignes():
    montres = list(objets_montres())
    assert len(montres) >= 20
    trop_longues = []
    for page, fichier, objet in montres:
        arbre = ast.parse(fichier.read_text(encoding="utf-8"))
        noeuds = {n.name: n for n in ast.walk(arbre)
                  if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        n = noeuds[objet.split(".")[-1]]
        if isinstance(n, ast.FunctionDef):
            lignes = n.end_lineno - n.lineno + 1
            if lignes > LONGUEUR_MAX_MONTREE:
                trop_longues.append(f"{page} : {objet} ({lignes} lignes)")
    assert not trop_longues, trop_longues
