"""Le site construit, lu par un vrai navigateur (Chromium sans écran, via Playwright).

Un serveur local sert ``_build/html`` ; le navigateur ouvre l'accueil, prend la
table des matières puis suit le bouton « Suivant » de page en page. Sur chaque
page : aucun message d'erreur de Sphinx, aucune image cassée, aucune erreur
JavaScript ni ressource introuvable ; chaque bouton « copier » met dans le
presse-papier le texte du bloc sans invites, et pour les blocs Python exactement
ce que test_pages.py exécute. Une capture de chaque page est enregistrée dans
``_build/captures/`` (pour relecture).

Chromium vient du paquet Debian ``chromium`` (``make paquets``) ; la variable
``CHROMIUM`` désigne un autre exécutable. S'il manque, les tests échouent.
"""

import functools
import http.server
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from site_construit import (
    DOCS,
    LANGAGES_PYTHON,
    RACINE,
    blocs_python,
    pages_du_guide,
    sans_invites,
)

pytestmark = pytest.mark.navigateur

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRAPEAUX = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync"]
CAPTURES = RACINE / "_build" / "captures"
SENTINELLE = "(rien de copié)"


def pages_du_site():
    """Les pages du guide, puis les carnets (``carnets/…``), chemins sans .html."""
    carnets = sorted(f"carnets/{p.stem}" for p in (DOCS / "carnets").glob("*")
                     if p.suffix in (".md", ".rst"))
    return sorted(pages_du_guide() + carnets)


def nom_de_page(adresse):
    """« http://…/carnets/index.html#x » → « carnets/index »."""
    return urlsplit(adresse).path.lstrip("/").removesuffix(".html")

# Ce que le navigateur relève sur une page, en une fois.
RELEVE = """() => ({
  messages: [...document.querySelectorAll('.system-message, .problematic')]
    .map(e => e.textContent.trim().slice(0, 200)),
  images: [...document.images].map(i => ({
    src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
  toctree: [...document.querySelectorAll('.toctree-wrapper a.reference.internal')]
    .map(a => a.href),
  suivant: document.querySelector('a[rel="next"]')?.href ?? null,
  blocs: [...document.querySelectorAll('div.highlight pre')].map(pre => ({
    langage: [...pre.closest('div[class*="highlight-"]').classList]
      .find(c => c.startsWith('highlight-')).slice('highlight-'.length),
    texte: pre.innerText})),
  boutons: document.querySelectorAll('button.copybtn').length,
})"""


@dataclass
class Constat:
    """Ce que le navigateur a vu sur une page."""

    releve: dict
    erreurs: list = field(default_factory=list)  # console, JavaScript, réseau
    copies: list = field(default_factory=list)  # texte du presse-papier, par bloc
    capture: Path | None = None


class _Serveur(http.server.SimpleHTTPRequestHandler):
    """Sert le site sans journal. Le guide n'a pas d'icône : à la demande que
    Chromium fait d'office, « 204 pas de contenu » plutôt qu'un 404."""

    def do_GET(self):
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serveur(site):
    gestionnaire = functools.partial(_Serveur, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), gestionnaire)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def navigateur(serveur, tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium introuvable ({CHROMIUM}) : lancez « make paquets » "
                    "(paquet Debian chromium) ou donnez son chemin dans CHROMIUM.",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        contexte = p.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("profil_chromium"),  # profil neuf
            executable_path=CHROMIUM, headless=True, args=DRAPEAUX,
            viewport={"width": 1280, "height": 900}, locale="fr-FR")
        contexte.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=serveur)
        yield contexte
        contexte.close()


def visiter(page, adresse, nom):
    """Ouvre une page, relève tout, essaie chaque bouton « copier », la capture."""
    erreurs = []
    page.on("console", lambda m: m.type == "error"
            and erreurs.append(f"console : {m.text} ({m.location.get('url')})"))
    page.on("pageerror", lambda e: erreurs.append(f"JavaScript : {e}"))
    page.on("requestfailed", lambda r: erreurs.append(f"échec : {r.url}"))
    page.on("response", lambda r: r.status >= 400
            and erreurs.append(f"{r.status} : {r.url}"))
    page.goto(adresse, wait_until="load")
    page.wait_for_load_state("networkidle")
    constat = Constat(page.evaluate(RELEVE), erreurs)
    # La capture d'abord, page en haut : les clics font défiler la page.
    constat.capture = CAPTURES / f"{nom.replace('/', '-')}.png"
    page.screenshot(path=constat.capture, full_page=True)
    for bouton in page.locator("button.copybtn").all():
        page.evaluate("t => navigator.clipboard.writeText(t)", SENTINELLE)
        bouton.click()
        constat.copies.append(page.evaluate("navigator.clipboard.readText()"))
    return constat


@pytest.fixture(scope="module")
def visite(navigateur, serveur):
    """La visite guidée : l'accueil, puis chaque page par « Suivant »."""
    CAPTURES.mkdir(parents=True, exist_ok=True)
    for ancienne in CAPTURES.glob("*.png"):
        ancienne.unlink()
    constats, chaine = {}, []
    adresse = f"{serveur}/index.html"
    while adresse is not None and len(chaine) < 50:
        nom = nom_de_page(adresse)
        assert nom not in constats, f"« Suivant » revient sur {nom} : boucle"
        page = navigateur.new_page()
        constats[nom] = visiter(page, adresse, nom)
        page.close()
        chaine.append(nom)
        adresse = constats[nom].releve["suivant"]
    toctree = list(dict.fromkeys(nom_de_page(a)
                                 for a in constats["index"].releve["toctree"]))
    return {"constats": constats, "chaine": chaine, "toctree": toctree}


def test_la_table_des_matieres_et_suivant_menent_a_chaque_page(visite):
    assert visite["toctree"], "pas de table des matières sur l'accueil"
    assert visite["chaine"] == ["index"] + visite["toctree"], (
        "« Suivant » ne suit pas la table des matières")
    assert sorted(visite["chaine"]) == pages_du_site(), (
        "pages hors du parcours : la table des matières doit mener à chaque page")


@pytest.mark.parametrize("nom", pages_du_site())
def test_la_page_s_affiche_sans_defaut(nom, visite, site):
    constat = visite["constats"].get(nom)
    assert constat is not None, f"{nom} n'a pas été atteinte en suivant le parcours"
    releve = constat.releve
    assert not releve["messages"], f"messages d'erreur de Sphinx : {releve['messages']}"
    cassees = [i["src"] for i in releve["images"] if not i["ok"]]
    assert not cassees, f"images qui ne s'affichent pas : {cassees}"
    assert not constat.erreurs, f"erreurs du navigateur : {constat.erreurs}"
    assert constat.capture.stat().st_size > 10_000, "capture vide ?"
    assert constat.capture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    blocs = releve["blocs"]
    assert releve["boutons"] == len(blocs), "un bouton « copier » par bloc de code"
    copies_python = []
    for i, (bloc, copie) in enumerate(zip(blocs, constat.copies), 1):
        attendu = sans_invites(bloc["texte"])
        attendu = attendu[:-1] if attendu.endswith("\n") else attendu
        assert copie != SENTINELLE, f"bloc {i} : le bouton n'a rien copié"
        assert copie == attendu, f"bloc {i} : copié {copie!r}, attendu {attendu!r}"
        assert not any(ligne.startswith((">>> ", "$ ")) for ligne in copie.split("\n"))
        if bloc["langage"] in LANGAGES_PYTHON:
            compile(copie, f"{nom}.html, bloc {i}", "exec")  # du Python valide
            copies_python.append(copie)
    # Ce que le lecteur copie est exactement ce que test_pages.py exécute.
    executes = [b.rstrip("\n") for b in blocs_python(site / f"{nom}.html")]
    assert copies_python == [c.rstrip("\n") for c in executes]
