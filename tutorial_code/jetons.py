"""Voir les jetons : découpage BPE, erreurs classiques, étiquettes en couleur.

Les démonstrations de la page Tokenisation ; le contrat utilisé par
l'entraînement est dans ``tutorial_code.tokenisation``.

Exécutable : ``python -m tutorial_code.jetons "un texte"`` montre son découpage
en jetons par le tokenizer du modèle embarqué ; ``--rapide`` ajoute les trois
erreurs classiques sur une conversation courte.
"""

import copy
import html

from tutorial_code.aide import creer_parser
from tutorial_code.tokenisation import IGNORE, rendre


# [region:jetons-par-mot]
def jetons_par_mot(tokenizer, phrases):
    """Pour chaque phrase : (mots, jetons, jetons par mot)."""
    lignes = []
    for phrase in phrases:
        mots = len(phrase.split())
        jetons = len(tokenizer(phrase, add_special_tokens=False)["input_ids"])
        lignes.append((mots, jetons, jetons / mots))
    return lignes
# [fin:jetons-par-mot]


# [region:decoupage]
def decoupage(tokenizer, texte):
    """Le texte de chaque jeton, séparés par « | » ; « ␣ » marque une espace."""
    ids = tokenizer(texte, add_special_tokens=False)["input_ids"]
    # Le BPE travaille sur des octets : « é » en fait 2 en UTF-8. Un jeton peut
    # n'en contenir qu'un ; décodé seul, il s'affiche alors « � ».
    morceaux = [tokenizer.decode([i]).replace(" ", "␣") for i in ids]
    return "|".join(morceaux) + f"  ({len(ids)} jeton{'s' * (len(ids) > 1)})"
# [fin:decoupage]


# [region:erreurs]
def erreur_gabarit_double(tokenizer, messages):
    """Une colonne déjà passée au gabarit, que l'entraîneur formate à nouveau."""
    texte = tokenizer.apply_chat_template(messages, tokenize=False)
    return tokenizer.apply_chat_template([{"role": "user", "content": texte}],
                                         tokenize=False)


def erreur_bos_double(tokenizer, messages):
    """Texte formaté (qui commence par son BOS), tokenisé avec un tokenizer qui
    ajoute lui-même un BOS, comme ceux de Llama 2 et 3 : deux BOS en tête."""
    texte = tokenizer.apply_chat_template(messages, tokenize=False)
    llama = copy.deepcopy(tokenizer)
    llama.add_bos_token = True  # le réglage des tokenizers Llama
    ids = llama(texte)["input_ids"]  # add_special_tokens=True par défaut
    return llama.convert_ids_to_tokens(ids[:4])


def erreur_eos_absent(tokenizer, messages):
    """Le collateur de modélisation du langage quand pad = EOS : chaque <|im_end|> est
    pris pour du remplissage et masqué ; le prompt, lui, compte dans la perte."""
    from transformers import DataCollatorForLanguageModeling

    ids = rendre(tokenizer, messages)
    lot = DataCollatorForLanguageModeling(tokenizer, mlm=False)([{"input_ids": ids}])
    fins = lot["input_ids"][0] == tokenizer.eos_token_id
    return int(fins.sum()), int((lot["labels"][0][fins] != IGNORE).sum())
# [fin:erreurs]


def vue_html_labels(tokenizer, exemple):
    """Chaque jeton dans une case : vert s'il compte dans la perte, gris sinon."""
    cases = []
    for jeton, etiquette in zip(exemple["input_ids"], exemple["labels"]):
        texte = tokenizer.decode([jeton]).replace("\n", "↵\n")
        style = ("background:#c8f0c8;color:#064d06" if etiquette != IGNORE
                 else "background:#eeeeee;color:#777777")
        cases.append(f'<span style="{style};border:1px solid #fff;'
                     f'white-space:pre-wrap">{html.escape(texte)}</span>')
    return ('<div style="font-family:monospace;line-height:1.9;'
            'font-size:90%;margin-bottom:1em">' + "".join(cases) + "</div>\n")


PHRASES = [  # (français, anglais) : les mêmes phrases dans les deux langues
    ("Le remplacement du pare-brise coûte 129,90 €.",
     "The windshield replacement costs €129.90."),
    ("Réparer un impact prend environ trente minutes.",
     "Repairing a chip takes about thirty minutes."),
    ("Nos agences sont fermées le dimanche.", "Our branches are closed on Sunday."),
    ("La garantie couvre les fuites pendant deux ans.",
     "The warranty covers leaks for two years."),
    ("Après la pose, attendez une heure avant de rouler.",
     "After fitting, wait one hour before driving."),
]


def main(argv=None):
    from transformers import AutoTokenizer

    from tutorial_code.modeles import preparer_modele_embarque

    parser = creer_parser(
        prog="python -m tutorial_code.jetons",
        description="Montre le découpage en jetons d'un texte par le tokenizer "
                    "du modèle embarqué.")
    parser.add_argument("textes", nargs="*", help="les textes à découper "
                        "(défaut : les phrases françaises de la page)")
    parser.add_argument("--rapide", action="store_true",
                        help="une seule phrase, puis les erreurs classiques")
    args = parser.parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(preparer_modele_embarque())
    textes = args.textes or [fr for fr, _ in PHRASES[:1 if args.rapide else None]]
    for texte in textes:
        print(decoupage(tokenizer, texte))
    if args.rapide:
        courte = [{"role": "user", "content": "Un devis, c'est gratuit ?"},
                  {"role": "assistant", "content": "Oui, et valable 3 mois."}]
        print("BOS en double :", erreur_bos_double(tokenizer, courte))
        print("<|im_end|> (total, appris) :", erreur_eos_absent(tokenizer, courte))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
