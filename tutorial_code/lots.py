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
from tutorial_code.nombres import formater, pourcent
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


def ecrire_tableau(chemin, entetes, lignes):
    """Un tableau reStructuredText (``list-table``) que la page inclut."""
    texte = ".. list-table::\n   :header-rows: 1\n\n"
    for ligne in [entetes] + lignes:
        texte += "".join(f"   {'*' if k == 0 else ' '} - {c}\n"
                         for k, c in enumerate(ligne))
    chemin.write_text(texte, encoding="utf-8")


def figure_gaspillage(longueurs, parts, chemin):
    """Histogramme des longueurs et part de remplissage par stratégie (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (gauche, droite) = plt.subplots(1, 2, figsize=(10, 3.6))
    gauche.hist(longueurs, bins=30, color="#4a7ab5")
    gauche.set(title="Longueur des exemples", xlabel="jetons", ylabel="exemples")
    noms = [n.replace(", ", ",\n").replace(" en ", "\nen ") for n in parts]
    barres = droite.barh(noms[::-1], [100 * p for p in list(parts.values())[::-1]],
                         color="#d9822b")
    droite.bar_label(barres, labels=[pourcent(p, 1)
                                     for p in list(parts.values())[::-1]], padding=3)
    droite.set(title="Jetons de remplissage (%)", xlim=(0, 100))
    fig.tight_layout()
    fig.savefig(chemin, dpi=110)
    plt.close(fig)


def produire_sorties_lots(dossier, tokenizer, jeu, entrainement):
    """Les sorties de la partie « mise en lots » de la page Tokenisation."""
    import torch
    from transformers import DataCollatorWithFlattening

    from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele
    from tutorial_code.pretraitement import LONGUEUR_MAX
    from tutorial_code.sorties import capturer

    # [region:modele]
    modele, _ = charger_modele(MODELE_EMBARQUE, dtype=torch.float32, verbeux=False)
    # [fin:modele]
    with capturer(dossier / "cote.txt"), torch.inference_mode():
        # [region:cote]
        textes = [tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False,
            add_generation_prompt=True)
            for q in ["Bonjour", "Combien coûte un pare-brise pour une Clio ?"]]
        for cote in ("right", "left"):
            tokenizer.padding_side = cote
            lot = tokenizer(textes, padding=True, add_special_tokens=False,
                            return_tensors="pt")
            suivant = modele(**lot).logits[:, -1].argmax(-1)  # dernière position
            print(f"padding_side={cote!r}")
            for masque, jeton in zip(lot["attention_mask"], suivant):
                print("  ", "".join(map(str, masque.tolist())), "→ prochain jeton :",
                      repr(tokenizer.decode(jeton)))
        tokenizer.padding_side = "right"  # le réglage d'entraînement
        # [fin:cote]
    with capturer(dossier / "packing.txt"), torch.inference_mode():
        # [region:comparer-packing]
        exemples = [entrainement[i] for i in range(4)]
        paquet = collate_packing(exemples)
        reference = DataCollatorWithFlattening()(exemples)
        identique = all(torch.equal(paquet[k], reference[k]) for k in reference)
        print("Identique à DataCollatorWithFlattening :",
              "oui" if identique else "non")
        print("Forme :", tuple(paquet["input_ids"].shape), "; position_ids :",
              paquet["position_ids"][0, :5].tolist(), "…")
        remplis = collate_padding(exemples, tokenizer.pad_token_id)
        for nom, lot, cache in [("remplis", remplis, False),
                                ("empaquetés", paquet, False),
                                ("empaquetés, use_cache=True", paquet, True)]:
            perte = modele(**lot, use_cache=cache).loss.item()
            print(f"Perte, {nom:27s} : {formater(perte, 6)}")
        # [fin:comparer-packing]
    # [region:gaspillage-jeu]
    longueurs = entrainement["longueur"]
    parts = gaspillage_padding(longueurs, taille_lot=8, max_length=LONGUEUR_MAX)
    # [fin:gaspillage-jeu]
    ecrire_tableau(dossier / "gaspillage.rst", ["stratégie", "remplissage"],
                   [[nom, pourcent(p, 1)]
                    for nom, p in parts.items()])
    figure_gaspillage(longueurs, parts, dossier / "gaspillage.png")
    utiles = formater(sum(longueurs), 0)  # 50244 → « 50 244 »
    (dossier / "gaspillage_lots.txt").write_text(
        f"{len(longueurs)} exemples, {utiles} jetons utiles, lots de 8, "
        f"max_length = {LONGUEUR_MAX}", encoding="utf-8")


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
