"""Lire des fichiers bruts, les valider et les convertir au format ``messages``.

Deux sortes d'erreurs :

* un fichier illisible dans son ensemble (absent, vide, pas en UTF-8, en-tête
  faux) lève :class:`ErreurEntree`, avec un message en français ;
* une ligne invalide (JSON cassé, champ manquant, rôle inconnu, contenu vide,
  alternance non respectée) devient un *rejet* : un dict qui nomme le fichier,
  la ligne, le champ et la raison. Elle est mise de côté et comptée, jamais
  perdue en silence.

Exécutable : ``python -m tutorial_code.pretraitement_lecture FICHIER`` affiche
le schéma détecté et les rejets de la validation.
"""

import argparse
import csv
import io
import json
from pathlib import Path

from tutorial_code.nombres import accorder

RACINE = Path(__file__).resolve().parent.parent

# [region:roles]
# Les trois rôles qu'attend le gabarit de discussion du modèle.
ROLES_CIBLES = ("system", "user", "assistant")
ROLES_STANDARD = {"system": "system", "user": "user", "assistant": "assistant"}


def analyser_roles(texte):
    """« human=user,gpt=assistant » → ``{"human": "user", "gpt": "assistant"}``."""
    roles = {}
    for paire in filter(None, (p.strip() for p in texte.split(","))):
        source, egal, cible = (x.strip() for x in paire.partition("="))
        if not egal or not source or cible not in ROLES_CIBLES:
            raise ValueError(
                f"correspondance de rôles invalide « {paire} » : écrivez "
                "ANCIEN=NOUVEAU, avec NOUVEAU parmi system, user, assistant")
        roles[source] = cible
    return roles
# [fin:roles]


# Les messages du module json, en français (les autres restent en anglais).
TRADUCTIONS_JSON = {
    "Expecting value": "valeur attendue",
    "Unterminated string starting at": "chaîne non terminée",
    "Invalid control character at": "caractère de contrôle dans une chaîne",
    "Expecting ',' delimiter": "virgule attendue",
    "Expecting ':' delimiter": "deux-points attendus",
    "Expecting property name enclosed in double quotes":
        "nom de champ entre guillemets droits attendu",
    "Extra data": "données en trop après l'objet",
}


class AideFrancaise(argparse.HelpFormatter):
    """L'aide d'argparse, avec « utilisation : » au lieu de « usage: »."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix or "utilisation : ")


def creer_parser(prog, description):
    """Un ``ArgumentParser`` dont l'aide (``--help``) est entièrement en français."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=AideFrancaise, add_help=False)
    parser._positionals.title = "arguments"
    parser._optionals.title = "options"
    parser.add_argument("-h", "--help", action="help",
                        help="affiche cette aide et quitte")
    return parser


class ErreurEntree(Exception):
    """Le fichier d'entrée est illisible dans son ensemble (message en français)."""


class ErreurChamp(ValueError):
    """Un enregistrement est invalide ; ``champ`` dit où."""

    def __init__(self, champ, raison):
        super().__init__(f"{champ} : {raison}")
        self.champ, self.raison = champ, raison


def relatif(chemin):
    """Chemin affiché : relatif à la racine du dépôt quand c'est possible."""
    chemin = Path(chemin).resolve()
    return str(chemin.relative_to(RACINE) if chemin.is_relative_to(RACINE) else chemin)


def rejet(fichier, ligne, champ, raison, contenu=None):
    """Une entrée du fichier des rejets : où, quoi, pourquoi."""
    return {"fichier": relatif(fichier), "ligne": ligne, "champ": champ,
            "raison": raison, "contenu": contenu}


# [region:lire]
def lire_texte(chemin):
    """Le contenu d'un fichier UTF-8, ou une :class:`ErreurEntree` qui dit pourquoi."""
    chemin = Path(chemin)
    if not chemin.is_file():
        raise ErreurEntree(f"{chemin} : fichier introuvable.")
    octets = chemin.read_bytes()
    try:
        texte = octets.decode("utf-8-sig")  # tolère l'indicateur d'ordre (BOM)
    except UnicodeDecodeError as exc:
        ligne = octets[:exc.start].count(b"\n") + 1
        raise ErreurEntree(
            f"{chemin}, ligne {ligne} : le fichier n'est pas encodé en UTF-8 "
            f"(octet {octets[exc.start]:#04x} illisible). Convertissez-le, par "
            f"exemple : iconv -f latin1 -t utf-8 {chemin.name} > copie.jsonl"
        ) from None
    if not texte.strip():
        raise ErreurEntree(f"{chemin} : le fichier est vide.")
    return texte


def lire_jsonl(chemin):
    """Renvoie ``(enregistrements, rejets)`` ; un enregistrement = (ligne, dict)."""
    enregistrements, rejets = [], []
    for n, ligne in enumerate(lire_texte(chemin).splitlines(), 1):
        if not ligne.strip():
            continue  # une ligne blanche n'est pas un enregistrement
        try:
            objet = json.loads(ligne)
        except json.JSONDecodeError as exc:
            raison = TRADUCTIONS_JSON.get(exc.msg.split(":")[0], exc.msg)
            rejets.append(rejet(chemin, n, "(ligne)", "JSON invalide, colonne "
                                f"{exc.colno} : {raison}", ligne[:200]))
            continue
        if not isinstance(objet, dict):
            rejets.append(rejet(chemin, n, "(ligne)", "un objet JSON {…} est "
                                "attendu", ligne[:200]))
            continue
        enregistrements.append((n, objet))
    return enregistrements, rejets


def lire_csv(chemin, colonnes):
    """Comme :func:`lire_jsonl`, pour un CSV dont l'en-tête doit être ``colonnes``."""
    lecteur = csv.reader(io.StringIO(lire_texte(chemin), newline=""))
    entete = next(lecteur)
    if entete != list(colonnes):
        raise ErreurEntree(f"{chemin}, ligne 1 : en-tête {entete} au lieu de "
                           f"{list(colonnes)}.")
    enregistrements, rejets, fin = [], [], 1
    for valeurs in lecteur:
        # Un champ entre guillemets peut couvrir plusieurs lignes du fichier :
        # l'enregistrement commence juste après la fin du précédent.
        n, fin = fin + 1, lecteur.line_num
        if len(valeurs) != len(colonnes):
            rejets.append(rejet(chemin, n, "(ligne)", f"{len(valeurs)} colonnes "
                                f"au lieu de {len(colonnes)}", ",".join(valeurs)))
            continue
        enregistrements.append((n, dict(zip(colonnes, valeurs))))
    return enregistrements, rejets
# [fin:lire]


# [region:schemas]
def detecter_schema(objet):
    """Le nom du schéma d'un enregistrement, ou None s'il n'est pas reconnu."""
    if "messages" in objet:
        return "messages"  # OpenAI, OpenAssistant : role/content
    if "conversations" in objet:
        return "conversations"  # ShareGPT : from/value
    if "question" in objet and ("answer" in objet or "reponse" in objet):
        return "question/réponse"
    if "instruction" in objet and "output" in objet:
        return "instruction"  # Alpaca : instruction/input/output
    return None


def extraire_messages(objet):
    """Les messages bruts d'un enregistrement, quel que soit son schéma.

    Chaque message est ``(role, content, champ_role, champ_content)`` : les
    champs nomment l'endroit du fichier d'où vient le message, pour les erreurs.
    """
    schema = detecter_schema(objet)
    if schema is None:
        raise ErreurChamp("messages", "champ absent ; schémas reconnus : "
                          "« messages », « conversations », « question » + "
                          "« answer », « instruction » + « output » (champs "
                          f"présents : {', '.join(sorted(objet)) or 'aucun'})")
    if schema in ("messages", "conversations"):
        cle_role, cle_texte = ("role", "content") if schema == "messages" else (
            "from", "value")
        liste = objet[schema]
        if not isinstance(liste, list) or not liste:
            raise ErreurChamp(schema, "une liste non vide de messages est attendue")
        sortie = []
        for i, m in enumerate(liste):
            if not isinstance(m, dict) or cle_role not in m or cle_texte not in m:
                raise ErreurChamp(f"{schema}[{i}]", f"champs « {cle_role} » et "
                                  f"« {cle_texte} » attendus")
            champ = f"{schema}[{i}]"
            sortie.append((m[cle_role], m[cle_texte], f"{champ}.{cle_role}",
                           f"{champ}.{cle_texte}"))
        return sortie
    if schema == "question/réponse":
        cle = "answer" if "answer" in objet else "reponse"
        return [("user", objet["question"], "question", "question"),
                ("assistant", objet[cle], cle, cle)]
    consigne = objet["instruction"]
    if isinstance(objet.get("input"), str) and objet["input"].strip():
        consigne = f"{consigne}\n\n{objet['input']}"  # la consigne, puis l'entrée
    return [("user", consigne, "instruction", "instruction"),
            ("assistant", objet["output"], "output", "output")]
# [fin:schemas]


# [region:valider]
def valider_messages(bruts, roles, nettoyer=str.strip):
    """Renomme les rôles, nettoie les contenus et vérifie la conversation.

    Lève :class:`ErreurChamp` si un rôle est inconnu, un contenu vide (après
    nettoyage) ou si la conversation n'alterne pas user/assistant, en
    commençant par user (après un éventuel message system) et en finissant
    par assistant : c'est la forme qu'attend l'entraînement.
    """
    messages = []
    for role, contenu, champ_role, champ in bruts:
        if role not in roles:
            raise ErreurChamp(champ_role, f"rôle inconnu « {role} » (connus : "
                              f"{', '.join(roles)} ; sinon --roles {role}=…)")
        texte = nettoyer(contenu) if isinstance(contenu, str) else ""
        if not texte:
            raise ErreurChamp(champ, "contenu vide (ou non textuel)")
        messages.append({"role": roles[role], "content": texte})
    debut = 1 if messages[0]["role"] == "system" else 0
    for i, m in enumerate(messages[debut:], debut):
        attendu = "user" if (i - debut) % 2 == 0 else "assistant"
        if m["role"] != attendu:
            raise ErreurChamp(bruts[i][2], f"« {m['role']} » au lieu de "
                              f"« {attendu} » : la conversation doit alterner "
                              "user et assistant")
    if messages[-1]["role"] != "assistant":
        raise ErreurChamp(bruts[-1][2], "la conversation doit finir "
                          "par une réponse de l'assistant")
    return messages
# [fin:valider]


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.pretraitement_lecture",
        description="Lit un fichier JSONL, détecte son schéma et affiche les "
                    "rejets de la validation (sans rien écrire).")
    parser.add_argument("entree", metavar="FICHIER", help="fichier JSONL à examiner")
    parser.add_argument("--roles", default="", metavar="ANCIEN=NOUVEAU,…",
                        help="correspondance de rôles, par exemple "
                        "human=user,gpt=assistant")
    args = parser.parse_args(argv)
    try:
        roles = {**ROLES_STANDARD, **analyser_roles(args.roles)}
        enregistrements, rejets = lire_jsonl(args.entree)
    except (ErreurEntree, ValueError) as exc:
        parser.exit(2, f"Erreur : {exc}\n")
    valides = 0
    for n, objet in enregistrements:
        try:
            valider_messages(extraire_messages(objet), roles)
            valides += 1
        except ErreurChamp as exc:
            rejets.append(rejet(args.entree, n, exc.champ, exc.raison))
    print(f"{accorder(valides, 'enregistrement valide', 'enregistrements valides')}"
          f", {accorder(len(rejets), 'rejet')}.")
    for r in rejets:
        print(f"  {r['fichier']}, ligne {r['ligne']}, {r['champ']} : {r['raison']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
