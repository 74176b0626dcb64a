"""L'assistant qui lit ses fiches : recherche + affinage pour s'en servir.

La question part d'abord dans la recherche : BM25 (``tutorial_code.recherche``)
reclassé par la sonde (``tutorial_code.sonde``). Les ``k`` fiches trouvées sont
écrites dans le prompt, dans l'ordre de la recherche ; le modèle, affiné sur
ce format, répond avec la bonne fiche, ou dit qu'il ne sait pas quand aucune
fiche ne répond.

Exécutable : ``python -m tutorial_code.assistant --discuter`` ouvre une
discussion dans le terminal avec l'assistant entraîné par la construction
(``--modele DOSSIER`` pour un autre) ; ``--help`` pour le reste.
"""

import json
import os
import random
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from transformers import TextStreamer

from tutorial_code import RACINE
from tutorial_code.aide import creer_parser
from tutorial_code.entrainement import (
    ConfigEntrainement,
    appliquer_methode,
    entrainer,
    planifier,
)
from tutorial_code.evaluation import (
    charger_conversations_generales,
    contient_faits,
    normaliser,
)
from tutorial_code.modeles import (
    EMBARQUES,
    ModeleIntrouvable,
    charger_modele,
    choisir_device_dtype,
)
from tutorial_code.pretraitement import (
    PROMPT_SYSTEME,
    charger_fiche,
    charger_jeu,
)
from tutorial_code.recherche import (
    IndexFiches,
    calibrer_seuil,
    documents_fiche,
    questions_par_fait,
)
from tutorial_code.runner import BasicModelRunner
from tutorial_code.sonde import Encodeur, IndexMixte, index_mixte
from tutorial_code.tokenisation import tokeniser_conversation

HORS_SUJET = RACINE / "data" / "test" / "hors_sujet.jsonl"
# Ignoré par git ; le mode rapide (tests) n'écrase jamais ceux de la construction.
DOSSIER_ASSISTANTS = RACINE / "_travail" / (
    "assistants-rapide" if os.environ.get("AFFINAGE_RAPIDE") == "1" else "assistants")

# [region:format]
K_FICHES = 3  # fiches mises dans le prompt
# Aucune clé de la fiche dans cette phrase : « je ne sais pas » ne compte
# jamais comme une bonne réponse.
REPONSE_INCONNUE = ("Je ne sais pas : mes fiches ne le disent pas. Un conseiller "
                    "de Vitrexpress Auto pourra vous répondre.")


def prompt_avec_fiches(question, fiches):
    """Le message de l'utilisateur : les fiches trouvées, puis la question."""
    lignes = [f"Fiche {i} : {fait}" for i, fait in enumerate(fiches, 1)]
    return "\n".join(lignes) + f"\n\nQuestion : {question}"
# [fin:format]


# [region:gabarit]
# Gemma 3 270M n'est que pré-entraîné : son tokenizer n'a pas de gabarit. On lui
# apprend celui de Gemma 3 (tours « user » et « model »), dont les jetons
# <start_of_turn> et <end_of_turn> existent déjà dans son vocabulaire.
GABARIT_TOURS = (
    "{{ bos_token }}{% for m in messages if m['role'] != 'system' %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if loop.first and messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] }}\n\n{% endif %}"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


def preparer_gabarit(model, tokenizer):
    """Donne un gabarit de tours à un modèle seulement pré-entraîné.

    Le jeton de fin de tour devient un jeton spécial (masque des étiquettes,
    décodage) et un jeton d'arrêt de la génération.
    """
    if tokenizer.chat_template is not None:
        return False  # modèle de discussion : on garde son gabarit
    tokenizer.chat_template = GABARIT_TOURS
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    fin_de_tour = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, fin_de_tour]
    return True
# [fin:gabarit]


# [region:fin-de-tour]
@torch.no_grad()
def perte_fin_de_tour(model, tokenizer, conversations):
    """Perte moyenne sur le dernier jeton appris de chaque réponse : le jeton de
    fin de tour, celui dont la génération a besoin pour s'arrêter."""
    model.eval()
    pertes = []
    for messages in conversations:
        e = tokeniser_conversation(tokenizer, messages)
        fin = max(i for i, et in enumerate(e["labels"]) if et != -100)
        ids = torch.tensor([e["input_ids"][:fin]], device=model.device)
        logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
        cible = torch.tensor(e["input_ids"][fin], device=model.device)
        pertes.append(torch.nn.functional.cross_entropy(logits, cible).item())
    return sum(pertes) / len(pertes)
# [fin:fin-de-tour]


def conversation_rag(question, fiches, reponse):
    """Une conversation d'un tour dont la question porte les fiches trouvées."""
    return [{"role": "system", "content": PROMPT_SYSTEME},
            {"role": "user", "content": prompt_avec_fiches(question, fiches)},
            {"role": "assistant", "content": reponse}]


# [region:exemples]
def exemples_rag(exemples, fiche, k=K_FICHES, plis=4, graine=0, part_sans=0.0,
                 hors_sujet=(), construire_index=None):
    """Les conversations d'entraînement avec fiches, comme à l'usage.

    Les fiches d'une question d'entraînement viennent d'un index qui ne
    contient pas cette question (validation croisée en ``plis`` parts) : sinon
    la bonne fiche serait toujours première, ce qui n'arrive jamais à l'usage.
    Réponse : la phrase de la bonne fiche si elle est parmi les ``k``, sinon
    ``REPONSE_INCONNUE``. Pour une part ``part_sans`` des questions, on retire
    exprès la bonne fiche ; les questions ``hors_sujet`` (sans rapport avec
    l'entreprise) reçoivent leurs fiches et ``REPONSE_INCONNUE``.
    ``construire_index(par_fait)`` : la recherche de l'usage (BM25 seul par
    défaut ; ``IndexMixte`` pour BM25 + sonde), refaite sur chaque pli.
    """
    if construire_index is None:
        def construire_index(par_fait):
            return IndexFiches(documents_fiche(fiche, par_fait))
    faits = {f["id"]: f["fait"] for f in fiche}
    questions = [e for e in exemples if e["ref_fiche"] in faits
                 and e["source"] in ("faq", "tickets")]
    hasard = random.Random(graine)
    hasard.shuffle(questions)
    conversations, presents = [], 0
    for p in range(plis):
        a_chercher = questions[p::plis]
        autres = [e for i, e in enumerate(questions) if i % plis != p]
        index = construire_index(questions_par_fait(autres))
        textes = [e["messages"][1]["content"] for e in a_chercher]
        for e, trouves in zip(a_chercher, index.chercher(textes, k + 1)):
            ids = [i for i, _ in trouves]
            if hasard.random() < part_sans:  # la bonne fiche manque
                ids = [i for i in ids if i != e["ref_fiche"]]
            ids = ids[:k]
            present = e["ref_fiche"] in ids
            presents += present
            reponse = faits[e["ref_fiche"]] if present else REPONSE_INCONNUE
            conversations.append(conversation_rag(
                e["messages"][1]["content"], [faits[i] for i in ids], reponse))
    if hors_sujet:
        index = construire_index(questions_par_fait(questions))
        for q, trouves in zip(hors_sujet, index.chercher(list(hors_sujet), k)):
            conversations.append(conversation_rag(
                q, [faits[i] for i, _ in trouves], REPONSE_INCONNUE))
    hasard.shuffle(conversations)
    return conversations, presents
# [fin:exemples]


def charger_hors_sujet():
    """Questions auxquelles l'assistant doit répondre qu'il ne sait pas."""
    with open(HORS_SUJET, encoding="utf-8") as f:
        return [json.loads(ligne) for ligne in f if ligne.strip()]


def tokeniser(conversations, tokenizer):
    """Les conversations tokenisées (``input_ids``, ``labels``)."""
    sortie = []
    for messages in conversations:
        e = tokeniser_conversation(tokenizer, messages)
        sortie.append({"input_ids": e["input_ids"], "labels": e["labels"]})
    return sortie


# [region:recette]
# Travail fixe, le même sur toute machine : 32 mises à jour de 16 exemples
# (4 micro-lots de 4), soit 512 exemples. LoRA sur les 8 dernières couches :
# la rétropropagation s'arrête là, une mise à jour coûte deux fois moins. Et
# sur la tête de langage (lm_head), qui rend directement probable un jeton
# que le modèle n'a jamais prédit, comme la fin de tour d'un gabarit nouveau.
RECETTE_RAG = ConfigEntrainement(methode="lora", num_epochs=1, lr=2e-3,
                                 taille_lot=4, accumulation=4, lora_couches=8,
                                 lora_tete=True, max_pas=128)
# [fin:recette]


def conversations_generales():
    """Les conversations générales en deux moitiés : l'une peut être mêlée à
    l'entraînement, l'autre mesure l'oubli (jamais vue à l'entraînement)."""
    toutes = charger_conversations_generales()
    return toutes[0::2], toutes[1::2]


# [region:donnees]
def donnees_assistant(jeu, fiche, melanger=True, graine=0, construire_index=None):
    """Les conversations d'entraînement de l'assistant, avant tokenisation.

    ``melanger`` : on mêle aux fiches la moitié des conversations générales,
    telles quelles (sans fiches), contre l'oubli ; leurs questions servent
    aussi, avec des fiches, d'exemples hors sujet (« je ne sais pas »).
    """
    melange, _ = conversations_generales()
    questions_generales = [c[0]["content"] for c in melange]
    conversations, presents = exemples_rag(list(jeu["train"]), fiche, graine=graine,
                                           hors_sujet=questions_generales,
                                           construire_index=construire_index)
    if melanger:
        conversations += [[{"role": "system", "content": PROMPT_SYSTEME}, *c]
                          for c in melange * 3]
        random.Random(graine).shuffle(conversations)
    return conversations, presents
# [fin:donnees]


# [region:repondre]
def trouve(index, trouves):
    """Vrai si l'une des fiches trouvées atteint le seuil de la recherche."""
    return max(score for _, score in trouves) >= index.seuil


def repondre(runner, index, faits, questions, k=K_FICHES, max_new_tokens=48):
    """Les réponses de l'assistant : recherche, fiches dans le prompt, génération.

    Si aucune fiche n'a un score BM25 au seuil, la recherche n'a
    rien trouvé : « je ne sais pas », sans même appeler le modèle.
    """
    if not questions:
        return []
    trouves = index.chercher([q["question"] for q in questions], k)
    prompts = [prompt_avec_fiches(q["question"], [faits[i] for i, _ in t])
               for q, t in zip(questions, trouves)]
    a_generer = [i for i, t in enumerate(trouves) if trouve(index, t)]
    generees = runner.predict([prompts[i] for i in a_generer],
                              max_new_tokens=max_new_tokens) if a_generer else []
    reponses = [REPONSE_INCONNUE] * len(questions)
    for i, reponse in zip(a_generer, generees):
        reponses[i] = reponse
    return reponses
# [fin:repondre]


def dit_ne_pas_savoir(reponse):
    """Vrai si la réponse dit « je ne sais pas » (casse et accents ignorés)."""
    return "je ne sais pas" in normaliser(reponse)


# [region:mesurer]
def juste(reponse, question, fiche):
    """Vrai si la réponse donne les faits clés attendus, et aucun autre fait.

    Réciter toutes les fiches du prompt contiendrait aussi la bonne : ce
    n'est pas répondre. Un autre fait ne compte que si ses clés ne sont pas
    déjà dans la bonne fiche (« Au-delà de 30 km… » contient la clé d'à côté).
    """
    bonne = next(f["fait"] for f in fiche if f["id"] == question["ref_fiche"])
    autres = [f for f in fiche if f["id"] != question["ref_fiche"]
              and not contient_faits(bonne, f["cles"])]
    return (contient_faits(reponse, question["faits_cles"])
            and not any(contient_faits(reponse, f["cles"]) for f in autres))


def mesurer(reponses, jeux, fiche):
    """Les colonnes du tableau, d'après les réponses à chaque jeu de questions.

    ``reponses`` et ``jeux`` : ``{"test": [...], "proches": [...],
    "hors sujet": [...]}``, dans le même ordre.
    """
    mesures = {}
    for nom in ("test", "proches"):
        paires = list(zip(reponses[nom], jeux[nom]))
        mesures[nom] = sum(juste(r, q, fiche) for r, q in paires) / len(paires)
    hors = reponses["hors sujet"]
    mesures["hors sujet"] = sum(map(dit_ne_pas_savoir, hors)) / len(hors)
    mesures["questions"] = {nom: [q["id"] for q in qs] for nom, qs in jeux.items()}
    return mesures
# [fin:mesurer]


# [region:entrainer]
def entrainer_assistant(nom, sortie, melanger=True, config=RECETTE_RAG,
                        rapide=False, encodeur=None):
    """Affine ``nom`` à lire ses fiches ; sauvegarde l'adaptateur dans ``sortie``.

    Renvoie ``(model, tokenizer, bilan)`` ; le bilan dit le travail fait
    (pas, exemples, jetons), sa durée sur cette machine, et la perte sur le
    jeton de fin de tour avant et après l'affinage. Les fiches des exemples
    viennent de la recherche de l'usage : BM25 reclassé par la sonde
    (``encodeur`` : celui de la sonde, pour réutiliser ses vecteurs).
    """
    encodeur = encodeur or Encodeur()
    fiche = charger_fiche()
    conversations, _ = donnees_assistant(
        charger_jeu(), fiche, melanger,
        construire_index=partial(IndexMixte, fiche, encodeur=encodeur))
    encodeur.liberer()  # ses vecteurs restent ; son modèle quitte la mémoire
    _, dtype, raison = choisir_device_dtype(entrainement=True)
    config = replace(config, bf16=dtype == torch.bfloat16)
    model, tokenizer = charger_modele(nom, dtype=torch.float32)
    preparer_gabarit(model, tokenizer)
    train = tokeniser(conversations, tokenizer)
    echantillon = conversations[:16]  # pour la perte sur la fin de tour
    fin_de_tour = [perte_fin_de_tour(model, tokenizer, echantillon)]
    if rapide:  # quelques secondes : pour les tests
        train, config = train[:16], replace(config, max_pas=4)
    if config.bf16:  # la base gelée en bf16 : deux fois moins de mémoire
        # (Gemma 3 270M : 1,07 → 0,54 Go), et l'autocast n'en fait plus de
        # copie bf16 à chaque passe. Les matrices LoRA restent en fp32.
        model.to(torch.bfloat16)
    model = appliquer_methode(model, config)
    plan = planifier([len(e["input_ids"]) for e in train], config)
    debut = time.perf_counter()
    historique = entrainer(model, train, [], config)
    duree = time.perf_counter() - debut
    # L'adaptateur LoRA seul, en safetensors. La tête de langage partage ses
    # poids avec les embeddings, qui n'ont pas changé : inutile de les recopier.
    # Ne pas le fusionner (merge_and_unload) : les embeddings changeraient aussi.
    model.save_pretrained(sortie, save_embedding_layers=False)
    tokenizer.save_pretrained(sortie)  # avec son gabarit de tours
    model.generation_config.save_pretrained(sortie)  # et ses jetons d'arrêt
    # La génération se fait en fp32 (voir choisir_device_dtype) ; la base garde
    # l'arrondi bf16 sous lequel l'adaptateur a appris.
    model.float()
    fin_de_tour.append(perte_fin_de_tour(model, tokenizer, echantillon))
    bilan = {"modele": nom, "pas": len(plan), "duree_s": duree,
             "exemples": sum(len(lot) for lot in plan),
             "conversations": len(train),
             "jetons": sum(len(train[i]["input_ids"]) for lot in plan for i in lot),
             "dtype": "bf16" if config.bf16 else "fp32", "raison": raison,
             "perte_finale": sum(historique["perte"][-8:]) / 8,
             "fin_de_tour": fin_de_tour}  # perte sur ce jeton, avant et après
    return model, tokenizer, bilan
# [fin:entrainer]


# [region:discuter]
def discuter(runner, index, fiche, entrees=None, max_new_tokens=96):
    """Discussion dans le terminal : chaque question passe par la recherche,
    la réponse s'affiche au fil de la génération. Ctrl-D pour quitter.

    ``entrees`` : une liste de questions à la place du clavier (démonstration).
    """
    faits = {f["id"]: f["fait"] for f in fiche}
    flux = TextStreamer(runner.tokenizer, skip_prompt=True,
                        skip_special_tokens=True)
    for question in entrees if entrees is not None else questions_clavier():
        if entrees is not None:
            print(f"Vous : {question}")
        trouves = index.chercher([question], K_FICHES)[0]
        if not trouve(index, trouves):
            print(f"Assistant : {REPONSE_INCONNUE}")
            continue
        prompt = runner.formater(prompt_avec_fiches(
            question, [faits[i] for i, _ in trouves]))
        ids = runner.tokenizer(prompt, return_tensors="pt",
                               add_special_tokens=False).to(runner.model.device)
        print(f"Assistant (fiches {', '.join(i for i, _ in trouves)}) : ",
              end="", flush=True)
        with torch.inference_mode():
            runner.model.generate(**ids, streamer=flux, do_sample=False,
                                  max_new_tokens=max_new_tokens,
                                  pad_token_id=runner.tokenizer.pad_token_id)


def questions_clavier():
    """Les questions tapées au clavier, jusqu'à Ctrl-D (ou Ctrl-C)."""
    while True:
        try:
            question = input("Vous : ").strip()
        except (EOFError, KeyboardInterrupt):
            print("\nAu revoir.")
            return
        if question:
            yield question
# [fin:discuter]


def index_calibre(encodeur=None, fichier=None):
    """L'index de l'entreprise (BM25 + sonde), le seuil de BM25 calibré sur
    des questions générales. ``fichier`` : où relire ou écrire la sonde
    (défaut : celle que la construction a sauvegardée)."""
    fichier = fichier or DOSSIER_ASSISTANTS / "sonde.safetensors"
    index = index_mixte(encodeur=encodeur, fichier=fichier)
    melange, _ = conversations_generales()
    calibrer_seuil(index.bm25, [c[0]["content"] for c in melange])
    index.encodeur.charger()  # prêt pour la première question
    return index


def assistant_par_defaut():
    """Le dossier de l'assistant retenu par la construction du site."""
    choix = DOSSIER_ASSISTANTS / "choix.txt"
    if not choix.exists():
        raise FileNotFoundError(
            f"Aucun assistant entraîné dans {DOSSIER_ASSISTANTS} : lancez "
            "« make html » (qui l'entraîne) ou « python -m tutorial_code.assistant "
            "--entrainer gemma3-270m --sortie DOSSIER », puis --modele DOSSIER.")
    return DOSSIER_ASSISTANTS / choix.read_text().strip()


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.assistant",
        description="L'assistant de Vitrexpress Auto : recherche dans les fiches, "
                    "puis réponse d'un modèle affiné à s'en servir.")
    parser.add_argument("--discuter", action="store_true",
                        help="discute dans le terminal (Ctrl-D pour quitter)")
    parser.add_argument("--modele", metavar="DOSSIER",
                        help="adaptateur à charger (défaut : celui que la "
                             "construction du site a retenu)")
    parser.add_argument("--entrainer", choices=sorted(EMBARQUES),
                        help="affine ce modèle embarqué sur les fiches")
    parser.add_argument("--sortie", metavar="DOSSIER",
                        help="où écrire l'adaptateur (avec --entrainer)")
    parser.add_argument("--sans-melange", action="store_true",
                        help="sans conversations générales mêlées (--entrainer)")
    parser.add_argument("--rapide", action="store_true",
                        help="quelques pas seulement (essai)")
    args = parser.parse_args(argv)
    if not (args.discuter or args.entrainer):
        parser.error("choisissez --discuter ou --entrainer MODELE")
    try:
        if args.entrainer:
            if not args.sortie:
                parser.error("--entrainer demande --sortie DOSSIER")
            _, _, bilan = entrainer_assistant(args.entrainer, Path(args.sortie),
                                              not args.sans_melange,
                                              rapide=args.rapide)
            print(f"Adaptateur écrit dans {args.sortie} ({bilan['pas']} pas, "
                  f"{bilan['duree_s']:.0f} s).")
        if args.discuter:
            dossier = Path(args.modele or args.sortie or assistant_par_defaut())
            if not (dossier / "adapter_config.json").exists():
                raise FileNotFoundError(
                    f"{dossier} : pas d'adaptateur (adapter_config.json absent).")
            runner = BasicModelRunner(str(dossier), system_prompt=PROMPT_SYSTEME)
            print("Posez vos questions ; Ctrl-D pour quitter.")
            discuter(runner, index_calibre(), charger_fiche())
    except (FileNotFoundError, ModeleIntrouvable) as exc:
        parser.exit(2, f"Erreur : {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
