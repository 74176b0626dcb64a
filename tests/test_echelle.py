"""Passer à l'échelle : arithmétique de la mémoire, garde CUDA de QLoRA,
fichiers de configuration, et DDP à 2 processus (gloo) égal à 1 processus."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tutorial_code import RACINE, echelle_un_gpu
from tutorial_code.echelle import (
    duree,
    llama2_13b,
    memoire_par_gpu,
    memoire_qlora,
    secondes_par_epoque,
    tableau_changements,
    tableau_par_gpu,
)
from tutorial_code.echelle_ddp import (
    capturer_gradients,
    exemples_aleatoires,
    llama_minuscule,
    part_du_rang,
)
from tutorial_code.entrainement import (
    ConfigEntrainement,
    appliquer_methode,
    entrainer,
    planifier,
)
from tutorial_code.memoire import compter_lora, compter_parametres, llama2_7b

N_7B = 6_738_415_616  # paramètres publiés de Llama 2 7B


def test_llama2_13b_compte_publie():
    # bloc : 4 × 5120² + 3 × 5120 × 13824 + 2 × 5120 = 317 204 480 ; × 40
    # + plongements et tête 2 × 32000 × 5120 + norme finale 5120
    assert compter_parametres(llama2_13b()) == 13_015_864_320


@pytest.mark.parametrize("mode,n_gpu,attendu", [
    ("DDP", 8, 16 * N_7B),  # 2 + 2 + 12 o par paramètre, sur chaque GPU
    ("ZeRO-2", 4, 2 * N_7B + 14 * N_7B / 4),  # poids entiers, le reste / 4
    ("FSDP", 8, 2 * N_7B),  # 16 o / 8 GPU
    ("FSDP", 1, 16 * N_7B),
])
def test_memoire_par_gpu_complet_bf16(mode, n_gpu, attendu):
    m = memoire_par_gpu(N_7B, N_7B, "bf16", n_gpu, mode)
    assert sum(m.values()) == pytest.approx(attendu)


def test_memoire_par_gpu_lora_ddp_garde_les_poids_entiers():
    n_lora = 16 * 78_080 * 32  # r × Σ(d_in + d_out) par bloc × 32 blocs
    assert compter_lora(llama2_7b(), 16) == n_lora == 39_976_960
    m = memoire_par_gpu(N_7B, n_lora, "bf16", 2, "DDP")
    assert m == {"poids": 2 * N_7B, "gradients": 2 * n_lora,
                 "optimiseur": 12 * n_lora}


def test_memoire_qlora_7b():
    blocs = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)  # 6 476 005 376
    bits = 4 + 0.125 + 0.001953125  # NF4 + constantes doublement quantifiées
    m = memoire_qlora(llama2_7b(), r=16)
    assert m["poids"] == pytest.approx(blocs * bits / 8 + 2 * (N_7B - blocs))
    assert m["gradients"] == 2 * 39_976_960
    assert m["optimiseur"] == 12 * 39_976_960
    assert 4.0 < sum(m.values()) / 2**30 < 4.3  # ~4,1 Gio


def test_temps_estime_et_durees():
    # 6 FLOP × 1e9 paramètres × 1e6 jetons / (312e12 × 0,35) = 54,9 s
    assert secondes_par_epoque(1e9, 1e6, "complet", 1) == pytest.approx(54.945,
                                                                        rel=1e-4)
    assert secondes_par_epoque(1e9, 1e6, "LoRA", 2) == pytest.approx(54.945 / 3,
                                                                     rel=1e-4)
    assert [duree(s) for s in (42, 200, 7500)] == ["42 s", "3 min 20 s", "2 h 05"]


def test_tableaux_bien_formes():
    entetes, lignes = tableau_par_gpu({"7B": llama2_7b()}, gpus=(1, 2))
    assert all(len(li) == len(entetes) for li in lignes)
    assert lignes[2][2:] == ["FSDP", "100,4", "50,2"]  # 16 × N_7B o, puis / 2
    entetes, lignes = tableau_changements(96_125)  # la recette d'Entraînement
    assert all(len(li) == len(entetes) for li in lignes)
    assert [li[3] for li in lignes[1:]] == ["4 × 4 × 1", "4 × 2 × 2", "2 × 1 × 8"]


def test_garde_cuda_explique_en_francais(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(echelle_un_gpu.CudaIndisponible, match="aucun GPU CUDA"):
        echelle_un_gpu.charger_qlora()
    assert echelle_un_gpu.main([]) == 0  # pas de plantage : une explication
    assert "QLoRA sauté : aucun GPU CUDA" in capsys.readouterr().out


def test_garde_bitsandbytes_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import impossible
    with pytest.raises(echelle_un_gpu.CudaIndisponible,
                       match="pip install bitsandbytes"):
        echelle_un_gpu.verifier_cuda()


def test_fichiers_de_configuration_valides():
    from accelerate.commands.config.config_args import ClusterConfig

    fsdp = ClusterConfig.from_yaml_file(RACINE / "tutorial_code/echelle_fsdp.yaml")
    assert fsdp.distributed_type == "FSDP" and fsdp.mixed_precision == "bf16"
    assert fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    zero = json.loads((RACINE / "tutorial_code/echelle_zero3.json").read_text())
    assert zero["zero_optimization"]["stage"] == 3 and zero["bf16"]["enabled"]


def test_part_du_rang_disjointe_et_complete():
    lot = [7, 3, 9, 1, 4]
    parts = [part_du_rang(lot, r, 2) for r in range(2)]
    assert parts == [[7, 9, 4], [3, 1]]


@pytest.mark.entrainement
def test_ddp_deux_processus_egal_un_processus(tmp_path):
    """2 rangs gloo, lots de 4 (2 par rang), accumulation 2 : une mise à jour.

    Tolérances (fp32, seul l'ordre des sommes change) : gradients à 1e-5 près
    relativement à leur maximum (observé : ~4e-7), poids à 1e-5 près en
    absolu pour une mise à jour de ~2e-3 (observé : ~1e-6).
    """
    reglages = ["--taille-lot", "4", "--accumulation", "2", "--pas", "2",
                "--max-grad-norm", "1e9"]  # pas d'écrêtage : gradients bruts
    commande = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", "-m", "tutorial_code.echelle_ddp",
                "--minuscule", "--sortie", str(tmp_path)] + reglages
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    fini = subprocess.run(commande, cwd=RACINE, capture_output=True, text=True,
                          env=env, timeout=120)
    assert fini.returncode == 0, fini.stderr[-3000:]
    assert "2 processus, 2 pas" in fini.stdout

    config = ConfigEntrainement(methode="lora", num_epochs=1, lr=2e-3,
                                taille_lot=4, accumulation=2, max_pas=2,
                                max_grad_norm=1e9)
    train = exemples_aleatoires(16)
    plan = planifier([len(e["input_ids"]) for e in train], config)
    parts = json.loads((tmp_path / "parts.json").read_text())["parts"]
    for pas, lot in enumerate(plan):
        rang0, rang1 = parts[0][pas], parts[1][pas]
        assert not set(rang0) & set(rang1)  # disjointes
        assert sorted(rang0 + rang1) == sorted(lot)  # et tout le lot

    model = llama_minuscule(config.graine)
    torch.manual_seed(config.graine)
    model = appliquer_methode(model, config)
    gradients = capturer_gradients(model)
    entrainer(model, train, None, config)  # la boucle d'Entraînement, 1 processus
    poids_ddp = load_file(tmp_path / "poids.safetensors")
    gradients_ddp = load_file(tmp_path / "gradients.safetensors")
    assert gradients and gradients.keys() == gradients_ddp.keys()
    for nom, g in gradients.items():
        ecart = (gradients_ddp[nom] - g).abs().max()
        assert ecart <= 1e-5 * g.abs().max() + 1e-12, nom
    entraines = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for nom, p in entraines.items():
        torch.testing.assert_close(poids_ddp[nom], p.detach(), atol=1e-5, rtol=0)


def test_pic_de_memoire_repart_du_niveau_actuel():
    """Le pic du checkpointing ne compte que les pas : un tampon libéré avant
    la remise à zéro n'y est plus, un tampon rempli après y est. Dans un
    processus neuf : celui de pytest garde de la mémoire libérée, qu'un
    nouveau tampon réoccuperait sans faire monter le pic."""
    code = """
from tutorial_code.echelle_un_gpu import (pic_octets, repartir_du_niveau_actuel,
                                          rss_octets)
mio = 2**20
tampon = b"x" * (300 * mio)
del tampon
if not repartir_du_niveau_actuel():
    raise SystemExit(77)
oublie = pic_octets() - rss_octets()
avant = rss_octets()
tampon = b"y" * (200 * mio)
print(oublie / mio, (pic_octets() - avant) / mio)
"""
    sortie = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    if sortie.returncode == 77:
        pytest.skip("ce noyau refuse /proc/self/clear_refs")
    oublie, ajoute = map(float, sortie.stdout.split())
    assert oublie < 50  # les 300 Mio d'avant ne comptent plus
    assert ajoute >= 180  # les 200 Mio d'après, si


@pytest.mark.parametrize("avec, attendu", [
    ({"pic_mio": 600.0, "secondes": 1.4}, "retire 25\u00a0% du pic ajouté"),
    ({"pic_mio": 790.0, "secondes": 1.4}, "ne réduit pas le pic"),
])
def test_lecture_du_checkpointing_suit_la_mesure(avec, attendu):
    from construction.echelle import lire_checkpointing

    mesures = {"sans": {"pic_mio": 800.0, "secondes": 1.0, "sans_chargement": True},
               "avec": {**avec, "sans_chargement": True}}
    texte = lire_checkpointing(mesures)
    assert attendu in texte and "allonge le pas de 40\u00a0%" in texte
    mesures["avec"]["sans_chargement"] = False
    assert "compte aussi le chargement" in lire_checkpointing(mesures)


@pytest.mark.parametrize("secondes, attendu", [
    (2.15, "la mesure dépasse ce compte"),
    (1.5, "la mesure s'en approche"),
    (1.2, "la mesure reste en dessous"),
])
def test_lecture_compare_le_temps_au_compte_des_flop(secondes, attendu):
    from construction.echelle import lire_checkpointing

    mesures = {"sans": {"pic_mio": 800.0, "secondes": 1.0, "sans_chargement": True},
               "avec": {"pic_mio": 600.0, "secondes": secondes,
                        "sans_chargement": True}}
    texte = lire_checkpointing(mesures)
    assert "prévoyait 50\u00a0%" in texte and attendu in texte
