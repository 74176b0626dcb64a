"""Configuration Sphinx d'« Affinage pratique ».

Ce fichier est à la racine du dépôt ; les pages sont dans docs/ :
``sphinx-build -c . docs _build/html`` (c'est ce que fait ``make html``).
"""

from pathlib import Path

# Le projet est installé (« pip install -e . », voir Makefile) : tutorial_code et
# les extensions du guide (construction.extensions) s'importent sans sys.path.
RACINE = Path(__file__).resolve().parent

project = "Affinage pratique"
author = "L'équipe d'Affinage pratique"
copyright = "2026, " + author
language = "fr"

extensions = [
    "myst_nb",
    "sphinx_copybutton",
    "sphinx_rtd_theme",
    "construction.extensions.typographie",
    "construction.extensions.orthographe",  # le constructeur spelling, réglé
    "construction.extensions.imports_page",  # le bloc d'imports de chaque page
]

exclude_patterns = ["_build", "_sorties", "**/.ipynb_checkpoints"]
templates_path = ["docs/_templates"]  # layout.html : le titre de l'onglet
html_theme = "sphinx_rtd_theme"
html_title = "Affinage pratique"
html_static_path = ["docs/_static"]
html_css_files = ["affinage.css"]
html_show_sourcelink = True

# Les sorties sont produites par construction.sorties avant Sphinx (voir Makefile) ;
# les notebooks éventuels sont exécutés avec cache, et une erreur casse la construction.
nb_execution_mode = "cache"
nb_execution_cache_path = str(RACINE / ".jupyter_cache")
nb_execution_raise_on_error = True

# Carnets : le notebook de chaque chapitre, tiré de sa page et exécuté (mode
# rapide, avec cache) par construction/extensions/carnets.py.
extensions.append("construction.extensions.carnets")
nb_execution_timeout = 300  # secondes par cellule, sur deux cœurs partagés
nb_execution_show_tb = True  # la trace d'une cellule en échec, dans le journal
nb_output_stderr = "remove"  # barres de progression (tqdm), avertissements
# Une réponse affichée au fil des jetons : un seul bloc de sortie, pas un par jeton.
nb_merge_streams = True
# La relecture orthographique (constructeur « spelling ») lit les sorties en texte.
nb_mime_priority_overrides = [("spelling", "text/plain", 0)]

# Bouton « copier » : les invites et les sorties ne sont pas copiées.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False

highlight_language = "python3"
pygments_style = "sphinx"

# Orthographe (``make orthographe``, et un test) : le texte rendu des pages est relu
# avec le dictionnaire français de Debian (hunspell-fr, via enchant). Le code, les
# littéraux et les sorties ne sont pas relus. Les termes techniques et les noms
# propres du guide sont dans docs/mots_du_projet.txt. Une faute est un
# avertissement, donc une erreur avec -W.
spelling_lang = "fr_FR"
# pyenchant n'a pas de découpeur français ; l'anglais garde « l'affinage » en un mot,
# que le dictionnaire français accepte (élision), et coupe à « ’ ».
tokenizer_lang = "en_US"
spelling_word_list_filename = "mots_du_projet.txt"
spelling_warning = True
# « d'AdamW » relu « AdamW »
spelling_filters = ["construction.extensions.elision.FiltreElision"]
spelling_show_suggestions = True
spelling_suggestion_limit = 3
spelling_ignore_pypi_package_names = False  # pas de réseau
spelling_ignore_contributor_names = False  # ne dépend pas de l'historique git
spelling_ignore_importable_modules = False  # la liste du projet est explicite
spelling_ignore_python_builtins = False
