"""Passer à l'échelle : la boucle d'Entraînement en parallèle de données (DDP).

Chaque processus (un « rang ») garde une copie entière du modèle et prend, à
chaque pas du plan, sa part des exemples du lot : les exemples ``rang``,
``rang + monde``, ``rang + 2 × monde``… DDP fait la moyenne des gradients
entre les rangs pendant la rétropropagation ; les optimiseurs, identiques,
font donc tous la même mise à jour.

Lancement (2 processus sur CPU, backend gloo ; sur GPU, NCCL est choisi) :
``python -m torch.distributed.run --nproc_per_node 2 -m tutorial_code.echelle_ddp
--sortie DOSSIER`` (voir ``--help``) ; ``--minuscule`` remplace le modèle
embarqué par un petit Llama aléatoire (tests).
"""

import contextlib
import json
import math
import os
import random
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tutorial_code.aide import creer_parser
from tutorial_code.entrainement import (
    ConfigEntrainement,
    appliquer_methode,
    facteur_lr,
    jetons_comptes,
    perte_somme,
    planifier,
)
from tutorial_code.lots import collate_packing
from tutorial_code.tokenisation import IGNORE


# [region:initialiser]
def initialiser():
    """(rang, monde, device) ; ouvre le groupe de processus sous torchrun.

    torchrun (ou ``accelerate launch``) fixe RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR et MASTER_PORT dans l'environnement de chaque processus.
    Lancé seul (sans ces variables), le script tourne en un seul processus.
    """
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    locaux = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # processus de la machine
    if torch.cuda.device_count() >= locaux:  # un GPU par processus, NCCL entre eux
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:  # sans GPU (ou moins que de processus) : gloo, qui passe par TCP
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size(), device
# [fin:initialiser]


# [region:part]
def part_du_rang(lot, rang, monde):
    """Les exemples du lot qui reviennent à ce rang : un sur ``monde``.

    Le plan trie chaque méga-lot par longueur : en prenant les exemples en
    alternance, chaque rang reçoit des longueurs voisines, donc un temps de
    calcul voisin (le plus lent fait attendre les autres à chaque pas).
    """
    return lot[rang::monde]
# [fin:part]


def total_global(valeur, device):
    """Somme de ``valeur`` sur tous les rangs (elle-même hors distribution)."""
    if not dist.is_initialized():
        return valeur
    t = torch.tensor([float(valeur)], device=device)
    dist.all_reduce(t)  # somme, par défaut
    return int(t.item())


# [region:boucle]
def entrainer_distribue(model, train, config, rang=0, monde=1, device="cpu"):
    """``entrainer`` d'Entraînement, rang par rang ; renvoie les parts vues.

    Même plan (même graine) sur tous les rangs ; chaque rang ne calcule que sa
    part de chaque pas. La perte est une somme sur les jetons, divisée par les
    jetons de TOUTE la mise à jour, tous rangs confondus (``all_reduce`` du
    compte). DDP fait la MOYENNE des gradients sur les ``monde`` rangs : on
    multiplie donc par ``monde`` pour retrouver la somme, soit exactement le
    gradient d'un seul processus sur le lot entier.
    """
    torch.manual_seed(config.graine)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiseur = torch.optim.AdamW(params, lr=config.lr,
                                   weight_decay=config.weight_decay)
    plan = planifier([len(e["input_ids"]) for e in train], config)
    n_maj = math.ceil(len(plan) / config.accumulation)
    planificateur = torch.optim.lr_scheduler.LambdaLR(
        optimiseur, lambda m: facteur_lr(m, n_maj, config.warmup))
    ddp = DistributedDataParallel(model) if dist.is_initialized() else model
    vues = []
    for pas in range(len(plan)):
        ddp.train()
        premier = pas - pas % config.accumulation
        micro = plan[premier:premier + config.accumulation]
        mien = part_du_rang(plan[pas], rang, monde)
        n_local = sum(jetons_comptes(train[i]) for m in micro
                      for i in part_du_rang(m, rang, monde))
        n_maj_jetons = total_global(n_local, device)  # jetons de tous les rangs
        # Une part vide (lot plus petit que le monde) passe quand même par DDP,
        # sur un exemple et avec un poids nul : tous les rangs doivent se synchroniser.
        lot = collate_packing([train[i] for i in (mien or plan[pas][:1])])
        lot = {k: v.to(device) for k, v in lot.items()}
        fin_maj = (pas + 1) % config.accumulation == 0 or pas + 1 == len(plan)
        # no_sync : pas d'échange de gradients avant le dernier micro-lot.
        synchro = (ddp.no_sync() if ddp is not model and not fin_maj
                   else contextlib.nullcontext())
        with synchro:
            perte, _ = perte_somme(ddp, lot)
            poids = monde / n_maj_jetons if mien else 0.0
            (perte * poids).backward()
        if fin_maj:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimiseur.step()
            planificateur.step()
            optimiseur.zero_grad(set_to_none=True)
        vues.append(mien)
    return vues
# [fin:boucle]


def capturer_gradients(model):
    """Dict rempli, juste avant la 1re mise à jour, des gradients entraînables.

    Un crochet global d'optimiseur : ni la boucle ni l'optimiseur ne changent.
    """
    gradients = {}

    def crochet(optimiseur, args, kwargs):
        if not gradients:
            gradients.update({n: p.grad.detach().cpu().clone()
                              for n, p in model.named_parameters()
                              if p.requires_grad and p.grad is not None})

    register_optimizer_step_pre_hook(crochet)
    return gradients


def llama_minuscule(graine=0):
    """Un Llama de 2 couches, 64 dimensions, poids aléatoires (graine fixée)."""
    from transformers import LlamaForCausalLM

    from tutorial_code.modeles import config_llama_minuscule

    torch.manual_seed(graine)
    return LlamaForCausalLM(config_llama_minuscule())


def exemples_aleatoires(n, graine=0):
    """``n`` exemples tokenisés au hasard : invite (étiquettes -100), réponse."""
    hasard = random.Random(graine)
    exemples = []
    for _ in range(n):
        invite, reponse = hasard.randint(4, 20), hasard.randint(3, 20)
        ids = [hasard.randrange(128) for _ in range(invite + reponse)]
        exemples.append({"input_ids": ids,
                         "labels": [IGNORE] * invite + ids[invite:]})
    return exemples


def preparer(minuscule, rapide, config):
    """(modèle avec LoRA, exemples d'entraînement, config) de ce lancement."""
    if minuscule:
        model, train = llama_minuscule(config.graine), exemples_aleatoires(16)
    else:  # le modèle et les données du chapitre Entraînement
        from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele
        from tutorial_code.recette import preparer_exemples

        model, tokenizer = charger_modele(MODELE_EMBARQUE, dtype=torch.float32,
                                          verbeux=False)
        train, _, _ = preparer_exemples(tokenizer)
        train = train[:32] if rapide else train
    torch.manual_seed(config.graine)  # même initialisation de LoRA partout
    return appliquer_methode(model, config), train, config


def analyser_arguments(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.echelle_ddp",
        description="Entraîne en parallèle de données (DDP) : à lancer avec "
                    "« python -m torch.distributed.run --nproc_per_node N "
                    "-m tutorial_code.echelle_ddp … » (ou accelerate launch).")
    parser.add_argument("--sortie", required=True,
                        help="dossier où le rang 0 écrit les poids entraînés "
                             "(safetensors) et les parts vues par chaque rang")
    parser.add_argument("--pas", type=int, default=2,
                        help="nombre de pas du plan (0 : tout le plan)")
    parser.add_argument("--taille-lot", type=int, default=16,
                        help="exemples par pas, tous rangs confondus")
    parser.add_argument("--accumulation", type=int, default=1,
                        help="pas accumulés avant chaque mise à jour")
    parser.add_argument("--max-grad-norm", type=float, default=1.0,
                        help="seuil d'écrêtage (très grand : gradients bruts)")
    parser.add_argument("--minuscule", action="store_true",
                        help="petit Llama aléatoire et exemples aléatoires (tests)")
    parser.add_argument("--rapide", action="store_true",
                        help="32 exemples seulement (AFFINAGE_RAPIDE=1 de même)")
    return parser.parse_args(argv)


# [region:main]
def main(argv=None):
    args = analyser_arguments(argv)
    rapide = args.rapide or os.environ.get("AFFINAGE_RAPIDE") == "1"
    rang, monde, device = initialiser()
    config = ConfigEntrainement(methode="lora", num_epochs=1, lr=2e-3,
                                taille_lot=args.taille_lot,
                                accumulation=args.accumulation, max_pas=args.pas,
                                max_grad_norm=args.max_grad_norm)
    model, train, config = preparer(args.minuscule, rapide, config)
    gradients = capturer_gradients(model)
    vues = entrainer_distribue(model.to(device), train, config, rang, monde,
                               device)
    toutes = [vues]
    if monde > 1:  # le rang 0 rassemble les parts vues par chacun
        toutes = [None] * monde
        dist.all_gather_object(toutes, vues)
    if rang == 0:
        sortie = Path(args.sortie)
        sortie.mkdir(parents=True, exist_ok=True)
        poids = {n: p.detach().cpu().contiguous()
                 for n, p in model.named_parameters() if p.requires_grad}
        save_file(poids, sortie / "poids.safetensors")
        save_file(gradients, sortie / "gradients.safetensors")
        (sortie / "parts.json").write_text(json.dumps(
            {"monde": monde, "parts": toutes}))
        for r, parts in enumerate(toutes):
            print(f"rang {r} : exemples {parts}")
        print(f"{monde} processus, {len(vues)} pas : poids écrits dans {sortie}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
# [fin:main]


if __name__ == "__main__":
    raise SystemExit(main())
