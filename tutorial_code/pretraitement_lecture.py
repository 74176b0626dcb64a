"""Lire des fichiers bruts, les valider et les convertir au format ``messages``.

Deux sortes d'erreurs :

* un fichier illisible dans son ensemble (absent, vide, pas en UTF-8, en-tête
  faux) lève :class:`ErreurEntree`, avec un message en français ;
* une ligne invalide (JSON cassé, champ manquant, rôle inconnu, contenu vide,
  alternance non respectée) devient un *rejet* : un dict qui nomme le fichier,
  la ligne, le champ et la raison. Elle est mise de côté et comptée, jamais
  perdue en silence.

Un export dont les messages sont rangés sous un autre nom de champ se lit avec
:class:`Extracteur` : champ nommé (éventuellement imbriqué, ``data.turns``),
clés du rôle et du contenu renommées, ou champ détecté automatiquement.

Exécutable : ``python -m tutorial_code.pretraitement_lecture FICHIER`` affiche
le nombre d'enregistrements valides, les rejets de la validation et le champ
des messages quand il a été détecté.
"""

import csv
import io
import json
from collections import Counter
from pathlib import Path

from tutorial_code import relatif
from tutorial_code.aide import creer_parser
from tutorial_code.nombres import accorder

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


# Les rôles d'un export ShareGPT (clés « from » et « value ») : ajoutés d'office
# quand on lit les messages avec --cle-role from ; --roles reste prioritaire.
ROLES_SHAREGPT = {"human": "user", "gpt": "assistant"}


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


class ErreurEntree(Exception):
    """Le fichier d'entrée est illisible dans son ensemble (message en français)."""


class ErreurChamp(ValueError):
    """Un enregistrement est invalide ; ``champ`` dit où."""

    def __init__(self, champ, raison):
        super().__init__(f"{champ} : {raison}")
        self.champ, self.raison = champ, raison


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
    # split("\n") et non splitlines() : U+2028, légal dans une chaîne JSON,
    # couperait une ligne valide en deux.
    for n, ligne in enumerate(lire_texte(chemin).split("\n"), 1):
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


def messages_de_liste(liste, champ, cle_role, cle_texte):
    """Les messages bruts d'une liste de dicts ``{cle_role: …, cle_texte: …}``."""
    if not isinstance(liste, list) or not liste:
        raise ErreurChamp(champ, "une liste non vide de messages est attendue")
    sortie = []
    for i, m in enumerate(liste):
        if not isinstance(m, dict) or cle_role not in m or cle_texte not in m:
            raise ErreurChamp(f"{champ}[{i}]", f"champs « {cle_role} » et "
                              f"« {cle_texte} » attendus")
        if not isinstance(m[cle_role], str):
            raise ErreurChamp(f"{champ}[{i}].{cle_role}", "rôle non textuel")
        sortie.append((m[cle_role], m[cle_texte], f"{champ}[{i}].{cle_role}",
                       f"{champ}[{i}].{cle_texte}"))
    return sortie


def extraire_messages(objet, cle_role=None, cle_texte=None):
    """Les messages bruts d'un enregistrement, quel que soit son schéma.

    Chaque message est ``(role, content, champ_role, champ_content)`` : les
    champs nomment l'endroit du fichier d'où vient le message, pour les erreurs.
    ``cle_role`` et ``cle_texte`` remplacent, s'ils sont donnés, les clés
    habituelles du schéma (``role`` et ``content``, ou ``from`` et ``value``).
    """
    schema = detecter_schema(objet)
    if schema is None:
        raise ErreurChamp("messages", "champ absent ; schémas reconnus : "
                          "« messages », « conversations », « question » + "
                          "« answer », « instruction » + « output » (champs "
                          f"présents : {', '.join(sorted(objet)) or 'aucun'})")
    if schema in ("messages", "conversations"):
        role, texte = ("role", "content") if schema == "messages" else (
            "from", "value")
        return messages_de_liste(objet[schema], schema, cle_role or role,
                                 cle_texte or texte)
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


def valeur_au_chemin(objet, chemin):
    """La valeur de ``objet`` au chemin pointé ``chemin`` (``data.turns``).

    Un champ dont le nom contient lui-même un point est pris tel quel s'il existe.
    """
    if chemin in objet:
        return objet[chemin]
    valeur, parcouru = objet, []
    for nom in chemin.split("."):
        if not isinstance(valeur, dict):
            raise ErreurChamp(".".join(parcouru), "un objet {…} est attendu pour "
                              f"atteindre « {chemin} »")
        if nom not in valeur:
            ou = f" dans « {'.'.join(parcouru)} »" if parcouru else ""
            raise ErreurChamp(chemin, f"champ absent (champs présents{ou} : "
                              f"{', '.join(sorted(valeur)) or 'aucun'})")
        valeur = valeur[nom]
        parcouru.append(nom)
    return valeur


def listes_de_messages(objet, cle_role, cle_texte, prefixe=""):
    """Les ``(chemin, liste)`` d'un objet dont un élément au moins est un dict
    avec les clés ``cle_role`` et ``cle_texte`` ; les objets imbriqués compris."""
    trouvees = []
    for nom, valeur in objet.items():
        if isinstance(valeur, dict):
            trouvees += listes_de_messages(valeur, cle_role, cle_texte,
                                           f"{prefixe}{nom}.")
        elif isinstance(valeur, list) and any(
                isinstance(m, dict) and cle_role in m and cle_texte in m
                for m in valeur):
            trouvees.append((f"{prefixe}{nom}", valeur))
    return trouvees


class Extracteur:
    """:func:`extraire_messages`, réglé pour un export qui nomme ses champs à sa façon.

    * ``champ`` : le champ qui contient la liste des messages, pour tous les
      enregistrements ; un chemin pointé (``data.turns``) désigne un champ
      imbriqué ;
    * ``cle_role``, ``cle_texte`` : les clés du rôle et du contenu de chaque
      message, si ce ne sont pas celles du schéma (``role`` et ``content``, ou
      ``from`` et ``value`` pour ``conversations``) ;
    * sans ``champ``, un enregistrement d'un schéma reconnu est lu comme tel ;
      sinon, s'il contient **une seule** liste de messages (dicts avec ces deux
      clés), à n'importe quel niveau, on la prend, et ``detectes`` compte le
      champ ainsi trouvé. Deux listes possibles : rejet, on ne choisit pas.
    """

    def __init__(self, champ=None, cle_role=None, cle_texte=None):
        if champ is not None and not champ.strip():
            raise ValueError("--champ-messages : le nom de champ est vide")
        if champ is not None and not all(nom.strip() for nom in champ.split(".")):
            raise ValueError(f"chemin de champ invalide « {champ} » : écrivez des "
                             "noms séparés par des points, par exemple data.turns")
        for option, cle in (("--cle-role", cle_role), ("--cle-contenu", cle_texte)):
            if cle is not None and not cle.strip():
                raise ValueError(f"{option} : le nom de clé est vide")
        if cle_role is not None and cle_role == cle_texte:
            raise ValueError(f"la même clé « {cle_role} » pour le rôle et le "
                             "contenu : --cle-role et --cle-contenu doivent différer")
        self.champ, self.cle_role, self.cle_texte = champ, cle_role, cle_texte
        self.detectes = Counter()

    def __call__(self, objet):
        cle_role, cle_texte = self.cle_role or "role", self.cle_texte or "content"
        if self.champ:
            return messages_de_liste(valeur_au_chemin(objet, self.champ),
                                     self.champ, cle_role, cle_texte)
        if detecter_schema(objet) is not None:
            return extraire_messages(objet, self.cle_role, self.cle_texte)
        trouvees = listes_de_messages(objet, cle_role, cle_texte)
        if len(trouvees) > 1:
            noms = ", ".join(f"« {chemin} »" for chemin, _ in trouvees)
            raise ErreurChamp("messages", f"plusieurs listes de messages possibles "
                              f"({noms}) : choisissez avec --champ-messages CHAMP")
        if not trouvees:
            raise ErreurChamp("messages", "champ absent ; schémas reconnus : "
                              "« messages », « conversations », « question » + "
                              "« answer », « instruction » + « output », ou une "
                              f"liste de messages {{« {cle_role} », « {cle_texte} »}}"
                              " sous un autre champ (champs présents : "
                              f"{', '.join(sorted(objet)) or 'aucun'}) ; nommez "
                              "le champ avec --champ-messages, les clés avec "
                              "--cle-role et --cle-contenu")
        chemin, liste = trouvees[0]
        self.detectes[chemin] += 1
        return messages_de_liste(liste, chemin, cle_role, cle_texte)

    def rapport(self):
        """Les lignes qui disent quel champ a été détecté, et combien de fois."""
        return [f"Champ des messages détecté : « {chemin} » ("
                f"{accorder(n, 'enregistrement')})."
                for chemin, n in self.detectes.most_common()]


def ajouter_options_export(parser):
    """Les options qui décrivent un export : rôles, champ des messages, clés."""
    parser.add_argument("--roles", default="", metavar="ANCIEN=NOUVEAU,…",
                        help="correspondance de rôles, par exemple "
                        "human=user,gpt=assistant")
    parser.add_argument("--champ-messages", metavar="CHAMP",
                        help="champ qui contient la liste des messages, par "
                        "exemple dialogue, ou data.turns pour un champ imbriqué "
                        "(par défaut, les schémas reconnus, sinon l'unique "
                        "liste de messages trouvée, signalée dans la sortie)")
    parser.add_argument("--cle-role", metavar="CLÉ",
                        help="clé du rôle dans chaque message (défaut : role, "
                        "ou from pour le schéma conversations) ; avec from, les "
                        "rôles ShareGPT human et gpt deviennent user et "
                        "assistant")
    parser.add_argument("--cle-contenu", metavar="CLÉ",
                        help="clé du contenu dans chaque message, par exemple "
                        "value (défaut : content, ou value pour le schéma "
                        "conversations)")


def lire_options_export(args):
    """``(roles, extracteur)`` d'après les options de :func:`ajouter_options_export`.

    Lève ``ValueError`` (message en français) si une option est invalide.
    """
    roles = {**ROLES_STANDARD, **(ROLES_SHAREGPT if args.cle_role == "from" else {}),
             **analyser_roles(args.roles)}
    return roles, Extracteur(args.champ_messages, args.cle_role, args.cle_contenu)


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
    ajouter_options_export(parser)
    args = parser.parse_args(argv)
    try:
        roles, extraire = lire_options_export(args)
        enregistrements, rejets = lire_jsonl(args.entree)
    except (ErreurEntree, ValueError) as exc:
        parser.exit(2, f"Erreur : {exc}\n")
    valides = 0
    for n, objet in enregistrements:
        try:
            valider_messages(extraire(objet), roles)
            valides += 1
        except ErreurChamp as exc:
            rejets.append(rejet(args.entree, n, exc.champ, exc.raison))
    print(f"{accorder(valides, 'enregistrement valide', 'enregistrements valides')}"
          f", {accorder(len(rejets), 'rejet')}.")
    for ligne in extraire.rapport():
        print(ligne)
    for r in rejets:
        print(f"  {r['fichier']}, ligne {r['ligne']}, {r['champ']} : {r['raison']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
