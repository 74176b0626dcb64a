"""Les carnets du guide : le code de chaque chapitre en notebook Jupyter, tiré
de sa page, comme sphinx-gallery tire les siens de ses exemples.

À la lecture de la page d'un chapitre (registre ``construction.chapitres``),
ses titres, ses paragraphes et ses blocs Python, dans l'ordre, deviennent les
cellules d'un notebook : ``docs/_sorties/carnets/<chapitre>.ipynb`` (ignoré par
git), que la page propose au téléchargement. Aucune copie écrite à la main :
changer la page change le carnet. Les sorties montrées par la page (blocs de
texte), les notes et les tableaux n'y sont pas : le carnet produit les siennes.

La construction exécute chaque carnet de bout en bout, dans un noyau Jupyter
neuf lancé à la racine du dépôt, en mode rapide (``AFFINAGE_RAPIDE=1`` :
quelques pas d'entraînement, quelques questions) ; une cellule en erreur
arrête la construction. Un cache évite de le refaire : l'empreinte couvre les
cellules, les modules de ``tutorial_code`` qu'elles importent (récursivement)
et les données du chapitre. Sans changement, rien ne s'exécute.
"""

import ast
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.util import logging

from construction.chapitres import CHAPITRES, PAR_NOM
from construction.sorties import empreinte_fichiers, modules_utilises
from tutorial_code import RACINE

logger = logging.getLogger(__name__)

DOSSIER_IPYNB = Path("_sorties") / "carnets"  # sous docs/, ignoré par git
REGISTRE = RACINE / ".jupyter_cache" / "carnets-executes.json"  # make clean l'efface
LANGAGES_PYTHON = {"python", "python3", "py", "default", "pycon"}
DUREE_MAX_CELLULE_S = 1800  # le mode rapide de « Recherche » tient en 5 minutes
PAR_PAGE = {c.page: c.nom for c in CHAPITRES}


def espaces(texte):
    """Les blancs d'un texte ramenés à une espace ; les espaces insécables de
    la typographie française restent."""
    return re.sub(r"[ \t\r\n]+", " ", texte).strip()


def en_markdown(noeud):
    """Le texte d'un paragraphe (ou d'un titre) en Markdown : code, gras,
    italique et liens gardés ; le reste en texte."""
    if isinstance(noeud, nodes.Text):
        return noeud.astext()
    interieur = "".join(en_markdown(n) for n in noeud.children)
    if isinstance(noeud, nodes.literal):
        return f"`{noeud.astext()}`"
    if isinstance(noeud, nodes.strong):
        return f"**{interieur}**"
    if isinstance(noeud, nodes.emphasis):
        return f"*{interieur}*"
    if isinstance(noeud, nodes.reference) and noeud.get("refuri", "").startswith(
            ("http://", "https://")):
        return f"[{interieur}]({noeud['refuri']})"
    if (isinstance(noeud, addnodes.pending_xref) and noeud.get("reftype") == "doc"
            and not noeud.get("refexplicit")):
        return titre_de_page(noeud["reftarget"]) or interieur
    return interieur


def titre_de_page(cible):
    """Le titre de ``docs/<cible>.rst`` (la ligne au-dessus du premier
    soulignement), pour qu'un renvoi :doc: se lise dans le carnet."""
    chemin = RACINE / "docs" / f"{cible}.rst"
    if not chemin.exists():
        return None
    lignes = chemin.read_text(encoding="utf-8").splitlines()
    for avant, ligne in zip(lignes, lignes[1:]):
        if avant.strip() and ligne and set(ligne) <= set("=-~^") and \
                len(ligne) >= len(avant.strip()):
            return avant.strip().replace("'", "’")
    return None


def liste_en_markdown(liste):
    """Une liste à puces ou numérotée, un élément par ligne."""
    lignes = []
    for k, element in enumerate(liste.children, 1):
        puce = f"{k}." if isinstance(liste, nodes.enumerated_list) else "-"
        texte = " ".join(en_markdown(p) for p in element.children
                         if isinstance(p, nodes.paragraph))
        lignes.append(f"{puce} {espaces(texte)}")
    return "\n".join(lignes)


def est_python(bloc):
    """Un bloc de code Python de la page (pas une sortie, pas du shell)."""
    return bloc.get("language", "default") in LANGAGES_PYTHON


def cellules_de_la_page(doctree):
    """``[(genre, texte)]`` dans l'ordre de la page : « markdown » pour les
    titres, paragraphes et listes, « code » pour les blocs Python."""
    cellules = []

    def ajouter(genre, texte):
        if genre == "markdown" and cellules and cellules[-1][0] == "markdown":
            cellules[-1] = ("markdown", cellules[-1][1] + "\n\n" + texte)
        else:
            cellules.append((genre, texte))

    def parcourir(noeud, niveau):
        for enfant in noeud.children:
            source = getattr(enfant, "source", None) or enfant.get("source")
            if "_sorties" in str(source or ""):
                continue  # le texte que la construction a écrit pour son run
            if isinstance(enfant, nodes.section):
                titre = espaces(en_markdown(enfant[0]))
                ajouter("markdown", f"{'#' * niveau} {titre}")
                parcourir(enfant, niveau + 1)
            elif isinstance(enfant, nodes.paragraph):
                ajouter("markdown", espaces(en_markdown(enfant)))
            elif isinstance(enfant, (nodes.bullet_list, nodes.enumerated_list)):
                ajouter("markdown", liste_en_markdown(enfant))
            elif isinstance(enfant, nodes.literal_block) and est_python(enfant):
                ajouter("code", enfant.astext().strip("\n"))
            elif isinstance(enfant, nodes.literal_block) and enfant.get(
                    "language") in ("bash", "console", "shell"):
                ajouter("markdown", f"```bash\n{enfant.astext().strip()}\n```")
            elif isinstance(enfant, (nodes.container, nodes.compound)):
                parcourir(enfant, niveau)  # un bloc de code avec légende, par exemple
            # Le reste (sorties, notes, tableaux, figures) appartient à la page.

    parcourir(doctree, 1)
    return cellules


def carnet_de_la_page(doctree):
    """Le notebook (nbformat 4, sans sorties) tiré de la page ``doctree``."""
    cellules = cellules_de_la_page(doctree)
    titre = next(iter(doctree.findall(nodes.title)), None)
    page = espaces(titre.astext()) if titre is not None else "?"
    entete = (f"Ce carnet est tiré de la page « {page} » du guide *Affinage "
              "pratique* : ses titres, ses paragraphes et ses blocs Python, "
              "dans l’ordre, sans les sorties ni les chiffres de la "
              "construction du site. Exécutez-le à la racine d’une copie du "
              "dépôt, avec le Python de `.venv/` (après `make html`). Pour un "
              "essai rapide (quelques pas, quelques questions), mettez "
              "`AFFINAGE_RAPIDE=1` dans l’environnement avant de lancer Jupyter.")
    carnet = nbformat.v4.new_notebook()
    carnet.metadata["kernelspec"] = {"display_name": "Python 3",
                                     "language": "python", "name": "python3"}
    carnet.metadata["language_info"] = {"name": "python"}
    creer = {"markdown": nbformat.v4.new_markdown_cell,
             "code": nbformat.v4.new_code_cell}
    if cellules and cellules[0][0] == "markdown":  # le titre, puis l'en-tête
        titre, _, suite = cellules[0][1].partition("\n\n")
        cellules[0] = ("markdown", f"{titre}\n\n{entete}"
                       + (f"\n\n{suite}" if suite else ""))
    carnet.cells = [creer[genre](texte) for genre, texte in cellules]
    for i, cellule in enumerate(carnet.cells):
        cellule.id = f"cellule-{i}"  # stables : nbformat les tire au hasard
    nbformat.validate(carnet)
    return carnet


def ecrire_si_change(carnet, cible):
    """Écrit le ``.ipynb`` s'il a changé ; renvoie ``True`` dans ce cas."""
    contenu = nbformat.writes(carnet) + "\n"
    cible = Path(cible)
    if cible.exists() and cible.read_text(encoding="utf-8") == contenu:
        return False
    cible.parent.mkdir(parents=True, exist_ok=True)
    cible.write_text(contenu, encoding="utf-8")
    return True


def modules_importes(carnet):
    """Les modules de ``tutorial_code`` qu'importent les cellules de code."""
    modules = set()
    for cellule in carnet.cells:
        if cellule.cell_type != "code":
            continue
        for noeud in ast.walk(ast.parse(cellule.source)):
            if isinstance(noeud, ast.ImportFrom) and noeud.module:
                noms = [noeud.module]
            elif isinstance(noeud, ast.Import):
                noms = [a.name for a in noeud.names]
            else:
                continue
            modules.update(n for n in noms if n.split(".")[0] == "tutorial_code")
    return modules


def empreinte_carnet(carnet, chapitre, racine=RACINE):
    """SHA-256 de ce que l'exécution du carnet met en jeu : ses cellules de
    code, les modules de ``tutorial_code`` qu'elles importent (récursivement)
    et les fichiers de données du chapitre."""
    racine = Path(racine)
    fichiers = set()
    for module in modules_importes(carnet):
        fichier = racine / (module.replace(".", "/") + ".py")
        if fichier.exists():
            fichiers |= modules_utilises(fichier, set(fichiers))
    for motif in PAR_NOM[chapitre].entrees:
        fichiers |= set(racine.glob(motif))
    code = "\n".join(c.source for c in carnet.cells if c.cell_type == "code")
    return empreinte_fichiers(sorted(fichiers), racine, code.encode(), b"rapide")


def lire_registre():
    return json.loads(REGISTRE.read_text()) if REGISTRE.exists() else {}


def noter_execution(chapitre, cle):
    registre = lire_registre()
    registre[chapitre] = cle
    REGISTRE.parent.mkdir(parents=True, exist_ok=True)
    REGISTRE.write_text(json.dumps(registre, indent=1, sort_keys=True) + "\n")


def verifier_noyau(nom="python3"):
    """Le Python que lancera le noyau ``nom`` ; erreur s'il n'est pas celui-ci.

    Le noyau de ipykernel (``argv[0] == "python"``) est lancé par jupyter_client
    avec ``sys.executable`` : le Python de l'environnement qui construit le site.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(nom)
    except NoSuchKernel:
        raise ExtensionError(
            f"carnets : noyau Jupyter « {nom} » introuvable. Installez ipykernel "
            "(requirements.txt) dans l'environnement qui construit le site.") from None
    commande = spec.argv[0]
    majeure, mineure = sys.version_info[:2]
    if commande in {"python", f"python{majeure}", f"python{majeure}.{mineure}"}:
        return sys.executable  # jupyter_client y substitue sys.executable
    if Path(commande).parent.resolve() != Path(sys.executable).parent.resolve():
        raise ExtensionError(
            f"carnets : le noyau « {nom} » lance {commande}, pas le Python qui "
            f"construit le site ({sys.executable}) : il n'aurait ni torch ni "
            f"tutorial_code. Retirez ce noyau ({spec.resource_dir}) ou lancez la "
            "construction avec JUPYTER_PREFER_ENV_PATH=1.")
    return commande


def executer(carnet, chapitre):
    """Exécute une copie du carnet en mode rapide, à la racine du dépôt ; une
    cellule en erreur arrête la construction en la citant."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    verifier_noyau()
    copie = nbformat.from_dict(carnet)
    client = NotebookClient(copie, timeout=DUREE_MAX_CELLULE_S, kernel_name="python3",
                            resources={"metadata": {"path": str(RACINE)}})
    avant = os.environ.get("AFFINAGE_RAPIDE")
    os.environ["AFFINAGE_RAPIDE"] = "1"  # le noyau hérite de l'environnement
    debut = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as erreur:
        raise ExtensionError(f"carnets : le carnet « {chapitre} » échoue (mode "
                             f"rapide) :\n{erreur}") from None
    finally:
        if avant is None:
            os.environ.pop("AFFINAGE_RAPIDE", None)
        else:
            os.environ["AFFINAGE_RAPIDE"] = avant
    return time.perf_counter() - debut


def produire_carnet(app, doctree):
    """doctree-read : le carnet de la page d'un chapitre, écrit puis exécuté
    (si son empreinte a changé). Avant le relevé des téléchargements de Sphinx,
    qui trouve ainsi le fichier."""
    chapitre = PAR_PAGE.get(app.env.docname)
    # Le site seulement : la relecture orthographique (constructeur « spelling »)
    # lit les pages sans les guillemets typographiques, son carnet différerait.
    if chapitre is None or app.builder.name != "html":
        return
    carnet = carnet_de_la_page(doctree)
    cible = Path(app.srcdir) / DOSSIER_IPYNB / f"{chapitre}.ipynb"
    if ecrire_si_change(carnet, cible):
        logger.info(f"[carnets] {cible.name} écrit")
    cle = empreinte_carnet(carnet, chapitre)
    if lire_registre().get(chapitre) == cle:
        return
    logger.info(f"[carnets] {chapitre} : exécution en mode rapide …")
    duree = executer(carnet, chapitre)
    noter_execution(chapitre, cle)
    logger.info(f"[carnets] {chapitre} : exécuté en {duree:.0f} s")


def pages_a_relire(app, env, added, changed, removed):
    """env-get-outdated : les pages dont le carnet manque, ou dont le code qu'il
    appelle a changé sans que la page change (un module importé indirectement)."""
    registre, a_relire = lire_registre(), []
    if app.builder.name != "html":
        return []
    for page, chapitre in PAR_PAGE.items():
        cible = Path(app.srcdir) / DOSSIER_IPYNB / f"{chapitre}.ipynb"
        if page not in env.all_docs or page in added | changed:
            continue
        if not cible.exists():
            a_relire.append(page)
            continue
        carnet = nbformat.read(cible, as_version=4)
        if registre.get(chapitre) != empreinte_carnet(carnet, chapitre):
            logger.info(f"[carnets] {chapitre} : code changé, à réexécuter")
            a_relire.append(page)
    return a_relire


def setup(app):
    # Avant le relevé des fichiers à télécharger (priorité 500 par défaut).
    app.connect("doctree-read", produire_carnet, priority=400)
    app.connect("env-get-outdated", pages_a_relire)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
