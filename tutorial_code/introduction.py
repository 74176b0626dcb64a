"""Introduction : un modèle seulement pré-entraîné face à un modèle de discussion.

Exécutable : ``python -m tutorial_code.introduction`` fait générer les deux
modèles embarqués (Gemma 3 270M pré-entraîné, SmolLM2-135M-Instruct affiné pour
la discussion) sur les mêmes prompts ; ``--rapide`` limite la génération à
quelques jetons.
"""

from tutorial_code.aide import creer_parser
from tutorial_code.modeles import MODELE_BASE, MODELE_EMBARQUE, ModeleIntrouvable
from tutorial_code.runner import BasicModelRunner

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


def afficher_generation(runner, prompt):
    """Affiche le mode de génération choisi, l'invite, puis le texte généré."""
    if runner.utilise_chat():
        print(f"{runner.model_name} : invite placée dans le gabarit de discussion")
    else:
        print(f"{runner.model_name} : pas de gabarit, le modèle continue l'invite")
    print(f"Invite : {prompt}")
    print("Texte généré :")
    print(runner.predict(prompt))


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.introduction",
        "Fait générer, sur les mêmes invites, le modèle seulement pré-entraîné "
        f"«\u00a0{MODELE_BASE}\u00a0» puis le modèle de discussion "
        f"«\u00a0{MODELE_EMBARQUE}\u00a0».")
    parser.add_argument("--rapide", action="store_true",
                        help="quelques jetons seulement (pour les tests)")
    args = parser.parse_args(argv)
    max_new_tokens = 8 if args.rapide else 60
    for nom in (MODELE_BASE, MODELE_EMBARQUE):
        try:
            runner = BasicModelRunner(nom, max_new_tokens=max_new_tokens)
        except ModeleIntrouvable as erreur:
            parser.exit(2, f"Erreur : {erreur}\n")
        for prompt in (PROMPT_EN, PROMPT_FR):
            print()
            afficher_generation(runner, prompt)
        print()
        del runner
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
