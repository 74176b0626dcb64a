"""Passer à l'échelle sur un seul GPU : QLoRA et gradient checkpointing.

* QLoRA : le modèle de base chargé en 4 bits (NF4, bitsandbytes), gelé ; seuls
  les adaptateurs LoRA s'entraînent, en bf16. Il faut un GPU CUDA : sans lui,
  ``verifier_cuda`` explique en français pourquoi l'étape est sautée.
* Gradient checkpointing : on ne garde que l'entrée de chaque bloc pendant la
  passe avant, et l'on recalcule le reste pendant la passe arrière. Mesuré
  ici sur CPU avec le modèle embarqué, dans un processus neuf par réglage.

Exécutable : ``python -m tutorial_code.echelle_un_gpu`` lance QLoRA (ou dit
pourquoi c'est impossible ici) ; ``--mesurer avec|sans`` mesure un réglage
du gradient checkpointing et affiche le résultat en JSON.
"""

import json
import os
import subprocess
import sys
import time

import torch

from tutorial_code.aide import creer_parser
from tutorial_code.echelle_ddp import entrainer_distribue
from tutorial_code.entrainement import ConfigEntrainement, perte_somme
from tutorial_code.lots import collate_packing

LLAMA2_7B_CHAT = "meta-llama/Llama-2-7b-chat-hf"


class CudaIndisponible(RuntimeError):
    """QLoRA demande un GPU CUDA et bitsandbytes (message en français)."""


# [region:garde]
def verifier_cuda():
    """Lève ``CudaIndisponible`` avec l'explication, si QLoRA ne peut pas tourner."""
    if not torch.cuda.is_available():
        raise CudaIndisponible(
            "QLoRA sauté : aucun GPU CUDA ici. Les poids 4 bits NF4 de "
            "bitsandbytes ne se calculent que sur GPU ; sur ce processeur, "
            "Llama 2 7B demanderait 13 Gio de poids en bf16 et plusieurs "
            "minutes par pas. Lancez ce code sur une machine avec un GPU NVIDIA (8 Gio "
            "suffisent) et « pip install bitsandbytes ».")
    try:
        import bitsandbytes  # noqa: F401 (seulement sur le chemin CUDA)
    except ImportError:
        raise CudaIndisponible(
            "QLoRA sauté : bitsandbytes n'est pas installé. Sur cette machine "
            "avec GPU, lancez « pip install bitsandbytes ».") from None
# [fin:garde]


# [region:qlora]
def config_qlora():
    """Quantification 4 bits de QLoRA : NF4, double quantification, calcul bf16."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def charger_qlora(nom=LLAMA2_7B_CHAT, r=16):
    """Llama 2 7B chat en 4 bits sur le GPU 0, prêt pour LoRA (CUDA requis)."""
    verifier_cuda()
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        nom, quantization_config=config_qlora(), device_map={"": 0},
        dtype=torch.bfloat16)
    # Normes en fp32, gradient checkpointing, entrées qui portent un gradient.
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    lora = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora), AutoTokenizer.from_pretrained(nom)


def affiner_qlora(train, nom=LLAMA2_7B_CHAT, max_pas=0):
    """La boucle du chapitre sur un GPU : lots de 4, accumulation 4, lr 2e-4."""
    model, _ = charger_qlora(nom)
    config = ConfigEntrainement(methode="lora", num_epochs=1, lr=2e-4,
                                taille_lot=4, accumulation=4, max_pas=max_pas)
    debut = time.perf_counter()
    entrainer_distribue(model, train, config, device=torch.device("cuda", 0))
    return model, time.perf_counter() - debut, torch.cuda.max_memory_allocated()
# [fin:qlora]


def rss_octets():
    """Mémoire résidente actuelle du processus (Linux, /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pic_octets():
    """Le plus haut niveau de mémoire résidente atteint (``VmHWM``, Linux)."""
    with open("/proc/self/status") as f:
        ligne = next(ligne for ligne in f if ligne.startswith("VmHWM:"))
    return int(ligne.split()[1]) * 1024  # Kio → octets


def repartir_du_niveau_actuel():
    """Ramène ``VmHWM`` à la mémoire résidente actuelle (écrire « 5 » dans
    /proc/self/clear_refs) : le pic lu ensuite ne compte plus le chargement.
    Renvoie faux si le noyau le refuse ; le pic inclut alors le chargement."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# [region:mesurer]
def mesurer_checkpointing(avec, n_exemples=2, n_pas=2):
    """Durée d'un pas (avant + arrière) et pic de mémoire ajouté par le pas.

    Pic : le plus haut niveau de mémoire résidente atteint pendant les pas
    (``VmHWM``, remis au niveau actuel juste avant le 1er pas) moins la
    mémoire résidente à cet instant ; c'est ce que les activations gardées,
    les gradients et les tampons temporaires ajoutent au modèle déjà chargé.
    Un processus neuf par réglage : le premier ne laisse rien au second.
    """
    from tutorial_code.entrainement import appliquer_methode
    from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele
    from tutorial_code.recette import preparer_exemples

    model, tokenizer = charger_modele(MODELE_EMBARQUE, dtype=torch.float32,
                                      verbeux=False)
    train, _, _ = preparer_exemples(tokenizer)
    if avec:  # non réentrant : compatible avec LoRA sans autre réglage
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False})
    model = appliquer_methode(model, ConfigEntrainement()).train()
    lot = collate_packing(train[:n_exemples])  # (1, N) jetons
    sans_chargement = repartir_du_niveau_actuel()
    avant = rss_octets()
    durees = []
    for _ in range(n_pas):
        debut = time.perf_counter()
        perte, _ = perte_somme(model, lot)
        perte.backward()
        model.zero_grad(set_to_none=True)
        durees.append(time.perf_counter() - debut)
    return {"jetons": lot["input_ids"].shape[1], "secondes": min(durees),
            "pic_mio": (pic_octets() - avant) / 2**20,
            "sans_chargement": sans_chargement}
# [fin:mesurer]


def mesurer_dans_un_processus(avec):
    """``mesurer_checkpointing`` dans un processus Python neuf (pic propre)."""
    commande = [sys.executable, "-m", "tutorial_code.echelle_un_gpu",
                "--mesurer", "avec" if avec else "sans"]
    sortie = subprocess.run(commande, capture_output=True, text=True, check=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    return json.loads(sortie.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.echelle_un_gpu",
        description="QLoRA sur Llama 2 7B chat (GPU CUDA requis, sinon on "
                    "explique pourquoi) ; ou mesure du gradient checkpointing.")
    parser.add_argument("--mesurer", choices=["avec", "sans"],
                        help="mesure un pas avec ou sans gradient checkpointing "
                             "(modèle embarqué, CPU) et affiche du JSON")
    parser.add_argument("--pas", type=int, default=8,
                        help="pas d'affinage QLoRA (défaut : 8)")
    args = parser.parse_args(argv)
    if args.mesurer:
        print(json.dumps(mesurer_checkpointing(args.mesurer == "avec")))
        return 0
    try:
        verifier_cuda()
    except CudaIndisponible as raison:
        print(raison)
        return 0
    from transformers import AutoTokenizer

    from tutorial_code.recette import preparer_exemples

    train, _, _ = preparer_exemples(AutoTokenizer.from_pretrained(LLAMA2_7B_CHAT))
    _, duree, pic = affiner_qlora(train, max_pas=args.pas)
    print(f"QLoRA, {args.pas} pas : {duree:.0f} s, pic GPU {pic / 2**30:.1f} Gio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
