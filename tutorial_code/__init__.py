"""Affinage pratique : le code testé que les pages du guide incluent."""
