"""Bancs d'essai du guide : des rapports mesurés côte à côte, dans un seul run.

Ce ne sont pas des tests : aucun seuil ne fait échouer quoi que ce soit. Chaque
script affiche la machine et la configuration en tête, mesure, puis compare
ses chiffres aux cibles du guide et dit en clair où le guide perd.

* ``python -m bench.entrainement`` : débit d'entraînement, boucle du guide
  contre TRL ``SFTTrainer`` et ``Trainer`` de transformers, MFU ;
* ``python -m bench.generation`` : génération par lots contre prompt par
  prompt, chargement du modèle depuis le cache ;
* ``python -m bench.docs`` : construction du site, à froid, sans changement,
  après modification d'un chapitre.

``make bench`` les lance tous ; les chiffres vont dans ``bench/resultats.json``
et le tableau dans ``bench/resultats.md`` (fichiers générés, non versionnés).
"""
