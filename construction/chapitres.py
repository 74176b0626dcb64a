"""Le registre des chapitres : qui produit les sorties de chaque page, et d'où.

Une seule liste, que lisent le cache (``construction.sorties``), ``make
sorties``, le banc de la construction (``bench/docs.py``) et les tests. Un
chapitre est recalculé quand change le code de son producteur ou d'un module
qu'il importe (récursivement, ``tutorial_code`` et ``construction``), ou l'un
de ses fichiers d'entrée.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapitre:
    nom: str  # dossier des sorties : docs/_sorties/<nom>/
    page: str  # document Sphinx : docs/<page>.rst
    producteur: str  # module qui définit produire_sorties(dossier)
    entrees: tuple = ()  # fichiers de données lus (motifs glob depuis la racine)


DONNEES = ("data/brut/*", "data/test/*")
# L'adaptateur qu'« Entraînement » sauvegarde (``affinage.DOSSIER_MODELE``, hors
# mode rapide, plus « modele ») et que « Recherche » évalue.
ADAPTATEUR_ENTRAINEMENT = "_travail/assistant/modele"

# Dans l'ordre : un chapitre peut lire ce qu'un précédent a produit.
CHAPITRES = (
    Chapitre("introduction", "introduction", "construction.introduction"),
    Chapitre("pretraitement", "Pretraitement", "construction.pretraitement",
             DONNEES + ("data/exemples/*",)),
    Chapitre("tokenisation", "tokenisation", "construction.tokenisation", DONNEES),
    Chapitre("entrainement", "Entrainement", "construction.entrainement", DONNEES),
    # « Recherche » évalue aussi l'adaptateur qu'« Entraînement » a sauvegardé :
    # un nouvel entraînement la rend périmée.
    Chapitre("recherche", "recherche", "construction.recherche",
             DONNEES + (ADAPTATEUR_ENTRAINEMENT + "/*",)),
    Chapitre("echelle", "echelle", "construction.echelle", ("data/brut/*",)),
)
PAR_NOM = {c.nom: c for c in CHAPITRES}
NOMS = tuple(PAR_NOM)
