"""Les carnets du guide : un notebook par chapitre, dans ``docs/carnets/``.

Chaque carnet est un fichier MyST Markdown (le format « myst » de jupytext) que
myst-nb exécute pendant la construction, avec le cache de jupyter-cache. Ses
cellules importent et appellent le code de ``tutorial_code`` : aucune seconde
copie du code. Cette extension ajoute trois choses :

* le noyau : « python3 » doit lancer le Python qui construit le site (celui de
  ``.venv/``, où le projet est installé : il importe ``tutorial_code``), sinon
  la construction s'arrête en le disant ;
* le téléchargement : chaque carnet est converti en ``.ipynb`` dans
  ``docs/_sorties/carnets/`` (ignoré par git), que les pages proposent avec le
  rôle ``download`` ; le fichier n'est réécrit que s'il change ;
* le cache suit le code : jupyter-cache ne regarde que le texte des cellules.
  L'empreinte d'un carnet couvre aussi les modules de ``tutorial_code`` qu'il
  importe et l'empreinte des sorties de son chapitre (code et données) ; si
  elle change, son exécution est retirée du cache et le carnet est relu, donc
  réexécuté. Sans changement, rien ne s'exécute.
"""

import ast
import json
import sys
from contextlib import suppress
from pathlib import Path

import nbformat
from myst_nb.core.read import read_myst_markdown_notebook
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

DOSSIER_CARNETS = "carnets"  # sous docs/ : un fichier <chapitre>.md par chapitre
DOSSIER_IPYNB = Path("_sorties") / "carnets"  # sous docs/, ignoré par git
FICHIER_EMPREINTES = "empreintes-carnets.json"  # dans le cache de jupyter-cache
ETIQUETTE_SITE = "site-seulement"  # cellule montrée sur le site, pas dans le .ipynb


def sources_carnets(srcdir):
    """Les carnets (``docs/carnets/*.md``), triés."""
    return sorted((Path(srcdir) / DOSSIER_CARNETS).glob("*.md"))


def lire_carnet(chemin):
    """Le carnet MyST ``chemin`` en notebook (nbformat 4), sans ses sorties."""
    texte = Path(chemin).read_text(encoding="utf-8")
    return read_myst_markdown_notebook(texte, path=chemin)


def en_ipynb(carnet):
    """Le texte du ``.ipynb`` à télécharger : sans les cellules propres au site
    (étiquette ``site-seulement`` : le lien de téléchargement, par exemple),
    identifiants de cellules stables (nbformat les tire au hasard), sans les
    métadonnées de jupytext."""
    carnet = nbformat.from_dict(carnet)
    carnet.cells = [c for c in carnet.cells
                    if ETIQUETTE_SITE not in c.metadata.get("tags", [])]
    for i, cellule in enumerate(carnet.cells, 1):
        cellule.id = f"cellule-{i}"
    carnet.metadata.pop("jupytext", None)
    carnet.metadata.setdefault("language_info", {"name": "python"})
    nbformat.validate(carnet)
    return nbformat.writes(carnet) + "\n"


def ecrire_ipynb(carnet, cible):
    """Écrit le ``.ipynb`` ; renvoie ``True`` s'il a changé (sinon, on n'y touche
    pas : sa date reste la même et Sphinx ne relit pas les pages qui le citent)."""
    contenu = en_ipynb(carnet)
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


def empreinte_carnet(chemin, racine, dossier_sorties):
    """SHA-256 du code que le carnet exécute et de ce dont ses sorties dépendent.

    Les fichiers de ``tutorial_code`` qu'il importe (récursivement, comme pour
    les sorties des pages), plus ``<dossier_sorties>/<chapitre>/.empreinte``,
    l'empreinte que ``construction.sorties`` a calculée pour son chapitre
    (code et données ; elle change aussi quand le chapitre est réentraîné).
    """
    from construction.sorties import empreinte_fichiers, modules_utilises

    racine = Path(racine)
    fichiers = set()
    for module in modules_importes(lire_carnet(chemin)):
        fichier = racine / (module.replace(".", "/") + ".py")
        if fichier.exists():
            fichiers |= modules_utilises(fichier, set(fichiers))
    temoin = Path(dossier_sorties) / Path(chemin).stem / ".empreinte"
    return empreinte_fichiers(
        sorted(fichiers), racine,
        temoin.read_bytes() if temoin.exists() else b"(sans sorties)")


def verifier_noyau(nom):
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


def convertir_carnets(app):
    """builder-inited : noyau vérifié, chaque carnet converti en ``.ipynb``."""
    noyaux = set()
    for chemin in sources_carnets(app.srcdir):
        carnet = lire_carnet(chemin)
        noyaux.add(carnet.metadata.get("kernelspec", {}).get("name", "python3"))
        cible = Path(app.srcdir) / DOSSIER_IPYNB / (chemin.stem + ".ipynb")
        if ecrire_ipynb(carnet, cible):
            logger.info(f"[carnets] {cible.name} écrit")
    for nom in sorted(noyaux):
        logger.info(f"[carnets] noyau « {nom} » : {verifier_noyau(nom)}")


def carnets_a_reexecuter(app, env, added, changed, removed):
    """env-get-outdated : les carnets dont le code ou les sorties ont changé.

    On retire du cache de jupyter-cache leur dernière exécution, et on les fait
    relire : myst-nb les réexécute. Renvoie leurs noms de documents.
    """
    config = env.mystnb_config
    if config.execution_mode != "cache":
        return []
    from jupyter_cache import get_cache

    cache_dir = Path(config.execution_cache_path)
    registre = cache_dir / FICHIER_EMPREINTES
    anciennes = json.loads(registre.read_text()) if registre.exists() else {}
    nouvelles, a_relire = {}, []
    dossier_sorties = Path(app.srcdir) / "_sorties"
    for chemin in sources_carnets(app.srcdir):
        docname = f"{DOSSIER_CARNETS}/{chemin.stem}"
        nouvelles[docname] = empreinte_carnet(chemin, app.confdir, dossier_sorties)
        if anciennes.get(docname) == nouvelles[docname]:
            continue
        if cache_dir.exists():
            cache = get_cache(str(cache_dir))
            with suppress(KeyError):  # KeyError : jamais exécuté sous cette forme
                cache.remove_cache(cache.match_cache_notebook(lire_carnet(chemin)).pk)
        if docname in env.all_docs:
            logger.info(f"[carnets] {docname} : code ou sorties changés, "
                        "à réexécuter")
            a_relire.append(docname)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Fusionner : une construction d'un autre dossier source (le petit site de
    # tests/test_site.py, sans carnets) ne doit pas effacer les empreintes du guide.
    registre.write_text(json.dumps({**anciennes, **nouvelles}, indent=1,
                                   sort_keys=True) + "\n")
    return a_relire


def setup(app):
    app.connect("builder-inited", convertir_carnets)
    app.connect("env-get-outdated", carnets_a_reexecuter)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
