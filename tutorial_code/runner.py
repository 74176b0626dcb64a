"""``BasicModelRunner`` : l'interface de la bibliothèque ``llama`` de Lamini, refaite.

La bibliothèque d'origine (``from llama import BasicModelRunner``) n'existe plus ;
cette classe garde son interface avec transformers en dessous :

>>> runner = BasicModelRunner("smollm2-135m-instruct")  # ou un id du Hub
>>> runner.predict("Tell me how to fix a broken car window")  # -> str
>>> runner(["question 1", "question 2"])                     # -> list[str]

Exécutable : ``python -m tutorial_code.runner "Votre question"``.
"""


import torch
from transformers import GenerationConfig

from tutorial_code.aide import creer_parser
from tutorial_code.modeles import MODELE_EMBARQUE, charger_modele


# [region:runner]
class BasicModelRunner:
    """Charge un modèle une fois, puis génère du texte pour un ou plusieurs prompts.

    ``chat=True`` applique le gabarit de discussion du tokenizer (ce qu'attend un
    modèle affiné pour la discussion) ; ``chat=False`` donne le texte tel quel au
    modèle, qui le continue (ce que fait un modèle seulement pré-entraîné).
    Par défaut (``None``), le gabarit est appliqué si le tokenizer en a un.
    """

    def __init__(self, model_name=MODELE_EMBARQUE, chat=None, max_new_tokens=128,
                 system_prompt=None, dtype=None, device=None, verbeux=True):
        model, tokenizer = charger_modele(model_name, dtype=dtype, device=device,
                                          verbeux=verbeux)
        self._regler(model_name, model, tokenizer, chat, max_new_tokens,
                     system_prompt)

    def _regler(self, model_name, model, tokenizer, chat, max_new_tokens,
                system_prompt):
        self.model_name, self.model, self.tokenizer = model_name, model, tokenizer
        self.chat = chat
        self.max_new_tokens = max_new_tokens
        self.system_prompt = system_prompt
        if self.tokenizer.pad_token is None:  # Llama 2 n'a pas de jeton de padding
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @classmethod
    def depuis_modele(cls, model, tokenizer, chat=None, max_new_tokens=128,
                      system_prompt=None):
        """Un runner autour d'un modèle déjà en mémoire (juste après l'entraînement)."""
        runner = cls.__new__(cls)
        runner._regler(getattr(model.config, "_name_or_path", ""), model, tokenizer,
                       chat, max_new_tokens, system_prompt)
        return runner

    def utilise_chat(self, chat=None):
        """Le mode retenu : argument, sinon réglage du runner, sinon automatique."""
        chat = self.chat if chat is None else chat
        return self.tokenizer.chat_template is not None if chat is None else chat

    def formater(self, prompt, chat=None):
        """Le texte exact que voit le modèle pour ``prompt``."""
        if not self.utilise_chat(chat):
            return prompt
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True)

    def predict(self, prompt, max_new_tokens=None, chat=None, taille_lot=16):
        """Génère la suite de ``prompt`` (str) ou de chaque prompt d'une liste."""
        un_seul = isinstance(prompt, str)
        prompts = [prompt] if un_seul else list(prompt)
        # Par lots de 16 prompts au plus : la mémoire de la génération (le cache
        # des clés et valeurs, lot × jetons) reste la même pour 67 questions
        # que pour 16.
        reponses = [reponse for i in range(0, len(prompts), taille_lot)
                    for reponse in self._generer(prompts[i:i + taille_lot],
                                                 max_new_tokens, chat)]
        return reponses[0] if un_seul else reponses

    @torch.inference_mode()
    def _generer(self, prompts, max_new_tokens, chat):
        """Les réponses d'un lot de prompts, générées ensemble."""
        textes = [self.formater(p, chat) for p in prompts]
        # Padding à GAUCHE : tous les prompts finissent au même indice, et le
        # modèle génère la suite de chacun au même pas (B prompts × T jetons).
        self.tokenizer.padding_side = "left"
        # Le gabarit contient déjà ses jetons spéciaux : ne pas en rajouter.
        lot = self.tokenizer(textes, return_tensors="pt", padding=True,
                             add_special_tokens=not self.utilise_chat(chat))
        lot = lot.to(self.model.device)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            do_sample=False,  # décodage glouton : déterministe
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id,
        )
        sorties = self.model.generate(**lot, generation_config=config)
        nouveaux = sorties[:, lot["input_ids"].shape[1]:]  # (B, jetons générés)
        reponses = self.tokenizer.batch_decode(nouveaux, skip_special_tokens=True)
        # Sans jeton de fin, la réponse a été coupée par max_new_tokens : « […] »
        # le dit au lecteur, au lieu d'une phrase qui s'arrête au milieu d'un mot.
        fins = torch.tensor(config.eos_token_id, device=nouveaux.device).view(-1)
        coupees = ~torch.isin(nouveaux, fins).any(dim=1)  # (B,)
        return [r.strip() + (" […]" if c else "")
                for r, c in zip(reponses, coupees.tolist())]

    __call__ = predict  # comme chez Lamini : runner("...") == runner.predict("...")
# [fin:runner]


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.runner",
        description="Génère une réponse avec BasicModelRunner.")
    parser.add_argument("prompt", nargs="+", help="un ou plusieurs prompts")
    parser.add_argument("--modele", default=MODELE_EMBARQUE,
                        help="alias, dossier (modèle ou adaptateur LoRA) ou id du Hub")
    parser.add_argument("--brut", action="store_true",
                        help="complétion brute, sans gabarit de discussion")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    runner = BasicModelRunner(args.modele, chat=False if args.brut else None,
                              max_new_tokens=args.max_new_tokens)
    for prompt, reponse in zip(args.prompt, runner.predict(args.prompt)):
        print(f"» {prompt}\n{reponse}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
