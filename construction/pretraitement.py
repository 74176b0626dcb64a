"""Les sorties de la page « Prétraitement » : textes, tableaux et figure.

:func:`produire_sorties` exécute, dans l'ordre de la page, le code qu'elle
montre (les régions marquées ci-dessous) et écrit ce qu'il affiche dans le
dossier des sorties. Exécutable : ``python -m construction.pretraitement
DOSSIER`` (la construction passe par ``python -m construction.sorties``).
"""

import contextlib
import statistics
import time
from pathlib import Path
from textwrap import shorten

import datasets
from matplotlib.figure import Figure

from construction.ecrire import (
    capturer,
    ecrire_tableau,
    texte_tableau,
)
from tutorial_code import RACINE
from tutorial_code.aide import creer_parser
from tutorial_code.mauvaises_entrees import (
    bilan,
    essayer_mauvaises_entrees,
)
from tutorial_code.nettoyage import (
    ETAPES,
    jaccard,
    nettoyer_texte,
    texte_utilisateur,
    trigrammes,
)
from tutorial_code.nombres import accorder, formater
from tutorial_code.pretraitement import (
    BRUT,
    ROLES_ENTREPRISE,
    charger_jeu,
    charger_questions_test,
    charger_tokenizer,
    compter_jetons,
    main,
    preparer_entreprise,
)
from tutorial_code.pretraitement_lecture import (
    ROLES_STANDARD,
    ErreurChamp,
    analyser_roles,
    detecter_schema,
    extraire_messages,
    lire_csv,
    lire_jsonl,
    valider_messages,
)


# [region:statistiques]
def statistiques(enregistrements, roles):
    """Longueurs (en caractères) par rôle et nombre de tours par conversation.

    Calculées sur les enregistrements bruts lisibles : on regarde les données
    avant de décider comment les nettoyer.
    """
    longueurs, tours = {"user": [], "assistant": []}, []
    for _, objet in enregistrements:
        try:
            bruts = extraire_messages(objet)
        except ErreurChamp:
            continue  # la validation s'en occupera
        for role, contenu, _, _ in bruts:
            if roles.get(role) in longueurs and isinstance(contenu, str):
                longueurs[roles[role]].append(len(contenu))
        tours.append(sum(roles.get(r) == "user" for r, *_ in bruts))
    return longueurs, tours
# [fin:statistiques]


def tableau_statistiques(stats):
    """Une ligne par source et par rôle : effectif, moyenne, médiane, maximum."""
    lignes = []
    for source, (longueurs, tours) in stats.items():
        for role, valeurs in longueurs.items():
            lignes.append([source, role, len(valeurs),
                           formater(statistics.mean(valeurs), 0),
                           formater(statistics.median(valeurs), 0), max(valeurs),
                           formater(statistics.mean(tours), 1)])
    return texte_tableau(["source", "rôle", "messages", "caractères (moyenne)",
                      "médiane", "maximum", "tours par conversation"], lignes)


def figure_statistiques(stats, chemin):
    """Histogramme des longueurs par rôle ; tours par conversation."""
    fig = Figure(figsize=(10, 3.6))  # sans pyplot : aucun écran requis
    gauche, droite = fig.subplots(1, 2)
    plus_long = max(v for longueurs, _ in stats.values()
                    for valeurs in longueurs.values() for v in valeurs)
    bornes = range(0, plus_long + 10, 10)  # les mêmes classes pour les deux rôles
    for role, couleur in (("user", "tab:blue"), ("assistant", "tab:orange")):
        valeurs = [v for longueurs, _ in stats.values() for v in longueurs[role]]
        gauche.hist(valeurs, bins=bornes, alpha=0.6, color=couleur, label=role)
    gauche.set(xlabel="longueur du message (caractères)", ylabel="messages",
               title="Longueur des messages par rôle")
    gauche.legend()
    _, tours = stats["chat"]
    valeurs = sorted(set(tours))
    droite.bar(valeurs, [tours.count(v) for v in valeurs], color="tab:green")
    droite.set(xlabel="tours (question + réponse)", ylabel="conversations",
               title="Tours par conversation du support", xticks=valeurs)
    fig.tight_layout()
    fig.savefig(chemin, dpi=100)


def avant_apres(textes):
    """Pour chaque étape du nettoyage, un vrai texte qu'elle modifie."""
    for etape in dict.fromkeys(ETAPES):
        avant = next((t for t in textes if etape(t) != t), None)
        if avant is None:
            continue
        apres = etape(avant)
        print(f"{etape.__name__}\n  avant : {avant!r}\n  après : {apres!r}")
        if len(avant) != len(apres) and etape.__name__ == "normaliser_unicode":
            print(f"  ({len(avant)} caractères avant, {len(apres)} après : "
                  "même affichage, autres octets)")
        print()
    # Le texte que le nettoyage raccourcit le plus (entités HTML), d'un coup.
    brut = max(textes, key=lambda t: len(t) - len(nettoyer_texte(t)))
    print(f"nettoyer_texte (toutes les étapes)\n  avant : {brut!r}\n"
          f"  après : {nettoyer_texte(brut)!r}")
    passes, texte = 1, brut
    while (suivant := nettoyer_texte(texte, max_passes=1)) != texte:
        passes, texte = passes + 1, suivant
    print(f"  passes sur toutes les étapes : {passes} (la dernière ne change "
          "plus rien)")


def similarite_max_gardee(jeu):
    """La plus forte similarité entre deux questions de FAQ restées dans le jeu."""
    tri = [trigrammes(texte_utilisateur(e)) for partie in jeu.values()
           for e in partie if e["source"] == "faq"]
    return max(jaccard(a, b) for i, a in enumerate(tri) for b in tri[i + 1:])


def tableau_comptes(comptes):
    """Le nombre d'exemples par source après chaque étape."""
    lignes = [[etape, c.get("faq", 0), c.get("chat", 0), c.get("tickets", 0),
               sum(c.values())] for etape, c in comptes.items()]
    return texte_tableau(["étape", "FAQ", "conversations", "tickets", "total"], lignes)


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``.

    Le code de la page s'exécute depuis la racine du dépôt, comme chez le lecteur.
    """
    dossier = Path(dossier).resolve()
    with contextlib.chdir(RACINE):
        executer_page(dossier)


def executer_page(dossier):
    """Le code de la page, dans l'ordre ; chaque sortie dans son fichier."""
    with capturer(dossier / "load_dataset.txt"):
        # [region:load_dataset]
        try:
            datasets.load_dataset("json", data_files=str(
                BRUT / "conversations_support.jsonl"))
        except Exception as exc:  # une ligne cassée fait tout échouer
            print(f"{type(exc).__name__} : {exc}")
        # [fin:load_dataset]
    with capturer(dossier / "lecture.txt"):
        # [region:lecture]
        faq, rejets_faq = lire_csv(BRUT / "faq_export.csv",
                                   ["id", "ref_fiche", "question", "reponse", "maj"])
        chats, rejets_chats = lire_jsonl(BRUT / "conversations_support.jsonl")
        print(f"FAQ : {len(faq)} enregistrements, {len(rejets_faq)} rejetés "
              "dès la lecture")
        print(f"Conversations : {len(chats)} enregistrements, "
              f"{accorder(len(rejets_chats), 'rejeté', 'rejetés')} dès la lecture")
        print(chats[0][1]["messages"][:2])
        # [fin:lecture]
    # [region:stats]
    stats = {"faq": statistiques(faq, ROLES_ENTREPRISE),
             "chat": statistiques(chats, ROLES_ENTREPRISE)}
    # [fin:stats]
    (dossier / "statistiques.rst").write_text(tableau_statistiques(stats))
    figure_statistiques(stats, dossier / "longueurs.png")
    with capturer(dossier / "validation.txt"):
        # [region:valider_exemple]
        for ligne, objet in chats:
            try:
                valider_messages(extraire_messages(objet), ROLES_ENTREPRISE)
            except ErreurChamp as exc:
                print(f"ligne {ligne} ({objet.get('id')}), {exc.champ} : {exc.raison}")
        # [fin:valider_exemple]
    with capturer(dossier / "avant_apres.txt"):
        textes = [o[c] for _, o in faq for c in ("question", "reponse")]
        textes += [m.get("content", "") for _, o in chats
                   for m in o.get("messages", []) if isinstance(m, dict)]
        avant_apres([t for t in textes if isinstance(t, str)])
    debut = time.perf_counter()
    with capturer(dossier / "chaine.txt"):
        # [region:chaine]
        jeu, rejets, comptes = preparer_entreprise()
        print(jeu)
        # [fin:chaine]
    duree = time.perf_counter() - debut
    (dossier / "duree_chaine.rst").write_text(
        "Sur la machine qui a construit ce site, cette chaîne complète (tokenizer "
        f"compris) a pris {formater(duree, 1)} s.\n")
    (dossier / "comptes.rst").write_text(tableau_comptes(comptes))
    lignes = [[r["fichier"].removeprefix("data/brut/"), r["ligne"], r["champ"],
               r["raison"]] for r in rejets if not r["raison"].startswith("doublon")]
    (dossier / "rejets.rst").write_text(
        texte_tableau(["fichier", "ligne", "champ", "raison"], lignes))
    with capturer(dossier / "doublons.txt"):
        for r in rejets:
            if r["raison"].startswith("doublon"):
                print(f"ligne {r['ligne']:>3} : {r['contenu']!r} — {r['raison']}")
        print(f"Plus forte similarité entre deux questions gardées : "
              f"{formater(similarite_max_gardee(jeu), 2)}")
    with capturer(dossier / "exemple_chat.txt"):
        # [region:exemple]
        exemple = next(e for e in jeu["train"] if e["source"] == "chat")
        for message in exemple["messages"][:4]:
            print(f"{message['role']:>9} : {message['content']}")
        # [fin:exemple]
    with capturer(dossier / "schemas.txt"):
        # [region:schemas]
        roles = {**ROLES_STANDARD, **analyser_roles("human=user,gpt=assistant")}
        for nom in ("sharegpt", "instructions", "questions_reponses"):
            enregistrements, _ = lire_jsonl(f"data/exemples/{nom}.jsonl")
            objet = enregistrements[0][1]
            print(f"{nom}.jsonl : schéma « {detecter_schema(objet)} », "
                  f"champs {sorted(objet)}")
            for m in valider_messages(extraire_messages(objet), roles):
                texte = shorten(m["content"], 64, placeholder=" […]")
                print(f"  {m['role']:>9} : {texte}")
        # [fin:schemas]
    with capturer(dossier / "fuites.txt"):
        # [region:fuites]
        tests = [(q["id"], trigrammes(q["question"])) for q in charger_questions_test()]
        score, qid, question = max(
            (jaccard(tri, trigrammes(texte_utilisateur(e))), qid, texte_utilisateur(e))
            for partie in jeu.values() for e in partie for qid, tri in tests)
        print(f"Similarité maximale avec le jeu de test : {score:.2f} ".replace(
            ".", ",") + f"({qid}, « {question} »)")
        # [fin:fuites]
    with capturer(dossier / "jetons.txt"):
        # [region:jetons]
        tokenizer = charger_tokenizer()
        longueurs = [compter_jetons(e["messages"], tokenizer) for e in jeu["train"]]
        print(f"Jetons par exemple : au plus {max(longueurs)}, en moyenne "
              f"{sum(longueurs) / len(longueurs):.0f}")
        # [fin:jetons]
    with capturer(dossier / "charger_jeu.txt"):
        # [region:charger_jeu]
        jeu = charger_jeu()  # relu depuis _travail/donnees/, recalculé si besoin
        print(jeu["train"][0]["messages"][1])
        # [fin:charger_jeu]
    with capturer(dossier / "cli_oasst.txt"):
        # [region:cli]
        main(["data/exemples/export_oasst.jsonl", "--sortie", "_travail/oasst",
              "--roles", "UTILISATEUR=user,ASSISTANT=assistant"])
        # [fin:cli]
    # [region:mauvaises_entrees]
    resultats = essayer_mauvaises_entrees()  # chaque cas, réellement exécuté
    # [fin:mauvaises_entrees]
    ecrire_tableau(dossier / "mauvaises_entrees.rst",
                   ["cas", "message affiché (ou écrit dans ``rejets.jsonl``)",
                    "lus = gardés + rejetés"],
                   [[r["cas"], litteral(r["message"]), bilan(r)]
                    for r in resultats])
    perdus = [r["cas"] for r in resultats if r["lus"] is not None
              and r["lus"] != r["gardes"] + r["rejetes"]]
    (dossier / "mauvaises_entrees_lecture.rst").write_text(
        "Dans chaque cas de données, aucune ligne ne disparaît : même quand "
        "aucune n'est valide, la commande s'arrête avec le code de sortie 2, "
        "mais écrit ses rejets." if not perdus else
        "Des lignes disparaissent sans être rejetées dans ces cas : "
        + ", ".join(f"« {c} »" for c in perdus) + ".", encoding="utf-8")


def litteral(message):
    """Un message en littéral rST, sur une ligne : ni balisage ni typographie."""
    return "``" + " ".join(message.split()) + "``" if message else "(aucun)"


def principal(argv=None):
    parser = creer_parser("python -m construction.pretraitement",
                          "Produit les sorties de la page « Prétraitement ».")
    parser.add_argument("dossier", help="dossier où écrire textes, tableaux, figure")
    produire_sorties(Path(parser.parse_args(argv).dossier))
    return 0


if __name__ == "__main__":
    raise SystemExit(principal())
