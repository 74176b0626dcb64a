"""Nettoyer des textes d'entreprise et repérer les doublons.

Des fonctions pures, sans état, testées une à une : forme Unicode NFC, HTML
(balises et entités), espaces, anonymisation des adresses e-mail et des numéros
de téléphone français, puis comparaison de textes par trigrammes de caractères
(doublons exacts et quasi-doublons).

Exécutable : ``python -m tutorial_code.nettoyage "TEXTE"`` affiche le texte
nettoyé, étape par étape.
"""

import html
import re
import unicodedata

# [region:motifs]
# Une balise : « < » suivi d'une lettre, de « / » ou de « ! », jusqu'à « > ».
# « 3 < 5 » n'en est pas une (espace après « < »).
BALISE = re.compile(r"<[a-zA-Z/!][^<>]*>")
# Fin de paragraphe ou de ligne en HTML : on garde la coupure.
COUPURE = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>|</li\s*>", re.IGNORECASE)
COURRIEL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 06 12 34 56 78, 06.12.34.56.78, 0612345678, +33 6 12 34 56 78, 0033 (0)6 …
TELEPHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?|0)[1-9](?:[ .-]?\d{2}){4}"
    r"(?!\d)")
MASQUE_COURRIEL = "[COURRIEL]"
MASQUE_TELEPHONE = "[TÉLÉPHONE]"
# [fin:motifs]


# [region:etapes]
def normaliser_unicode(texte):
    """Forme NFC : « e » + accent combinant (2 caractères) devient « é » (1)."""
    return unicodedata.normalize("NFC", texte)


def retirer_html(texte):
    """Décode les entités (``&eacute;`` → é) et retire les balises.

    Une fin de paragraphe (``</p>``) devient une ligne vide, un ``<br/>`` un
    saut de ligne ; ``&nbsp;`` devient une espace insécable, que
    :func:`normaliser_espaces` remplace par une espace simple.
    """
    texte = html.unescape(texte)
    texte = COUPURE.sub(lambda m: "\n\n" if "p" in m.group().lower() else "\n",
                        texte)
    return BALISE.sub("", texte)


def normaliser_espaces(texte):
    """Une espace simple entre les mots ; les paragraphes séparés par une ligne vide.

    Un saut de ligne isolé (souvent un reste de copier-coller) devient une
    espace ; tabulations, espaces insécables et espaces doublées aussi.
    """
    paragraphes = re.split(r"\n\s*\n", texte)
    propres = (" ".join(p.split()) for p in paragraphes)
    return "\n\n".join(p for p in propres if p)


def anonymiser(texte):
    """Remplace adresses e-mail et numéros de téléphone par un masque."""
    texte = COURRIEL.sub(MASQUE_COURRIEL, texte)
    return TELEPHONE.sub(MASQUE_TELEPHONE, texte)
# [fin:etapes]


# [region:nettoyer]
ETAPES = [normaliser_unicode, retirer_html, normaliser_espaces, anonymiser,
          normaliser_unicode]


def nettoyer_texte(texte, max_passes=5):
    """Applique toutes les étapes, jusqu'à ce que le texte ne change plus.

    Une seule passe ne suffit pas toujours : une entité échappée deux fois
    (``&amp;eacute;``) ne devient « é » qu'à la deuxième. Le résultat est
    idempotent : ``nettoyer_texte(nettoyer_texte(t)) == nettoyer_texte(t)``.
    """
    for _ in range(max_passes):
        avant = texte
        for etape in ETAPES:
            texte = etape(texte)
        if texte == avant:
            break
    return texte
# [fin:nettoyer]


# [region:comparer]
def normaliser_pour_comparaison(texte):
    """Minuscules, sans accents ni ponctuation, espaces regroupées.

    « C'EST QUOI le délai ?? » et « c'est quoi le delai ? » donnent la même
    chaîne : « c est quoi le delai ».
    """
    texte = unicodedata.normalize("NFKD", texte.casefold())
    texte = "".join(c for c in texte if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", texte).split())


def trigrammes(texte):
    """Ensemble des suites de 3 caractères du texte normalisé.

    « abcd » (bordé d'une espace de chaque côté : « ␣abcd␣ ») donne
    4 trigrammes : « ␣ab », « abc », « bcd », « cd␣ ».
    """
    t = f" {normaliser_pour_comparaison(texte)} "
    return {t[i:i + 3] for i in range(len(t) - 2)}


def jaccard(a, b):
    """|A ∩ B| / |A ∪ B| entre deux ensembles : 1 si identiques, 0 si disjoints."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
# [fin:comparer]


# [region:dedoublonner]
def dedoublonner(textes, seuil=0.8):
    """Repère les doublons d'une liste de textes ; garde la première occurrence.

    Renvoie ``(gardes, doublons)`` : les indices gardés, et pour chaque texte
    écarté un dict ``{"indice", "double_de", "type", "similarite"}`` où
    ``type`` vaut ``"exact"`` (textes identiques) ou ``"proche"`` (similarité
    de Jaccard des trigrammes ≥ ``seuil``, même normalisés différemment).
    """
    gardes, doublons, vus = [], [], {}
    ensembles = []  # (indice gardé, trigrammes), dans l'ordre
    for i, texte in enumerate(textes):
        if texte in vus:
            doublons.append({"indice": i, "double_de": vus[texte],
                             "type": "exact", "similarite": 1.0})
            continue
        tri = trigrammes(texte)
        # Si |A| < seuil × |B|, la similarité ne peut pas atteindre le seuil.
        proches = ((jaccard(tri, t), j) for j, t in ensembles
                   if min(len(t), len(tri)) >= seuil * max(len(t), len(tri)))
        score, j = max(proches, default=(0.0, None))
        if score >= seuil:
            doublons.append({"indice": i, "double_de": j, "type": "proche",
                             "similarite": round(score, 3)})
            continue
        vus[texte] = i
        gardes.append(i)
        ensembles.append((i, tri))
    return gardes, doublons
# [fin:dedoublonner]


def texte_utilisateur(exemple):
    """Les messages de l'utilisateur, bout à bout : la clé des doublons."""
    return "\n".join(m["content"] for m in exemple["messages"] if m["role"] == "user")


# [region:fuites]
def trouver_fuites(exemples, questions, seuil=0.5):
    """Les exemples dont un message user ressemble à une question de test.

    Renvoie une liste de ``(indice, id de la question, similarité)``.
    """
    tests = [(q["id"], trigrammes(q["question"])) for q in questions]
    fuites = []
    for i, exemple in enumerate(exemples):
        for m in exemple["messages"]:
            if m["role"] != "user":
                continue
            tri = trigrammes(m["content"])
            score, qid = max(((jaccard(tri, t), qid) for qid, t in tests),
                             default=(0.0, None))
            if score >= seuil:
                fuites.append((i, qid, score))
                break
    return fuites
# [fin:fuites]



def main(argv=None):
    from tutorial_code.aide import creer_parser

    parser = creer_parser(
        "python -m tutorial_code.nettoyage",
        description="Nettoie un texte (NFC, HTML, espaces, anonymisation) et "
                    "affiche le résultat de chaque étape.")
    parser.add_argument("texte", help="le texte à nettoyer (entre guillemets)")
    args = parser.parse_args(argv)
    texte = args.texte
    print(f"{'brut':>20} : {texte!r}")
    for etape in ETAPES[:-1]:
        texte = etape(texte)
        print(f"{etape.__name__:>20} : {texte!r}")
    print(f"{'nettoyer_texte':>20} : {nettoyer_texte(args.texte)!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
