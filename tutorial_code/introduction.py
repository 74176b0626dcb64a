"""Introduction : un modèle pré-entraîné face au même modèle affiné pour la discussion.

Exécutable : ``python -m tutorial_code.introduction`` affiche la comparaison sur
le modèle embarqué ; ``--rapide`` limite la génération à quelques jetons.
"""

import argparse

from tutorial_code.modeles import MODELE_EMBARQUE, ModeleIntrouvable
from tutorial_code.sorties import capturer

# [region:imports]
from tutorial_code.runner import BasicModelRunner
# [fin:imports]

PROMPT_EN = "Tell me how to fix a broken car window"
PROMPT_FR = "Explique-moi comment réparer la vitre cassée d'une voiture."


# [region:llama2]
def comparer_llama2(prompt="Tell me how to fix a broken car window"):
    """La comparaison d'origine sur Llama 2 7B : réseau, licence acceptée et GPU.

    Même classe, mêmes appels que sur le modèle embarqué : seul le nom change.
    """
    non_finetuned = BasicModelRunner("meta-llama/Llama-2-7b-hf")  # pré-entraîné
    finetuned = BasicModelRunner("meta-llama/Llama-2-7b-chat-hf")  # affiné (chat)
    return non_finetuned.predict(prompt), finetuned.predict(prompt)
# [fin:llama2]


def afficher_comparaison(runner, prompt):
    """Affiche la complétion brute puis la réponse avec gabarit de discussion."""
    print(f"Prompt : {prompt}\n")
    print("— Sans gabarit (le modèle continue le texte, comme un modèle "
          "seulement pré-entraîné) :")
    print(repr(runner.predict(prompt, chat=False)), "\n")
    print("— Avec le gabarit de discussion (ce qu'attend un modèle affiné) :")
    print(runner.predict(prompt, chat=True))


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    with capturer(dossier / "llama2.txt"):
        try:
            comparer_llama2()
        except ModeleIntrouvable as erreur:
            print(erreur)
    with capturer(dossier / "chargement.txt"):
        # [region:charger]
        runner = BasicModelRunner("smollm2-135m-instruct", max_new_tokens=120)
        # [fin:charger]
    with capturer(dossier / "gabarit.txt"):
        # [region:gabarit]
        print(runner.formater("Tell me how to fix a broken car window", chat=True))
        # [fin:gabarit]
    with capturer(dossier / "comparaison_en.txt"):
        # [region:appel-en]
        afficher_comparaison(runner, "Tell me how to fix a broken car window")
        # [fin:appel-en]
    with capturer(dossier / "comparaison_fr.txt"):
        # [region:appel-fr]
        afficher_comparaison(runner, "Explique-moi comment réparer la vitre "
                                     "cassée d'une voiture.")
        # [fin:appel-fr]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_code.introduction",
        description="Compare complétion brute et réponse de discussion du modèle "
                    f"embarqué « {MODELE_EMBARQUE} ».")
    parser.add_argument("--rapide", action="store_true",
                        help="quelques jetons seulement (pour les tests)")
    args = parser.parse_args(argv)
    runner = BasicModelRunner(max_new_tokens=8 if args.rapide else 120)
    for prompt in (PROMPT_EN, PROMPT_FR):
        afficher_comparaison(runner, prompt)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
