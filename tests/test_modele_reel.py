"""Le vrai modèle embarqué, SmolLM2-135M-Instruct (tests marqués ``modele_reel``)."""

import pytest
import torch

from tutorial_code import modeles
from tutorial_code.runner import BasicModelRunner

pytestmark = pytest.mark.modele_reel

PROMPT = "Tell me how to fix a broken car window"


@pytest.fixture(scope="module")
def runner():
    modeles.preparer_modele_embarque()  # conversion unique, hors du test suivant
    return BasicModelRunner("smollm2-135m-instruct", max_new_tokens=24,
                            dtype=torch.float32, verbeux=False)


def test_charge_depuis_le_cache_sans_relire_le_gguf(monkeypatch):
    modeles.preparer_modele_embarque()

    def interdit():
        raise AssertionError("le GGUF ne doit être lu qu'une fois")

    monkeypatch.setattr(modeles, "fichier_gguf", interdit)
    model, tokenizer = modeles.charger_modele("smollm2-135m-instruct", verbeux=False)
    assert model.config.model_type == "llama"
    n = sum(p.numel() for p in model.parameters())
    assert n == pytest.approx(134.5e6, rel=0.01)
    assert "<|im_start|>" in tokenizer.chat_template
    assert model.config._name_or_path == "smollm2-135m-instruct"


def test_le_cache_est_en_safetensors():
    dossier = modeles.preparer_modele_embarque()
    assert (dossier / "model.safetensors").exists()
    assert not list(dossier.glob("*.bin")) and not list(dossier.glob("*.gguf"))


def test_chat_repond_et_differe_du_brut(runner):
    chat = runner.predict(PROMPT, chat=True)
    brut = runner.predict(PROMPT, chat=False)
    assert chat.strip() and chat != brut


def test_lot_egal_un_par_un_sur_le_vrai_modele(runner):
    prompts = [PROMPT, "Quelle est la capitale de la France ?", "Bonjour !"]
    assert runner.predict(prompts) == [runner.predict(p) for p in prompts]
