"""fp32 ou bf16 en génération : ce que le choix du guide coûte ou rapporte ici.

``choisir_device_dtype`` génère en fp32 même quand le processeur calcule le
bf16 nativement (il ne prend le bf16 que pour l'entraînement). Ce banc
mesure les deux sur la machine, sur les deux chemins de génération du guide :

* SmolLM2 (``BasicModelRunner.predict``) : les 8 prompts du banc en un lot,
  puis un à la fois ;
* l'assistant retenu par la construction (Gemma 3 270M + LoRA) : 8 questions
  de test avec leurs fiches (``repondre``), en un lot.

Pour chacun : durée (meilleure de ``essais``), vitesse du bf16 rapportée au
fp32, réponses du bf16 identiques à celles du fp32. Appelé par
``bench.generation`` quand le processeur a le bf16 natif ; sinon, rien à
mesurer (le bf16 émulé est plus lent que le fp32).
"""

import time

from bench.commun import facteur, nombre

# Plus de 5 % d'écart : le bf16 va vraiment plus vite (ou moins vite).
MARGE = 0.05


def meilleur(essais, fonction, *args):
    """``(meilleure durée, résultat)`` de ``essais`` appels ``fonction(*args)``."""
    durees = []
    for _ in range(essais):
        debut = time.perf_counter()
        resultat = fonction(*args)
        durees.append(time.perf_counter() - debut)
    return min(durees), resultat


def un_a_un(runner, prompts):
    return [runner.predict(p) for p in prompts]


def mesurer(prompts, questions, jetons, essais, fp32, assistant):
    """Le bf16 sur les chemins que ``fp32`` a déjà mesurés en fp32.

    ``fp32`` : ``{"lot": s, "un": s, "reponses_lot": [...], "reponses_un":
    [...]}`` pour SmolLM2 ; l'assistant est mesuré ici dans les deux types
    (``assistant(system_prompt, dtype)`` → ``(runner, description)``).
    Renvoie ``{chemin: {"fp32": s, "bf16": s, "identiques": n, "n": n}}`` et
    les réponses identiques entre le lot et un à la fois, en bf16.
    """
    import torch

    from tutorial_code.assistant import index_calibre, repondre
    from tutorial_code.pretraitement import PROMPT_SYSTEME, charger_fiche
    from tutorial_code.runner import BasicModelRunner

    def pareil(a, b):
        return sum(x == y for x, y in zip(a, b))

    runner = BasicModelRunner(system_prompt=PROMPT_SYSTEME, max_new_tokens=jetons,
                              dtype=torch.bfloat16, verbeux=False)
    runner.predict(prompts[:2], max_new_tokens=4)  # chauffe, non chronométrée
    print("Génération en bf16 : un lot de 8, puis un à la fois …", flush=True)
    lot, reponses_lot = meilleur(essais, runner.predict, prompts)
    un, reponses_un = meilleur(essais, un_a_un, runner, prompts)
    del runner
    mesures = {
        f"SmolLM2, un lot de {len(prompts)}": {
            "fp32": fp32["lot"], "bf16": lot, "n": len(prompts),
            "identiques": pareil(reponses_lot, fp32["reponses_lot"])},
        "SmolLM2, un prompt à la fois": {
            "fp32": fp32["un"], "bf16": un, "n": len(prompts),
            "identiques": pareil(reponses_un, fp32["reponses_un"])}}
    index = index_calibre()
    faits = {f["id"]: f["fait"] for f in charger_fiche()}
    reponses = {}
    for nom, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        print(f"Assistant en {nom} : {len(questions)} questions avec fiches …",
              flush=True)
        runner, quoi = assistant(PROMPT_SYSTEME, dtype=dtype)
        repondre(runner, index, faits, questions[:2], max_new_tokens=4)  # chauffe
        duree, reponses[nom] = meilleur(essais, repondre, runner, index, faits,
                                        questions)
        mesures.setdefault(f"{quoi}, {len(questions)} questions avec fiches, "
                           "un lot", {"n": len(questions)})[nom] = duree
        del runner
    mesures[next(reversed(mesures))]["identiques"] = pareil(*reponses.values())
    return mesures, pareil(reponses_lot, reponses_un)


def enumerer(elements):
    """« a », « a et b », « a, b et c »."""
    if len(elements) == 1:
        return elements[0]
    return ", ".join(elements[:-1]) + " et " + elements[-1]


def section(mesures, identiques_bf16, identiques_fp32, n_prompts, natifs):
    """Le tableau et la remarque : ce que le bf16 changerait ici."""
    lignes, plus_vite, moins_vite = [], [], []
    for chemin, m in mesures.items():
        vitesse = m["fp32"] / m["bf16"]  # > 1 : le bf16 va plus vite
        lignes.append([chemin, nombre(m["fp32"], 2), nombre(m["bf16"], 2),
                       facteur(vitesse), f"{m['identiques']} sur {m['n']}"])
        if vitesse > 1 + MARGE:
            plus_vite.append(f"« {chemin} » ({facteur(vitesse)})")
        elif vitesse < 1 - MARGE:
            moins_vite.append(f"« {chemin} » ({facteur(vitesse)})")
    if plus_vite and moins_vite:
        bilan = (f"le bf16 irait plus vite pour {enumerer(plus_vite)}, mais "
                 f"moins vite pour {enumerer(moins_vite)}")
    elif plus_vite:
        bilan = f"le bf16 irait plus vite ici pour {enumerer(plus_vite)}"
    elif moins_vite:
        bilan = ("le bf16 n'irait plus vite nulle part ici, moins vite pour "
                 f"{enumerer(moins_vite)}")
    else:
        bilan = "le bf16 n'irait ni plus ni moins vite ici (à 5 % près)"
    pourquoi = (", qui arrondit plus gros et fait sortir plus souvent un autre "
                "jeton glouton" if identiques_bf16 < identiques_fp32 else "")
    remarque = (
        f"Le guide génère en fp32 même avec le bf16 natif ({', '.join(natifs)}) : "
        f"{bilan}. Réponses identiques entre le lot et un à la fois : "
        f"{identiques_fp32} sur {n_prompts} en fp32, {identiques_bf16} sur "
        f"{n_prompts} en bf16{pourquoi}. AFFINAGE_DTYPE=bfloat16 impose le bf16.")
    tableau = {"titre": "fp32 ou bf16 en génération",
               "entetes": ["génération", "fp32 (s)", "bf16 (s)",
                           "vitesse bf16 / fp32", "réponses bf16 = fp32"],
               "lignes": lignes}
    return tableau, remarque
