#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Auto-vérification des données brutes « Vitrexpress Auto ».

Usage : python3 data/verifier_donnees.py
Code de sortie 0 si tout est conforme, 1 sinon (la liste des échecs est affichée).

Ce script ne modifie rien : il vérifie la cohérence entre la fiche de faits,
l'export FAQ, les tickets clients, les conversations et le jeu de test, et compte les défauts
volontaires qui doivent rester présents dans les fichiers bruts.
"""
import csv
import html
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parent
ECHECS = []

# Nombres de défauts volontaires attendus (voir LISEZMOI.md)
FAQ_LIGNES_INVALIDES = 3
FAQ_REPONSES_VIDES = 4
FAQ_REPONSES_PII = 4
SUPPORT_LIGNES_INVALIDES = 5
SEUIL_JACCARD = 0.5
TICKETS_PAR_FAIT = 12
SEUIL_TICKETS_TEST = 0.45   # tickets ↔ questions de test
SEUIL_TICKETS_DOUBLON = 0.8  # tickets ↔ tickets et tickets ↔ FAQ

RE_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
RE_TEL = re.compile(r"(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}")


def verifier(condition, message):
    """Enregistre un échec si la condition est fausse ; affiche OK / ÉCHEC."""
    print(("  OK     " if condition else "  ÉCHEC  ") + message)
    if not condition:
        ECHECS.append(message)


def normaliser(texte):
    """Minuscules, forme NFC, espaces regroupés (base de la comparaison par trigrammes)."""
    texte = unicodedata.normalize("NFC", texte).lower()
    return re.sub(r"\s+", " ", texte).strip()


def trigrammes(texte):
    t = normaliser(texte)
    return {t[i:i + 3] for i in range(len(t) - 2)}


def jaccard(a, b):
    return len(a & b) / len(a | b) if a and b else 0.0


def lire_jsonl(chemin):
    """Renvoie la liste (numéro de ligne, objet ou None si JSON invalide)."""
    lignes = []
    with open(chemin, encoding="utf-8") as fh:
        for n, ligne in enumerate(fh, 1):
            if not ligne.strip():
                continue
            try:
                lignes.append((n, json.loads(ligne)))
            except json.JSONDecodeError:
                lignes.append((n, None))
    return lignes


# ------------------------------------------------------------------ fiche de faits
print("== brut/fiche_faits.csv")
with open(DATA / "brut/fiche_faits.csv", encoding="utf-8", newline="") as fh:
    fiche = list(csv.DictReader(fh))
CLES = {}
for r in fiche:
    cles = r["cles"].split("|")
    CLES[r["id"]] = cles
    if not (1 <= len(cles) <= 2 and all(c and c in r["fait"] for c in cles)):
        verifier(False, f"{r['id']} : clés invalides ou absentes du fait ({r['cles']})")
verifier(len(fiche) >= 60, f"{len(fiche)} faits (≥ 60)")
verifier(len(CLES) == len(fiche), "identifiants de faits uniques")
verifier(all(r["fait"] == unicodedata.normalize("NFC", r["fait"]).strip() for r in fiche),
         "fiche propre (NFC, sans espaces parasites)")

# ------------------------------------------------------------------ export FAQ
print("== brut/faq_export.csv")
with open(DATA / "brut/faq_export.csv", encoding="utf-8", newline="") as fh:
    lecteur = csv.reader(fh)
    entete = next(lecteur)
    lignes_faq = list(lecteur)
verifier(entete == ["id", "ref_fiche", "question", "reponse", "maj"], "en-tête de la FAQ")
faq_valides, faq_invalides = [], []
for ligne in lignes_faq:
    if len(ligne) != 5 or not ligne[1].strip() or ligne[1] not in CLES:
        faq_invalides.append(ligne)
    else:
        faq_valides.append(dict(zip(entete, ligne)))
verifier(len(lignes_faq) >= 320, f"{len(lignes_faq)} lignes de données (≥ 320)")
verifier(len(faq_valides) >= 320, f"{len(faq_valides)} lignes structurellement valides (≥ 320)")
verifier(len(faq_invalides) == FAQ_LIGNES_INVALIDES,
         f"{len(faq_invalides)} lignes invalides (attendu : {FAQ_LIGNES_INVALIDES})")

questions_par_fait = defaultdict(set)
reponses_par_fait = defaultdict(list)
for r in faq_valides:
    questions_par_fait[r["ref_fiche"]].add(normaliser(r["question"]))
    reponses_par_fait[r["ref_fiche"]].append(r["reponse"])
peu_de_questions = [f for f in CLES if len(questions_par_fait[f]) < 5]
verifier(not peu_de_questions, f"chaque fait a ≥ 5 questions distinctes {peu_de_questions or ''}")
cles_rares = [(f, c) for f, cles in CLES.items() for c in cles
              if sum(c in rep for rep in reponses_par_fait[f]) < 3]
verifier(not cles_rares, f"chaque clé figure telle quelle dans ≥ 3 réponses de son fait {cles_rares or ''}")

vides = [r for r in faq_valides if not r["reponse"].strip()]
verifier(len(vides) == FAQ_REPONSES_VIDES, f"{len(vides)} réponses vides (attendu : {FAQ_REPONSES_VIDES})")
pii = [r for r in faq_valides if RE_EMAIL.search(r["reponse"]) or RE_TEL.search(r["reponse"])]
verifier(len(pii) == FAQ_REPONSES_PII, f"{len(pii)} réponses avec e-mail/téléphone (attendu : {FAQ_REPONSES_PII})")
paires = Counter((r["question"], r["reponse"]) for r in faq_valides)
verifier(any(n > 1 for n in paires.values()), f"{sum(n - 1 for n in paires.values() if n > 1)} doublons exacts présents")
nb_html = sum(1 for r in faq_valides if re.search(r"<[a-z/][^>]*>", r["reponse"]))
nb_ent = sum(1 for r in faq_valides if re.search(r"&[a-z#0-9]+;", r["question"] + r["reponse"]))
nb_nfd = sum(1 for r in faq_valides
             if unicodedata.normalize("NFC", r["question"] + r["reponse"]) != r["question"] + r["reponse"])
print(f"  info   balises HTML : {nb_html}, entités HTML : {nb_ent}, accents non NFC : {nb_nfd}")
verifier(nb_html > 0 and nb_ent > 0 and nb_nfd > 0, "bruit HTML / entités / NFD présent")

# ------------------------------------------------------------------ conversations support
print("== brut/conversations_support.jsonl")


def defaut_conversation(obj):
    """Renvoie None si la conversation est valide, sinon la nature du défaut."""
    if obj is None:
        return "JSON invalide"
    msgs = obj.get("messages")
    if not isinstance(msgs, list):
        return "champ messages absent"
    if any(m.get("role") not in ("client", "conseiller") for m in msgs):
        return "rôle inconnu"
    if any(not str(m.get("content", "")).strip() for m in msgs):
        return "contenu vide"
    roles = [m["role"] for m in msgs]
    attendu = ["client", "conseiller"] * (len(msgs) // 2)
    if roles != attendu or len(msgs) % 2:
        return "alternance non respectée"
    if not 2 <= len(msgs) // 2 <= 6:
        return "nombre de tours hors de 2 à 6"
    return None


support = lire_jsonl(DATA / "brut/conversations_support.jsonl")
defauts = Counter()
valides_support = []
messages_clients = []
for n, obj in support:
    d = defaut_conversation(obj)
    if d:
        defauts[d] += 1
    else:
        valides_support.append(obj)
    if obj and isinstance(obj.get("messages"), list):
        messages_clients += [m.get("content", "") for m in obj["messages"] if m.get("role") == "client"]
print(f"  info   défauts : {dict(defauts)}")
verifier(sum(defauts.values()) == SUPPORT_LIGNES_INVALIDES,
         f"{sum(defauts.values())} lignes invalides (attendu : {SUPPORT_LIGNES_INVALIDES})")
verifier(len(defauts) == 5, "les 5 types de défauts sont représentés")
verifier(len(valides_support) >= 45, f"{len(valides_support)} conversations valides (≥ 45)")
ids = [obj.get("id") for _, obj in support if obj]
verifier(len(ids) == len(set(ids)), "identifiants de conversations uniques")

# ------------------------------------------------------------------ jeu de test
print("== test/questions_test.jsonl")
test = lire_jsonl(DATA / "test/questions_test.jsonl")
verifier(all(obj is not None for _, obj in test), "aucune ligne JSON invalide")
test = [obj for _, obj in test if obj]
verifier(len(test) >= 60, f"{len(test)} questions de test (≥ 60)")
verifier(len({t["ref_fiche"] for t in test}) >= 60, f"{len({t['ref_fiche'] for t in test})} faits couverts (≥ 60)")
mauvaises_cles = [t["id"] for t in test if CLES.get(t["ref_fiche"]) != t["faits_cles"]]
verifier(not mauvaises_cles, f"faits_cles == cles de la fiche {mauvaises_cles or ''}")

# Similarité : chaque question de test contre chaque question FAQ et chaque message client
references = [r[2] for r in lignes_faq if len(r) > 2] + messages_clients
refs_tri = [trigrammes(x) for x in references] + [trigrammes(html.unescape(x)) for x in references]
pire = (0.0, "", "")
trop_proches = []
for t in test:
    tq = trigrammes(t["question"])
    for i, rt in enumerate(refs_tri):
        j = jaccard(tq, rt)
        if j > pire[0]:
            pire = (j, t["id"], references[i % len(references)])
        if j >= SEUIL_JACCARD:
            trop_proches.append((t["id"], round(j, 2)))
print(f"  info   similarité maximale : {pire[0]:.2f} ({pire[1]} ↔ « {pire[2].strip()[:60]} »)")
verifier(not trop_proches, f"Jaccard des trigrammes < {SEUIL_JACCARD} {trop_proches[:5] or ''}")

# ------------------------------------------------------------------ conversations générales
print("== brut/conversations_generales.jsonl")
gen = lire_jsonl(DATA / "brut/conversations_generales.jsonl")
gen_ok = 0
for n, obj in gen:
    msgs = obj.get("messages") if obj else None
    if (isinstance(msgs, list) and len(msgs) in (2, 4)
            and [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
            and all(m["content"].strip() for m in msgs)):
        gen_ok += 1
verifier(gen_ok == len(gen) and gen_ok >= 30, f"{gen_ok}/{len(gen)} conversations générales valides (≥ 30, aucune invalide)")

# ------------------------------------------------------------------ exemples de formats
print("== exemples/")


def ok_oasst(o):
    return [m["role"] for m in o["messages"]] == ["UTILISATEUR", "ASSISTANT"] * (len(o["messages"]) // 2)


def ok_sharegpt(o):
    return [m["from"] for m in o["conversations"]] == ["human", "gpt"] * (len(o["conversations"]) // 2)


FORMATS = {
    "export_oasst.jsonl": ok_oasst,
    "sharegpt.jsonl": ok_sharegpt,
    "instructions.jsonl": lambda o: set(o) == {"instruction", "input", "output"} and o["output"].strip(),
    "questions_reponses.jsonl": lambda o: set(o) == {"question", "answer"} and o["answer"].strip(),
}
for nom, test_format in FORMATS.items():
    lignes = lire_jsonl(DATA / "exemples" / nom)
    bons = sum(1 for _, o in lignes if o is not None and test_format(o))
    verifier(bons == len(lignes) and 8 <= bons <= 12, f"{nom} : {bons}/{len(lignes)} enregistrements valides (8 à 12)")

# ------------------------------------------------------------------ tickets clients
print("== brut/tickets_clients.csv")
with open(DATA / "brut/tickets_clients.csv", encoding="utf-8", newline="") as fh:
    lecteur = csv.reader(fh)
    entete_tk = next(lecteur)
    lignes_tk = list(lecteur)
verifier(entete_tk == ["id", "ref_fiche", "question"], "en-tête des tickets")
verifier(all(len(l) == 3 for l in lignes_tk), "3 colonnes sur chaque ligne")
lignes_tk = [l for l in lignes_tk if len(l) == 3]
attendu_tk = TICKETS_PAR_FAIT * len(CLES)
verifier(len(lignes_tk) == attendu_tk, f"{len(lignes_tk)} tickets (attendu : {attendu_tk})")
verifier([l[0] for l in lignes_tk] == [f"K{i:04d}" for i in range(1, len(lignes_tk) + 1)],
         "identifiants K0001… consécutifs")
par_fait_tk = Counter(l[1] for l in lignes_tk)
mauvais_tk = sorted(f for f in set(CLES) | set(par_fait_tk) if par_fait_tk[f] != TICKETS_PAR_FAIT)
verifier(not mauvais_tk, f"{TICKETS_PAR_FAIT} tickets par fait {mauvais_tk[:5] or ''}")
verifier(all(q.strip() and q == unicodedata.normalize("NFC", q).strip() and "  " not in q
             for _, _, q in lignes_tk), "questions non vides, NFC, sans espaces parasites")
verifier(not any(RE_EMAIL.search(q) or RE_TEL.search(q) or re.search(r"<[a-z/][^>]*>|&[a-z#0-9]+;", q)
                 for _, _, q in lignes_tk), "ni données personnelles ni HTML")

tk_tri = [trigrammes(q) for _, _, q in lignes_tk]
test_tri = [(t["id"], trigrammes(t["question"])) for t in test]
pire_tk = (0.0, "", "")
proches_test = []
for (kid, _, _), kt in zip(lignes_tk, tk_tri):
    for tid, tt in test_tri:
        j = jaccard(kt, tt)
        if j > pire_tk[0]:
            pire_tk = (j, kid, tid)
        if j >= SEUIL_TICKETS_TEST:
            proches_test.append((kid, tid, round(j, 2)))
print(f"  info   similarité maximale avec le test : {pire_tk[0]:.2f} ({pire_tk[1]} ↔ {pire_tk[2]})")
verifier(not proches_test, f"Jaccard tickets ↔ test < {SEUIL_TICKETS_TEST} {proches_test[:5] or ''}")

faq_tri = [trigrammes(r[2]) for r in lignes_faq if len(r) > 2]
faq_tri += [trigrammes(html.unescape(r[2])) for r in lignes_faq if len(r) > 2]
doublons_tk = []
pire_dbl = 0.0
for i, kt in enumerate(tk_tri):
    for autre in tk_tri[i + 1:] + faq_tri:
        j = jaccard(kt, autre)
        pire_dbl = max(pire_dbl, j)
        if j >= SEUIL_TICKETS_DOUBLON:
            doublons_tk.append((lignes_tk[i][0], round(j, 2)))
print(f"  info   similarité maximale entre tickets ou avec la FAQ : {pire_dbl:.2f}")
verifier(not doublons_tk, f"Jaccard tickets ↔ tickets / FAQ < {SEUIL_TICKETS_DOUBLON} {doublons_tk[:5] or ''}")

# ------------------------------------------------------------------ bilan
print()
if ECHECS:
    print(f"{len(ECHECS)} vérification(s) en échec.")
    sys.exit(1)
print("Toutes les vérifications sont passées.")
