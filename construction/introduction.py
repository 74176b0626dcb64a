"""Les sorties de la page « Introduction », produites par la construction.

Chaque bloc ``# [region:…]`` est montré tel quel dans la page ; ce qu'il
affiche est capturé dans ``docs/_sorties/introduction/``.
"""

from construction.ecrire import capturer
from tutorial_code.introduction import afficher_generation, comparer_llama2
from tutorial_code.modeles import ModeleIntrouvable
from tutorial_code.runner import BasicModelRunner


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    with capturer(dossier / "llama2.txt"):
        try:
            comparer_llama2()
        except ModeleIntrouvable as erreur:
            print(erreur)
    with capturer(dossier / "base_chargement.txt"):
        # [region:charger-base]
        base = BasicModelRunner("gemma3-270m", max_new_tokens=60)
        # [fin:charger-base]
    with capturer(dossier / "base_gabarit.txt"):
        # [region:base-gabarit]
        print("Gabarit de discussion :", base.tokenizer.chat_template)
        print(repr(base.formater("Tell me how to fix a broken car window")))
        # [fin:base-gabarit]
    with capturer(dossier / "base_en.txt"):
        # [region:base-en]
        afficher_generation(base, "Tell me how to fix a broken car window")
        # [fin:base-en]
    with capturer(dossier / "base_fr.txt"):
        # [region:base-fr]
        afficher_generation(base, "Explique-moi comment réparer la vitre "
                                  "cassée d'une voiture.")
        # [fin:base-fr]
    del base  # libère la mémoire avant de charger le second modèle
    with capturer(dossier / "chat_chargement.txt"):
        # [region:charger-chat]
        chat = BasicModelRunner("smollm2-135m-instruct", max_new_tokens=80)
        # [fin:charger-chat]
    with capturer(dossier / "chat_gabarit.txt"):
        # [region:chat-gabarit]
        print(chat.formater("Tell me how to fix a broken car window", chat=True))
        # [fin:chat-gabarit]
    with capturer(dossier / "chat_en.txt"):
        # [region:chat-en]
        afficher_generation(chat, "Tell me how to fix a broken car window")
        # [fin:chat-en]
    with capturer(dossier / "chat_fr.txt"):
        # [region:chat-fr]
        afficher_generation(chat, "Explique-moi comment réparer la vitre "
                                  "cassée d'une voiture.")
        # [fin:chat-fr]
