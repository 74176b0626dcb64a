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
from tutorial_code.pretraitement import ENTREES  # noqa: F401 (clé du cache)
from tutorial_code.sorties import capturer

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


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    from tutorial_code import jetons, lots

    # [region:charger]
    import copy
    import random

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorWithFlattening

    from tutorial_code.lots import (FACTEUR_MEGA_LOT, collate_packing,
                                    collate_padding, gaspillage_padding)
    from tutorial_code.modeles import (MODELE_EMBARQUE, charger_modele,
                                       preparer_modele_embarque)
    from tutorial_code.nombres import accorder, formater
    from tutorial_code.pretraitement import LONGUEUR_MAX, charger_jeu
    from tutorial_code.jetons import (decoupage, erreur_bos_double,
                                      erreur_eos_absent, erreur_gabarit_double)
    from tutorial_code.tokenisation import (
        IGNORE, ExempleEcarte, ExempleTropLong, longueur_prefixe, rendre,
        tokeniser_conversation, tokeniser_jeu)

    tokenizer = AutoTokenizer.from_pretrained(preparer_modele_embarque())
    jeu = charger_jeu()  # DatasetDict : train, validation
    # [fin:charger]
    with capturer(dossier / "decoupage.txt"):
        # [region:bpe]
        for texte in ["Le remplacement du pare-brise coûte 129,90 €.",
                      "The windshield replacement costs €129.90.",
                      "réparation", "repair", "pare-brise", "windshield"]:
            print(decoupage(tokenizer, texte))
        # [fin:bpe]
    jetons.tableau_jetons_par_mot(tokenizer, dossier / "jetons_par_mot.rst")
    with capturer(dossier / "speciaux.txt"):
        # [region:speciaux]
        for nom in ("bos_token", "eos_token", "pad_token", "unk_token"):
            jeton = getattr(tokenizer, nom)
            identifiant = tokenizer.convert_tokens_to_ids(jeton)
            print(f"{nom:10s} {jeton!r:16s} id {identifiant}")
        # [fin:speciaux]
    with capturer(dossier / "gabarit.txt"):
        # [region:gabarit]
        conversation = jeu["train"][0]["messages"]
        print(tokenizer.apply_chat_template(conversation, tokenize=False))
        # [fin:gabarit]
    with capturer(dossier / "invite.txt"):
        # [region:invite]
        question = conversation[:2]  # système + utilisateur, sans la réponse
        print(tokenizer.apply_chat_template(question, tokenize=False,
                                            add_generation_prompt=True))
        # [fin:invite]
    with capturer(dossier / "erreurs.txt"):
        # [region:montrer-erreurs]
        courte = [{"role": "user", "content": "Un devis, c'est gratuit ?"},
                  {"role": "assistant", "content": "Oui, et valable 3 mois."}]
        print("1) Gabarit appliqué deux fois :")
        print(erreur_gabarit_double(tokenizer, courte))
        print("2) Quatre premiers jetons, BOS ajouté deux fois :")
        print(erreur_bos_double(tokenizer, courte))
        fins, apprises = erreur_eos_absent(tokenizer, courte)
        print(f"3) Jetons <|im_end|> : {fins} ; comptés dans la perte : {apprises}")
        # [fin:montrer-erreurs]
    with capturer(dossier / "troncature.txt"):
        # [region:troncature]
        # La première conversation du jeu qui dépasse 100 jetons :
        longue = next(m for m in jeu["train"]["messages"]
                      if len(rendre(tokenizer, m)) > 100)
        texte = tokenizer.apply_chat_template(longue, tokenize=False)
        coupe = tokenizer(texte, truncation=True, max_length=100)["input_ids"]
        print(f"{len(rendre(tokenizer, longue))} jetons ; fin du texte complet :",
              repr(texte[-50:]))
        print("Tronqué à 100 jetons :", repr(tokenizer.decode(coupe)[-50:]))
        try:
            tokeniser_conversation(tokenizer, longue, max_length=100)
        except ExempleTropLong as erreur:
            print("Avec tokeniser_conversation :", erreur)
        # [fin:troncature]
    with capturer(dossier / "jeu.txt"):
        # [region:tokeniser-jeu]
        entrainement, ecartes = tokeniser_jeu(jeu["train"], tokenizer, LONGUEUR_MAX)
        print(entrainement)
        ecartees = accorder(len(ecartes), "conversation écartée",
                            "conversations écartées")
        print(f"Limite {LONGUEUR_MAX} jetons : {ecartees}.")
        _, ecartes = tokeniser_jeu(jeu["train"], tokenizer, 128)
        print(f"Limite 128 jetons : {accorder(len(ecartes), 'écartée', 'écartées')}"
              ", dont :")
        for index, nb_jetons in ecartes[:3]:
            print(f"  exemple n° {index} : {nb_jetons} jetons")
        # [fin:tokeniser-jeu]
    with capturer(dossier / "labels.txt"):
        # [region:labels]
        dialogue = next(e["messages"] for e in jeu["train"]
                        if e["source"] == "chat" and len(e["messages"]) == 5)
        exemple = tokeniser_conversation(tokenizer, dialogue)
        comptes = sum(e != IGNORE for e in exemple["labels"])
        print(f"{len(exemple['input_ids'])} jetons, dont {comptes} dans la perte")
        masque = tokenizer.apply_chat_template(
            dialogue, tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True)["assistant_masks"]
        print(f"return_assistant_tokens_mask : {sum(masque)} jeton marqué")
        # [fin:labels]
    html_labels = jetons.vue_html_labels(tokenizer, exemple)
    (dossier / "labels.html").write_text(html_labels, encoding="utf-8")
    lots.produire_sorties_lots(dossier, tokenizer, jeu, entrainement)


def main(argv=None):
    from transformers import AutoTokenizer

    from tutorial_code.lots import gaspillage_padding
    from tutorial_code.modeles import preparer_modele_embarque
    from tutorial_code.pretraitement import LONGUEUR_MAX, charger_jeu

    parser = creer_parser(
        prog="python -m tutorial_code.tokenisation",
        description="Tokenise les conversations de Vitrexpress Auto avec le "
                    "tokenizer du modèle embarqué : exemples trop longs, part de "
                    "remplissage selon la mise en lots.")
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
        parts = gaspillage_padding(jeu["longueur"], 8, LONGUEUR_MAX)
        for nom, part in parts.items():
            print(f"  {nom:40s} {part:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
