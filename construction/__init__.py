"""La construction des pages du guide : exécuter le code que montrent les pages et
écrire ses sorties dans ``docs/_sorties/``.

Ce paquet importe la bibliothèque du lecteur (``tutorial_code``), jamais
l'inverse. ``chapitres`` est le registre des chapitres ; ``sorties`` les
exécute avec un cache ; ``ecrire`` capture ce qu'un bloc affiche et écrit les
tableaux ; un module par chapitre produit ses sorties.
"""
