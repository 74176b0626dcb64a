"""Les trois chemins d'entraînement du banc, et le compte de leurs jetons.

Chaque chemin part du même modèle, avec le même LoRA initialisé par la même
graine, et renvoie ``(modèle entraîné, compteur, chrono, durée de
préparation, réglages)``. Voir ``bench.entrainement``.
"""

import tempfile
from dataclasses import replace

from bench.commun import Chrono


class Compteur:
    """Les jetons des lots vraiment vus par l'entraînement, pas par pas."""

    def __init__(self):
        self.jetons = self.jetons_perte = self.jetons_calcules = self.pas = 0

    def ajouter(self, lot):
        """Un lot tel que le modèle le reçoit (rempli, ou empaqueté)."""
        ids = lot["input_ids"]
        masque = lot.get("attention_mask")
        self.jetons += int(masque.sum()) if masque is not None else ids.numel()
        self.jetons_perte += int((lot["labels"][:, 1:] != -100).sum())
        self.jetons_calcules += ids.numel()  # remplissage compris
        self.pas += 1


def avec_compteur(classe):
    """Une sous-classe de ``Trainer`` qui compte les jetons de chaque pas."""

    class TrainerCompte(classe):
        compteur = None

        def training_step(self, model, inputs, *args, **kwargs):
            self.compteur.ajouter(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    return TrainerCompte


def modele_lora(config, nom=None, base_bf16=False):
    """Le modèle ``nom`` (défaut : l'embarqué) en fp32, avec son gabarit de
    tours, LoRA appliqué avec la même graine partout. ``base_bf16`` : la base
    gelée passe en bf16 avant LoRA, comme dans ``entrainer_assistant``."""
    import torch

    from tutorial_code.assistant import preparer_gabarit
    from tutorial_code.entrainement import appliquer_methode
    from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele

    model, tokenizer = charger_modele(nom or MODELE_EMBARQUE, dtype=torch.float32,
                                      verbeux=False)
    preparer_gabarit(model, tokenizer)  # rien à faire pour un modèle de discussion
    if base_bf16:
        model.to(torch.bfloat16)  # les matrices LoRA, ajoutées ensuite, en fp32
    torch.manual_seed(config.graine)  # même initialisation de A pour tous
    return appliquer_methode(model, config), tokenizer


def chemin_guide(config, train, nom=None, base_bf16=False):
    """La boucle du chapitre ; les jetons se comptent sur son plan de lots,
    le même que celui qu'``entrainer`` suit (fixé par la graine).
    ``base_bf16`` : la base gelée en bf16, comme l'assistant du chapitre
    Recherche (le chapitre Entraînement la garde en fp32, sous autocast)."""
    from tutorial_code.entrainement import entrainer, planifier
    from tutorial_code.lots import collate_packing

    base_bf16 = base_bf16 and config.bf16  # sans objet si le calcul est en fp32
    model, _ = modele_lora(config, nom, base_bf16=base_bf16)
    compteur = Compteur()
    for lot in planifier([len(e["input_ids"]) for e in train], config):
        compteur.ajouter(collate_packing([train[i] for i in lot]))
    with Chrono() as chrono:
        entrainer(model, train, None, config)
    model.float()  # la perte de validation en fp32, comme pour les autres chemins
    reglages = {"bf16": config.bf16, "base_bf16": base_bf16,
                "recalcul": False, "empaquetage": True,
                "lots_par_longueur": True, "rangees_par_maj": config.accumulation}
    return model, compteur, chrono, 0.0, reglages


def perte_somme_logits_partout(model, lot):
    """Comme ``perte_somme``, mais la tête de langage calcule toutes les
    positions de la rangée (ce que fait un ``model(...).logits`` ordinaire) :
    même perte, plus de calcul. Sert à mesurer ce que la tête de langage aux
    seules positions de la perte épargne."""
    import torch.nn.functional as F

    suivantes = lot["labels"][0, 1:]  # (N - 1,)
    logits = model(input_ids=lot["input_ids"], position_ids=lot["position_ids"],
                   use_cache=False).logits[0, :-1].float()  # (N - 1, vocabulaire)
    garder = suivantes != -100
    perte = F.cross_entropy(logits[garder], suivantes[garder], reduction="sum")
    return perte, int(garder.sum())


def regler(**changement):
    """Un levier qui ne fait que changer la configuration du guide."""
    return lambda config, base_bf16: (replace(config, **changement), base_bf16)


def une_rangee(config, base_bf16):
    """Les exemples d'une mise à jour en une seule rangée, sans accumulation
    (2 rangées de 8 → 1 rangée de 16) ni borne de jetons."""
    k = config.accumulation
    return replace(config, taille_lot=config.taille_lot * k, accumulation=1,
                   max_pas=config.max_pas // k, max_jetons=0), base_bf16


# Chaque levier du guide retiré seul : (nom, (config, base_bf16) → les mêmes
# sans le levier, tête de langage à toutes les positions). Le rapport « guide /
# levier » dit ce qu'il rapporte.
LEVIERS = {
    "sans_bf16": ("guide en fp32 (sans bf16)", regler(bf16=False), False),
    "logits_partout": ("guide, tête de langage à toutes les positions", regler(),
                       True),
    "toutes_couches": ("guide, LoRA sur toutes les couches",
                       regler(lora_couches=0), False),
    "une_rangee": ("guide, une rangée de 16 par mise à jour", une_rangee, False),
    "rangees_libres": ("guide, rangées sans borne de jetons", regler(max_jetons=0),
                       False),
    # Assistant en bf16 seulement : la base gelée reste en fp32, et l'autocast
    # en fait une copie bf16 à chaque passe.
    "base_fp32": ("guide, base gelée en fp32 (autocast)",
                  lambda config, base_bf16: (config, False), False),
}


def chemin_levier(cle, config, train, nom=None, base_bf16=False):
    """Le guide sans un de ses leviers (voir ``LEVIERS``)."""
    from tutorial_code import entrainement

    _, retirer, logits_partout = LEVIERS[cle]
    config, base_bf16 = retirer(config, base_bf16)
    origine = entrainement.perte_somme
    if logits_partout:
        entrainement.perte_somme = perte_somme_logits_partout
    try:
        return chemin_guide(config, train, nom, base_bf16)
    finally:
        entrainement.perte_somme = origine


def lancer(trainer):
    """``trainer.train()`` en silence (sans le bilan qu'il affiche), en comptant."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    trainer.compteur = Compteur()
    trainer.train()


def arguments_communs(config, n_pas, dossier):
    """Ce qu'on aligne sur le guide : l'optimisation, pas la mécanique."""
    return dict(output_dir=dossier, max_steps=n_pas, learning_rate=config.lr,
                per_device_train_batch_size=config.taille_lot * config.accumulation,
                lr_scheduler_type="cosine", warmup_steps=config.warmup,
                max_grad_norm=config.max_grad_norm,
                weight_decay=config.weight_decay, seed=config.graine,
                use_cpu=True, save_strategy="no", logging_strategy="no",
                report_to="none", disable_tqdm=True)


def chemin_trl(config, train, n_pas, nom=None, regle=False):
    """TRL ``SFTTrainer`` sur les exemples déjà tokenisés : par défaut, ou
    (``regle``) réglé comme sa documentation le permet : sans remplissage
    (exemples mis bout à bout, ``position_ids``), sans recalcul des
    activations, bf16 seulement si le guide le choisit (calcul natif)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # TRL calcule la perte depuis lm_head.weight (tête « fusionnée », sans
    # logits complets) et refuse un adaptateur sur lm_head : ses chemins
    # adaptent les mêmes couches, sans la tête (un peu moins de travail).
    tete = config.lora_tete
    config = replace(config, lora_tete=False)
    model, tokenizer = modele_lora(config, nom)
    # max_length=None : nos exemples sont déjà sous la longueur maximale, et TRL
    # ne sait pas la faire respecter sans remplissage ni empaquetage.
    reglage = dict(padding_free=True, gradient_checkpointing=False,
                   bf16=config.bf16, max_length=None) if regle else {}
    with tempfile.TemporaryDirectory() as dossier:
        with Chrono() as preparation:
            args = SFTConfig(**arguments_communs(config, n_pas, dossier), **reglage)
            trainer = avec_compteur(SFTTrainer)(
                model=model, args=args, processing_class=tokenizer,
                train_dataset=Dataset.from_list(train))
        with Chrono() as chrono:
            lancer(trainer)
    reglages = {"bf16": args.bf16, "recalcul": args.gradient_checkpointing,
                "empaquetage": args.packing, "sans_remplissage": args.padding_free}
    if tete:
        reglages["lora_sur_lm_head"] = "refusé par TRL"
    return model, trainer.compteur, chrono, preparation.duree, reglages


def chemin_trainer(config, train, n_pas, nom=None):
    """``Trainer`` de transformers par défaut ; le collateur remplit les
    étiquettes de -100 (celui par défaut ne sait pas remplir ``labels``)."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model, tokenizer = modele_lora(config, nom)
    with tempfile.TemporaryDirectory() as dossier:
        with Chrono() as preparation:
            args = TrainingArguments(**arguments_communs(config, n_pas, dossier))
            trainer = avec_compteur(Trainer)(
                model=model, args=args,
                data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
                train_dataset=Dataset.from_list(train))
        with Chrono() as chrono:
            lancer(trainer)
    reglages = {"bf16": args.bf16, "recalcul": args.gradient_checkpointing}
    return model, trainer.compteur, chrono, preparation.duree, reglages


def chauffer(model, config, train):
    """Un pas avant + arrière en bf16 et en fp32, non chronométré : les
    premiers appels préparent les noyaux, aucun chemin ne doit les payer."""
    from tutorial_code.entrainement import contexte_calcul, perte_somme
    from tutorial_code.lots import collate_packing

    lot = collate_packing(train[:4])
    for bf16 in (True, False):
        with contexte_calcul(replace(config, bf16=bf16), model):
            perte, _ = perte_somme(model, lot)
        perte.backward()
    model.zero_grad(set_to_none=True)
