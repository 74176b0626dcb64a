"""Des exemples tokenisés aux lots : remplissage, regroupement, empaquetage.

* ``collate_padding`` : remplissage dynamique, à la longueur du plus long du lot ;
* ``collate_packing`` : empaquetage sans remplissage, tout le lot en une rangée,
  ``position_ids`` remis à zéro à chaque exemple (la convention de
  ``DataCollatorWithFlattening`` de transformers) ;
* ``lots_par_longueur`` : des lots d'exemples de longueurs voisines ;
* ``gaspillage_padding`` : la part de jetons de remplissage de chaque stratégie.

Exécutable : ``python -m tutorial_code.lots`` compare les stratégies sur des
longueurs tirées au hasard ; ``--rapide`` en prend moins.
"""

import random

import torch

from tutorial_code.aide import creer_parser
from tutorial_code.tokenisation import IGNORE

FACTEUR_MEGA_LOT = 50  # comme LengthGroupedSampler de transformers


# [region:padding]
def collate_padding(exemples, pad_token_id, padding_side="right"):
    """Complète chaque exemple jusqu'à la longueur du plus long du lot.

    Les jetons ajoutés ont un masque d'attention à 0 et une étiquette à -100 :
    le modèle ne les regarde pas et la perte les ignore. À droite pour
    l'entraînement ; à gauche pour la génération par lots, pour que le dernier
    jeton de chaque ligne soit un vrai jeton, celui que le modèle prolonge.
    """
    longueur = max(len(e["input_ids"]) for e in exemples)
    lot = {"input_ids": [], "attention_mask": [], "labels": []}
    for e in exemples:
        n = longueur - len(e["input_ids"])  # jetons à ajouter à cette ligne
        colonnes = (("input_ids", e["input_ids"], pad_token_id),
                    ("attention_mask", [1] * len(e["input_ids"]), 0),
                    ("labels", e["labels"], IGNORE))
        for cle, valeur, remplissage in colonnes:
            ajout = [remplissage] * n
            lot[cle].append(list(valeur) + ajout if padding_side == "right"
                            else ajout + list(valeur))
    # taille_lot exemples × longueur jetons
    return {cle: torch.tensor(v) for cle, v in lot.items()}
# [fin:padding]


# [region:packing]
def collate_packing(exemples):
    """Tout le lot bout à bout en une seule rangée, sans remplissage.

    Trois précautions pour que rien ne passe d'un exemple à l'autre :
    ``position_ids`` repart de 0 à chaque exemple (transformers en déduit un
    masque d'attention « en blocs ») ; le premier jeton de chaque exemple a
    l'étiquette -100, pour que la perte ne demande pas au dernier jeton d'un
    exemple de prédire le premier du suivant ; et pas d'``attention_mask``,
    qui prendrait le pas sur les ``position_ids``. Le modèle doit être appelé
    avec ``use_cache=False`` (le Trainer le fait) : avec un cache, transformers
    ne construit pas ce masque en blocs.
    """
    input_ids, labels, positions = [], [], []
    for e in exemples:
        input_ids += e["input_ids"]
        labels += [IGNORE] + list(e["labels"][1:])
        positions += range(len(e["input_ids"]))
    # forme (1, N) : N = somme des longueurs du lot
    return {"input_ids": torch.tensor([input_ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions])}
# [fin:packing]


# [region:rangees]
def rangees(exemples, max_jetons):
    """Les exemples d'un pas, en rangées d'au plus ``max_jetons`` jetons.

    Dans l'ordre, sans rien couper : un exemple plus long que ``max_jetons``
    forme sa propre rangée ; ``max_jetons=0`` : une seule rangée. Les
    activations gardées pour la rétropropagation croissent avec la longueur
    d'une rangée : bornée, elle borne le pic de mémoire d'un pas, quel que soit
    le nombre d'exemples mis bout à bout.
    """
    groupes, courant, n = [], [], 0
    for e in exemples:
        longueur = len(e["input_ids"])
        if courant and max_jetons and n + longueur > max_jetons:
            groupes.append(courant)
            courant, n = [], 0
        courant.append(e)
        n += longueur
    return groupes + [courant] if courant else groupes
# [fin:rangees]


# [region:par-longueur]
def lots_par_longueur(longueurs, taille_lot, graine):
    """Des lots d'indices d'exemples de longueurs voisines, dans un ordre aléatoire.

    On mélange, on découpe en « méga-lots » de ``taille_lot × 50`` exemples, on
    trie chacun du plus long au plus court, on le coupe en lots, puis on mélange
    l'ordre des lots : l'aléa de l'entraînement reste, le remplissage fond.
    """
    hasard = random.Random(graine)
    indices = list(range(len(longueurs)))
    hasard.shuffle(indices)
    taille_mega = taille_lot * FACTEUR_MEGA_LOT
    lots = []
    for debut in range(0, len(indices), taille_mega):
        mega = sorted(indices[debut:debut + taille_mega],
                      key=lambda i: longueurs[i], reverse=True)
        lots += [mega[k:k + taille_lot] for k in range(0, len(mega), taille_lot)]
    hasard.shuffle(lots)
    return lots
# [fin:par-longueur]


def lots_aleatoires(nb_exemples, taille_lot, graine):
    """Des lots d'indices dans un ordre aléatoire (ce que fait le Trainer)."""
    indices = list(range(nb_exemples))
    random.Random(graine).shuffle(indices)
    return [indices[k:k + taille_lot] for k in range(0, nb_exemples, taille_lot)]


def rangees_empaquetees(longueurs, capacite):
    """Empaquetage en rangées de ``capacite`` jetons (le plus long d'abord, dans
    la première rangée où il tient). Renvoie les listes d'indices par rangée."""
    rangees, places = [], []
    for i in sorted(range(len(longueurs)), key=lambda i: -longueurs[i]):
        for r, libre in enumerate(places):
            if longueurs[i] <= libre:
                rangees[r].append(i)
                places[r] -= longueurs[i]
                break
        else:
            rangees.append([i])
            places.append(capacite - longueurs[i])
    return rangees


# [region:gaspillage]
def part_remplissage(longueurs, lots, largeur=None):
    """Jetons de remplissage / jetons calculés, chaque lot complété à sa plus
    longue ligne (ou à ``largeur`` si elle est fixée)."""
    utiles = calcules = 0
    for lot in lots:
        tailles = [longueurs[i] for i in lot]
        utiles += sum(tailles)
        calcules += len(tailles) * (largeur or max(tailles))  # lignes × colonnes
    return 1 - utiles / calcules


def gaspillage_padding(longueurs, taille_lot, max_length, graine=0):
    """Part des jetons de remplissage, stratégie par stratégie."""
    n = len(longueurs)
    return {
        "remplissage fixe à max_length":
            part_remplissage(longueurs, lots_aleatoires(n, taille_lot, graine),
                             largeur=max_length),
        "remplissage dynamique, lots au hasard":
            part_remplissage(longueurs, lots_aleatoires(n, taille_lot, graine)),
        "regroupement par longueur":
            part_remplissage(longueurs, lots_par_longueur(longueurs, taille_lot,
                                                          graine)),
        # chaque rangée : max_length jetons, dont la somme de ses exemples utiles
        "empaquetage en rangées de max_length":
            1 - sum(longueurs) / (len(rangees_empaquetees(longueurs, max_length))
                                  * max_length),
        "empaquetage sans remplissage": 0.0,  # une rangée de N jetons, tous utiles
    }
# [fin:gaspillage]


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.lots",
        description="Compare la part de remplissage des stratégies de mise en lots "
                    "sur des longueurs d'exemples tirées au hasard.")
    parser.add_argument("--rapide", action="store_true",
                        help="100 exemples au lieu de 1 000 (pour les tests)")
    parser.add_argument("--taille-lot", type=int, default=8,
                        help="exemples par lot (défaut : 8)")
    args = parser.parse_args(argv)
    hasard = random.Random(0)
    longueurs = [hasard.randint(40, 400) for _ in range(100 if args.rapide else 1000)]
    for nom, part in gaspillage_padding(longueurs, args.taille_lot, 512).items():
        print(f"{nom:40s} {part:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
