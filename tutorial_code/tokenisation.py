"""Tokenisation : des conversations aux listes d'identifiants et d'étiquettes.

Le contrat dont dépend l'entraînement :

* ``tokeniser_conversation(tokenizer, messages, max_length=None)`` rend la
  conversation avec le gabarit de discussion du tokenizer et renvoie
  ``input_ids``, ``attention_mask`` et ``labels`` (listes Python) ; ``labels``
  vaut l'identifiant du jeton sur chaque réponse de l'assistant, jeton de fin de
  tour compris, et -100 partout ailleurs ;
* ``tokeniser_jeu(dataset, tokenizer, max_length)`` fait de même pour tout un jeu
  et signale, sans jamais les tronquer, les exemples trop longs.

Le regroupement en lots (remplissage, empaquetage) est dans ``tutorial_code.lots``.

Exécutable : ``python -m tutorial_code.tokenisation`` montre la tokenisation d'une
conversation avec le tokenizer du modèle embarqué ; ``--rapide`` s'en tient là.
"""

from typing import NamedTuple

from datasets import Dataset

from tutorial_code.aide import creer_parser

IGNORE = -100  # l'étiquette que la perte de transformers ignore

# Conversation de démonstration ; le vrai jeu vient de tutorial_code.pretraitement.
PROMPT_DEMO = "Tu es l'assistant de Vitrexpress Auto. Réponds en français."
CONVERSATION_DEMO = [
    {"role": "system", "content": PROMPT_DEMO},
    {"role": "user", "content": "Combien coûte un pare-brise ?"},
    {"role": "assistant",
     "content": "Le remplacement coûte 129,90 € pour une citadine, pose comprise."},
    {"role": "user", "content": "Et ça prend combien de temps ?"},
    {"role": "assistant", "content": "Comptez 1 h 30, puis 1 h avant de rouler."},
]


class ExempleTropLong(ValueError):
    """Un exemple dépasse la longueur maximale : on le signale, on ne le coupe pas."""

    def __init__(self, nb_jetons, max_length):
        self.nb_jetons, self.max_length = nb_jetons, max_length
        super().__init__(
            f"exemple trop long : {nb_jetons} jetons pour une limite de "
            f"{max_length} ; le tronquer couperait une réponse (et son jeton de "
            "fin de tour). Écartez-le ou augmentez max_length.")


class GabaritIncompatible(ValueError):
    """Le gabarit ne rend pas une conversation comme le prolongement de son début."""


class ExempleEcarte(NamedTuple):
    """Un exemple trop long, signalé par ``tokeniser_jeu``."""

    index: int
    nb_jetons: int


# [region:rendre]
def rendre(tokenizer, messages, add_generation_prompt=False):
    """Le texte exact que voit le modèle, puis ses identifiants de jetons.

    ``add_special_tokens=False`` : le gabarit a déjà écrit les jetons spéciaux,
    il ne faut pas que le tokenizer en ajoute (un BOS en double, par exemple).
    """
    texte = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return tokenizer(texte, add_special_tokens=False)["input_ids"]
# [fin:rendre]


# [region:contrat]
def tokeniser_conversation(tokenizer, messages, max_length=None):
    """Identifiants, masque d'attention et étiquettes d'une conversation entière.

    Le gabarit n'a pas besoin de marqueurs ``{% generation %}`` : on rend la
    conversation préfixe par préfixe. Pour la réponse n° i de l'assistant,
    ``messages[:i]`` avec l'invite de génération (« <|im_start|>assistant\\n »)
    donne l'indice où la réponse commence, ``messages[:i + 1]`` celui où son
    tour finit. On vérifie que chaque préfixe est bien le début exact de la
    conversation entière, jeton par jeton, sinon les indices seraient faux.
    """
    input_ids = rendre(tokenizer, messages)
    if max_length is not None and len(input_ids) > max_length:
        raise ExempleTropLong(len(input_ids), max_length)
    labels = [IGNORE] * len(input_ids)  # tout est masqué, sauf les réponses
    speciaux = set(tokenizer.all_special_ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        debut = longueur_prefixe(tokenizer, messages[:i], input_ids, True)
        fin = longueur_prefixe(tokenizer, messages[:i + 1], input_ids, False)
        # Le tour se termine par « <|im_end|> » puis « \n » : on garde le jeton
        # de fin de tour (c'est lui qui apprend au modèle à s'arrêter), pas ce
        # qui le suit. Fin de tour = dernier jeton spécial du tour.
        fins = [k for k in range(debut, fin) if input_ids[k] in speciaux]
        if fins:
            fin = fins[-1] + 1
        labels[debut:fin] = input_ids[debut:fin]  # étiquette = jeton lui-même
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids),
            "labels": labels}
# [fin:contrat]


# [region:prefixe]
def longueur_prefixe(tokenizer, prefixe, input_ids, add_generation_prompt):
    """Nombre de jetons de ``prefixe`` rendu seul ; vérifie qu'il préfixe le tout."""
    ids = rendre(tokenizer, prefixe, add_generation_prompt)
    if input_ids[:len(ids)] != ids:
        raise GabaritIncompatible(
            "le gabarit de discussion ne rend pas le début de la conversation "
            f"({len(prefixe)} messages) comme le début de la conversation "
            "entière : impossible de "
            "situer les réponses de l'assistant jeton par jeton. Utilisez un "
            "gabarit avec des marqueurs {% generation %} et "
            "return_assistant_tokens_mask=True.")
    return len(ids)
# [fin:prefixe]


# [region:jeu]
def tokeniser_jeu(dataset, tokenizer, max_length):
    """Tokenise chaque conversation ; écarte et signale celles trop longues.

    Renvoie ``(jeu, ecartes)`` : un ``datasets.Dataset`` aux colonnes
    ``input_ids``, ``attention_mask``, ``labels`` et ``longueur``, et la liste
    des exemples trop longs, chacun avec son indice et son nombre de jetons.
    """
    colonnes = {"input_ids": [], "attention_mask": [], "labels": [],
                "longueur": []}
    ecartes = []
    for index, exemple in enumerate(dataset):
        try:
            t = tokeniser_conversation(tokenizer, exemple["messages"], max_length)
        except ExempleTropLong as erreur:
            ecartes.append(ExempleEcarte(index, erreur.nb_jetons))
            continue
        for cle in ("input_ids", "attention_mask", "labels"):
            colonnes[cle].append(t[cle])
        colonnes["longueur"].append(len(t["input_ids"]))
    return Dataset.from_dict(colonnes), ecartes
# [fin:jeu]


def main(argv=None):
    from transformers import AutoTokenizer

    from tutorial_code.modeles import preparer_modele_embarque
    from tutorial_code.pretraitement import LONGUEUR_MAX, charger_jeu

    parser = creer_parser(
        prog="python -m tutorial_code.tokenisation",
        description="Tokenise les conversations de Vitrexpress Auto avec le "
                    "tokenizer du modèle embarqué : jetons comptés dans la perte, "
                    "exemples trop longs (la mise en lots : python -m "
                    "tutorial_code.lots).")
    parser.add_argument("--rapide", action="store_true",
                        help="la conversation de démonstration seulement "
                             "(pour les tests)")
    args = parser.parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(preparer_modele_embarque())
    exemple = tokeniser_conversation(tokenizer, CONVERSATION_DEMO)
    print(f"Démonstration : {len(exemple['input_ids'])} jetons, dont "
          f"{sum(e != IGNORE for e in exemple['labels'])} dans la perte.")
    if not args.rapide:
        jeu, ecartes = tokeniser_jeu(charger_jeu()["train"], tokenizer, LONGUEUR_MAX)
        print(f"Entraînement : {len(jeu)} exemples gardés, {len(ecartes)} écartés "
              f"(plus de {LONGUEUR_MAX} jetons).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
