"""Évaluer l'assistant : rappel des faits sur des questions jamais vues, et oubli.

* Rappel des faits : part des questions de test dont la réponse (générée en
  glouton par ``BasicModelRunner``) contient TOUS ses faits clés, après
  normalisation (casse, accents, espaces, « euros » → « € », « 1.5 » → « 1,5 »).
* Oubli : perte du modèle sur des conversations générales en français, sans
  rapport avec l'entreprise, avant et après l'affinage.

Exécutable : ``python -m tutorial_code.evaluation [MODELE]`` évalue un modèle
(alias, dossier, adaptateur LoRA) ; ``--rapide`` sur 8 questions seulement.
"""

import json
import re
import unicodedata

from tutorial_code import RACINE
from tutorial_code.aide import creer_parser
from tutorial_code.modeles import MODELE_EMBARQUE
from tutorial_code.nombres import pourcent
from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_questions_test
from tutorial_code.runner import BasicModelRunner
from tutorial_code.tokenisation import tokeniser_conversation

CONVERSATIONS_GENERALES = RACINE / "data" / "brut" / "conversations_generales.jsonl"


# [region:normaliser]
def normaliser(texte):
    """Forme canonique pour comparer des faits : « 8 h 30 » = « 8h30 »."""
    texte = unicodedata.normalize("NFKD", texte.lower())
    texte = "".join(c for c in texte if not unicodedata.combining(c))  # accents
    texte = re.sub(r"\beuros?\b", "€", texte)
    texte = re.sub(r"(\d)\s*heures?\b", r"\1 h", texte)  # 48 heures -> 48 h
    texte = re.sub(r"(\d)\.(\d)", r"\1,\2", texte)  # 1.5 -> 1,5
    texte = re.sub(r"(\d)\s+(?=\d)", r"\1", texte)  # 1 000 -> 1000
    texte = re.sub(r"(\d)\s*(€|%|h\b|min\b)", r"\1\2", texte)  # 129 € -> 129€
    texte = re.sub(r"(\dh)\s+(\d)", r"\1\2", texte)  # 8h 30 -> 8h30
    return " ".join(texte.split())  # espaces (insécables compris) réduits à un


def contient_faits(reponse, faits_cles):
    """Vrai si la réponse contient chacun des faits clés, en mots entiers.

    « remplacé » ne compte pas dans « remplacement », ni « 15 € » dans « 115 € ».
    """
    reponse = normaliser(reponse)
    return all(re.search(r"(?<!\w)" + re.escape(normaliser(fait)) + r"(?!\w)",
                         reponse) for fait in faits_cles)
# [fin:normaliser]


# [region:rappel]
def rappel_des_faits(runner, questions, max_new_tokens=48):
    """(score, lignes) : part des questions dont la réponse a tous ses faits."""
    reponses = runner.predict([q["question"] for q in questions],
                              max_new_tokens=max_new_tokens)
    lignes = [dict(q, reponse=r, correct=contient_faits(r, q["faits_cles"]))
              for q, r in zip(questions, reponses)]
    score = sum(ligne["correct"] for ligne in lignes) / len(lignes)
    return score, lignes
# [fin:rappel]


def classer_erreurs(lignes, fiche):
    """Les réponses fausses, selon le fait de la fiche qu'elles donnent.

    * « même catégorie » : un fait voisin (le prix d'un autre vitrage) ; le
      sujet de la question a été compris, pas le détail ;
    * « autre catégorie » : un fait sans rapport ; la question n'a pas été
      comprise, le modèle récite une réponse apprise ;
    * « aucun fait » : ni l'un ni l'autre (réponse vague, ou inventée).
    """
    categorie = {f["id"]: f["categorie"] for f in fiche}
    comptes = {"même catégorie": 0, "autre catégorie": 0, "aucun fait": 0}
    for ligne in lignes:
        if ligne["correct"]:
            continue
        donnes = [f["id"] for f in fiche if f["id"] != ligne["ref_fiche"]
                  and contient_faits(ligne["reponse"], f["cles"])]
        if not donnes:
            comptes["aucun fait"] += 1
        elif categorie[ligne["ref_fiche"]] in {categorie[i] for i in donnes}:
            comptes["même catégorie"] += 1
        else:
            comptes["autre catégorie"] += 1
    return comptes


def questions_validation(validation, fiche):
    """Les questions de la FAQ mises de côté par le découpage, avec les faits
    clés de leur fait : des formulations proches de celles de l'entraînement,
    à comparer aux questions de test, formulées tout autrement."""
    cles = {f["id"]: f["cles"] for f in fiche}
    return [{"id": ligne["id"], "ref_fiche": ligne["ref_fiche"],
             "question": ligne["messages"][1]["content"],
             "faits_cles": cles[ligne["ref_fiche"]]}
            for ligne in validation
            if ligne["source"] == "faq" and ligne["ref_fiche"] in cles]


def charger_conversations_generales():
    """Les conversations générales (cuisine, géographie…), format ``messages``."""
    with open(CONVERSATIONS_GENERALES, encoding="utf-8") as f:
        return [json.loads(ligne)["messages"] for ligne in f if ligne.strip()]


def exemples_generaux(tokenizer):
    """Les conversations générales tokenisées (perte sur les réponses)."""
    return [tokeniser_conversation(tokenizer, m)
            for m in charger_conversations_generales()]


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.evaluation",
        description="Rappel des faits de Vitrexpress Auto sur les questions de "
                    "test (jamais vues à l'entraînement).")
    parser.add_argument("modele", nargs="?", default=MODELE_EMBARQUE,
                        help="alias, dossier d'un modèle ou d'un adaptateur LoRA")
    parser.add_argument("--rapide", action="store_true",
                        help="8 questions seulement")
    args = parser.parse_args(argv)
    questions = charger_questions_test()[:8 if args.rapide else None]
    runner = BasicModelRunner(args.modele, system_prompt=PROMPT_SYSTEME)
    score, lignes = rappel_des_faits(runner, questions)
    for ligne in lignes:
        marque = "✓" if ligne["correct"] else "✗"
        print(f"{marque} {ligne['question']}\n   → {ligne['reponse']}")
    print(f"Rappel des faits : {pourcent(score)} ({len(lignes)} questions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
