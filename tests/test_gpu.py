"""Le code du guide sur un GPU CUDA : mêmes calculs que sur le processeur.

Sautés sans GPU (la CI n'en a pas). Sur une machine qui en a un,
``pytest -m gpu`` vérifie que la boucle d'entraînement, l'évaluation, la
génération et la boucle distribuée y tournent, et qu'en fp32 elles y
trouvent ce qu'elles trouvent sur le processeur (le petit Llama des tests).
"""

import copy

import pytest
import torch

from tests.conftest import construire_modele
from tests.test_entrainement import config_rapide, exemples_tokenises
from tutorial_code.echelle_ddp import entrainer_distribue
from tutorial_code.entrainement import (
    appliquer_methode,
    contexte_calcul,
    entrainer,
    perte_moyenne,
)
from tutorial_code.modeles import charger_modele, choisir_device_dtype
from tutorial_code.runner import BasicModelRunner

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="pas de GPU CUDA ici"),
]
GPU = torch.device("cuda", 0)


@pytest.fixture(scope="module")
def exemples(tokenizer_minuscule):
    return exemples_tokenises(tokenizer_minuscule)


@pytest.fixture(autouse=True)
def fp32_exact():
    """Pas de TF32 : les produits matriciels du GPU restent en vrai fp32."""
    avant = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = avant


def paire_lora(tokenizer, config):
    """Le même modèle LoRA (même initialisation de A) sur CPU et sur le GPU."""
    torch.manual_seed(0)
    cpu = appliquer_methode(construire_modele(tokenizer), config)
    return cpu, copy.deepcopy(cpu).to(GPU)


def entrainables(model):
    return {n: p.detach().cpu() for n, p in model.named_parameters()
            if p.requires_grad}


def test_boucle_sur_gpu_egale_boucle_sur_cpu(tokenizer_minuscule, exemples):
    config = config_rapide(methode="lora", num_epochs=3)
    cpu, gpu = paire_lora(tokenizer_minuscule, config)
    h_cpu = entrainer(cpu, exemples, exemples, config)
    h_gpu = entrainer(gpu, exemples, exemples, config)
    assert next(gpu.parameters()).device.type == "cuda"  # rien n'est revenu au CPU
    torch.testing.assert_close(torch.tensor(h_gpu["perte"]),
                               torch.tensor(h_cpu["perte"]), rtol=1e-4, atol=1e-4)
    for nom, poids in entrainables(cpu).items():
        torch.testing.assert_close(entrainables(gpu)[nom], poids,
                                   rtol=1e-3, atol=1e-4)
    assert h_gpu["perte"][-1] < h_gpu["perte"][0]


def test_perte_moyenne_sur_gpu_egale_cpu(tokenizer_minuscule, exemples):
    config = config_rapide()
    cpu, gpu = paire_lora(tokenizer_minuscule, config)
    assert perte_moyenne(gpu, exemples, config) == pytest.approx(
        perte_moyenne(cpu, exemples, config), rel=1e-5)


def test_bf16_sur_gpu_autocast_cuda(tokenizer_minuscule, exemples):
    config = config_rapide(methode="lora", num_epochs=3, bf16=True)
    cpu, gpu = paire_lora(tokenizer_minuscule, config)
    with contexte_calcul(config, gpu):
        assert torch.is_autocast_enabled("cuda")
        assert not torch.is_autocast_enabled("cpu")
    h_bf16 = entrainer(gpu, exemples, None, config)
    h_fp32 = entrainer(cpu, exemples, None, config_rapide(methode="lora",
                                                         num_epochs=3))
    # bf16 : 8 bits de mantisse ; la trajectoire suit celle du fp32 à 2 % près.
    torch.testing.assert_close(torch.tensor(h_bf16["perte"]),
                               torch.tensor(h_fp32["perte"]), rtol=2e-2, atol=2e-2)
    assert all(p.dtype == torch.float32 for p in gpu.parameters())  # poids fp32


def test_distribue_un_gpu_egale_entrainer(tokenizer_minuscule, exemples):
    config = config_rapide(methode="lora", num_epochs=2)
    _, seul = paire_lora(tokenizer_minuscule, config)
    _, distribue = paire_lora(tokenizer_minuscule, config)
    entrainer(seul, exemples, None, config)
    entrainer_distribue(distribue, exemples, config, device=GPU)
    for nom, poids in entrainables(seul).items():
        torch.testing.assert_close(entrainables(distribue)[nom], poids,
                                   rtol=1e-4, atol=1e-5)


def test_fusion_lora_sur_gpu_memes_logits(tokenizer_minuscule, exemples):
    config = config_rapide()
    _, gpu = paire_lora(tokenizer_minuscule, config)
    entrainer(gpu, exemples, None, config_rapide(num_epochs=2))
    ids = torch.tensor([exemples[2]["input_ids"]], device=GPU)
    with torch.no_grad():
        avant = gpu(ids).logits
        apres = gpu.merge_and_unload()(ids).logits
    torch.testing.assert_close(avant, apres, rtol=1e-5, atol=1e-5)


def test_chargement_et_generation_sur_gpu(dossier_modele_minuscule):
    device, dtype, _ = choisir_device_dtype()
    model, _ = charger_modele(dossier_modele_minuscule, verbeux=False)
    assert (device, model.device.type, model.dtype) == ("cuda", "cuda", dtype)
    prompts = ["Combien coûte un pare-brise ?", "Bonjour"]
    sur_gpu = BasicModelRunner(dossier_modele_minuscule, dtype=torch.float32,
                               max_new_tokens=8, verbeux=False)
    sur_cpu = BasicModelRunner(dossier_modele_minuscule, dtype=torch.float32,
                               device="cpu", max_new_tokens=8, verbeux=False)
    assert sur_gpu.model.device.type == "cuda"
    assert sur_gpu(prompts) == sur_cpu(prompts)
