"""Les sorties de la page « Passer à l'échelle », produites par la construction.

Chaque bloc ``# [region:…]`` est montré tel quel dans la page ; ce qu'il
affiche est capturé dans ``docs/_sorties/echelle/``.
"""

import json
import subprocess
import sys

from matplotlib.figure import Figure
from transformers import AutoTokenizer

from construction.ecrire import capturer, ecrire_tableau
from tutorial_code.echelle import (
    FLOP_PAR_PARAMETRE,
    llama2_13b,
    memoire_par_gpu,
    memoire_qlora,
    tableau_changements,
    tableau_par_gpu,
    texte_tableau,
)
from tutorial_code.echelle_un_gpu import (
    CudaIndisponible,
    charger_qlora,
    mesurer_dans_un_processus,
    verifier_cuda,
)
from tutorial_code.memoire import (
    compter_parametres,
    llama2_7b,
)
from tutorial_code.modeles import preparer_modele_embarque
from tutorial_code.nombres import formater, pourcent
from tutorial_code.recette import RECETTE, preparer_exemples


def figure_checkpointing(mesures, chemin):
    """Deux barres : pic de mémoire ajouté et durée d'un pas, sans/avec."""
    fig = Figure(figsize=(7, 2.8), dpi=110)  # sans pyplot : aucun écran requis
    gauche, droite = fig.subplots(1, 2)
    noms = ["sans", "avec"]
    couleurs = ["#4a7ab5", "#d9822b"]
    for ax, cle, titre in ((gauche, "pic_mio", "Pic de mémoire ajouté (Mio)"),
                           (droite, "secondes", "Durée d'un pas (s)")):
        valeurs = [mesures[n][cle] for n in noms]
        barres = ax.bar(noms, valeurs, color=couleurs)
        ax.bar_label(barres, labels=[formater(v, 0 if cle == "pic_mio" else 2)
                                     for v in valeurs])
        ax.set_title(titre)
        ax.set_xlabel("gradient checkpointing")
        ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(chemin)


def lire_checkpointing(mesures):
    """La phrase qui lit la mesure du checkpointing, choisie d'après elle."""
    sans, avec = mesures["sans"], mesures["avec"]
    temps = avec["secondes"] / sans["secondes"] - 1
    if not (sans["sans_chargement"] and avec["sans_chargement"]):
        return ("Ce noyau n'a pas laissé remettre le pic à zéro avant le premier "
                "pas : le pic mesuré compte aussi le chargement du modèle, et "
                "ne dit rien du checkpointing.")
    if avec["pic_mio"] < 0.95 * sans["pic_mio"]:
        gain = 1 - avec["pic_mio"] / sans["pic_mio"]
        debut = (f"Ici, le checkpointing retire {pourcent(gain)} du pic ajouté "
                 "par un pas")
    else:
        debut = ("Ici, le checkpointing ne réduit pas le pic ajouté par un pas "
                 "(les activations de ce petit modèle, sur des séquences aussi "
                 "courtes, pèsent peu à côté des tampons du calcul)")
    # Par jeton et par paramètre : 2 FLOP pour la passe avant refaite, sur un
    # pas LoRA qui en compte 4 (voir secondes_par_epoque) : + 2 / 4 = + 50 %.
    prevu = 2 / FLOP_PAR_PARAMETRE["LoRA"]
    if temps > 0.05:
        suite = (f", et allonge le pas de {pourcent(temps)}. Le compte des FLOP "
                 f"prévoyait {pourcent(prevu)} : une passe avant de plus (2 FLOP par "
                 f"paramètre et par jeton) sur un pas LoRA qui en compte "
                 f"{FLOP_PAR_PARAMETRE['LoRA']}")
        if temps > 1.2 * prevu:
            suite += (" ; la mesure dépasse ce compte, qui ignore tout ce qui "
                      "n'est pas un produit de matrices.")
        elif temps < 0.8 * prevu:
            suite += " ; la mesure reste en dessous de ce compte."
        else:
            suite += " ; la mesure s'en approche."
    else:
        suite = (", et le pas n'est pas plus long à la précision de cette mesure "
                 "sur un processeur partagé.")
    return (debut + suite + " Le gain en mémoire porte sur les activations : il "
            "grandit avec la taille du modèle et la longueur des séquences.\n")


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    with capturer(dossier / "memoire_gpu.txt"):
        # [region:memoire-gpu]
        modeles = {"Llama-2-7B": llama2_7b(), "Llama-2-13B": llama2_13b()}
        print(texte_tableau(*tableau_par_gpu(modeles, gpus=(1, 2, 4, 8))))
        # [fin:memoire-gpu]
    with capturer(dossier / "qlora.txt"):
        # [region:qlora]
        try:
            verifier_cuda()
            model, tokenizer = charger_qlora("meta-llama/Llama-2-7b-chat-hf")
        except CudaIndisponible as raison:
            print(raison)
        # [fin:qlora]
    with capturer(dossier / "checkpointing.txt"):
        # [region:checkpointing]
        mesures = {"sans": mesurer_dans_un_processus(avec=False),
                   "avec": mesurer_dans_un_processus(avec=True)}
        for nom, m in mesures.items():
            print(f"{nom} checkpointing : {m['jetons']} jetons, pas de "
                  f"{formater(m['secondes'], 2)} s, pic ajouté "
                  f"{formater(m['pic_mio'], 0)} Mio")
        # [fin:checkpointing]
    figure_checkpointing(mesures, dossier / "checkpointing.png")
    (dossier / "checkpointing_lecture.rst").write_text(lire_checkpointing(mesures),
                                                        encoding="utf-8")
    with capturer(dossier / "ddp.txt"):
        # [region:ddp]
        commande = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", "-m", "tutorial_code.echelle_ddp",
                    "--sortie", "_travail/ddp", "--pas", "1", "--taille-lot", "4"]
        resultat = subprocess.run(commande, capture_output=True, text=True,
                                  check=True)
        print(resultat.stdout.strip())
        parts = json.loads(open("_travail/ddp/parts.json").read())["parts"]
        disjointes = not set(parts[0][0]) & set(parts[1][0])
        print("Parts disjointes :", "oui" if disjointes else "non")
        # [fin:ddp]
    with capturer(dossier / "jetons.txt"):
        # [region:jetons]
        tokenizer = AutoTokenizer.from_pretrained(preparer_modele_embarque())
        _, _, comptes = preparer_exemples(tokenizer)
        jetons = comptes["jetons par époque"]
        print(f"{formater(jetons, 0)} jetons par époque "
              f"(tokenizer de SmolLM2)")
        # [fin:jetons]
    entetes, lignes = tableau_changements(jetons, recette=RECETTE["lora"])
    ecrire_tableau(dossier / "changements.rst", entetes, lignes)
    n = compter_parametres(llama2_7b())
    detail = memoire_par_gpu(n, n, "bf16", 8, "FSDP")
    (dossier / "fsdp_8.txt").write_text(
        ", ".join(f"{k} {formater(v / 2**30)} Gio" for k, v in detail.items()),
        encoding="utf-8")
    detail = memoire_qlora(llama2_7b())
    (dossier / "qlora_detail.txt").write_text(
        ", ".join(f"{k} {formater(v / 2**30)} Gio" for k, v in detail.items()),
        encoding="utf-8")
