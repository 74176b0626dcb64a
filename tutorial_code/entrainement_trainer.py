"""Le même entraînement avec le ``Trainer`` de transformers, pour comparer.

Le ``Trainer`` fait pour nous ce que notre boucle écrit à la main : lots,
échauffement + cosinus, écrêtage, AdamW, bf16, points de reprise. Mêmes
données, même masquage, même réduction de la perte : le premier pas donne la
même perte que notre boucle (un test le vérifie).

Exécutable : ``python -m tutorial_code.entrainement_trainer --rapide``.
"""

import tempfile

from datasets import Dataset
from transformers import DataCollatorWithFlattening, Trainer, TrainingArguments

from tutorial_code.aide import creer_parser


# [region:trainer]
def creer_trainer(model, train, validation, config, dossier):
    """Un ``Trainer`` réglé comme notre boucle (voir ``ConfigEntrainement``)."""
    arguments = TrainingArguments(
        output_dir=str(dossier),
        num_train_epochs=config.num_epochs,
        learning_rate=config.lr,
        per_device_train_batch_size=config.taille_lot,
        per_device_eval_batch_size=config.taille_lot,
        gradient_accumulation_steps=config.accumulation,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup,  # < 1 : une part des mises à jour
        max_grad_norm=config.max_grad_norm,
        weight_decay=config.weight_decay,
        bf16=config.bf16,
        use_cpu=True,
        seed=config.graine,
        eval_strategy="epoch" if validation else "no",
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=False,
    )
    # Empaquetage sans remplissage, comme collate_packing : position_ids
    # remis à zéro à chaque exemple, -100 sur le premier jeton de chacun.
    collateur = DataCollatorWithFlattening()
    colonnes = lambda exemples: Dataset.from_list(  # noqa: E731
        [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in exemples])
    return Trainer(model=model, args=arguments, data_collator=collateur,
                   train_dataset=colonnes(train),
                   eval_dataset=colonnes(validation) if validation else None)
# [fin:trainer]


def perte_premier_lot(model, exemples, config):
    """La perte que le ``Trainer`` calcule sur un lot fait de ``exemples``."""
    with tempfile.TemporaryDirectory() as dossier:
        trainer = creer_trainer(model, exemples, None, config, dossier)
        lot = trainer.data_collator(
            [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in exemples])
        n = int((lot["labels"][:, 1:] != -100).sum())  # jetons comptés
        return trainer.compute_loss(model, lot, num_items_in_batch=n)


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.entrainement_trainer",
        description="Affine le modèle embarqué avec le Trainer de transformers, "
                    "réglé comme la boucle du chapitre (comparaison).")
    parser.add_argument("--sortie", default=tempfile.mkdtemp(prefix="trainer_"))
    parser.add_argument("--rapide", action="store_true",
                        help="16 exemples, une époque : quelques secondes")
    args = parser.parse_args(argv)
    from tutorial_code.entrainement import ConfigEntrainement, appliquer_methode
    from tutorial_code.modeles import charger_modele
    from tutorial_code.recette import preparer_exemples

    model, tokenizer = charger_modele("smollm2-135m-instruct")
    train, validation, _ = preparer_exemples(tokenizer)
    config = ConfigEntrainement()
    if args.rapide:
        train, validation = train[:16], validation[:4]
        config.num_epochs = 1
    model = appliquer_methode(model, config)
    creer_trainer(model, train, validation, config, args.sortie).train()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
