"""Filtre d'élision pour la relecture orthographique (voir ``orthographe.py``).

Importé par le seul constructeur ``spelling`` (``spelling_filters`` dans conf.py),
car il a besoin d'enchant.
"""

from enchant.tokenize import Filter, tokenize

# Articles, pronoms et conjonctions qui s'élident devant une voyelle.
ELISIONS = ("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu",
            "puisqu", "quoiqu")


class _Reste(tokenize):
    """Un seul jeton : le mot sans son élision, à sa position dans le mot."""

    def __init__(self, mot, debut):
        super().__init__(mot)
        self._debut = debut
        self._fait = False

    def next(self):
        if self._fait:
            raise StopIteration()
        self._fait = True
        return self._text[self._debut:], self._debut


class FiltreElision(Filter):
    """« qu'accelerate » est relu comme « accelerate »."""

    def _split(self, word):
        for apostrophe in "'’":
            avant, trouve, apres = word.partition(apostrophe)
            if trouve and avant.lower() in ELISIONS and apres:
                return _Reste(word, len(avant) + 1)
        return _Reste(word, 0)
