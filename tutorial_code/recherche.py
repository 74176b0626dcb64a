"""Recherche : retrouver la fiche qui répond à une question, avec BM25.

Un petit modèle affiné apprend mal des faits par cœur ; il sait mieux *lire*
un fait qu'on lui donne. On cherche donc d'abord, dans les connaissances de
l'entreprise, les fiches qui ressemblent à la question, et on les met dans le
prompt. La recherche elle-même n'a rien d'appris : BM25 compte les mots que la
question partage avec chaque document, pondérés par leur rareté.

Un document par fait de la fiche : la phrase du fait, plus toutes les
questions d'entraînement (FAQ, tickets) que le support a rattachées à ce fait.
Ces questions apportent les mots des clients (« vitre avant », « étoile »,
« reste à charge »), que la phrase de la fiche n'emploie pas.

Exécutable : ``python -m tutorial_code.recherche "votre question"`` affiche les
fiches trouvées ; sans question, le rappel sur les questions de test.
"""

import unicodedata

import bm25s
import Stemmer
from bm25s.stopwords import STOPWORDS_FRENCH

from tutorial_code.aide import creer_parser
from tutorial_code.nombres import pourcent
from tutorial_code.pretraitement import (
    charger_fiche,
    charger_jeu,
    charger_questions_test,
)

RACINISEUR = Stemmer.Stemmer("french")  # Snowball : « réparations » → « repar »


def sans_accents(texte):
    """Minuscules sans accents : « réparation » et « reparation » se rejoignent."""
    texte = unicodedata.normalize("NFKD", texte.lower())
    return "".join(c for c in texte if not unicodedata.combining(c))


MOTS_VIDES = sorted({sans_accents(m) for m in STOPWORDS_FRENCH})


# [region:tokens]
def mots(textes):
    """Les racines des mots pleins de chaque texte (pour BM25)."""
    return bm25s.tokenize([sans_accents(t) for t in textes], stopwords=MOTS_VIDES,
                          stemmer=RACINISEUR.stemWords, show_progress=False)


def racines(texte):
    """L'ensemble des racines d'un texte, comme BM25 les voit."""
    (ids,), vocabulaire = mots([texte])
    inverse = {i: mot for mot, i in vocabulaire.items()}
    return {inverse[i] for i in ids}
# [fin:tokens]


# [region:index]
class IndexFiches:
    """Un index BM25 : un document par fait, identifié par son ``id``."""

    def __init__(self, documents):
        self.ids = list(documents)  # ["F001", "F002", …]
        self.bm25 = bm25s.BM25()  # k1 = 1,5 ; b = 0,75 : les valeurs usuelles
        self.bm25.index(mots(list(documents.values())), show_progress=False)
        self.seuil = 0.0  # sous ce score, rien de ce qu'on a trouvé ne compte

    def chercher(self, questions, k=3):
        """Pour chaque question, les ``k`` meilleurs ``(id, score)``."""
        trouves, scores = self.bm25.retrieve(mots(questions), k=k,
                                             show_progress=False)
        return [[(self.ids[i], float(s)) for i, s in zip(ligne, sc)]
                for ligne, sc in zip(trouves, scores)]
# [fin:index]


# [region:seuil]
def calibrer_seuil(index, hors_sujet, quantile=0.85):
    """Le score sous lequel la recherche dit qu'elle n'a rien trouvé.

    On cherche des questions sans rapport avec l'entreprise : leur meilleur
    score est celui du hasard. Le seuil laisse passer ``1 - quantile`` d'entre
    elles (15 %), et presque toutes les vraies questions.
    """
    scores = sorted(trouves[0][1] for trouves in index.chercher(hors_sujet, k=1))
    index.seuil = scores[min(len(scores) - 1, int(quantile * len(scores)))]
    return index.seuil
# [fin:seuil]


# [region:documents]
def questions_par_fait(exemples):
    """``{id du fait: [questions]}`` d'après des exemples du Prétraitement."""
    par_fait = {}
    for e in exemples:
        if e["ref_fiche"]:
            question = next(m["content"] for m in e["messages"] if m["role"] == "user")
            par_fait.setdefault(e["ref_fiche"], []).append(question)
    return par_fait


def documents_fiche(fiche, par_fait):
    """Un document par fait : sa phrase, puis les questions qui s'y rattachent."""
    return {f["id"]: " ".join([f["fait"], *par_fait.get(f["id"], [])])
            for f in fiche}
# [fin:documents]


def index_entreprise(jeu=None, fiche=None):
    """L'index des connaissances de l'entreprise (partie ``train`` seulement :
    les questions de validation et de test n'y entrent jamais)."""
    jeu = jeu if jeu is not None else charger_jeu()
    fiche = fiche or charger_fiche()
    return IndexFiches(documents_fiche(fiche, questions_par_fait(jeu["train"])))


# [region:rappel]
def rappel_recherche(index, questions, ks=(1, 3, 5)):
    """Part des questions dont le bon fait est parmi les ``k`` premiers, et
    le rang du bon fait pour chaque question (``None`` s'il est au-delà)."""
    trouves = index.chercher([q["question"] for q in questions], k=max(ks))
    rangs = []
    for q, liste in zip(questions, trouves):
        ids = [i for i, _ in liste]
        rangs.append(ids.index(q["ref_fiche"]) + 1 if q["ref_fiche"] in ids
                     else None)
    rappels = {k: sum(r is not None and r <= k for r in rangs) / len(rangs)
               for k in ks}
    return rappels, rangs
# [fin:rappel]


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.recherche",
        description="Cherche les fiches de Vitrexpress Auto qui répondent à une "
                    "question (BM25). Sans question : rappel sur le jeu de test.")
    parser.add_argument("question", nargs="*", help="la question (facultative)")
    parser.add_argument("-k", type=int, default=3, help="fiches renvoyées (3)")
    args = parser.parse_args(argv)
    index, fiche = index_entreprise(), {f["id"]: f for f in charger_fiche()}
    if args.question:
        for fid, score in index.chercher([" ".join(args.question)], args.k)[0]:
            print(f"{fid} ({score:.1f}) {fiche[fid]['fait']}")
        return 0
    rappels, _ = rappel_recherche(index, charger_questions_test())
    for k, r in rappels.items():
        print(f"Bon fait parmi les {k} premiers : {pourcent(r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
