"""Prétraitement : des exports bruts de Vitrexpress Auto à un jeu d'entraînement.

La chaîne complète : lecture et validation (rejets nommés), nettoyage,
conversion au format ``messages``, suppression des doublons, contrôle des
fuites vers le jeu de test, signalement des exemples trop longs, découpage
reproductible en ``train`` / ``validation``, sauvegarde (Arrow et JSONL).

Exécutable : ``python -m tutorial_code.pretraitement`` traite les données de
l'entreprise dans ``_travail/donnees/`` ; ``python -m tutorial_code.pretraitement
ENTREE.jsonl --sortie DOSSIER [--roles human=user,gpt=assistant]`` traite un
fichier quelconque (``--help`` : nom du champ des messages, clés du rôle et du
contenu, troncature des conversations trop longues). Les autres chapitres
appellent :func:`charger_jeu`.
"""

import hashlib
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import datasets

from tutorial_code import RACINE, relatif
from tutorial_code.aide import creer_parser
from tutorial_code.nettoyage import (
    dedoublonner,
    nettoyer_texte,
    texte_utilisateur,
    trouver_fuites,
)
from tutorial_code.nombres import accorder, formater
from tutorial_code.pretraitement_lecture import (
    ROLES_STANDARD,
    ErreurChamp,
    ErreurEntree,
    ajouter_options_export,
    extraire_messages,
    lire_csv,
    lire_jsonl,
    lire_options_export,
    rejet,
    valider_messages,
)

BRUT, TEST = RACINE / "data" / "brut", RACINE / "data" / "test"
DOSSIER_TRAVAIL = RACINE / "_travail" / "donnees"
ENTREES = ["data/brut/*", "data/test/*", "data/exemples/*"]
datasets.disable_progress_bars()  # des sorties lisibles dans les pages

# [region:parametres]
# Court : il précède chaque exemple, et chaque jeton coûte sur CPU.
PROMPT_SYSTEME = "Tu es l'assistant de Vitrexpress Auto (vitrage automobile)."
ROLES_ENTREPRISE = {**ROLES_STANDARD, "client": "user", "conseiller": "assistant"}
SEUIL_DOUBLON = 0.8  # similarité (trigrammes) à partir de laquelle on écarte
SEUIL_FUITE = 0.5  # idem, entre une question de test et un message d'entraînement
LONGUEUR_MAX = 512  # jetons : la fenêtre retenue pour l'entraînement sur CPU
PART_VALIDATION, GRAINE = 0.1, 42
# [fin:parametres]


def charger_fiche():
    """La fiche de faits : ``{"id", "categorie", "fait", "cles": [...]}`` (67)."""
    lignes, _ = lire_csv(BRUT / "fiche_faits.csv", ["id", "categorie", "fait", "cles"])
    return [{**ligne, "cles": ligne["cles"].split("|")} for _, ligne in lignes]


def charger_questions_test():
    """Le jeu de test, tenu à l'écart : ``{"id", "ref_fiche", "question",
    "faits_cles"}``."""
    lignes, _ = lire_jsonl(TEST / "questions_test.jsonl")
    return [ligne for _, ligne in lignes]


# [region:convertir]
def convertir(enregistrements, fichier, roles, source, systeme=None,
              extraire=extraire_messages):
    """Valide, nettoie et convertit des enregistrements ; renvoie (exemples, rejets).

    Un exemple : ``{"id", "messages", "source", "ref_fiche", "fichier", "ligne"}``,
    ses messages au format system/user/assistant, le prompt système en tête.
    """
    exemples, rejets = [], []
    for ligne, objet in enregistrements:
        try:
            if source in ("faq", "tickets") and not objet.get("ref_fiche",
                                                              "").strip():
                raise ErreurChamp("ref_fiche", "référence à la fiche manquante")
            messages = valider_messages(extraire(objet), roles,
                                        nettoyer=nettoyer_texte)
        except ErreurChamp as exc:
            rejets.append(rejet(fichier, ligne, exc.champ, exc.raison,
                                objet))
            continue
        if systeme and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": systeme})
        exemples.append({"id": str(objet.get("id", f"{Path(fichier).name}:{ligne}")),
                         "messages": messages, "source": source,
                         "ref_fiche": objet.get("ref_fiche"),
                         "fichier": relatif(fichier), "ligne": ligne})
    return exemples, rejets
# [fin:convertir]


# [region:doublons]
def retirer_doublons(exemples, fichier, seuil=SEUIL_DOUBLON):
    """Garde la première de plusieurs questions identiques ou presque.

    On compare ce que dit l'utilisateur : deux reformulations d'une même
    question sont utiles (le modèle apprend à reconnaître la variété), deux
    copies ne lui apprennent rien et pèsent deux fois dans l'entraînement.
    """
    gardes, doublons = dedoublonner([texte_utilisateur(e) for e in exemples], seuil)
    rejets = [rejet(fichier, exemples[d["indice"]]["ligne"], "(ligne)",
                    f"doublon {d['type']} de la ligne "
                    f"{exemples[d['double_de']]['ligne']} (similarité "
                    f"{formater(d['similarite'], 2)})",
                    texte_utilisateur(exemples[d["indice"]]))
              for d in doublons]
    return [exemples[i] for i in gardes], rejets
# [fin:doublons]


@lru_cache(maxsize=4)
def charger_tokenizer(nom=None):
    """Le tokenizer du modèle embarqué (par défaut), d'un dossier ou du Hub."""
    from transformers import AutoTokenizer

    from tutorial_code.modeles import MODELE_EMBARQUE, resoudre
    return AutoTokenizer.from_pretrained(resoudre(nom or MODELE_EMBARQUE))


# [region:jetons]
def compter_jetons(messages, tokenizer):
    """Le nombre de jetons de la conversation, gabarit de discussion compris."""
    texte = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(texte, add_special_tokens=False)["input_ids"])


def signaler_trop_longs(jeu, tokenizer, longueur_max=LONGUEUR_MAX):
    """Ajoute la colonne ``n_jetons`` ; sépare ce qui dépasse ``longueur_max``.

    Un exemple trop long serait coupé en silence à l'entraînement, souvent
    au milieu de la réponse : on le signale avec son nombre de jetons.
    """
    jeu = jeu.map(lambda e: {"n_jetons": compter_jetons(e["messages"], tokenizer)})
    return (jeu.filter(lambda e: e["n_jetons"] <= longueur_max),
            jeu.filter(lambda e: e["n_jetons"] > longueur_max))
# [fin:jetons]


def garder_des_tours(messages, tokenizer, longueur_max=LONGUEUR_MAX):
    """Le plus long début de la conversation, en tours entiers, qui tient.

    Un tour : une question de l'utilisateur et la réponse de l'assistant. Le
    début garde le message system éventuel et finit sur une réponse de
    l'assistant. Renvoie ``{"messages", "tronque"}`` ; la conversation reste
    entière si elle tient, ou si même son premier tour dépasse (elle sera
    alors rejetée comme trop longue).
    """
    if compter_jetons(messages, tokenizer) <= longueur_max:
        return {"messages": messages, "tronque": False}
    debut = 1 if messages[0]["role"] == "system" else 0
    garde = None
    for fin in range(debut + 2, len(messages), 2):  # fin exclue : après une réponse
        if compter_jetons(messages[:fin], tokenizer) > longueur_max:
            break
        garde = messages[:fin]
    return {"messages": garde or messages, "tronque": garde is not None}


# [region:decouper]
def decouper(jeu, part=PART_VALIDATION, graine=GRAINE):
    """``train`` / ``validation``, mélangés avec une graine : reproductible."""
    if part <= 0 or len(jeu) < 2:
        return datasets.DatasetDict({"train": jeu})
    parties = jeu.train_test_split(test_size=part, seed=graine)
    return datasets.DatasetDict({"train": parties["train"],
                                 "validation": parties["test"]})
# [fin:decouper]


# [region:preparer]
def preparer(sources, tokenizer, longueur_max=LONGUEUR_MAX, questions=(),
             part=PART_VALIDATION, systeme=None, extraire=extraire_messages,
             tronquer="non"):
    """La chaîne complète ; renvoie ``(jeu, rejets, comptes)``.

    ``sources`` : liste de ``(nom, fichier, enregistrements, rejets de lecture,
    rôles)`` ; ``comptes[étape][nom]`` : le nombre d'exemples après chaque étape.
    ``tronquer="tours"`` raccourcit ce qui dépasse au lieu de le rejeter
    (:func:`garder_des_tours`) ; ``comptes["tronqués"]`` compte ces exemples.
    """
    exemples, rejets = [], []
    comptes = {etape: {} for etape in ETAPES_COMPTES}
    for nom, fichier, enregistrements, rejets_lecture, roles in sources:
        valides, invalides = convertir(enregistrements, fichier, roles, nom,
                                       systeme, extraire)
        uniques, doublons = retirer_doublons(valides, fichier)
        rejets += rejets_lecture + invalides + doublons
        exemples += uniques
        comptes["lus"][nom] = len(enregistrements) + len(rejets_lecture)
        comptes["valides"][nom] = len(valides)
        comptes["uniques"][nom] = len(uniques)
    fuites = trouver_fuites(exemples, questions, SEUIL_FUITE)
    rejets += [rejet(exemples[i]["fichier"], exemples[i]["ligne"], "(ligne)",
                     f"fuite : ressemble à la question de test {qid} "
                     f"(similarité {formater(score, 2)})",
                     texte_utilisateur(exemples[i])) for i, qid, score in fuites]
    retires = {i for i, _, _ in fuites}
    if len(exemples) == len(retires):
        premier = rejets[0] if rejets else {}
        erreur = ErreurEntree(
            f"aucun exemple valide sur {sum(comptes['lus'].values())} lus. Premier "
            f"rejet : {premier.get('fichier')}, ligne {premier.get('ligne')}, "
            f"{premier.get('champ')} : {premier.get('raison')}")
        erreur.rejets = rejets  # la CLI les écrit quand même : rien ne se perd
        raise erreur
    jeu = datasets.Dataset.from_list(
        [e for i, e in enumerate(exemples) if i not in retires])
    compter(comptes["sans fuite"], jeu)
    if tronquer == "tours":
        jeu = jeu.map(lambda e: garder_des_tours(e["messages"], tokenizer,
                                                 longueur_max))
    jeu, trop_longs = signaler_trop_longs(jeu, tokenizer, longueur_max)
    rejets += [rejet(e["fichier"], e["ligne"], "messages", f"trop long : "
                     f"{e['n_jetons']} jetons > {longueur_max}", e["id"])
               for e in trop_longs]
    compter(comptes["assez courts"], jeu)
    if tronquer == "tours":  # gardés, mais raccourcis : on les compte à part
        compter(comptes.setdefault("tronqués", {}), jeu.filter(lambda e: e["tronque"]))
        jeu = jeu.remove_columns("tronque")
    jeu = decouper(jeu.remove_columns(["fichier", "ligne", "n_jetons"]), part)
    for partie, contenu in jeu.items():
        compter(comptes[partie], contenu)
    return jeu, rejets, comptes
# [fin:preparer]


ETAPES_COMPTES = ["lus", "valides", "uniques", "sans fuite", "assez courts", "train",
          "validation"]


def compter(compte, jeu):
    """Le nombre d'exemples de chaque source dans ``jeu``."""
    for source in jeu["source"]:
        compte[source] = compte.get(source, 0) + 1


# [region:entreprise]
def lire_tickets(chemin, fiche):
    """Les tickets clients, chacun avec la phrase de la fiche pour réponse.

    Le support a rattaché chaque question à un fait (``ref_fiche``) ; la
    réponse se reconstitue donc depuis la fiche. Une référence inconnue laisse
    la réponse vide : la validation rejette alors la ligne, en la nommant.
    """
    faits = {f["id"]: f["fait"] for f in fiche}
    tickets, rejets = lire_csv(chemin, ["id", "ref_fiche", "question"])
    return [(n, {**t, "reponse": faits.get(t["ref_fiche"], "")})
            for n, t in tickets], rejets


def sources_entreprise():
    """Les trois exports bruts de l'entreprise, lus et prêts pour :func:`preparer`."""
    faq = BRUT / "faq_export.csv"
    chats = BRUT / "conversations_support.jsonl"
    tickets = BRUT / "tickets_clients.csv"
    return [
        ("faq", faq, *lire_csv(faq, ["id", "ref_fiche", "question", "reponse",
                                     "maj"]), ROLES_ENTREPRISE),
        ("chat", chats, *lire_jsonl(chats), ROLES_ENTREPRISE),
        ("tickets", tickets, *lire_tickets(tickets, charger_fiche()),
         ROLES_ENTREPRISE),
    ]


def preparer_entreprise(tokenizer=None, longueur_max=LONGUEUR_MAX):
    """Le jeu de Vitrexpress Auto, prompt système en tête, sans fuite vers le test."""
    return preparer(sources_entreprise(), tokenizer or charger_tokenizer(),
                    longueur_max, questions=charger_questions_test(),
                    systeme=PROMPT_SYSTEME)
# [fin:entreprise]


# [region:sauvegarder]
def sauvegarder(jeu, rejets, comptes, dossier):
    """Arrow (``save_to_disk``), une copie JSONL par partie, les rejets, les comptes.

    On écrit dans un dossier provisoire qu'on renomme à la fin : un lecteur
    ne voit jamais un jeu à moitié écrit.
    """
    dossier = Path(dossier)
    provisoire = dossier.with_name(f"{dossier.name}.partiel-{os.getpid()}")
    shutil.rmtree(provisoire, ignore_errors=True)
    jeu.save_to_disk(provisoire / "arrow")
    for partie, contenu in jeu.items():
        contenu.to_json(provisoire / f"{partie}.jsonl", force_ascii=False)
    with open(provisoire / "rejets.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rejets)
    (provisoire / "comptes.json").write_text(
        json.dumps(comptes, ensure_ascii=False, indent=1), encoding="utf-8")
    shutil.rmtree(dossier, ignore_errors=True)
    provisoire.rename(dossier)
    return dossier
# [fin:sauvegarder]


def empreinte_entrees():
    """SHA-256 des données brutes et du code du prétraitement."""
    fichiers = [f for motif in ENTREES for f in sorted(RACINE.glob(motif))]
    fichiers += sorted(Path(__file__).parent.glob("pretraitement*.py"))
    fichiers.append(Path(__file__).parent / "nettoyage.py")
    h = hashlib.sha256()
    for f in fichiers:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


# [region:charger_jeu]
def charger_jeu(dossier=None):
    """Le ``DatasetDict`` (``train``, ``validation``) prêt pour l'entraînement.

    Relu depuis ``_travail/donnees/`` ; recalculé d'abord s'il manque ou si
    les données brutes (ou ce code) ont changé depuis.
    """
    dossier = Path(dossier or DOSSIER_TRAVAIL)
    temoin = dossier / "empreinte.txt"
    cle = empreinte_entrees()
    if not temoin.exists() or temoin.read_text() != cle:
        sauvegarder(*preparer_entreprise(), dossier)
        temoin.write_text(cle)
    return datasets.load_from_disk(str(dossier / "arrow"))
# [fin:charger_jeu]


def resumer(jeu, rejets, comptes):
    """Le résumé affiché par la ligne de commande."""
    total = {etape: sum(c.values()) for etape, c in comptes.items()}
    doublons = sum(r["raison"].startswith("doublon") for r in rejets)
    # Les tronqués sont gardés : lus = gardés + rejetés + doublons, toujours.
    dont = (f", dont {accorder(total['tronqués'], 'tronqué')}"
            if "tronqués" in total else "")
    print(f"Lus : {total['lus']} ; gardés : {total['assez courts']}{dont} "
          f"({', '.join(f'{p} : {len(c)}' for p, c in jeu.items())}) ; "
          f"rejetés : {len(rejets) - doublons} ; doublons : {doublons}.")


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.pretraitement",
        description="Valide, nettoie, déduplique et découpe un jeu de conversations. "
                    "Sans ENTREE : traite les données de Vitrexpress Auto dans "
                    f"{relatif(DOSSIER_TRAVAIL)}/.")
    parser.add_argument("entree", nargs="?", metavar="ENTREE",
                        help="fichier JSONL (schémas messages, conversations, "
                        "question/answer, instruction/output, ou une liste de "
                        "messages sous un autre champ)")
    parser.add_argument("--sortie", metavar="DOSSIER", help="dossier où écrire "
                        "le jeu (Arrow et JSONL) et les rejets")
    ajouter_options_export(parser)
    parser.add_argument("--systeme", metavar="TEXTE", help="prompt système "
                        "ajouté en tête (défaut : aucun)")
    parser.add_argument("--tokenizer", metavar="NOM", help="tokenizer pour compter "
                        "les jetons (défaut : celui du modèle embarqué)")
    parser.add_argument("--longueur-max", type=int, default=LONGUEUR_MAX, metavar="N",
                        help=f"jetons au plus par exemple (défaut : {LONGUEUR_MAX})")
    parser.add_argument("--tronquer", choices=["non", "tours"], default="non",
                        help="conversation plus longue que --longueur-max : non "
                        "(défaut) la rejette ; tours garde son plus long début "
                        "en tours entiers (question et réponse) qui tient, et "
                        "la compte parmi les « tronqués »")
    parser.add_argument("--validation", type=float, default=PART_VALIDATION,
                        metavar="PART",
                        help="part mise de côté pour la validation (défaut : "
                             f"{formater(PART_VALIDATION, 1)})")
    args = parser.parse_args(argv)
    extraire = None
    try:
        if args.entree is None:
            if args.tronquer != "non" or args.champ_messages or args.cle_role \
                    or args.cle_contenu:
                raise ValueError("--tronquer, --champ-messages, --cle-role et "
                                 "--cle-contenu demandent un fichier ENTREE")
            jeu, rejets, comptes = preparer_entreprise(
                charger_tokenizer(args.tokenizer), args.longueur_max)
            dossier = Path(args.sortie or DOSSIER_TRAVAIL)
        else:
            if not args.sortie:
                raise ValueError("--sortie DOSSIER est obligatoire avec un fichier")
            roles, extraire = lire_options_export(args)
            source = ("fichier", args.entree, *lire_jsonl(args.entree), roles)
            jeu, rejets, comptes = preparer(
                [source], charger_tokenizer(args.tokenizer), args.longueur_max,
                part=args.validation, systeme=args.systeme, extraire=extraire,
                tronquer=args.tronquer)
            dossier = Path(args.sortie)
    except (ErreurEntree, ValueError, OSError) as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        for ligne in extraire.rapport() if extraire else []:
            print(ligne, file=sys.stderr)
        if getattr(exc, "rejets", None) and args.sortie:
            chemin = Path(args.sortie) / "rejets.jsonl"
            chemin.parent.mkdir(parents=True, exist_ok=True)
            with open(chemin, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n"
                             for r in exc.rejets)
            print(f"Les {len(exc.rejets)} rejets sont dans {chemin}.", file=sys.stderr)
        return 2
    sauvegarder(jeu, rejets, comptes, dossier)
    if args.entree is None and dossier == DOSSIER_TRAVAIL:
        (dossier / "empreinte.txt").write_text(empreinte_entrees())
    resumer(jeu, rejets, comptes)
    for ligne in extraire.rapport() if extraire else []:
        print(ligne)
    print(f"Écrit dans {relatif(dossier)}/ : arrow/, "
          f"{', '.join(f'{p}.jsonl' for p in jeu)}, rejets.jsonl, comptes.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
