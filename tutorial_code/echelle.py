"""Passer à l'échelle : la mémoire par GPU, et ce qu'il faut changer pour un 7B.

Les comptes d'Entraînement (``tutorial_code.memoire``) étendus à N GPU :

* DDP : chaque GPU garde tout (poids, gradients, états d'AdamW) ;
* ZeRO-2 : gradients et états d'AdamW partagés entre les N GPU ;
* FSDP ``FULL_SHARD`` (= ZeRO-3) : les poids aussi ; chaque GPU n'en garde
  que 1/N, et rassemble les poids d'un bloc le temps de le calculer.

Hors activations, comme dans Entraînement. Les temps sont des estimations :
jetons × FLOP par jeton ÷ débit supposé (constantes ci-dessous).

Exécutable : ``python -m tutorial_code.echelle`` affiche les tableaux.
"""


from transformers import LlamaConfig

from tutorial_code.aide import creer_parser
from tutorial_code.memoire import (
    compter_lora,
    compter_parametres,
    dimensions,
    llama2_7b,
    memoire_entrainement,
)
from tutorial_code.nombres import formater

MODES = ["DDP", "ZeRO-2", "FSDP"]


def llama2_13b():
    """La configuration publiée de Llama 2 13B (aucun téléchargement)."""
    return LlamaConfig(vocab_size=32000, hidden_size=5120, intermediate_size=13824,
                       num_hidden_layers=40, num_attention_heads=40,
                       num_key_value_heads=40, tie_word_embeddings=False)


# [region:par-gpu]
def memoire_par_gpu(n_total, n_entrainables, precision, n_gpu, mode):
    """Octets par GPU (poids, gradients, AdamW) répartis selon ``mode``.

    ``memoire_entrainement`` donne le total pour un seul GPU ; on divise par
    ``n_gpu`` ce que le mode partage : rien (DDP), gradients et AdamW
    (ZeRO-2), tout (FSDP ``FULL_SHARD`` / ZeRO-3).
    """
    m = memoire_entrainement(n_total, n_entrainables, precision)
    partages = {"DDP": (), "ZeRO-2": ("gradients", "optimiseur"),
                "FSDP": ("poids", "gradients", "optimiseur")}[mode]
    return {k: v / n_gpu if k in partages else v for k, v in m.items()}
# [fin:par-gpu]


# [region:qlora]
def memoire_qlora(config, r=16):
    """Octets de QLoRA sur un GPU : base en 4 bits, LoRA en bf16 mixte.

    Les matrices des blocs passent en NF4 : 4 bits par poids, plus les
    constantes de quantification doublement quantifiées (un octet par bloc de
    64 poids, un fp32 par groupe de 256 blocs : 8/64 + 32/(64 × 256) =
    0,127 bit par poids). Plongements, tête de langage et normes restent en
    bf16 (2 o). Les adaptateurs : 2 + 2 + 12 o par paramètre (Entraînement).
    """
    n = compter_parametres(config)
    par_bloc = sum(i * o for i, o in dimensions(config).values())  # 7 matrices
    blocs = par_bloc * config.num_hidden_layers  # poids quantifiés en NF4
    bits = 4 + 8 / 64 + 32 / (64 * 256)  # bits par poids quantifié
    n_lora = compter_lora(config, r)
    return {"poids": blocs * bits / 8 + 2 * (n - blocs),
            "gradients": 2 * n_lora, "optimiseur": 12 * n_lora}
# [fin:qlora]


def gio(octets):
    """Octets → Gio, à la française (« 12,6 »)."""
    return formater(octets / 2**30)


def tableau_par_gpu(modeles, gpus=(1, 2, 4, 8), r=16):
    """(entêtes, lignes) : Gio par GPU, bf16 mixte, hors activations."""
    entetes = ["modèle", "méthode", "répartition"] + [f"{n} GPU" for n in gpus]
    lignes = []
    for nom, config in modeles.items():
        n = compter_parametres(config)
        for methode, entrainables in (("complet", n),
                                      (f"LoRA r={r}", compter_lora(config, r))):
            for mode in MODES:
                totaux = [sum(memoire_par_gpu(n, entrainables, "bf16", k,
                                              mode).values()) for k in gpus]
                lignes.append([nom, methode, mode] + [gio(t) for t in totaux])
        lignes.append([nom, f"QLoRA r={r}", "1 GPU",
                       gio(sum(memoire_qlora(config, r).values()))]
                      + ["—"] * (len(gpus) - 1))
    return entetes, lignes


# [region:hypotheses]
CRETE_BF16 = 312e12  # FLOP/s bf16 d'un A100 (fiche technique), par GPU
MFU = 0.35  # part de la crête réellement atteinte : une hypothèse courante
FLOP_PAR_PARAMETRE = {"complet": 6, "LoRA": 4, "QLoRA": 6}  # par jeton


def secondes_par_epoque(n_params, jetons, methode, n_gpu):
    """Temps estimé d'une époque : FLOP ÷ (GPU × crête × MFU).

    Par jeton et par paramètre : 2 FLOP en avant, 4 en arrière (gradient des
    activations 2, des poids 2), soit 6 en complet. LoRA ne calcule pas le
    gradient des poids gelés : 4. QLoRA, avec gradient checkpointing, refait
    la passe avant : 4 + 2 = 6.
    """
    flop = FLOP_PAR_PARAMETRE[methode] * n_params * jetons
    return flop / (n_gpu * CRETE_BF16 * MFU)
# [fin:hypotheses]


# [region:scenarios]
# (nom, GPU, méthode, répartition, lot par GPU, accumulation, lr)
# Le lot effectif reste 16 exemples par mise à jour : mêmes lr qu'à 1 GPU.
SCENARIOS = [
    ("7B, 1 GPU", 1, "QLoRA", "—", 4, 4, 2e-4),
    ("7B, 2 GPU", 2, "LoRA", "DDP", 4, 2, 2e-4),
    ("7B, 8 GPU", 8, "complet", "FSDP", 2, 1, 2e-5),
]
# [fin:scenarios]


def duree(secondes):
    """« 42 s », « 3 min 20 s », « 2 h 05 »."""
    s = round(secondes)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s // 60 % 60:02d}"


def tableau_changements(jetons_epoque, r=16, recette=None):
    """(entêtes, lignes) : du tutoriel (``recette`` : sa ConfigEntrainement, par
    défaut celle d'Entraînement) à Llama 2 7B sur 1, 2 et 8 GPU. La mémoire et
    la durée du tutoriel sont mesurées au chapitre Entraînement, pas estimées."""
    if recette is None:
        from tutorial_code.recette import RECETTE  # la recette du tutoriel

        recette = RECETTE["lora"]
    config = llama2_7b()
    n, n_lora = compter_parametres(config), compter_lora(config, r)
    entetes = ["configuration", "méthode", "précision",
               "lot par GPU × accumulation × GPU", "lr",
               "mémoire par GPU (estimation)", "temps par époque (estimation)",
               "pour 100 M jetons (estimation)"]
    lignes = [["tutoriel (CPU, SmolLM2-135M)", f"LoRA r={recette.lora_r}",
               "bf16 ou fp32", f"{recette.taille_lot} × {recette.accumulation} × 1",
               f"{recette.lr:.0e}".replace("e-0", "e-"), "voir Entraînement",
               "voir Entraînement", "—"]]
    for nom, k, methode, mode, lot, accumulation, lr in SCENARIOS:
        if methode == "QLoRA":
            octets, precision = sum(memoire_qlora(config, r).values()), "NF4 + bf16"
        else:
            entrainables = n if methode == "complet" else n_lora
            octets = sum(memoire_par_gpu(n, entrainables, "bf16", k, mode).values())
            precision = "bf16 mixte"
        etiquette = methode + (f" ({mode})" if mode != "—" else "")
        lignes.append([nom, etiquette, precision, f"{lot} × {accumulation} × {k}",
                       f"{lr:.0e}".replace("e-0", "e-"), gio(octets) + " Gio",
                       duree(secondes_par_epoque(n, jetons_epoque, methode, k)),
                       duree(secondes_par_epoque(n, 100e6, methode, k))])
    return entetes, lignes


def texte_tableau(entetes, lignes):
    """Un tableau en texte, colonnes alignées."""
    largeurs = [max(len(str(ligne[i])) for ligne in [entetes] + lignes)
                for i in range(len(entetes))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(ligne, largeurs))
                     for ligne in [entetes] + lignes)


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.echelle",
        description="Mémoire par GPU pour Llama 2 7B et 13B (DDP, ZeRO-2, "
                    "FSDP, QLoRA) et ce qu'il faut changer pour un 7B.")
    parser.add_argument("--rang", type=int, default=16, help="rang r de LoRA")
    parser.add_argument("--jetons", type=int, default=96_125,
                        help="jetons par époque (défaut : ceux du tutoriel)")
    args = parser.parse_args(argv)
    modeles = {"Llama-2-7B": llama2_7b(), "Llama-2-13B": llama2_13b()}
    print(texte_tableau(*tableau_par_gpu(modeles, r=args.rang)))
    print()
    print(texte_tableau(*tableau_changements(args.jetons, args.rang)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
