"""Lire le site construit (``_build/html``) : ses pages, leurs blocs de code, leurs
liens. Outils partagés par test_pages.py, test_site.py et test_navigateur.py.

Ces tests portent sur ce que le lecteur reçoit ; ``make test`` construit donc le
site avant de les lancer (``make html``).
"""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tutorial_code import RACINE

DOCS = RACINE / "docs"
SITE = RACINE / "_build" / "html"
# Les classes que Sphinx donne aux blocs Python (``highlight_language`` = python3).
LANGAGES_PYTHON = {"python", "python3", "py", "default", "pycon"}


def pages_du_guide():
    """Les noms des pages (sans extension), tirés des sources docs/*.rst."""
    return sorted(p.stem for p in DOCS.glob("*.rst"))


def verifier_site():
    """Le dossier du site ; une erreur en français s'il manque ou s'il est périmé.

    Renvoie une chaîne vide si tout va bien, sinon le message d'erreur (le test
    appelant échoue avec : jamais ignoré en silence).
    """
    if not (SITE / "index.html").exists():
        return (f"Le site n'est pas construit ({SITE.relative_to(RACINE)}/index.html "
                "manque) : lancez « make html » (« make test » le fait).")
    perimees = [nom for nom in pages_du_guide()
                if not (SITE / f"{nom}.html").exists()
                or (SITE / f"{nom}.html").stat().st_mtime
                < (DOCS / f"{nom}.rst").stat().st_mtime]
    if perimees:
        return ("Le site est plus ancien que les sources de : "
                + ", ".join(perimees) + ". Relancez « make html ».")
    return ""


def invites_du_bouton_copier():
    """L'expression des invites (>>>, $) que le bouton « copier » retire (conf.py)."""
    arbre = ast.parse((RACINE / "conf.py").read_text(encoding="utf-8"))
    for noeud in arbre.body:
        if (isinstance(noeud, ast.Assign)
                and getattr(noeud.targets[0], "id", "") == "copybutton_prompt_text"):
            return re.compile(ast.literal_eval(noeud.value))
    raise LookupError("copybutton_prompt_text absent de conf.py")


def sans_invites(texte):
    """Le texte d'un bloc tel que le bouton « copier » le copie : sans invites."""
    invite = invites_du_bouton_copier()
    return "\n".join(invite.sub("", ligne, count=1) if invite.match(ligne) else ligne
                     for ligne in texte.split("\n"))


class _BlocsDeCode(HTMLParser):
    """Les blocs surlignés d'une page de Sphinx, dans l'ordre : (langage, texte)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocs = []
        self._langage = None
        self._texte = None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div" and self._langage is None:
            for classe in classes:
                if classe.startswith("highlight-"):
                    self._langage = classe.removeprefix("highlight-")
        elif tag == "pre" and self._langage is not None and self._texte is None:
            self._texte = []

    def handle_endtag(self, tag):
        if tag == "pre" and self._texte is not None:
            self.blocs.append((self._langage, "".join(self._texte)))
            self._langage = self._texte = None

    def handle_data(self, data):
        if self._texte is not None:
            self._texte.append(data)


def blocs_de_code(chemin_html):
    """Tous les blocs de code d'une page construite : [(langage, texte), …]."""
    analyse = _BlocsDeCode()
    analyse.feed(Path(chemin_html).read_text(encoding="utf-8"))
    return analyse.blocs


def blocs_python(chemin_html):
    """Les blocs Python d'une page construite, dans l'ordre, tels que le bouton
    « copier » les donne au lecteur (sans invites)."""
    return [sans_invites(texte) for langage, texte in blocs_de_code(chemin_html)
            if langage in LANGAGES_PYTHON]


class _LiensEtAncres(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ancres = set()
        self.liens = []  # (balise, attribut, adresse, ligne)

    def handle_starttag(self, tag, attrs):
        attributs = dict(attrs)
        if attributs.get("id"):
            self.ancres.add(attributs["id"])
        if tag == "a" and attributs.get("name"):
            self.ancres.add(attributs["name"])
        for nom in ("href", "src"):
            if attributs.get(nom) is not None:
                self.liens.append((tag, nom, attributs[nom], self.getpos()[0]))


def liens_casses(site):
    """Les liens internes du site construit qui ne mènent nulle part.

    Chaque ``href`` et ``src`` relatif de chaque page HTML doit désigner un fichier
    du site, et son ancre (``#…``), s'il y en a une, un ``id`` de la page visée.
    Les adresses externes (https:, mailto:…) ne sont pas suivies : pas de réseau.
    Renvoie la liste des problèmes, en français (vide si tout va bien).
    """
    site = Path(site).resolve()
    pages = {}
    for chemin in sorted(site.rglob("*.html")):
        analyse = _LiensEtAncres()
        analyse.feed(chemin.read_text(encoding="utf-8"))
        pages[chemin] = analyse
    problemes = []
    for chemin, analyse in pages.items():
        for balise, attribut, adresse, ligne in analyse.liens:
            ou = f"{chemin.relative_to(site)}:{ligne} <{balise} {attribut}={adresse!r}>"
            morceaux = urlsplit(adresse)
            if morceaux.scheme or morceaux.netloc:
                continue
            cible = chemin
            if morceaux.path:
                cible = (chemin.parent / unquote(morceaux.path)).resolve()
                if morceaux.path.endswith("/"):
                    cible = cible / "index.html"
            if not cible.is_relative_to(site):
                problemes.append(f"{ou} : sort du site")
            elif not cible.is_file():
                problemes.append(f"{ou} : fichier absent")
            elif morceaux.fragment and cible.suffix == ".html":
                if unquote(morceaux.fragment) not in pages[cible].ancres:
                    problemes.append(f"{ou} : ancre absente de {cible.name}")
    return problemes
