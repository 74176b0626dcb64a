"""Mise en lots : remplissage, empaquetage, regroupement par longueur.

Le test central : la perte d'un lot empaqueté est celle des mêmes exemples
remplis, sur le petit Llama (tolérance 1e-5 en float32) — aucune attention ne
traverse la frontière entre deux exemples.
"""

import pytest
import torch
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from tests.conftest import construire_modele
from tutorial_code import lots
from tutorial_code.lots import (
    collate_packing,
    collate_padding,
    gaspillage_padding,
    lots_par_longueur,
    rangees,
)
from tutorial_code.tokenisation import CONVERSATION_DEMO, IGNORE, tokeniser_conversation

TOLERANCE = 1e-5  # float32, 2 couches : l'écart observé est inférieur à 1e-6

QUESTIONS = [
    ("Combien coûte un pare-brise ?", "Le remplacement coûte 129 €."),
    ("Vous êtes ouverts le samedi ?", "Oui, du lundi au samedi, de 8 h 30 à 18 h."),
    ("La garantie couvre les fuites ?", "La garantie couvre les fuites pendant 2 ans."),
]


@pytest.fixture(scope="module")
def exemples(tokenizer_minuscule):
    conversations = [[{"role": "user", "content": q},
                      {"role": "assistant", "content": r}] for q, r in QUESTIONS]
    conversations.append(CONVERSATION_DEMO)
    return [tokeniser_conversation(tokenizer_minuscule, c) for c in conversations]


@pytest.fixture(scope="module")
def modele(tokenizer_minuscule):
    return construire_modele(tokenizer_minuscule)


@pytest.mark.parametrize("cote", ["right", "left"])
def test_padding_masque_et_etiquettes(exemples, cote):
    lot = collate_padding(exemples, pad_token_id=0, padding_side=cote)
    largeur = max(len(e["input_ids"]) for e in exemples)
    assert lot["input_ids"].shape == (len(exemples), largeur)
    for ligne, e in enumerate(exemples):
        n = len(e["input_ids"])
        vrais = slice(0, n) if cote == "right" else slice(largeur - n, largeur)
        masque = torch.zeros(largeur, dtype=torch.long)
        masque[vrais] = 1
        assert torch.equal(lot["attention_mask"][ligne], masque)
        assert lot["input_ids"][ligne, vrais].tolist() == e["input_ids"]
        assert lot["labels"][ligne, vrais].tolist() == e["labels"]
        rembourrage = masque == 0
        assert (lot["labels"][ligne][rembourrage] == IGNORE).all()
        assert (lot["input_ids"][ligne][rembourrage] == 0).all()


def test_padding_comme_transformers(exemples, tokenizer_minuscule):
    reference = DataCollatorForSeq2Seq(tokenizer_minuscule, padding=True,
                                       label_pad_token_id=IGNORE)(
        [dict(e) for e in exemples])
    lot = collate_padding(exemples, tokenizer_minuscule.pad_token_id)
    for cle in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(lot[cle], reference[cle])


def test_packing_comme_data_collator_with_flattening(exemples):
    # Avec des étiquettes « modèle de langue » complètes, la frontière compte.
    complets = [dict(e, labels=e["input_ids"]) for e in exemples]
    for jeu in (exemples, complets):
        lot = collate_packing(jeu)
        reference = DataCollatorWithFlattening()(jeu)
        assert set(lot) == set(reference)
        for cle in lot:
            assert torch.equal(lot[cle], reference[cle])
    lot = collate_packing(complets)
    debuts = (lot["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert len(debuts) == len(exemples)
    assert (lot["labels"][0, debuts] == IGNORE).all()


def perte_somme(modele, lot):
    """Somme des pertes de chaque jeton étiqueté, et nombre de ces jetons."""
    entrees = {k: v for k, v in lot.items() if k != "labels"}
    sortie = modele(**entrees, use_cache=False)
    logits = sortie.logits[:, :-1]  # le jeton t prédit le jeton t + 1
    cibles = lot["labels"][:, 1:]
    perte = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), cibles.reshape(-1),
        ignore_index=IGNORE, reduction="sum")
    return perte, (cibles != IGNORE).sum()


@pytest.mark.parametrize("complets", [False, True])
@torch.inference_mode()
def test_perte_empaquetee_egale_perte_remplie(exemples, modele, complets):
    jeu = [dict(e, labels=e["input_ids"]) for e in exemples] if complets else exemples
    remplis = collate_padding(jeu, pad_token_id=0)
    paquet = collate_packing(jeu)
    somme_r, n_r = perte_somme(modele, remplis)
    somme_p, n_p = perte_somme(modele, paquet)
    assert n_r == n_p
    assert abs(somme_r - somme_p) <= TOLERANCE * n_r
    # La perte moyenne de transformers (par jeton étiqueté) aussi.
    perte_p = modele(**paquet, use_cache=False).loss
    assert abs(modele(**remplis, use_cache=False).loss - perte_p) <= TOLERANCE
    # Garde-fous : sans position_ids, ou avec le cache (use_cache=True, le défaut
    # de la configuration hors Trainer), transformers ne construit pas le masque
    # en blocs : les exemples se voient et la perte change.
    sans_positions = {k: v for k, v in paquet.items() if k != "position_ids"}
    assert abs(modele(**sans_positions, use_cache=False).loss - perte_p) > 1e-3
    assert abs(modele(**paquet, use_cache=True).loss - perte_p) > 1e-3


def test_lots_par_longueur():
    longueurs = [(i * 37) % 200 + 10 for i in range(103)]
    lots_ = lots_par_longueur(longueurs, taille_lot=8, graine=1)
    assert sorted(i for lot in lots_ for i in lot) == list(range(103))
    assert all(1 <= len(lot) <= 8 for lot in lots_)
    assert lots_ == lots_par_longueur(longueurs, taille_lot=8, graine=1)
    assert lots_ != lots_par_longueur(longueurs, taille_lot=8, graine=2)


@pytest.mark.parametrize("max_jetons", [0, 1, 5, 7, 12, 100])
def test_rangees_bornees_sans_rien_perdre(max_jetons):
    longueurs = [3, 4, 6, 2, 9, 1, 5]
    exemples = [{"input_ids": [i] * n} for i, n in enumerate(longueurs)]
    groupes = rangees(exemples, max_jetons)
    assert [e for g in groupes for e in g] == exemples  # tous, dans l'ordre
    for g in groupes:
        total = sum(len(e["input_ids"]) for e in g)
        assert len(g) == 1 or not max_jetons or total <= max_jetons
    if not max_jetons:
        assert len(groupes) == 1
    # Glouton : la rangée suivante n'aurait pas tenu dans la précédente.
    for a, b in zip(groupes, groupes[1:]):
        if max_jetons:
            assert sum(len(e["input_ids"]) for e in a + b[:1]) > max_jetons


def test_gaspillage_padding():
    longueurs = [(i * 37) % 200 + 10 for i in range(103)]
    parts = list(gaspillage_padding(longueurs, taille_lot=8, max_length=256).values())
    fixe, dynamique, regroupe, rangees, sans = parts
    assert fixe > dynamique > regroupe > 0
    assert 0 <= rangees < dynamique and sans == 0
    # Un lot de deux exemples, 10 et 30 jetons : 20 jetons de remplissage sur 60.
    assert lots.part_remplissage([10, 30], [[0, 1]]) == pytest.approx(20 / 60)


def test_main_rapide(capsys):
    assert lots.main(["--rapide"]) == 0
    assert "regroupement par longueur" in capsys.readouterr().out
