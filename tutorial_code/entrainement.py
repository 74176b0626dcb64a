"""Entraînement : une boucle PyTorch lisible, pour LoRA ou l'affinage complet.

Le cœur du chapitre. Chaque pas : des exemples empaquetés en une rangée, la
perte sur les seuls jetons de réponse, la rétropropagation, l'écrêtage du
gradient, AdamW, un taux d'apprentissage en échauffement puis cosinus. Des
points de reprise permettent de reprendre un entraînement interrompu.

En ligne de commande : ``python -m tutorial_code.affinage --donnees DOSSIER --sortie
DOSSIER`` (voir ``--help``) ; ``--rapide`` pour un essai de quelques secondes.
"""

import contextlib
import errno
import io
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save
from tqdm.auto import tqdm

from tutorial_code.lots import collate_packing, lots_par_longueur, rangees
from tutorial_code.memoire import MODULES_LINEAIRES


class PointDeRepriseIncompatible(ValueError):
    """Le point de reprise vient d'un entraînement réglé autrement."""


class EcritureRepriseImpossible(OSError):
    """Le point de reprise n'a pas pu être écrit (disque plein, par exemple)."""


# [region:config]
@dataclass
class ConfigEntrainement:
    methode: str = "lora"  # "lora" ou "complet"
    num_epochs: int = 3
    lr: float = 2e-3
    taille_lot: int = 8  # exemples par pas, mis bout à bout en une rangée
    accumulation: int = 1  # pas accumulés avant chaque mise à jour
    warmup: float = 0.1  # part des mises à jour en échauffement linéaire
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    # LoRA sur les 7 projections linéaires de chaque bloc
    lora_cibles: list = field(default_factory=lambda: list(MODULES_LINEAIRES))
    lora_couches: int = 0  # > 0 : LoRA sur les N dernières couches seulement
    lora_tete: bool = False  # LoRA aussi sur la tête de langage (lm_head)
    graine: int = 0
    bf16: bool = False  # calcul en bfloat16 (autocast), poids gardés en fp32
    max_pas: int = 0  # > 0 : on arrête le plan après ce nombre de pas
    max_jetons: int = 512  # jetons par rangée au plus (0 : une rangée par pas)
# [fin:config]


# [region:lora]
def appliquer_methode(model, config):
    """LoRA : le modèle de base est gelé, seuls A et B s'entraînent.

    Complet : tous les poids s'entraînent (et il faut stocker leurs gradients
    et deux états AdamW chacun).
    """
    if config.methode == "complet":
        model.requires_grad_(True)
        return model
    n = model.config.num_hidden_layers
    # Sur les dernières couches seulement, la rétropropagation s'arrête à la
    # première couche adaptée : les couches du dessous ne font que la passe avant.
    couches = list(range(n - config.lora_couches, n)) if config.lora_couches else None
    cibles = config.lora_cibles
    if config.lora_tete:  # lm_head n'a pas de numéro de couche : on nomme tout
        numeros = "|".join(map(str, couches)) if couches else r"\d+"
        cibles = (rf".*\.layers\.({numeros})\..*\.({'|'.join(cibles)})"
                  r"|(.*\.)?lm_head")
        couches = None
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      target_modules=cibles, lora_dropout=0.0,
                      layers_to_transform=couches, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)
# [fin:lora]


# [region:calendrier]
def facteur_lr(pas, total, warmup):
    """Multiplicateur du taux d'apprentissage : montée linéaire puis cosinus."""
    n_warmup = max(1, round(warmup * total))
    if pas < n_warmup:
        return (pas + 1) / n_warmup
    progres = (pas - n_warmup) / max(1, total - n_warmup)  # de 0 à 1
    return 0.5 * (1 + math.cos(math.pi * progres))
# [fin:calendrier]


# [region:perte]
def perte_somme(model, lot, tranche=128):
    """(somme des pertes, nombre de jetons comptés) pour un lot empaqueté.

    Le logit en position t prédit le jeton t + 1 : on décale les étiquettes
    d'un cran. On ne calcule la tête de langage (576 → 49 152) qu'aux positions
    dont l'étiquette suivante compte, via ``logits_to_keep`` : sur les jetons
    de l'invite, ce produit de taille 576 × 49 152 n'est pas calculé.
    """
    appareil = next(model.parameters()).device  # le processeur, ou un GPU
    lot = {cle: t.to(appareil) for cle, t in lot.items()}  # sans copie sur CPU
    suivantes = lot["labels"][0, 1:]  # (N - 1,) étiquette du jeton suivant
    positions = (suivantes != -100).nonzero().squeeze(1)  # (k,)
    logits = model(input_ids=lot["input_ids"], position_ids=lot["position_ids"],
                   logits_to_keep=positions, use_cache=False).logits[0]  # (k, V)
    cibles = suivantes[positions]
    # L'entropie croisée par tranches de 128 positions : la copie fp32 des
    # logits n'existe que pour une tranche à la fois et, sans gradient (à
    # l'évaluation), leur log-softmax aussi (Gemma 3 : 128 × 262 144 × 4 octets
    # = 134 Mo par tranche, contre 537 Mo d'un coup pour 512 positions).
    perte = logits.new_zeros((), dtype=torch.float32)
    for i in range(0, len(positions), tranche):
        perte = perte + F.cross_entropy(logits[i:i + tranche].float(),
                                        cibles[i:i + tranche], reduction="sum")
    return perte, len(positions)
# [fin:perte]


def contexte_calcul(config, model=None):
    """Autocast bf16 si demandé, sur l'appareil du modèle (CPU par défaut)."""
    if config.bf16:
        genre = "cpu" if model is None else next(model.parameters()).device.type
        return torch.autocast(genre, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def perte_moyenne(model, exemples, config):
    """Perte moyenne par jeton de réponse (et perplexité = exp de celle-ci).

    Par rangées d'au plus ``config.max_jetons`` jetons, comme à l'entraînement :
    les logits d'une rangée restent bornés, quelle que soit la longueur des
    conversations d'un lot (Gemma 3 : au plus 512 positions × 262 144 mots du
    vocabulaire × 4 octets = 537 Mo).
    """
    model.eval()
    total, n = 0.0, 0
    for debut in range(0, len(exemples), config.taille_lot):
        for rangee in rangees(exemples[debut:debut + config.taille_lot],
                              config.max_jetons):
            with contexte_calcul(config, model):
                perte, k = perte_somme(model, collate_packing(rangee))
            total, n = total + perte.item(), n + k
    return total / max(n, 1)


def jetons_comptes(exemple):
    """Jetons dont la perte compte (étiquette du jeton suivant ≠ -100)."""
    return sum(etiquette != -100 for etiquette in exemple["labels"][1:])


def planifier(longueurs, config):
    """Tous les lots de tout l'entraînement, fixés d'avance par la graine.

    Un plan déterministe rend la reprise exacte : après une interruption au
    pas p, on repart du lot p du même plan.
    """
    plan = [lot for epoque in range(config.num_epochs)
            for lot in lots_par_longueur(longueurs, config.taille_lot,
                                         config.graine + epoque)]
    return plan[:config.max_pas] if config.max_pas else plan


# [region:boucle]
def entrainer(model, train, validation, config, sortie=None, sauver_tous=0,
              arreter_apres=None):
    """Entraîne ``model`` sur ``train`` (listes de dicts tokenisés).

    Renvoie l'historique : perte d'entraînement par mise à jour, perte de
    validation à chaque fin d'époque. ``sortie`` + ``sauver_tous`` écrivent un
    point de reprise tous les ``sauver_tous`` pas ; s'il en existe un, on
    reprend là où il s'était arrêté.
    """
    torch.manual_seed(config.graine)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiseur = torch.optim.AdamW(params, lr=config.lr,
                                   weight_decay=config.weight_decay)
    plan = planifier([len(e["input_ids"]) for e in train], config)
    n_maj = math.ceil(len(plan) / config.accumulation)  # mises à jour en tout
    planificateur = torch.optim.lr_scheduler.LambdaLR(
        optimiseur, lambda m: facteur_lr(m, n_maj, config.warmup))
    historique = {"pas": [], "perte": [], "validation": []}
    debut = 0
    if sortie and ranger_reprise(sortie):
        debut, historique = charger_reprise(sortie, model, optimiseur,
                                            planificateur, config)
    pas_par_epoque = math.ceil(len(train) / config.taille_lot)
    barre = tqdm(range(debut, len(plan)), desc="entraînement", unit="pas",
                 initial=debut, total=len(plan))
    for pas in barre:
        model.train()
        premier = pas - pas % config.accumulation  # 1er pas de cette mise à jour
        micro = plan[premier:premier + config.accumulation]
        # Normaliser par les jetons de TOUTE la mise à jour : même perte moyenne
        # qu'un seul grand lot, quel que soit le découpage en micro-lots.
        n_maj_jetons = sum(jetons_comptes(train[i]) for m in micro for i in m)
        perte, k = 0.0, 0
        # Une passe avant + arrière par rangée (au plus config.max_jetons
        # jetons) : leurs gradients s'additionnent, comme ceux des micro-lots.
        for rangee in rangees([train[i] for i in plan[pas]], config.max_jetons):
            with contexte_calcul(config, model):
                perte_r, k_r = perte_somme(model, collate_packing(rangee))
            (perte_r / n_maj_jetons).backward()
            perte, k = perte + perte_r.item(), k + k_r
        if (pas + 1) % config.accumulation == 0 or pas + 1 == len(plan):
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimiseur.step()
            planificateur.step()
            optimiseur.zero_grad(set_to_none=True)
        historique["pas"].append(pas + 1)
        historique["perte"].append(perte / max(k, 1))
        barre.set_postfix(perte=f"{historique['perte'][-1]:.3f}")
        if validation and ((pas + 1) % pas_par_epoque == 0 or pas + 1 == len(plan)):
            historique["validation"].append(
                (pas + 1, perte_moyenne(model, validation, config)))
        fin_maj = (pas + 1) % config.accumulation == 0
        if sortie and sauver_tous and (pas + 1) % sauver_tous == 0 and fin_maj:
            sauver_reprise(sortie, pas + 1, model, optimiseur, planificateur,
                           config, historique)
        if arreter_apres is not None and pas + 1 >= arreter_apres:
            break  # simule une interruption (tests, démonstration)
    model.eval()
    return historique
# [fin:boucle]


# [region:reprise]
def ranger_reprise(sortie):
    """Range les restes d'une écriture interrompue ; dit s'il y a une reprise.

    Un point de reprise s'écrit dans ``reprise.en-cours``, puis prend la place
    de ``reprise`` (l'ancien passe par ``reprise.ancienne``). Tué entre ces deux
    renommages, le processus laisse un nouveau point complet, qu'on met en
    place ; tout autre reste est effacé.
    """
    dossier = Path(sortie) / "reprise"
    en_cours = dossier.with_name("reprise.en-cours")
    ancienne = dossier.with_name("reprise.ancienne")
    if not dossier.exists() and ancienne.exists():
        os.replace(en_cours if en_cours.exists() else ancienne, dossier)
    shutil.rmtree(en_cours, ignore_errors=True)
    shutil.rmtree(ancienne, ignore_errors=True)
    return dossier.exists()


def _ecrire(chemin, donnees):
    """Écrit ``donnees`` (octets) dans ``chemin``, jusque sur le disque."""
    with open(chemin, "wb") as fichier:
        fichier.write(donnees)
        fichier.flush()
        os.fsync(fichier.fileno())


def sauver_reprise(sortie, pas, model, optimiseur, planificateur, config,
                   historique):
    """Point de reprise : poids entraînables (safetensors), états AdamW, pas.

    Tout s'écrit d'abord dans un dossier voisin, qui ne prend la place de
    ``reprise`` qu'une fois complet : un processus tué à n'importe quel
    instant laisse l'ancien point de reprise ou le nouveau, jamais un mélange.
    On sérialise en mémoire (une copie, le temps de l'écrire) puis on écrit
    avec Python : un disque plein lève alors un vrai ``OSError`` (ENOSPC), que
    safetensors et ``torch.save``, qui écrivent eux-mêmes, changent en
    ``SafetensorError`` ou en ``RuntimeError`` sans le numéro d'erreur.
    """
    dossier = Path(sortie) / "reprise"
    en_cours = dossier.with_name("reprise.en-cours")
    ancienne = dossier.with_name("reprise.ancienne")
    ranger_reprise(sortie)
    poids = {n: p.detach().contiguous() for n, p in model.named_parameters()
             if p.requires_grad}
    try:
        en_cours.mkdir(parents=True)
        _ecrire(en_cours / "poids.safetensors", save(poids))
        tampon = io.BytesIO()
        torch.save({"optimiseur": optimiseur.state_dict(),
                    "planificateur": planificateur.state_dict()}, tampon)
        _ecrire(en_cours / "optimiseur.pt", tampon.getbuffer())
        _ecrire(en_cours / "etat.json", json.dumps(
            {"pas": pas, "config": asdict(config),
             "historique": historique}).encode())
        # Un dossier non vide ne se remplace pas d'un coup : on écarte l'ancien,
        # on met le nouveau à sa place, puis on efface l'ancien.
        if dossier.exists():
            os.replace(dossier, ancienne)
        os.replace(en_cours, dossier)
    except OSError as erreur:
        if ancienne.exists() and not dossier.exists():
            os.replace(ancienne, dossier)  # l'ancien reprend sa place
        shutil.rmtree(en_cours, ignore_errors=True)
        claire = EcritureRepriseImpossible(_message_ecriture(dossier, pas, erreur))
        claire.errno = erreur.errno  # ENOSPC reste lisible par le code appelant
        raise claire from erreur
    shutil.rmtree(ancienne, ignore_errors=True)


def _message_ecriture(dossier, pas, erreur):
    """Ce qui a échoué, et ce qui reste sur le disque."""
    plein = erreur.errno == errno.ENOSPC
    cause = "disque plein" if plein else (erreur.strerror or str(erreur))
    remede = "libérez de la place" if plein else "corrigez la cause"
    if dossier.exists():
        suite = (f"Le point de reprise précédent est intact : {remede}, puis "
                 "relancez (--reprendre en ligne de commande) ; l'entraînement "
                 "repartira de ce point.")
    else:
        suite = f"Aucun point de reprise précédent : {remede}, puis relancez."
    return (f"{dossier} : le point de reprise du pas {pas} n'a pas pu être "
            f"écrit ({cause}). {suite}")


def charger_reprise(sortie, model, optimiseur, planificateur, config):
    """Recharge un point de reprise ; refuse celui d'une autre configuration."""
    ranger_reprise(sortie)  # restes d'une écriture interrompue
    dossier = Path(sortie) / "reprise"
    etat = json.loads((dossier / "etat.json").read_text())
    if etat["config"] != asdict(config):
        ecarts = [k for k, v in asdict(config).items() if etat["config"].get(k) != v]
        raise PointDeRepriseIncompatible(
            f"{dossier} : ce point de reprise vient d'un entraînement réglé "
            f"autrement (différences : {', '.join(ecarts)}). Relancez avec les "
            "mêmes réglages, ou choisissez un autre dossier de sortie.")
    poids = load_file(dossier / "poids.safetensors")
    model.load_state_dict(poids, strict=False)
    # weights_only=True : on ne désérialise que des tenseurs, jamais du code.
    etats = torch.load(dossier / "optimiseur.pt", weights_only=True)
    optimiseur.load_state_dict(etats["optimiseur"])
    planificateur.load_state_dict(etats["planificateur"])
    print(f"Reprise au pas {etat['pas']} depuis {dossier}.")
    return etat["pas"], etat["historique"]
# [fin:reprise]
