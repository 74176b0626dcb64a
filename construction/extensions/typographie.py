"""Typographie française au rendu : espaces insécables avant « : ; ? ! » et dans
les guillemets, sans toucher au code ni aux sorties.

Les sources restent lisibles (espaces ordinaires) ; la page publiée est correcte.
"""

import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

ESPACE_INSECABLE = "\u00a0"
# Une espace ordinaire (ou aucune) avant : ; ? ! suivis d'une espace ou d'une fin.
AVANT_PONCTUATION = re.compile(r"(?:(?<=[\w»)\]…*€%])|^)[ \u00a0]?([:;?!])(?=\s|$)")
APRES_GUILLEMET = re.compile("«[ \u00a0]?")
AVANT_GUILLEMET = re.compile("[ \u00a0]?»")


def corriger(texte):
    """Applique les règles d'espacement à un texte courant."""
    texte = AVANT_PONCTUATION.sub(ESPACE_INSECABLE + r"\1", texte)
    texte = APRES_GUILLEMET.sub("«" + ESPACE_INSECABLE, texte)
    return AVANT_GUILLEMET.sub(ESPACE_INSECABLE + "»", texte)


class Typographie(SphinxTransform):
    default_priority = 800  # après les substitutions et les guillemets intelligents

    def apply(self, **kwargs):
        exclus = (nodes.literal, nodes.literal_block, nodes.raw, nodes.math,
                  nodes.math_block, nodes.reference, nodes.target)
        for texte in list(self.document.findall(nodes.Text)):
            parent = texte.parent
            if parent is None or any(isinstance(a, exclus) for a in _ancetres(parent)):
                continue
            nouveau = corriger(str(texte))
            if nouveau != str(texte):
                parent.replace(texte, nodes.Text(nouveau))


def _ancetres(noeud):
    while noeud is not None:
        yield noeud
        noeud = noeud.parent


def corriger_titres(app, doctree):
    """Le titre de la page dans ``<title>`` et les tables des matières : Sphinx
    le relève à part (``env.titles``), il reçoit les mêmes espaces."""
    docname = app.env.docname
    for titres in (app.env.titles, app.env.longtitles):
        titre = titres.get(docname)
        if titre is None:
            continue
        for texte in list(titre.findall(nodes.Text)):
            nouveau = corriger(str(texte))
            if nouveau != str(texte):
                texte.parent.replace(texte, nodes.Text(nouveau))


def titre_onglet(app, pagename, templatename, context, doctree):
    """``titre_onglet`` : le titre de la page en texte, espaces insécables
    comprises (le gabarit ``layout.html`` du guide l'écrit dans ``<title>``)."""
    titre = app.env.longtitles.get(pagename)
    if titre is not None:
        context["titre_onglet"] = titre.astext()
    else:  # pages sans source (index, recherche) : le titre du thème, sans balises
        from markupsafe import Markup
        context["titre_onglet"] = Markup(context.get("title", "")).striptags()


def setup(app):
    app.add_transform(Typographie)
    app.connect("html-page-context", titre_onglet)
    # Après le relevé des titres de Sphinx (priorité 500 par défaut).
    app.connect("doctree-read", corriger_titres, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
