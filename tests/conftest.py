"""Fixtures partagées : un tout petit Llama aléatoire et son tokenizer, construits ici.

Rien n'est téléchargé : le tokenizer BPE est entraîné en une fraction de seconde sur
quelques phrases, avec le gabarit de discussion ChatML de SmolLM2.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # les tests ne touchent jamais au réseau

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from tutorial_code.modeles import config_llama_minuscule

GABARIT_CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nTu es un assistant utile.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

PHRASES = [
    "Bonjour, combien coûte le remplacement d'un pare-brise ?",
    "Le remplacement coûte 129 € et prend 48 h.",
    "Tell me how to fix a broken car window.",
    "Nous sommes ouverts du lundi au samedi, de 8 h 30 à 18 h.",
    "La garantie couvre les fuites pendant 2 ans.",
    "Tu es un assistant utile. Réponds en français.",
] * 20


def construire_tokenizer():
    """Un tokenizer BPE d'octets minuscule, avec les jetons spéciaux de ChatML."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    speciaux = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(PHRASES, trainers.BpeTrainer(
        vocab_size=400, special_tokens=speciaux,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = GABARIT_CHATML
    return tokenizer


def construire_modele(tokenizer, graine=0):
    """Un Llama de 2 couches, 64 dimensions, initialisé au hasard (graine fixée)."""
    torch.manual_seed(graine)
    config = config_llama_minuscule(
        len(tokenizer), tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tokenizer_minuscule():
    return construire_tokenizer()


@pytest.fixture(scope="session")
def dossier_modele_minuscule(tmp_path_factory):
    """Le petit modèle sauvegardé comme un vrai : safetensors + tokenizer."""
    dossier = tmp_path_factory.mktemp("llama_minuscule")
    tokenizer = construire_tokenizer()
    modele = construire_modele(tokenizer)
    modele.generation_config.eos_token_id = tokenizer.eos_token_id
    modele.save_pretrained(dossier)
    tokenizer.save_pretrained(dossier)
    return dossier


@pytest.fixture(scope="session")
def site():
    """Le site construit (_build/html) : le test échoue, avec la commande à lancer,
    s'il manque ou s'il est plus ancien que les sources."""
    from site_construit import SITE, verifier_site

    erreur = verifier_site()
    if erreur:
        pytest.fail(erreur, pytrace=False)
    return SITE
