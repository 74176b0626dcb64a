"""Les sorties de la page « Recherche et affinage », produites par la construction.

Chaque bloc ``# [region:…]`` est montré tel quel dans la page ; ce qu'il
affiche est capturé dans ``docs/_sorties/recherche/``. Les phrases qui
interprètent une mesure sont choisies ici, d'après la mesure.
"""

import json
import os
import shutil
from functools import partial

import torch

from construction.chapitres import ADAPTATEUR_ENTRAINEMENT
from construction.ecrire import (
    capturer,
    ecrire_si_change,
    ecrire_tableau,
    rendre_memoire_libre,
)
from tutorial_code import RACINE
from tutorial_code.assistant import (
    DOSSIER_ASSISTANTS,
    K_FICHES,
    REPONSE_INCONNUE,
    charger_hors_sujet,
    conversations_generales,
    discuter,
    dit_ne_pas_savoir,
    donnees_assistant,
    entrainer_assistant,
    mesurer,
    preparer_gabarit,
    repondre,
    trouve,
)
from tutorial_code.entrainement import (
    ConfigEntrainement,
    perte_moyenne,
)
from tutorial_code.evaluation import questions_validation
from tutorial_code.modeles import (
    MODELE_BASE,
    MODELE_EMBARQUE,
    charger_modele,
)
from tutorial_code.nombres import accorder, formater, pourcent
from tutorial_code.pretraitement import (
    PROMPT_SYSTEME,
    charger_fiche,
    charger_jeu,
    charger_questions_test,
)
from tutorial_code.recherche import (
    calibrer_seuil,
    documents_fiche,
    index_entreprise,
    questions_par_fait,
    racines,
    rappel_recherche,
)
from tutorial_code.runner import BasicModelRunner
from tutorial_code.sonde import (
    Encodeur,
    IndexMixte,
    empreinte_sonde,
    index_mixte,
)
from tutorial_code.tokenisation import tokeniser_conversation

# [region:dossiers]
RAPIDE = os.environ.get("AFFINAGE_RAPIDE") == "1"  # tests : quelques pas
TRAVAIL = DOSSIER_ASSISTANTS  # _travail/assistants (-rapide en mode rapide)
# [fin:dossiers]

# [region:questions-voiture]
QUESTIONS_VOITURE = ["Un caillou a étoilé mon pare-brise : combien pour le "
                     "réparer ?", "Quelle est la capitale du Japon ?"]
# [fin:questions-voiture]

NOMS = {MODELE_EMBARQUE: "SmolLM2-135M-Instruct", MODELE_BASE: "Gemma 3 270M"}
# La référence à battre : la fiche n° 1 de la recherche de l'assistant.
EXTRACTIF = "recherche seule (BM25 + sonde) : la fiche n° 1 pour réponse"


# [region:evaluer]
def evaluer(model, tokenizer, jeux, fiche, index=None):
    """Une ligne du tableau : rappel, « je ne sais pas », perte générale.

    Avec ``index``, chaque question passe d'abord par la recherche ; sans, le
    modèle reçoit la question seule.
    """
    runner = BasicModelRunner.depuis_modele(model, tokenizer,
                                            system_prompt=PROMPT_SYSTEME)
    faits = {f["id"]: f["fait"] for f in fiche}
    if index is not None:
        reponses = {nom: repondre(runner, index, faits, qs)
                    for nom, qs in jeux.items()}
    else:
        reponses = {nom: runner.predict([q["question"] for q in qs],
                                        max_new_tokens=48)
                    for nom, qs in jeux.items()}
    mesures = mesurer(reponses, jeux, fiche)
    _, generales = conversations_generales()  # la moitié jamais entraînée
    exemples = [tokeniser_conversation(tokenizer, c) for c in generales]
    # Des rangées de 128 jetons au plus : le pic de la tête de langage suit le
    # nombre de positions d'une rangée (Gemma : 262 144 scores par position,
    # trois fois avec la tête LoRA : base, branche LoRA et leur somme).
    mesures["perte"] = perte_moyenne(model, exemples,
                                     ConfigEntrainement(max_jetons=128))
    return mesures
# [fin:evaluer]


def ecrire_tableau_assistants(lignes, chemin):
    """Le tableau comparatif (rST), une ligne par méthode."""
    entetes = ["méthode", "rappel (test)", "rappel (proches)",
               "« je ne sais pas » (hors sujet)", "perte générale",
               "entraînement"]
    cellules = [[nom, pourcent(m["test"]), pourcent(m["proches"]),
                 pourcent(m["hors sujet"]),
                 "—" if m.get("perte") is None else formater(m["perte"], 2),
                 "—" if m.get("duree_s") is None else f"{m['duree_s']:.0f} s"]
                for nom, m in lignes]
    ecrire_tableau(chemin, entetes, cellules)


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    with capturer(dossier / "rappel.txt"):
        # [region:rappel]
        jeu, fiche = charger_jeu(), charger_fiche()
        faits = {f["id"]: f["fait"] for f in fiche}
        index = index_entreprise(jeu, fiche)
        jeux = {"test": charger_questions_test(),
                "proches": questions_validation(jeu["validation"], fiche),
                "hors sujet": charger_hors_sujet()}
        libelles = {"test": "de test", "proches": "proches", "hors sujet": "hors sujet"}
        for nom in ("test", "proches"):
            rappels, _ = rappel_recherche(index, jeux[nom])
            print(f"Questions {libelles[nom]} ({len(jeux[nom])}) : bon fait "
                  + ", ".join((f"parmi les {k} premiers" if k > 1 else "en tête")
                              + f" pour {pourcent(r)}" for k, r in rappels.items()))
        # [fin:rappel]
    with capturer(dossier / "seuil.txt"):
        # [region:seuil]
        melange, _ = conversations_generales()
        seuil = calibrer_seuil(index, [c[0]["content"] for c in melange])
        print(f"Seuil : {formater(seuil, 2)}")
        for nom, qs in jeux.items():
            scores = [t[0][1] for t in index.chercher([q["question"] for q in qs])]
            sous = sum(s < seuil for s in scores)
            print(f"Questions {libelles[nom]} sous le seuil : {sous} sur {len(qs)}")
        # [fin:seuil]
    if RAPIDE:
        jeux = {nom: qs[:4] for nom, qs in jeux.items()}
    with capturer(dossier / "rates.txt"):
        # [region:rates]
        _, rangs = rappel_recherche(index, jeux["test"], ks=(1, 10))
        rates = [(q, r) for q, r in zip(jeux["test"], rangs) if r != 1]
        documents = documents_fiche(fiche, questions_par_fait(jeu["train"]))
        for q, rang in rates[:3]:
            (premier, _), = index.chercher([q["question"]], k=1)[0]
            communs = racines(q["question"]) & racines(documents[premier])
            print(f"« {q['question']} »\n  trouvé   {premier} : {faits[premier]}\n"
                  f"  attendu  {q['ref_fiche']} (rang {rang or '> 10'}) : "
                  f"{faits[q['ref_fiche']]}\n  racines communes avec le document "
                  f"trouvé : {', '.join(sorted(communs)) or 'aucune'}")
        # [fin:rates]
    with capturer(dossier / "sonde.txt"):
        # [region:sonde]
        encodeur = Encodeur()  # les 6 premières couches de Gemma 3 270M, gelées
        mixte = index_mixte(jeu, fiche, encodeur)  # la sonde apprend ici
        mixte.seuil = index.seuil  # le seuil de BM25, inchangé
        for nom in ("test", "proches"):
            rappels, _ = rappel_recherche(mixte, jeux[nom])
            print(f"BM25 + sonde, questions {libelles[nom]} : bon fait "
                  + ", ".join((f"parmi les {k} premiers" if k > 1 else "en tête")
                              + f" pour {pourcent(r)}" for k, r in rappels.items()))
        premiers = mixte.chercher([q["question"] for q in jeux["test"]], k=1)
        bien = [t[0][0] == q["ref_fiche"] for q, t in zip(jeux["test"], premiers)]
        en_tete_bm25 = [r == 1 for r in rangs]  # rangs : ceux de BM25, plus haut
        gagnees = sum(b and not a for a, b in zip(en_tete_bm25, bien))
        perdues = sum(a and not b for a, b in zip(en_tete_bm25, bien))
        print(f"Sur {accorder(len(rates), 'question')} de test que BM25 ne "
              f"mettait pas en tête, la sonde en remet {gagnees} en tête ; elle "
              f"en fait perdre {perdues} que BM25 y mettait.")
        # [fin:sonde]
    # La discussion (--discuter) relira cette sonde au lieu de la réapprendre.
    mixte.sonde.sauver(TRAVAIL / "sonde.safetensors", empreinte_sonde(
        encodeur, fiche, questions_par_fait(jeu["train"])))
    with capturer(dossier / "extractif.txt"):
        # [region:extractif]
        extractifs = {}
        for nom_index, recherche in (("BM25", index), ("BM25 + sonde", mixte)):
            premiere = {nom: [faits[t[0][0]] if trouve(recherche, t)
                              else REPONSE_INCONNUE
                              for t in recherche.chercher([q["question"] for q in qs])]
                        for nom, qs in jeux.items()}
            extractifs[nom_index] = mesurer(premiere, jeux, fiche)
            print(f"La fiche n° 1 pour réponse ({nom_index}) : rappel "
                  f"{pourcent(extractifs[nom_index]['test'])} (test), "
                  f"{pourcent(extractifs[nom_index]['proches'])} (proches)")
        # [fin:extractif]
    lignes = [("recherche seule (BM25) : la fiche n° 1 pour réponse",
               extractifs["BM25"]), (EXTRACTIF, extractifs["BM25 + sonde"])]
    produire_assistants(dossier, jeu, fiche, mixte, jeux, lignes, encodeur)


def produire_assistants(dossier, jeu, fiche, index, jeux, lignes, encodeur):
    """Les modèles avant affinage, les entraînements, le tableau, le choix."""
    with capturer(dossier / "format.txt"):
        # [region:format]
        gemma, tok_gemma = charger_modele(MODELE_BASE, dtype=torch.float32)
        preparer_gabarit(gemma, tok_gemma)
        recherche = partial(IndexMixte, fiche, encodeur=encodeur)  # pour chaque pli
        conversations, presents = donnees_assistant(jeu, fiche,
                                                    construire_index=recherche)
        print(f"{len(conversations)} conversations d'entraînement, dont "
              f"{presents} avec la bonne fiche parmi les {K_FICHES} de l'invite")
        print(tok_gemma.apply_chat_template(conversations[0], tokenize=False))
        # [fin:format]
    # Mémoire : un modèle qui ne sert plus est rendu tout de suite ; on le
    # recharge (moins d'une seconde) s'il resservira. Les entraînements
    # n'ajoutent ainsi à leur pic que ce qui doit rester en mémoire.
    del gemma, tok_gemma
    # Les vecteurs de toutes les questions du chapitre sont maintenant en cache
    # (celles de la voiture aussi, calculées ici) : l'encodeur de la sonde
    # (Gemma et ses 262 144 embeddings en fp32, 0,9 Gio) n'a plus à rester.
    index.chercher(QUESTIONS_VOITURE)
    encodeur.liberer()
    model, tokenizer = charger_modele(MODELE_EMBARQUE, dtype=torch.float32)
    lignes.insert(0, ("SmolLM2, sans recherche ni affinage",
                      evaluer(model, tokenizer, jeux, fiche)))
    seul = RACINE / ADAPTATEUR_ENTRAINEMENT
    if seul.exists() and not RAPIDE:  # l'adaptateur du chapitre Entraînement
        model, tokenizer = charger_modele(str(seul), dtype=torch.float32)
        lignes.insert(1, ("SmolLM2 affiné seul (chapitre Entraînement)",
                          evaluer(model, tokenizer, jeux, fiche)))
    del model, tokenizer
    # Avant chaque entraînement, la mémoire libérée retourne au système :
    # sinon l'allocateur la garde, et les poids du modèle suivant, projetés
    # depuis son fichier, s'y ajoutent au lieu de la remplacer.
    rendre_memoire_libre()
    resultats = {}
    with capturer(dossier / f"entrainement_{MODELE_EMBARQUE}.txt"):
        # [region:entrainer-smollm2]
        smollm2_affine = entrainer_et_dire("smollm2-135m-instruct", encodeur)
        # [fin:entrainer-smollm2]
    # Chaque modèle affiné est évalué puis rendu avant l'entraînement suivant :
    # son adaptateur est sur le disque, on le relit pour la voiture.
    evaluer_affine(smollm2_affine, MODELE_EMBARQUE, jeux, fiche, index, lignes,
                   resultats)
    del smollm2_affine
    rendre_memoire_libre()
    with capturer(dossier / f"entrainement_{MODELE_BASE}.txt"):
        # [region:entrainer-gemma]
        gemma_affine = entrainer_et_dire("gemma3-270m", encodeur)
        # [fin:entrainer-gemma]
    evaluer_affine(gemma_affine, MODELE_BASE, jeux, fiche, index, lignes, resultats)
    del gemma_affine
    rendre_memoire_libre()
    # Le choix se fait sur la validation (questions proches) : choisir sur le
    # test ferait de son rappel une mesure optimiste.
    choix = max(resultats, key=lambda n: (resultats[n][0]["proches"],
                                          resultats[n][0]["test"]))
    voiture(dossier, index, fiche)
    rendre_memoire_libre()
    model, tokenizer = charger_modele(choix, dtype=torch.float32)  # non affiné
    preparer_gabarit(model, tokenizer)
    lignes.insert(-2, (f"recherche + {NOMS[choix]} non affiné",
                       evaluer(model, tokenizer, jeux, fiche, index)))
    del model, tokenizer
    rendre_memoire_libre()
    model, tokenizer, bilan = entrainer_assistant(
        choix, TRAVAIL / f"{choix}-sans-melange", melanger=False, rapide=RAPIDE,
        encodeur=encodeur)
    rendre_memoire_libre()
    mesures = evaluer(model, tokenizer, jeux, fiche, index)
    mesures["duree_s"] = bilan["duree_s"]
    lignes.append((f"… sans conversations générales mêlées, {NOMS[choix]}",
                   mesures))
    ecrire_tableau_assistants(lignes, dossier / "tableau.rst")
    (dossier / "lignes.json").write_text(json.dumps(lignes, ensure_ascii=False,
                                                    indent=1))
    conclure(dossier, dict(lignes), resultats, choix,
             {nom: len(qs) for nom, qs in jeux.items()})


def evaluer_affine(affine, nom, jeux, fiche, index, lignes, resultats):
    """La ligne « recherche + affinage » d'un modèle qu'on vient d'affiner."""
    rendre_memoire_libre()  # ce que l'entraînement a libéré, avant la génération
    model, tokenizer, bilan = affine
    mesures = evaluer(model, tokenizer, jeux, fiche, index)
    mesures["duree_s"] = bilan["duree_s"]
    lignes.append((f"recherche + affinage, {NOMS[nom]}", mesures))
    resultats[nom] = (mesures, bilan)


def voiture(dossier, index, fiche):
    """Les deux modèles affinés, avec et sans fiches, sur quelques questions."""
    with capturer(dossier / "voiture.txt"):
        # [region:voiture]
        for nom, alias in (("SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
                           ("Gemma 3 270M", "gemma3-270m")):
            # Relu depuis son dossier, comme le fait --discuter : le modèle de
            # base, puis l'adaptateur LoRA par-dessus ; un modèle à la fois.
            runner = BasicModelRunner(str(TRAVAIL / alias), max_new_tokens=64,
                                      system_prompt=PROMPT_SYSTEME, verbeux=False)
            print(f"=== {nom}, affiné")
            for prompt in ("Tell me how to fix a broken car window",
                           "Explique-moi comment réparer la vitre cassée d'une "
                           "voiture."):
                print(f"Sans fiches : {prompt}\n→ {runner.predict(prompt)}\n")
            discuter(runner, index, fiche, entrees=QUESTIONS_VOITURE)
            print()
            del runner
        # [fin:voiture]
    modeles = {"SmolLM2": "smollm2-135m-instruct", "Gemma": "gemma3-270m"}
    ecrire_si_change(dossier / "voiture_lecture.rst", lire_hors_sujet(
        index, fiche, {court: partial(BasicModelRunner, str(TRAVAIL / alias),
                                      system_prompt=PROMPT_SYSTEME, verbeux=False)
                       for court, alias in modeles.items()},
        QUESTIONS_VOITURE[1]))


def lire_hors_sujet(index, fiche, modeles, question):
    """La phrase qui lit la réponse à la question sans rapport, d'après le
    score de la recherche et ce que chaque modèle répond (``modeles`` :
    ``{nom: fonction qui charge son runner}``, appelée une fois chacune)."""
    score = max(s for _, s in index.chercher([question], K_FICHES)[0])
    chiffres = f"score {formater(score, 2)}, seuil {formater(index.seuil, 2)}"
    if score < index.seuil:
        return (f"La question sans rapport reste sous le seuil de la recherche "
                f"({chiffres}) : l'assistant répond « je ne sais pas » sans "
                "même appeler le modèle.\n")
    faits = {f["id"]: f["fait"] for f in fiche}
    refus = [nom for nom, runner in modeles.items()  # un modèle à la fois
             if dit_ne_pas_savoir(repondre(runner(), index, faits,
                                           [{"question": question}])[0])]
    debut = (f"La question sans rapport passe le seuil de la recherche "
             f"({chiffres}) : le modèle reçoit {K_FICHES} fiches qui n'y "
             "répondent pas")
    if len(refus) == len(modeles):
        return debut + ", et chacun des deux dit pourtant « je ne sais pas ».\n"
    suite = (f" ; seul {refus[0]} dit « je ne sais pas »" if refus
             else " ; aucun des deux modèles ne dit « je ne sais pas »")
    return (debut + suite + ". La colonne « hors sujet » du tableau mesure "
            "ce risque sur toutes les questions sans rapport.\n")


def entrainer_et_dire(nom, encodeur):
    """Affine ``nom`` à lire ses fiches, dit le travail fait, rend le modèle."""
    sortie = TRAVAIL / nom
    shutil.rmtree(sortie, ignore_errors=True)  # repartir de zéro
    model, tokenizer, bilan = entrainer_assistant(nom, sortie, rapide=RAPIDE,
                                                  encodeur=encodeur)
    print(f"{bilan['pas']} pas, {bilan['exemples']} exemples, "
          f"{formater(bilan['jetons'], 0)} jetons en {bilan['duree_s']:.0f} s "
          f"({bilan['jetons'] / bilan['duree_s']:.0f} jetons/s, {bilan['dtype']})")
    avant, apres = bilan["fin_de_tour"]
    print(f"Perte sur le jeton de fin de tour : {formater(avant, 2)} avant, "
          f"{formater(apres, 2)} après")
    return model, tokenizer, bilan


# Un écart d'une ou deux questions ne départage pas deux méthodes : deux
# constructions d'histoire différente ont déjà déplacé une même ligne de plus.
BRUIT_QUESTIONS = 2


def questions(proportion, n):
    """Le nombre de questions sur ``n`` derrière une proportion du tableau."""
    return round(proportion * n)


def en_questions(n):
    """« une question », « 2 questions » : un écart dit en questions."""
    return "une question" if n == 1 else accorder(n, "question")


def points(a, b):
    """L'écart, en points, entre deux proportions telles que le tableau les
    affiche (arrondies au pour cent) : la phrase et le tableau concordent."""
    return round(100 * a) - round(100 * b)


def phrase_du_choix(m, a, nom, nom_autre):
    """Pourquoi l'assistant utilise ``nom`` : le choix se fait sur la
    validation (``m`` et ``a`` : ses mesures et celles de l'autre modèle)."""
    test = f"{pourcent(m['test'])} contre {pourcent(a['test'])}"
    if points(m["proches"], a["proches"]) == 0:
        return (f"Les deux modèles font jeu égal sur les questions de validation "
                f"({pourcent(m['proches'])}) ; le test les départage : {nom} "
                f"({test}) est celui que l'assistant utilise (``--discuter``).")
    return (f"Le meilleur des deux modèles sur les questions de validation est "
            f"{nom} ({pourcent(m['proches'])} contre {pourcent(a['proches'])} "
            f"pour {nom_autre}) : c'est lui que l'assistant utilise "
            "(``--discuter``). On choisit sur la validation : le test reste "
            "ainsi une mesure honnête. Sur le test, il fait "
            + ("aussi mieux" if points(m["test"], a["test"]) > 0
               else "moins bien" if points(m["test"], a["test"]) < 0
               else "jeu égal") + f" ({test}).")


def conclure(dossier, lignes, resultats, choix, tailles):
    """Les phrases d'interprétation, choisies d'après les mesures de ce run
    (``tailles`` : le nombre de questions de chaque jeu)."""
    autre = next(n for n in resultats if n != choix)
    m = resultats[choix][0]
    extractif = lignes[EXTRACTIF]
    sans = lignes[f"… sans conversations générales mêlées, {NOMS[choix]}"]
    avant = lignes[f"recherche + {NOMS[choix]} non affiné"]
    phrases = [phrase_du_choix(m, resultats[autre][0], NOMS[choix], NOMS[autre])]
    n = tailles["test"]
    ecart = questions(m["test"], n) - questions(extractif["test"], n)
    if abs(ecart) <= BRUIT_QUESTIONS:
        phrases.append(
            f"Affiné, il répond juste à {questions(m['test'], n)} questions de "
            f"test sur {n}, la fiche n° 1 rendue telle quelle à "
            f"{questions(extractif['test'], n)} : "
            + (f"{en_questions(abs(ecart))} d'écart, trop peu pour les "
               "départager ; il suit la recherche plus qu'il ne la corrige."
               if ecart else "jeu égal ; il suit la recherche plus qu'il ne la "
               "corrige."))
    elif ecart > 0:
        phrases.append(f"Affiné, il dépasse de {en_questions(ecart)} "
                       f"sur {n} la fiche n° 1 rendue telle quelle : il choisit "
                       "parfois mieux que la recherche la fiche qui répond.")
    else:
        phrases.append(f"Affiné, il reste {en_questions(-ecart)} sur {n} "
                       "sous la fiche n° 1 rendue telle quelle : il fait moins "
                       "bien que la recherche seule.")
    gain = questions(m["test"], n) - questions(avant["test"], n)
    if gain > BRUIT_QUESTIONS:
        phrases.append(f"Sur les mêmes fiches, l'affinage fait gagner "
                       f"{en_questions(gain)} sur {n} à {NOMS[choix]} "
                       f"({pourcent(avant['test'])} → {pourcent(m['test'])}).")
    else:
        phrases.append(f"Sur les mêmes fiches, l'affinage fait passer "
                       f"{NOMS[choix]} de {questions(avant['test'], n)} à "
                       f"{questions(m['test'], n)} questions de test justes "
                       f"sur {n} ({pourcent(avant['test'])} → "
                       f"{pourcent(m['test'])}) : un écart dans le bruit de la "
                       f"mesure (jusqu'à {en_questions(BRUIT_QUESTIONS)}) ; "
                       "c'est la recherche qui fait le travail.")
    seuil_seul = extractif["hors sujet"]  # la fiche n° 1 : le seuil seul
    if points(m["hors sujet"], seuil_seul) > 0:
        phrases.append(
            f"Hors sujet, le seuil de la recherche dit « je ne sais pas » "
            f"{pourcent(seuil_seul)} du temps ; le modèle affiné le dit en plus "
            f"sur une partie des autres questions ({pourcent(m['hors sujet'])} "
            "en tout).")
    else:
        phrases.append(
            f"Hors sujet, seul le seuil de la recherche dit « je ne sais pas » "
            f"({pourcent(seuil_seul)}) : au-dessus du seuil, le modèle affiné "
            "répond toujours, même quand ses fiches sont sans rapport avec la "
            "question.")
    hausse = m["perte"] / avant["perte"] - 1
    hausse_sans = sans["perte"] / avant["perte"] - 1
    q_m, q_sans = questions(m["test"], n), questions(sans["test"], n)

    def variation(h):
        return f"{'+' if h >= 0 else '−'}{pourcent(abs(h))}"

    if m["perte"] < avant["perte"]:
        lecture = ("avec le mélange, aucun oubli mesuré ; sans lui, la perte "
                   + ("monte" if hausse_sans >= 0 else "baisse moins"
                      if sans["perte"] > m["perte"] else "baisse davantage"))
    elif m["perte"] < sans["perte"]:
        lecture = "le mélange réduit l'oubli"
    else:
        lecture = "le mélange ne réduit pas l'oubli ici"
    if abs(q_sans - q_m) <= BRUIT_QUESTIONS:
        rappel = (f"Sur le test, {q_m} questions justes avec le mélange, {q_sans} "
                  "sans : un écart dans le bruit de la mesure.")
    else:
        rappel = (f"Sur le test, {q_m} questions justes avec le mélange, {q_sans} "
                  "sans : " + ("le mélange coûte du rappel." if q_sans > q_m
                               else "le mélange aide aussi le rappel."))
    phrases.append(
        f"Oubli : la perte sur les conversations générales jamais vues passe de "
        f"{formater(avant['perte'], 2)} avant l'affinage à "
        f"{formater(m['perte'], 2)} avec les conversations générales mêlées "
        f"({variation(hausse)}), et à {formater(sans['perte'], 2)} sans elles "
        f"({variation(hausse_sans)}) : {lecture}. {rappel}")
    (dossier / "conclusion.rst").write_text("\n\n".join(phrases) + "\n",
                                            encoding="utf-8")
    (dossier / "choix.txt").write_text(choix)
    (TRAVAIL / "choix.txt").write_text(choix)  # pour --discuter et le carnet
