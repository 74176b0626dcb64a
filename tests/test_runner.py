"""BasicModelRunner et le chargement des modèles, sur le petit Llama aléatoire."""

import json

import pytest
import torch

from tutorial_code import modeles
from tutorial_code.modeles import ModeleIntrouvable, charger_modele
from tutorial_code.runner import BasicModelRunner

PROMPTS = [
    "Bonjour",
    "Combien coûte le remplacement d'un pare-brise ?",
    "Tell me how to fix a broken car window",
]


@pytest.fixture(scope="module")
def runner(dossier_modele_minuscule):
    return BasicModelRunner(str(dossier_modele_minuscule), max_new_tokens=12,
                            dtype=torch.float32, verbeux=False)


def test_lot_egal_un_par_un(runner):
    # Padding à gauche + masque d'attention : le lot donne exactement les mêmes
    # réponses que chaque prompt seul, dans les deux modes.
    for chat in (True, False):
        seuls = [runner.predict(p, chat=chat) for p in PROMPTS]
        assert runner.predict(PROMPTS, chat=chat) == seuls


def test_lots_bornes_dans_l_ordre(runner, monkeypatch):
    # Au-delà de taille_lot prompts, la génération se fait par lots : chaque
    # appel à generate voit au plus taille_lot prompts, et les réponses
    # reviennent dans l'ordre des prompts, les mêmes qu'en un seul lot.
    tailles = []
    generate = runner.model.generate

    def compter(**kwargs):
        tailles.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    prompts = PROMPTS * 3  # 9 prompts
    d_un_coup = runner.predict(prompts)
    monkeypatch.setattr(runner.model, "generate", compter)
    assert runner.predict(prompts, taille_lot=4) == d_un_coup
    assert tailles == [4, 4, 1]


def test_types_de_retour_et_appel(runner):
    assert isinstance(runner.predict("Bonjour"), str)
    assert isinstance(runner.predict(["Bonjour"]), list)
    assert runner("Bonjour") == runner.predict("Bonjour")


def test_glouton_deterministe(runner):
    assert runner.predict(PROMPTS[1]) == runner.predict(PROMPTS[1])


def test_max_new_tokens_respecte(runner, monkeypatch):
    vus = []
    generate = runner.model.generate

    def espion(**kwargs):
        sortie = generate(**kwargs)
        vus.append(sortie.shape[1] - kwargs["input_ids"].shape[1])
        return sortie

    monkeypatch.setattr(runner.model, "generate", espion)
    reponse = runner.predict("Bonjour", max_new_tokens=3)
    assert vus[0] <= 3
    # Coupée (3 jetons sans fin de tour) : « […] » le dit ; finie : rien.
    assert reponse.endswith(" […]") == (vus[0] == 3)


def test_une_reponse_finie_n_est_pas_marquee_coupee(runner, monkeypatch):
    # Le modèle aléatoire ne finit pas de lui-même : on fait de son premier jeton
    # généré la fin de tour ; la réponse, vide, n'est pas marquée coupée.
    premier = runner.model.generate(
        **runner.tokenizer("Bonjour", return_tensors="pt"), max_new_tokens=1,
        do_sample=False, pad_token_id=runner.tokenizer.pad_token_id)[0, -1].item()
    monkeypatch.setattr(runner.model.generation_config, "eos_token_id", premier)
    assert not runner.predict("Bonjour", max_new_tokens=5, chat=False).endswith("[…]")


def _texte_vu_par_le_modele(runner, monkeypatch, **kwargs):
    """Décode les input_ids réellement passés à generate."""
    vus = []
    generate = runner.model.generate

    def espion(**kw):
        vus.append(kw["input_ids"][0])
        return generate(**kw)

    monkeypatch.setattr(runner.model, "generate", espion)
    runner.predict("Bonjour", **kwargs)
    return runner.tokenizer.decode(vus[0])


def test_mode_chat_applique_le_gabarit(runner, monkeypatch):
    texte = _texte_vu_par_le_modele(runner, monkeypatch, chat=True)
    assert texte.startswith("<|im_start|>system\n")
    assert "<|im_start|>user\nBonjour<|im_end|>\n" in texte
    assert texte.endswith("<|im_start|>assistant\n")


def test_mode_brut_sans_gabarit(runner, monkeypatch):
    assert _texte_vu_par_le_modele(runner, monkeypatch, chat=False) == "Bonjour"


def test_chat_automatique_selon_le_tokenizer(runner):
    assert runner.utilise_chat() is True  # le tokenizer a un gabarit
    assert runner.utilise_chat(False) is False


def test_prompt_systeme(dossier_modele_minuscule):
    r = BasicModelRunner(str(dossier_modele_minuscule), verbeux=False,
                         system_prompt="Tu réponds pour Vitrexpress.")
    texte = r.formater("Bonjour")
    assert texte.startswith("<|im_start|>system\nTu réponds pour Vitrexpress.")


def test_alias_inconnu_message_clair():
    with pytest.raises(ModeleIntrouvable) as info:
        charger_modele("smollm2-inexistant", local_files_only=True)
    message = str(info.value)
    assert "« smollm2-inexistant »" in message
    assert modeles.MODELE_EMBARQUE in message  # dit quoi faire à la place


def test_id_du_hub_injoignable_jamais_de_substitut():
    with pytest.raises(ModeleIntrouvable) as info:
        charger_modele("meta-llama/Llama-2-7b-hf", local_files_only=True)
    message = str(info.value)
    assert "« meta-llama/Llama-2-7b-hf »" in message
    assert "injoignable" in message and "réseau" in message


def test_dossier_absent(tmp_path):
    with pytest.raises(ModeleIntrouvable, match="ce dossier n'existe pas"):
        charger_modele(str(tmp_path / "nulle-part" / "modele"))


def test_choix_du_dtype(monkeypatch):
    monkeypatch.delenv("AFFINAGE_DTYPE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(modeles, "drapeaux_cpu", lambda: {"avx2", "fma"})
    assert modeles.choisir_device_dtype(entrainement=True)[:2] == ("cpu", torch.float32)
    monkeypatch.setattr(modeles, "drapeaux_cpu", lambda: {"avx2", "amx_bf16"})
    assert modeles.choisir_device_dtype(entrainement=True)[1] == torch.bfloat16
    assert modeles.choisir_device_dtype()[1] == torch.float32  # génération : fp32
    monkeypatch.setenv("AFFINAGE_DTYPE", "bfloat16")
    assert modeles.choisir_device_dtype()[1] == torch.bfloat16


def test_choix_du_dtype_processeur_impose_malgre_un_gpu(monkeypatch):
    # Un GPU bf16 est là, mais l'appelant veut le processeur (sans bf16 natif) :
    # le dtype est celui du processeur, pas celui du GPU.
    monkeypatch.delenv("AFFINAGE_DTYPE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(modeles, "drapeaux_cpu", lambda: {"avx2", "fma"})
    assert modeles.choisir_device_dtype()[:2] == ("cuda", torch.bfloat16)
    assert modeles.choisir_device_dtype(device="cpu")[:2] == ("cpu", torch.float32)
    monkeypatch.setenv("AFFINAGE_DTYPE", "bfloat16")
    assert modeles.choisir_device_dtype(device="cpu")[0] == "cpu"


def test_dossier_adaptateur_lora(dossier_modele_minuscule, tmp_path):
    # Un adaptateur LoRA sauvegardé se recharge par son dossier : le runner
    # retrouve le modèle de base cité dans adapter_config.json.
    from peft import LoraConfig, get_peft_model

    # Tout sur le processeur, même s'il y a un GPU : on compare des logits.
    base, tokenizer = charger_modele(str(dossier_modele_minuscule),
                                     dtype=torch.float32, device="cpu",
                                     verbeux=False)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adaptateur")
    config = json.loads((tmp_path / "adaptateur" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(dossier_modele_minuscule)
    runner = BasicModelRunner(str(tmp_path / "adaptateur"), dtype=torch.float32,
                              device="cpu", verbeux=False)
    ids = tokenizer("Bonjour", return_tensors="pt").input_ids
    with torch.no_grad():
        attendu = peft_model(ids).logits
        obtenu = runner.model(ids).logits
        sans_adaptateur = charger_modele(str(dossier_modele_minuscule),
                                         device="cpu", verbeux=False)[0](ids).logits
    torch.testing.assert_close(obtenu, attendu)
    assert not torch.allclose(obtenu, sans_adaptateur)  # l'adaptateur agit bien


def test_depuis_modele_egal_au_runner_charge(runner):
    # Autour d'un modèle déjà en mémoire (après l'entraînement), mêmes réglages :
    # mêmes textes formatés, mêmes réponses.
    options = dict(max_new_tokens=12, system_prompt="Tu es un assistant.")
    charge = BasicModelRunner(runner.model_name, dtype=torch.float32,
                              verbeux=False, **options)
    autour = BasicModelRunner.depuis_modele(charge.model, charge.tokenizer,
                                            **options)
    assert autour.formater("Bonjour") == charge.formater("Bonjour")
    assert "Tu es un assistant." in autour.formater("Bonjour")
    assert autour.predict(PROMPTS) == charge.predict(PROMPTS)
    assert autour.max_new_tokens == 12


def test_adaptateur_garde_ses_jetons_d_arret(dossier_modele_minuscule, tmp_path):
    # Les jetons d'arrêt sauvegardés avec l'adaptateur (la fin de tour d'un
    # gabarit ajouté) arrêtent aussi ``generate`` appelé sans configuration,
    # comme dans la discussion : il lit celle du modèle de base.
    from peft import LoraConfig, get_peft_model

    # Tout sur le processeur, même s'il y a un GPU : on compare des logits.
    base, tokenizer = charger_modele(str(dossier_modele_minuscule),
                                     dtype=torch.float32, device="cpu",
                                     verbeux=False)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"]))
    ids = tokenizer("Bonjour", return_tensors="pt").input_ids
    with torch.no_grad():
        sortie = base.generate(ids, do_sample=False, max_new_tokens=3,
                               eos_token_id=None, pad_token_id=0)
    arret = sortie[0, ids.shape[1]].item()  # le premier jeton produit
    peft_model.generation_config.eos_token_id = [tokenizer.eos_token_id, arret]
    peft_model.save_pretrained(tmp_path / "adaptateur")
    peft_model.generation_config.save_pretrained(tmp_path / "adaptateur")
    model, _ = charger_modele(str(tmp_path / "adaptateur"), verbeux=False)
    with torch.no_grad():
        sortie = model.generate(input_ids=ids, do_sample=False, max_new_tokens=3)
    assert sortie.shape[1] == ids.shape[1] + 1  # arrêté au premier jeton
