"""Le calcul utile d'un entraînement et le pic mesuré de la machine (MFU).

MFU (*model FLOPs utilization*) : les opérations que le modèle exige
vraiment, divisées par la durée, rapportées au pic de la machine. Le pic est
mesuré ici, dans le même run, par des produits matriciels bf16 et fp32 aussi
rapides que torch sait les faire : pas une valeur de catalogue.

Le compte des opérations utiles, par jeton réel (le remplissage n'en fait
pas partie) et par couche linéaire de ``p`` poids :

* avant : ``2 p`` ; arrière : ``2 p`` pour le gradient des activations, plus
  ``2 p`` pour celui des poids s'ils s'entraînent (4 p gelé, 6 p entraîné) ;
  sous la plus basse couche qui s'entraîne (LoRA sur les dernières couches
  seulement), la rétropropagation s'arrête : ``2 p`` ;
* la tête de langage (576 → 49 152) ne compte qu'aux jetons dont la perte
  compte : ailleurs, son résultat ne sert à rien ;
* l'attention utile (produits QKᵀ et AV au sein de chaque exemple) est
  négligée : à ces longueurs (une centaine de jetons), elle pèse quelques
  pour cent.

Ne sont pas du calcul utile, et baissent donc la MFU : le remplissage, le
recalcul des activations (*gradient checkpointing*), et l'attention qu'une
rangée empaquetée calcule d'un exemple à l'autre avant de la masquer (sans
noyau à longueurs variables sur CPU, elle croît comme le carré de la
longueur de la rangée).
"""

import re
import time

import torch

TAILLES_PIC = (1024, 2048, 4096)


def compter_parametres(model):
    """Poids des couches linéaires, par rôle : corps gelé, corps entraîné, tête.

    Les adaptateurs LoRA sont des couches linéaires entraînées ; la couche
    d'origine qu'ils enveloppent (``base_layer``) compte comme gelée.
    """
    comptes = {"corps_avant_seul": 0, "corps_gele": 0, "corps_entraine": 0,
               "tete": 0, "tete_entrainee": False, "tete_lora": 0}
    premiere = min((int(m[1]) for nom, p in model.named_parameters()
                    if p.requires_grad and (m := re.search(r"\.layers\.(\d+)\.", nom))),
                   default=None)  # la plus basse couche qui s'entraîne
    for nom, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        n, parties = module.weight.numel(), nom.split(".")
        couche = re.search(r"\.layers\.(\d+)\.", nom)
        if "lm_head" in parties and parties[-1] in ("lm_head", "base_layer"):
            comptes["tete"] += n
            comptes["tete_entrainee"] = module.weight.requires_grad
        elif "lm_head" in parties:  # lora_A, lora_B de la tête
            comptes["tete_lora"] += n
        elif module.weight.requires_grad:
            comptes["corps_entraine"] += n
        elif couche and premiere is not None and int(couche[1]) < premiere:
            comptes["corps_avant_seul"] += n
        else:
            comptes["corps_gele"] += n
    return comptes


def flops_utiles(jetons, jetons_perte, params):
    """Opérations utiles d'un entraînement sur ``jetons`` jetons réels, dont
    ``jetons_perte`` comptent dans la perte (voir le docstring du module)."""
    corps = (2 * params.get("corps_avant_seul", 0) + 4 * params["corps_gele"]
             + 6 * params["corps_entraine"])
    tete = ((6 if params["tete_entrainee"] else 4) * params["tete"]
            + 6 * params.get("tete_lora", 0))
    return jetons * corps + jetons_perte * tete


def mfu(flops, secondes, pic_flops_par_s):
    """Part du pic réellement utilisée : (flops / secondes) / pic."""
    if secondes <= 0 or pic_flops_par_s <= 0:
        return None
    return flops / secondes / pic_flops_par_s


def flops_matmul(n):
    """Un produit de deux matrices n × n : n³ multiplications-additions."""
    return 2 * n ** 3


def mesurer_pic(dtype, tailles=TAILLES_PIC, duree_s=0.5, essais=3):
    """Le meilleur débit (flop/s) de ``torch.mm`` en ``dtype``, sur plusieurs
    tailles de matrices carrées ; renvoie (débit, taille qui l'atteint)."""
    meilleur, taille_meilleure = 0.0, None
    for n in tailles:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        c = torch.empty(n, n, dtype=dtype)
        for _ in range(2):  # les noyaux oneDNN se préparent au premier appel
            torch.mm(a, b, out=c)
        for _ in range(essais):
            k, debut = 0, time.perf_counter()
            while time.perf_counter() - debut < duree_s / essais or k == 0:
                torch.mm(a, b, out=c)
                k += 1
            debit = flops_matmul(n) * k / (time.perf_counter() - debut)
            if debit > meilleur:
                meilleur, taille_meilleure = debit, n
    return meilleur, taille_meilleure


def mesurer_pics(rapide=False):
    """Les pics bf16 et fp32 de la machine : {"bf16": (débit, n), ...}."""
    tailles = TAILLES_PIC[:2] if rapide else TAILLES_PIC
    duree = 0.2 if rapide else 0.6
    return {"bf16": mesurer_pic(torch.bfloat16, tailles, duree),
            "fp32": mesurer_pic(torch.float32, tailles, duree)}
