"""L'arithmétique de l'affinage : paramètres, paramètres LoRA, mémoire.

Tout se calcule à partir de la configuration du modèle (``LlamaConfig``), sans
charger un seul poids : on peut donc faire les comptes pour Llama 2 7B sur un
ordinateur portable.

Exécutable : ``python -m tutorial_code.memoire`` affiche le tableau.
"""


from transformers import AutoConfig, LlamaConfig

from tutorial_code.aide import creer_parser
from tutorial_code.nombres import formater

# Les modules linéaires d'un bloc Llama : nom -> (d_in, d_out) en fonction de la config.
MODULES_LINEAIRES = ["q_proj", "k_proj", "v_proj", "o_proj",
                     "gate_proj", "up_proj", "down_proj"]


def llama2_7b():
    """La configuration publiée de Llama 2 7B (aucun téléchargement)."""
    return LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, tie_word_embeddings=False)


# [region:dimensions]
def dimensions(config):
    """(d_in, d_out) de chaque matrice d'un bloc, d'après la configuration."""
    d, inter = config.hidden_size, config.intermediate_size
    tete = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q = config.num_attention_heads * tete  # sortie de q_proj
    kv = config.num_key_value_heads * tete  # sortie de k_proj et v_proj (GQA)
    return {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv),
            "o_proj": (q, d), "gate_proj": (d, inter), "up_proj": (d, inter),
            "down_proj": (inter, d)}
# [fin:dimensions]


# [region:compter]
def compter_parametres(config):
    """Nombre total de paramètres d'un Llama, calculé à la main."""
    d = config.hidden_size
    par_bloc = sum(i * o for i, o in dimensions(config).values())
    par_bloc += 2 * d  # deux RMSNorm par bloc (un poids par dimension)
    embeddings = config.vocab_size * d
    tete_lm = 0 if config.tie_word_embeddings else config.vocab_size * d
    return embeddings + config.num_hidden_layers * par_bloc + d + tete_lm


def compter_lora(config, r, cibles=MODULES_LINEAIRES):
    """Paramètres entraînables de LoRA : r × (d_in + d_out) par matrice adaptée.

    LoRA remplace la mise à jour d'une matrice W (d_out × d_in) par B·A, avec
    A de forme (r × d_in) et B de forme (d_out × r).
    """
    dims = dimensions(config)
    par_bloc = sum(r * (dims[m][0] + dims[m][1]) for m in cibles)
    return config.num_hidden_layers * par_bloc
# [fin:compter]


# [region:memoire]
def memoire_entrainement(n_total, n_entrainables, precision):
    """Octets des poids, gradients et états d'AdamW (hors activations).

    * fp32 : poids 4 o, gradients 4 o, AdamW 2 × 4 o (moyennes m et v) ;
    * bf16 mixte : poids 2 o, gradients 2 o, AdamW 2 × 4 o, plus une copie
      fp32 (4 o) des seuls poids entraînés, que l'optimiseur met à jour.
    """
    if precision == "fp32":
        return {"poids": 4 * n_total, "gradients": 4 * n_entrainables,
                "optimiseur": 8 * n_entrainables}
    return {"poids": 2 * n_total, "gradients": 2 * n_entrainables,
            "optimiseur": 12 * n_entrainables}
# [fin:memoire]


def tableau_memoire(modeles, r=16):
    """Lignes (modèle, méthode, précision, Gio par poste et total)."""
    lignes = []
    for nom, config in modeles.items():
        n = compter_parametres(config)
        for methode, entrainables in (("complet", n), (f"LoRA r={r}",
                                                       compter_lora(config, r))):
            for precision in ("fp32", "bf16"):
                m = memoire_entrainement(n, entrainables, precision)
                gio = {k: v / 2**30 for k, v in m.items()}
                lignes.append((nom, methode, precision, entrainables, gio,
                               sum(gio.values())))
    return lignes


def afficher_tableau(lignes):
    """Le tableau en texte, une ligne par (modèle, méthode, précision)."""
    print(f"{'modèle':<16}{'méthode':<12}{'préc.':<6}{'entraînables':>15}"
          f"{'poids':>9}{'grad.':>8}{'AdamW':>8}{'total':>9}  (Gio)")
    for nom, methode, precision, entrainables, gio, total in lignes:
        print(f"{nom:<16}{methode:<12}{precision:<6}"
              f"{formater(entrainables, 0):>15}{formater(gio['poids']):>9}"
              f"{formater(gio['gradients']):>8}{formater(gio['optimiseur']):>8}"
              f"{formater(total):>9}")


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.memoire",
        description="Paramètres et mémoire d'entraînement, complet ou LoRA.")
    parser.add_argument("--rang", type=int, default=16, help="rang r de LoRA")
    args = parser.parse_args(argv)
    from tutorial_code.modeles import preparer_modele_embarque

    modeles = {"SmolLM2-135M": AutoConfig.from_pretrained(preparer_modele_embarque()),
               "Llama-2-7B": llama2_7b()}
    afficher_tableau(tableau_memoire(modeles, args.rang))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
