"""Chaque nombre de la prose vient d'une sortie de la construction.

Un nombre écrit à la main dans une phrase finit par contredire le run qui a
construit la page (un débit, un rappel, une durée d'une autre machine). Ce test
lit chaque page construite, extrait les nombres de la prose (ni le code, ni les
sorties montrées) et exige que chacun soit :

- dans un bloc de la même page (code montré ou sortie de ce run) ;
- ou dans un fichier de ``docs/_sorties`` que la page inclut (tableaux et
  phrases écrits par le code, qui apparaissent dans la prose) ;
- ou dans la liste des constantes du texte, ``docs/nombres_permis.txt`` (taille
  d'un modèle, année, symbole d'une formule), chacune avec sa raison.
"""

import re
from html.parser import HTMLParser

from site_construit import DOCS, pages_du_guide

PERMIS = DOCS / "nombres_permis.txt"
# Un nombre isolé : « 27 », « 1 065 » (espaces fines ou insécables), « 3,52 » ;
# pas un morceau d'identifiant (« bf16 », « 270M », « SmolLM2-135M ») ni une
# version (« Python 3.11 »).
NOMBRE = re.compile(r"(?<![\w.,\-\u2212/=])(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)"
                    r"(?:,(\d+))?(?![\w\-\u2212/]|\.\d)")
FIN_DE_PHRASE = re.compile(r"(?<=[.!?…])\s+")


def normaliser(entier, decimales):
    """« 1 065 » → « 1065 », (« 3 », « 52 ») → « 3.52 »."""
    entier = re.sub(r"[ \u00a0\u202f]", "", entier)
    return f"{entier}.{decimales}" if decimales else entier


def nombres(texte):
    """Les nombres d'un texte, normalisés, avec leur position."""
    return [(normaliser(m.group(1), m.group(2)), m.start())
            for m in NOMBRE.finditer(texte)]


def nombres_sources(texte):
    """Les nombres d'une source (sortie, code) : formats français et anglais."""
    trouves = {n for n, _ in nombres(texte)}
    trouves |= set(re.findall(r"\d+(?:\.\d+)?", texte))  # 0.6, 1065, 3.52
    return trouves


class Page(HTMLParser):
    """Le corps d'une page construite, en deux parts : la prose, et les blocs
    (code et sorties, dans ``<pre>``) ; le code en ligne n'est pas de la prose."""

    IGNORES = {"pre", "code", "script", "style"}

    def __init__(self):
        super().__init__()
        self.prose, self.blocs = [], []
        self.profondeur_corps = 0  # > 0 : dans <div itemprop="articleBody">
        self.pile = []  # balises ouvertes dans le corps
        self.ignore = 0  # > 0 : dans un bloc ou du code

    def handle_starttag(self, balise, attributs):
        if dict(attributs).get("itemprop") == "articleBody":
            self.profondeur_corps = 1
            self.pile = ["div"]
            return
        if not self.profondeur_corps or balise in ("br", "img", "hr", "meta"):
            return
        self.pile.append(balise)
        if balise in self.IGNORES:
            self.ignore += 1
            if balise == "pre":
                self.blocs.append("")
        if balise in ("p", "li", "td", "th", "dt", "dd", "h1", "h2", "h3",
                      "figcaption", "caption"):
            self.prose.append("\n")

    def handle_endtag(self, balise):
        if not self.profondeur_corps or balise not in self.pile:
            return
        while self.pile:  # HTML tolérant : on ferme jusqu'à la balise
            ouverte = self.pile.pop()
            if ouverte in self.IGNORES:
                self.ignore -= 1
            if ouverte == balise:
                break
        if not self.pile:
            self.profondeur_corps = 0

    def handle_data(self, texte):
        if not self.profondeur_corps:
            return
        if self.ignore:
            if "pre" in self.pile:
                self.blocs[-1] += texte
            else:  # code en ligne : montré comme du code, il compte comme tel
                self.blocs.append(texte)
        else:
            self.prose.append(texte.replace("¶", ""))


def lire_permis():
    """Les nombres permis : une ligne « nombre  # raison » ; la raison est exigée."""
    permis = set()
    for numero, ligne in enumerate(PERMIS.read_text(encoding="utf-8").splitlines(), 1):
        if not ligne.strip() or ligne.startswith("#"):
            continue
        nombre, _, raison = ligne.partition("#")
        assert raison.strip(), f"{PERMIS.name}, ligne {numero} : raison absente"
        permis.add(normaliser(*re.fullmatch(r"\s*([\d ]+?)(?:,(\d+))?\s*",
                                            nombre).groups()))
    return permis


def sorties_incluses(nom):
    """Le texte des fichiers de docs/_sorties que la source de la page cite."""
    source = (DOCS / f"{nom}.rst").read_text(encoding="utf-8")
    textes = []
    for chemin in sorted(set(re.findall(r"_sorties/[\w/.\-]+", source))):
        fichier = DOCS / chemin
        if fichier.suffix in (".txt", ".rst", ".json", ".csv") and fichier.exists():
            textes.append(fichier.read_text(encoding="utf-8"))
    return textes


def nombres_sans_source(html, sources_en_plus, permis):
    """Les (nombre, phrase) de la prose qu'aucune source ne donne."""
    page = Page()
    page.feed(html)
    sources = set(permis)
    for texte in page.blocs + list(sources_en_plus):
        sources |= nombres_sources(texte)
    prose = re.sub(r"[ \t]*\n[ \t\n]*", "\n", "".join(page.prose))
    manquants = []
    for paragraphe in prose.split("\n"):
        for phrase in FIN_DE_PHRASE.split(paragraphe):
            for nombre, _ in nombres(phrase):
                if nombre not in sources:
                    manquants.append((nombre, " ".join(phrase.split())))
    return manquants


def test_chaque_nombre_de_la_prose_a_une_source(site):
    permis = lire_permis()
    fautes = []
    for nom in pages_du_guide():
        html = (site / f"{nom}.html").read_text(encoding="utf-8")
        for nombre, phrase in nombres_sans_source(html, sorties_incluses(nom), permis):
            fautes.append(f"{nom} : {nombre} dans « {phrase} »")
    assert not fautes, ("Nombres de la prose sans sortie ni place dans "
                        f"{PERMIS.name} :\n" + "\n".join(fautes))


def test_un_nombre_plante_dans_la_prose_est_trouve(site):
    """Le contrôle attrape un nombre tapé à la main, et nomme sa phrase."""
    nom = "recherche"
    html = (site / f"{nom}.html").read_text(encoding="utf-8")
    plantee = "Le rappel atteint 97,3 % sur les questions de test."
    html = html.replace('itemprop="articleBody">',
                        f'itemprop="articleBody"><p>{plantee}</p>', 1)
    manquants = nombres_sans_source(html, sorties_incluses(nom), lire_permis())
    assert ("97.3", plantee) in manquants


def test_les_nombres_en_francais_sont_lus_entiers():
    assert [n for n, _ in nombres("1\u202f065 pas, 3,52 de perte, bf16, 270M.")] \
        == ["1065", "3.52"]
    assert nombres_sources("perte 0.6 ; 1 065 jetons") >= {"0.6", "1065"}
