"""La recette d'entraînement : quelles conversations, sous quelles formes.

Un petit modèle affiné sur la seule FAQ apprend les réponses par cœur, mais
relie mal une question formulée autrement au bon fait. Deux remèdes, tirés des
données de l'entreprise elle-même, et passés tous deux par le Prétraitement
(nettoyage, doublons, fuites vers le test) :

* la diversité des formulations : l'historique des tickets clients, où le
  support a noté à quel fait de la fiche chaque question se rapporte ;
* le fait sous plusieurs formes : la réponse de la FAQ, celle des conseillers
  dans les conversations, et la phrase de la fiche (réponse aux tickets).
"""

from tutorial_code.entrainement import ConfigEntrainement
from tutorial_code.pretraitement import LONGUEUR_MAX, PROMPT_SYSTEME, charger_jeu
from tutorial_code.tokenisation import tokeniser_jeu

# [region:reglages]
# La recette du chapitre : un travail fixe, le même sur toute machine (un
# processeur lent met plus longtemps, mais fait les mêmes pas). Chaque mise à
# jour réunit 4 micro-lots de 4 conversations : 16 conversations par mise à jour.
RECETTE = {
    "lora": ConfigEntrainement(methode="lora", num_epochs=1, lr=2e-3,
                               taille_lot=4, accumulation=4, lora_r=16,
                               lora_alpha=32),
    "complet": ConfigEntrainement(methode="complet", num_epochs=1, lr=1e-4,
                                  taille_lot=4, accumulation=4),
}
# [fin:reglages]


def conversation(question, reponse):
    """Une conversation d'un tour, prompt système en tête."""
    return [{"role": "system", "content": PROMPT_SYSTEME},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reponse}]


# [region:recette]
def conversations_recette(train, sources=("faq", "chat", "tickets")):
    """Les conversations d'entraînement, avant tokenisation : le jeu
    d'entraînement du Prétraitement, limité aux ``sources`` choisies.

    * ``faq`` et ``chat`` : le fait tel que la FAQ et les conseillers le
      formulent ;
    * ``tickets`` : la phrase de la fiche, demandée de douze façons.
    """
    return [e["messages"] for e in train if e["source"] in sources]
# [fin:recette]


def preparer_exemples(tokenizer, dossier_donnees=None):
    """(train, validation, comptes) tokenisés, prêts pour ``entrainer``."""
    jeu = charger_jeu(dossier_donnees)
    conversations = conversations_recette(jeu["train"])
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
