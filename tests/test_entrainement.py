"""La boucle d'entraînement, sur le petit Llama aléatoire (rapide)."""

import copy

import pytest
import torch

from tests.conftest import construire_modele
from tutorial_code.entrainement import (
    ConfigEntrainement,
    PointDeRepriseIncompatible,
    appliquer_methode,
    entrainer,
    facteur_lr,
    perte_moyenne,
    perte_somme,
)
from tutorial_code.lots import collate_packing, collate_padding, rangees
from tutorial_code.memoire import compter_lora, compter_parametres
from tutorial_code.tokenisation import tokeniser_conversation

CONVERSATIONS = [
    [("Combien coûte un pare-brise ?", "Le remplacement coûte 129 €.")],
    [("Vous êtes ouverts le samedi ?", "Oui, de 8 h 30 à 18 h.")],
    [("Quelle garantie ?", "La garantie couvre les fuites pendant 2 ans."),
     ("Et le délai ?", "Comptez 48 h.")],
    [("Bonjour", "Bonjour, que puis-je pour vous ?")],
]


def exemples_tokenises(tokenizer):
    """Les conversations ci-dessus, tokenisées (aussi pour test_reprise_sigkill)."""
    sortie = []
    for tours in CONVERSATIONS:
        messages = [{"role": "system", "content": "Tu es un assistant utile."}]
        for question, reponse in tours:
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": reponse}]
        sortie.append(tokeniser_conversation(tokenizer, messages))
    return sortie


@pytest.fixture(scope="module")
def exemples(tokenizer_minuscule):
    return exemples_tokenises(tokenizer_minuscule)


def config_rapide(**kw):
    base = dict(num_epochs=4, lr=1e-2, taille_lot=2, warmup=0.1, lora_r=4,
                lora_alpha=8)
    base.update(kw)
    return ConfigEntrainement(**base)


def test_la_perte_baisse_en_surapprenant(tokenizer_minuscule, exemples):
    model = construire_modele(tokenizer_minuscule)
    config = config_rapide(methode="complet", num_epochs=30, lr=1e-2)
    avant = perte_moyenne(model, exemples, config)
    entrainer(model, exemples, None, config)
    apres = perte_moyenne(model, exemples, config)
    assert apres < 0.5 * avant


def test_perte_moyenne_par_rangees_egale_une_rangee(tokenizer_minuscule, exemples):
    # Bornée en rangées (la mémoire des logits l'est aussi), la perte moyenne
    # reste celle de tout le lot d'un coup : même somme, même nombre de jetons.
    model = construire_modele(tokenizer_minuscule)
    longueur = max(len(e["input_ids"]) for e in exemples)
    assert len(rangees(exemples, longueur)) > 1  # plusieurs rangées, vraiment
    d_un_coup = perte_moyenne(model, exemples, config_rapide(taille_lot=4,
                                                             max_jetons=0))
    en_rangees = perte_moyenne(model, exemples, config_rapide(taille_lot=4,
                                                              max_jetons=longueur))
    assert en_rangees == pytest.approx(d_un_coup, rel=1e-5)


def test_perte_empaquetee_egale_perte_du_modele(tokenizer_minuscule, exemples):
    # Notre perte (positions de la perte seules, par tranches, étiquettes
    # décalées, somme / jetons) est celle de transformers sur les mêmes
    # exemples remplis à droite.
    model = construire_modele(tokenizer_minuscule)
    with torch.no_grad():
        perte, k = perte_somme(model, collate_packing(exemples))
        lot = collate_padding(exemples, tokenizer_minuscule.pad_token_id)
        reference = model(**lot).loss
    torch.testing.assert_close(perte / k, reference, rtol=1e-5, atol=1e-5)


def test_perte_par_tranches_meme_perte_memes_gradients(tokenizer_minuscule,
                                                      exemples):
    # Découper l'entropie croisée en tranches de positions ne change ni la
    # perte ni les gradients : seulement la taille des intermédiaires.
    model = construire_modele(tokenizer_minuscule)
    lot = collate_packing(exemples)
    resultats = []
    for tranche in (3, 10_000):  # plusieurs tranches, puis une seule
        model.zero_grad()
        perte, k = perte_somme(model, lot, tranche=tranche)
        assert k > 3  # la tranche de 3 découpe vraiment
        perte.backward()
        resultats.append((perte.detach(), [p.grad.clone()
                                           for p in model.parameters()]))
    (p1, g1), (p2, g2) = resultats
    torch.testing.assert_close(p1, p2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_lora_ne_change_que_les_adaptateurs(tokenizer_minuscule, exemples):
    model = appliquer_methode(construire_modele(tokenizer_minuscule), config_rapide())
    avant = {n: p.detach().clone() for n, p in model.named_parameters()}
    entrainer(model, exemples, None, config_rapide(num_epochs=1))
    for nom, p in model.named_parameters():
        change = not torch.equal(avant[nom], p)
        assert change == ("lora_" in nom), nom  # la base est gelée
        assert p.requires_grad == ("lora_" in nom), nom


def test_compte_lora_egal_peft_et_formule(tokenizer_minuscule):
    base = construire_modele(tokenizer_minuscule)
    assert sum(p.numel() for p in base.parameters()) == compter_parametres(base.config)
    model = appliquer_methode(base, config_rapide(lora_r=4))
    entrainables, _ = model.get_nb_trainable_parameters()
    # 2 couches × 4 × [(64+64) + (64+32) × 2 + (64+64) + (64+128) × 2 + (128+64)]
    assert entrainables == compter_lora(base.config, 4) == 2 * 4 * 1024


def test_echauffement_puis_cosinus():
    assert facteur_lr(0, 100, 0.1) == pytest.approx(0.1)
    assert facteur_lr(9, 100, 0.1) == pytest.approx(1.0)
    assert facteur_lr(10, 100, 0.1) == pytest.approx(1.0)
    assert facteur_lr(55, 100, 0.1) == pytest.approx(0.5)
    assert facteur_lr(99, 100, 0.1) < 0.001


def test_accumulation_egale_grand_lot(tokenizer_minuscule, exemples):
    # 2 micro-lots de 2 accumulés = 1 lot de 4 : mêmes poids après une mise à jour.
    configs = [config_rapide(methode="complet", num_epochs=1, taille_lot=4),
               config_rapide(methode="complet", num_epochs=1, taille_lot=2,
                             accumulation=2)]
    poids = []
    for config in configs:
        model = construire_modele(tokenizer_minuscule)
        # Même ordre d'exemples : le plan dépend de la graine et de la taille du lot,
        # donc on fixe l'ordre en ne gardant qu'une mise à jour sur des exemples
        # triés de la même façon.
        entrainer(model, exemples, None, config)
        poids.append(model.model.layers[0].mlp.up_proj.weight.detach())
    diff = (poids[0] - poids[1]).abs().max().item()
    assert diff < 1e-5


def test_rangees_bornees_meme_entrainement(tokenizer_minuscule, exemples):
    # Pas de 4 exemples (~30 jetons chacun) en rangées d'au plus 40 jetons,
    # donc un exemple par rangée : mêmes pertes et mêmes poids qu'une rangée.
    assert len(rangees(exemples, 40)) > 1  # la borne coupe vraiment le pas
    resultats = []
    for max_jetons in (0, 40):
        config = config_rapide(methode="complet", num_epochs=2, taille_lot=4,
                               max_jetons=max_jetons)
        model = construire_modele(tokenizer_minuscule)
        historique = entrainer(model, exemples, None, config)
        resultats.append((historique["perte"],
                          model.model.layers[0].mlp.up_proj.weight.detach()))
    (pertes_une, poids_une), (pertes_bornees, poids_bornees) = resultats
    assert pertes_bornees == pytest.approx(pertes_une, rel=1e-5)
    assert (poids_une - poids_bornees).abs().max().item() < 1e-5


def test_reprise_reproduit_un_entrainement_ininterrompu(
        tokenizer_minuscule, exemples, tmp_path):
    config = config_rapide(num_epochs=3)
    continu = appliquer_methode(construire_modele(tokenizer_minuscule), config)
    h_continu = entrainer(continu, exemples, None, config)

    interrompu = appliquer_methode(construire_modele(tokenizer_minuscule), config)
    entrainer(interrompu, exemples, None, config, sortie=tmp_path, sauver_tous=2,
              arreter_apres=4)
    repris = appliquer_methode(construire_modele(tokenizer_minuscule), config)
    h_repris = entrainer(repris, exemples, None, config, sortie=tmp_path,
                         sauver_tous=2)
    assert h_repris["perte"] == pytest.approx(h_continu["perte"], abs=1e-6)
    for (n, a), (_, b) in zip(continu.named_parameters(), repris.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=n)


def test_reprise_refuse_une_autre_configuration(tokenizer_minuscule, exemples,
                                                tmp_path):
    config = config_rapide(num_epochs=2)
    model = appliquer_methode(construire_modele(tokenizer_minuscule), config)
    entrainer(model, exemples, None, config, sortie=tmp_path, sauver_tous=2,
              arreter_apres=2)
    autre = copy.replace(config, lr=5e-3) if hasattr(copy, "replace") else None
    autre = autre or ConfigEntrainement(**{**config.__dict__, "lr": 5e-3})
    model = appliquer_methode(construire_modele(tokenizer_minuscule), autre)
    with pytest.raises(PointDeRepriseIncompatible, match="lr"):
        entrainer(model, exemples, None, autre, sortie=tmp_path, sauver_tous=2)


def test_boucle_et_trainer_meme_perte_au_premier_pas(tokenizer_minuscule, exemples):
    from tutorial_code.entrainement_trainer import perte_premier_lot

    model = construire_modele(tokenizer_minuscule)
    with torch.no_grad():
        perte, k = perte_somme(model, collate_packing(exemples))
        perte_trainer = perte_premier_lot(model, exemples, config_rapide())
    torch.testing.assert_close(perte / k, perte_trainer, rtol=1e-5, atol=1e-6)


def test_adaptateur_fusionne_memes_logits(tokenizer_minuscule, exemples):
    # Tolérance : 1e-5 en fp32 (la fusion additionne B·A aux poids, l'ordre
    # des opérations change, pas le résultat au-delà de l'arrondi).
    model = appliquer_methode(construire_modele(tokenizer_minuscule), config_rapide())
    entrainer(model, exemples, None, config_rapide(num_epochs=2))
    ids = torch.tensor([exemples[2]["input_ids"]])
    with torch.no_grad():
        avant = model(ids).logits
        base = model.get_base_model()
        fusionne = model.merge_and_unload()
        assert not any("lora_" in n for n, _ in fusionne.named_parameters())
        apres = fusionne(ids).logits
    torch.testing.assert_close(avant, apres, rtol=1e-5, atol=1e-5)
    assert fusionne is base


def test_cli_erreurs_claires(tmp_path, capsys):
    from tutorial_code.affinage import main

    with pytest.raises(SystemExit) as info:
        main(["--donnees", str(tmp_path / "absent"), "--sortie", str(tmp_path / "s")])
    assert info.value.code == 2
    assert "ne contient pas de jeu préparé" in capsys.readouterr().err
    (tmp_path / "plein").mkdir()
    (tmp_path / "plein" / "bilan.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["--sortie", str(tmp_path / "plein")])
    assert "serait écrasé" in capsys.readouterr().err


def test_aide_en_francais(capsys):
    from tutorial_code.affinage import main

    with pytest.raises(SystemExit):
        main(["--help"])
    aide = capsys.readouterr().out
    assert "--reprendre" in aide and "taux d'apprentissage" in aide
