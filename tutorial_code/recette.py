"""La recette d'entraînement : quelles conversations, sous quelles formes.

Un petit modèle affiné sur la seule FAQ apprend les réponses par cœur, mais
relie mal une question formulée autrement au bon fait. Deux remèdes, tirés des
données de l'entreprise elle-même :

* la diversité des formulations : l'historique des tickets clients, où le
  support a noté à quel fait de la fiche chaque question se rapporte ;
* le fait sous plusieurs formes : la réponse de la FAQ, celle des conseillers
  dans les conversations, et la phrase de la fiche (réponse aux tickets).
"""

import csv

from tutorial_code.modeles import RACINE
from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_fiche, charger_jeu
from tutorial_code.tokenisation import tokeniser_jeu

TICKETS = RACINE / "data" / "brut" / "tickets_clients.csv"
LONGUEUR_MAX = 512  # jetons ; aucun exemple de l'entreprise ne la dépasse


def charger_tickets():
    """(ref_fiche, question) de l'historique des tickets clients."""
    with open(TICKETS, encoding="utf-8", newline="") as f:
        return [(ligne["ref_fiche"], ligne["question"]) for ligne in csv.DictReader(f)]


def conversation(question, reponse):
    """Une conversation d'un tour, prompt système en tête."""
    return [{"role": "system", "content": PROMPT_SYSTEME},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reponse}]


# [region:recette]
def conversations_recette(train, fiche, tickets):
    """Les conversations d'entraînement, avant tokenisation.

    * tout le jeu d'entraînement du Prétraitement (FAQ et conversations) :
      le fait tel que la FAQ et les conseillers le formulent ;
    * chaque ticket client, avec la phrase de la fiche pour réponse : le fait
      sous sa forme de référence, demandé de douze façons différentes.
    """
    faits = {f["id"]: f["fait"] for f in fiche}
    conversations = list(train["messages"])
    conversations += [conversation(q, faits[ref]) for ref, q in tickets]
    return conversations
# [fin:recette]


def preparer_exemples(tokenizer, dossier_donnees=None):
    """(train, validation, comptes) tokenisés, prêts pour ``entrainer``."""
    jeu = charger_jeu(dossier_donnees)
    conversations = conversations_recette(jeu["train"], charger_fiche(),
                                          charger_tickets())
    train, ecartes = tokeniser_jeu([{"messages": c} for c in conversations],
                                   tokenizer, LONGUEUR_MAX)
    validation, _ = tokeniser_jeu(jeu["validation"], tokenizer, LONGUEUR_MAX)
    colonnes = ("input_ids", "labels")
    train = [{k: e[k] for k in colonnes} for e in train]
    validation = [{k: e[k] for k in colonnes} for e in validation]
    comptes = {"conversations": len(conversations), "exemples": len(train),
               "écartés (trop longs)": len(ecartes),
               "jetons par époque": sum(len(e["input_ids"]) for e in train),
               "validation": len(validation)}
    return train, validation, comptes
