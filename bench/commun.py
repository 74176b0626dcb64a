"""Ce que les bancs partagent : la machine, les nombres, les résultats écrits.

Chaque banc range ses chiffres dans une section de ``bench/resultats.json``
(les autres sections sont gardées), puis ``bench/resultats.md`` est réécrit à
partir de tout le JSON : le README pointe vers ce tableau, rien n'est recopié
à la main.
"""

import json
import os
import platform
import statistics
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from construction.ecrire import rendre_memoire_libre  # noqa: F401 (bancs)
from tutorial_code import RACINE, aide, nombres

DOSSIER_BENCH = RACINE / "bench"
RESULTATS_JSON = DOSSIER_BENCH / "resultats.json"
RESULTATS_MD = DOSSIER_BENCH / "resultats.md"
PAQUETS = ["torch", "transformers", "peft", "trl", "accelerate", "datasets",
           "sphinx"]
TITRES = {"entrainement": "Entraînement",
          "assistant": "Entraînement de l'assistant (Gemma 3 270M, avec fiches)",
          "generation": "Génération",
          "docs": "Construction du site"}

# Le banc ne touche jamais au réseau, et garde une sortie lisible.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def analyseur(prog, description):
    """Un ``ArgumentParser`` dont l'aide est tout en français (celui du guide)."""
    return aide.creer_parser(prog, description)


def nombre(x, decimales=1):
    """Un nombre à la française : « 12 345,6 » (celui des pages du guide)."""
    return nombres.formater(x, decimales)


def court(x):
    """Au plus deux décimales, sans zéros inutiles : 1,5 ; 0,05 ; 60."""
    texte = nombre(x, 2).rstrip("0").rstrip(",")
    return texte or "0"


def facteur(x):
    """Un rapport : « 1,53× »."""
    return f"{nombre(x, 2)}×"


def pourcent(x, decimales=1):
    """Une part : « 12,5 % »."""
    return nombres.pourcent(x, decimales)


def part_autres(part):
    """La part du processeur prise par d'autres processus, ou « ? »."""
    return "?" if part is None else pourcent(part, 0)


def rapport(numerateur, denominateur):
    """``numerateur / denominateur``, ou ``None`` si ce dernier est nul."""
    return numerateur / denominateur if denominateur else None


def mediane(valeurs):
    return statistics.median(valeurs)


def _cpu_modele():
    try:
        for ligne in Path("/proc/cpuinfo").read_text().splitlines():
            if ligne.startswith("model name"):
                return ligne.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memoire_gio():
    try:
        for ligne in Path("/proc/meminfo").read_text().splitlines():
            if ligne.startswith("MemTotal"):
                return int(ligne.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(paquet):
    try:
        return metadata.version(paquet)
    except metadata.PackageNotFoundError:
        return "absent"


def _commit():
    try:
        sortie = subprocess.run(
            ["git", "-C", str(RACINE), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True)
        return sortie.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "inconnu"


def machine():
    """Ce qui décrit la machine et le logiciel du run (pour le JSON et l'en-tête)."""
    import torch

    from construction.sorties import allocateur, cache_onednn
    from tutorial_code.modeles import drapeaux_cpu

    drapeaux = drapeaux_cpu()
    coeurs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    return {
        "processeur": _cpu_modele(),
        "coeurs": coeurs,
        "fils_torch": torch.get_num_threads(),
        "extensions": sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
                             & drapeaux),
        "memoire_gio": round(_memoire_gio() or 0, 1),
        "allocateur": allocateur(),
        "cache_onednn": cache_onednn(),
        "charge_au_depart": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in PAQUETS},
        "commit": _commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def texte_machine(m):
    """La machine en deux lignes lisibles."""
    charge = " / ".join(nombre(x, 2) for x in m["charge_au_depart"])
    cache = m.get("cache_onednn")  # absent des résultats d'avant ce champ
    versions = ", ".join(f"{p} {v}" for p, v in m["versions"].items())
    return (f"{m['processeur']} ; {m['coeurs']} cœurs ({m['fils_torch']} fils "
            f"torch) ; {', '.join(m['extensions']) or 'sans AVX-512'} ; "
            f"{nombre(m['memoire_gio'], 0)} Gio ; allocateur "
            f"{m.get('allocateur', '?')} ; cache oneDNN de "
            f"{'?' if cache is None else nombre(cache, 0)} primitives ; "
            f"charge au départ {charge}\n"
            f"Python {m['python']}, {versions} ; commit {m['commit']} ; "
            f"{m['date']}")


def entete(titre, config, m):
    """Affiche en tête : le titre, la machine, la configuration."""
    print(f"=== Banc d'essai : {titre} ===")
    print(f"Machine : {texte_machine(m)}")
    print("Configuration :")
    for cle, valeur in config.items():
        print(f"  {cle} : {valeur}")
    print(flush=True)


def _processeur_occupe_s():
    """Secondes de processeur occupées sur toute la machine (/proc/stat)."""
    try:
        champs = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _, _, irq, softirq, steal = map(int, champs[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _notre_processeur_s():
    t = os.times()  # ce processus, et ses enfants déjà terminés (make, …)
    return t.user + t.system + t.children_user + t.children_system


class Chrono:
    """``with Chrono() as c: ...`` puis ``c.duree`` (secondes) et ``c.autres``.

    ``autres`` : la part du processeur de la machine que d'autres processus
    ont prise pendant la mesure (0 sur une machine au repos). Au-delà de
    quelques pour cent, les fils de torch attendent leur tour et les durées
    peuvent s'allonger de beaucoup : la mesure ne vaut rien.
    """

    def __enter__(self):
        self.debut, self.nous = time.perf_counter(), _notre_processeur_s()
        self.machine = _processeur_occupe_s()
        return self

    def __exit__(self, *exc):
        self.duree = time.perf_counter() - self.debut
        machine = _processeur_occupe_s()
        if machine is None or self.machine is None:
            self.autres = None
            return
        nous = _notre_processeur_s() - self.nous
        capacite = self.duree * (os.cpu_count() or 1)
        self.autres = max(0.0, min(1.0, (machine - self.machine - nous) / capacite))


def alerte_autres(parts, seuil=0.1):
    """Une remarque si d'autres processus ont pris plus de ``seuil`` du
    processeur pendant l'une des mesures, sinon ``None``."""
    parts = [p for p in parts if p is not None]
    if parts and max(parts) > seuil:
        return (f"D'autres processus ont pris jusqu'à {pourcent(max(parts), 0)} "
                "du processeur pendant les mesures : les durées sont faussées, "
                "relancez sur une machine au repos.")
    return None


def cible(nom, valeur, texte_valeur, seuil, sens=">=", unite="×"):
    """Une cible : atteinte si ``valeur`` est ``>=`` (ou ``<``) ``seuil``."""
    if valeur is None:
        atteinte = None
    else:
        atteinte = valeur >= seuil if sens == ">=" else valeur < seuil
    signe = "≥" if sens == ">=" else "<"
    return {"nom": nom, "valeur": valeur, "texte": texte_valeur,
            "cible": f"{signe} {court(seuil)}{unite}", "atteinte": atteinte}


def verdict(atteinte):
    return {True: "atteinte", False: "**manquée**", None: "non mesurée"}[atteinte]


def tableau_markdown(entetes, lignes):
    """Un tableau markdown (affiché tel quel en console, inclus dans le .md)."""
    texte = "| " + " | ".join(entetes) + " |\n"
    texte += "|" + "|".join(" --- " for _ in entetes) + "|\n"
    for ligne in lignes:
        texte += "| " + " | ".join(str(c) for c in ligne) + " |\n"
    return texte


def tableau_cibles(cibles):
    return tableau_markdown(
        ["cible", "mesuré", "visé", "verdict"],
        [[c["nom"], c["texte"], c["cible"], verdict(c["atteinte"])]
         for c in cibles])


def markdown_section(nom, section):
    """Une section de résultats en markdown : tableaux, cibles, remarques."""
    texte = f"## {TITRES.get(nom, nom)}\n\n"
    machine_md = texte_machine(section["machine"]).replace("\n", "  \n")
    texte += f"Machine : {machine_md}\n\n"
    config = " ; ".join(f"{k} : {v}" for k, v in section["config"].items())
    texte += f"Configuration : {config}\n\n"
    for tableau in section.get("tableaux", []):
        texte += f"{tableau['titre']}\n\n"
        texte += tableau_markdown(tableau["entetes"], tableau["lignes"]) + "\n"
    if section.get("cibles"):
        texte += tableau_cibles(section["cibles"]) + "\n"
    for remarque in section.get("remarques", []):
        texte += f"- {remarque}\n"
    return texte + "\n"


def afficher_section(section):
    """La fin de la sortie console d'un banc : tableaux, cibles, remarques."""
    for tableau in section.get("tableaux", []):
        print(f"\n{tableau['titre']}\n")
        print(tableau_markdown(tableau["entetes"], tableau["lignes"]))
    if section.get("cibles"):
        print(tableau_cibles(section["cibles"]))
    for remarque in section.get("remarques", []):
        print(f"- {remarque}")


def enregistrer(nom, section, chemin_json=RESULTATS_JSON, chemin_md=RESULTATS_MD):
    """Range ``section`` sous ``nom`` dans le JSON, puis réécrit le markdown."""
    chemin_json, chemin_md = Path(chemin_json), Path(chemin_md)
    try:
        tout = json.loads(chemin_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tout = {}
    tout[nom] = section
    provisoire = chemin_json.with_suffix(".partiel")
    provisoire.write_text(json.dumps(tout, ensure_ascii=False, indent=1),
                          encoding="utf-8")
    provisoire.replace(chemin_json)  # jamais de JSON à moitié écrit
    md = ("# Résultats des bancs d'essai\n\n"
          "Fichier généré par `make bench` (voir `bench/`), ne pas modifier à "
          "la main.\n\n")
    for cle in [c for c in TITRES if c in tout] + [c for c in tout
                                                   if c not in TITRES]:
        md += markdown_section(cle, tout[cle])
    chemin_md.write_text(md, encoding="utf-8")
    print(f"\nRésultats écrits dans {chemin_json} et {chemin_md}")
    return tout
