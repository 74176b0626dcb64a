"""Banc d'essai de l'entraînement : la boucle du guide contre TRL et le Trainer.

Trois chemins, même modèle, mêmes données de l'entreprise, même LoRA (même
initialisation), même taux d'apprentissage et même calendrier (échauffement
puis cosinus), même nombre de mises à jour de même taille :

* le guide : ``entrainer`` (``perte_somme``, ``collate_packing``, lots
  regroupés par longueur), bf16 choisi par ``choisir_device_dtype`` ;
* TRL ``SFTTrainer`` avec ses réglages par défaut (bf16, recalcul des
  activations, lots au hasard complétés par remplissage) ;
* ``Trainer`` de transformers par défaut (fp32, lots au hasard, remplissage
  dynamique par ``DataCollatorForSeq2Seq``).

On mesure les jetons réels par seconde, les jetons qui comptent dans la perte
par seconde, la MFU contre les pics bf16 et fp32 mesurés dans le même run,
puis la perte de validation finale de chacun, évaluée de la même façon (fp32).

Avec ``--assistant``, le même banc mesure le chemin de l'assistant (chapitre
Recherche) : Gemma 3 270M de base, les conversations avec fiches, la recette
``RECETTE_RAG`` (LoRA sur les 8 dernières couches et la tête de langage), et
un quatrième chemin, TRL réglé comme sa documentation le permet (sans
remplissage, sans recalcul, bf16 seulement s'il est natif). Chaque chemin dit
aussi son pic de mémoire résidente, chargement du modèle compris.

Exécutable : ``python -m bench.entrainement`` (``--rapide`` : 2 pas).
"""

import gc
import warnings
from dataclasses import replace

from bench import commun
from bench.calcul import compter_parametres, flops_utiles, mesurer_pics, mfu
from bench.chemins import (
    LEVIERS,
    chauffer,
    chemin_guide,
    chemin_levier,
    chemin_trainer,
    chemin_trl,
    modele_lora,
)
from bench.commun import facteur, nombre, pourcent

# Le guide doit aller au moins 3 fois plus vite que TRL par défaut, 1,5 fois
# plus vite que TRL réglé, et pas moins vite que le Trainer.
CIBLES = {"trl": 3.0, "trl_regle": 1.5, "trainer": 1.0}
NOMS = {"guide": "guide (entrainer)", "trl": "TRL SFTTrainer (défauts)",
        "trl_regle": "TRL SFTTrainer (réglé)",
        "trainer": "transformers Trainer (défauts)"}
NOMS.update({cle: nom for cle, (nom, _, _) in LEVIERS.items()})
AUTRES = ("trl", "trl_regle", "trainer")  # les chemins comparés au guide
N_VALIDATION_ASSISTANT = 64  # conversations de l'assistant mises de côté


def analyser_arguments(argv=None):
    parser = commun.analyseur(
        "python -m bench.entrainement",
        "Compare le débit d'entraînement de la boucle du guide à "
        "celui de TRL SFTTrainer et du Trainer de transformers "
        "réglés par défaut : mêmes données, même LoRA, même nombre "
        "de pas, perte de validation finale comparée.")
    parser.add_argument("--rapide", action="store_true",
                        help="2 pas : pour vérifier que tout marche "
                             "(chiffres peu fiables)")
    parser.add_argument("--pas", type=int, default=None,
                        help="mises à jour par chemin (défaut : 20, 8 avec "
                             "--assistant, 2 en rapide)")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="écart de perte de validation toléré avec le guide, "
                             "en nats par jeton de réponse (défaut : 0,1)")
    parser.add_argument("--micro-lots", type=int, default=0, metavar="K",
                        help="le guide découpe chaque mise à jour de 16 exemples "
                             "en K rangées empaquetées (accumulation) : "
                             "l'attention d'une rangée croît comme le carré de "
                             "sa longueur (défaut : celui de la recette, 4)")
    parser.add_argument("--chemins", default="guide,trl,trl_regle,trainer",
                        help="chemins mesurés, le guide toujours compris "
                             "(défaut : guide,trl,trl_regle,trainer)")
    parser.add_argument("--assistant", action="store_true",
                        help="le chemin de l'assistant : Gemma 3 270M, "
                             "conversations avec fiches, recette RECETTE_RAG")
    parser.add_argument("--leviers", action="store_true",
                        help="mesure aussi le guide privé de chacun de ses leviers "
                             "(bf16, logits aux seules positions de la perte, "
                             "LoRA sur les dernières couches, micro-lots)")
    parser.add_argument("--sans-json", action="store_true",
                        help="n'écrit pas bench/resultats.json")
    return parser.parse_args(argv)


def exemples_assistant(tokenizer):
    """(train, validation, comptes) : les conversations de l'assistant avec
    leurs fiches, tokenisées ; les dernières mises de côté pour la validation."""
    from functools import partial

    from tutorial_code.assistant import donnees_assistant, tokeniser
    from tutorial_code.pretraitement import charger_fiche, charger_jeu
    from tutorial_code.sonde import Encodeur, IndexMixte

    # Les fiches de chaque exemple, comme dans le chapitre : BM25 + sonde.
    fiche, encodeur = charger_fiche(), Encodeur()
    conversations, _ = donnees_assistant(
        charger_jeu(), fiche, construire_index=partial(IndexMixte, fiche,
                                                       encodeur=encodeur))
    del encodeur  # son modèle (1 Gio) ne compte pas dans le pic des chemins
    exemples = tokeniser(conversations, tokenizer)
    train = exemples[:-N_VALIDATION_ASSISTANT]
    validation = exemples[-N_VALIDATION_ASSISTANT:]
    return train, validation, {"exemples": len(train)}


def mesurer(args):
    """Les chemins l'un après l'autre ; renvoie la section de résultats."""
    import torch

    from tutorial_code.assistant import RECETTE_RAG
    from tutorial_code.echelle_un_gpu import pic_octets, repartir_du_niveau_actuel
    from tutorial_code.entrainement import perte_moyenne
    from tutorial_code.modeles import MODELE_BASE, MODELE_EMBARQUE, choisir_device_dtype
    from tutorial_code.recette import RECETTE, preparer_exemples

    # Gemma : un pas coûte environ trois fois celui de SmolLM2, d'où moins de pas.
    n_pas = args.pas or (2 if args.rapide else 8 if args.assistant else 20)
    _, dtype, raison = choisir_device_dtype(entrainement=True)
    recette = RECETTE_RAG if args.assistant else RECETTE["lora"]
    modele = MODELE_BASE if args.assistant else MODELE_EMBARQUE
    par_maj = recette.taille_lot * recette.accumulation  # exemples par mise à jour
    k = args.micro_lots or recette.accumulation
    if par_maj % k:
        raise SystemExit(f"Erreur : --micro-lots doit diviser {par_maj}.")
    config = replace(recette, bf16=dtype == torch.bfloat16, max_pas=n_pas * k,
                     taille_lot=par_maj // k, accumulation=k)
    chemins = ["guide"] + [c for c in AUTRES if c in args.chemins.split(",")]
    # La base gelée de l'assistant passe en bf16 quand le calcul l'est (voir
    # entrainer_assistant) ; celle du chapitre Entraînement reste en fp32.
    base_bf16 = args.assistant and config.bf16
    if args.leviers:
        sans_objet = {"toutes_couches": not config.lora_couches,  # LoRA partout
                      "base_fp32": not base_bf16}
        chemins += [c for c in LEVIERS if not sans_objet.get(c)]
    machine = commun.machine()
    base, tokenizer = modele_lora(config, modele)
    train, validation, comptes = (exemples_assistant(tokenizer) if args.assistant
                                  else preparer_exemples(tokenizer))
    # Assez d'époques pour n_pas mises à jour ; max_pas coupe le plan.
    par_epoque = -(-len(train) // config.taille_lot)
    config = replace(config, num_epochs=-(-config.max_pas // par_epoque))
    config_eval = replace(config, bf16=False)  # même évaluation pour tous
    reglages = {
        "modèle": f"{modele}, LoRA r={config.lora_r} alpha={config.lora_alpha} "
                  f"sur {len(config.lora_cibles)} projections"
                  + (f" des {config.lora_couches} dernières couches"
                     if config.lora_couches else "")
                  + (" et la tête de langage" if config.lora_tete else ""),
        "données": f"{comptes['exemples']} exemples d'entraînement "
                   + ("de l'assistant (avec fiches)" if args.assistant
                      else "de la recette") + f", {len(validation)} de validation",
        "optimisation": f"{n_pas} mises à jour de {par_maj} exemples"
                        + (f" (guide : {k} rangées de {config.taille_lot})"
                           if k > 1 else "") + ", "
                        f"AdamW lr {config.lr:g}, échauffement "
                        f"{pourcent(config.warmup, 0)} puis cosinus, "
                        f"écrêtage {config.max_grad_norm:g}",
        "calcul du guide": f"{'bf16' if config.bf16 else 'fp32'} ({raison})"
                           + (", base gelée en bf16" if base_bf16 else ""),
        "perte de validation": "fp32, perte moyenne par jeton de réponse, "
                               f"tolérance ± {nombre(args.tolerance, 2)} nat",
        "mode": "rapide (chiffres indicatifs)" if args.rapide else "complet",
    }
    commun.entete("entraînement", reglages, machine)
    print("Mesure des pics de calcul (produits matriciels) …", flush=True)
    pics = mesurer_pics(args.rapide)
    for nom, (debit, n) in pics.items():
        print(f"  pic {nom} : {nombre(debit / 1e9, 0)} Gflop/s (n = {n})")
    chauffer(base, config, train)
    perte_avant = perte_moyenne(base, validation, config_eval)
    params = compter_parametres(base)
    del base
    resultats = {}
    for cle in chemins:
        print(f"Entraînement : {NOMS[cle]} …", flush=True)
        commun.rendre_memoire_libre()  # chaque chemin part du même niveau
        repartir_du_niveau_actuel()  # le pic lu ensuite est celui de ce chemin
        avant = pic_octets()
        if cle == "guide":
            model, compteur, chrono, prep, details = chemin_guide(
                config, train, modele, base_bf16)
        elif cle in LEVIERS:
            model, compteur, chrono, prep, details = chemin_levier(
                cle, config, train, modele, base_bf16)
        elif cle == "trainer":
            model, compteur, chrono, prep, details = chemin_trainer(
                config, train, n_pas, modele)
        else:
            model, compteur, chrono, prep, details = chemin_trl(
                config, train, n_pas, modele, regle=cle == "trl_regle")
        pic_gio = (pic_octets() - avant) / 2**30  # ajouté par ce chemin
        duree = chrono.duree
        flops = flops_utiles(compteur.jetons, compteur.jetons_perte, params)
        resultats[cle] = {
            "pas": n_pas, "duree_s": duree, "preparation_s": prep,
            "cpu_pris_par_autres": chrono.autres,
            "jetons": compteur.jetons, "jetons_perte": compteur.jetons_perte,
            "jetons_calcules": compteur.jetons_calcules,
            "jetons_par_s": compteur.jetons / duree,
            "jetons_perte_par_s": compteur.jetons_perte / duree,
            "remplissage": 1 - compteur.jetons / compteur.jetons_calcules,
            "flops_utiles": flops,
            "mfu_bf16": mfu(flops, duree, pics["bf16"][0]),
            "mfu_fp32": mfu(flops, duree, pics["fp32"][0]),
            "perte_validation": perte_moyenne(model, validation, config_eval),
            "pic_ajoute_gio": pic_gio,
            "reglages": details,
        }
        print(f"  {nombre(duree, 1)} s, "
              f"{nombre(resultats[cle]['jetons_par_s'], 0)} jetons/s, "
              f"{commun.part_autres(chrono.autres)} du processeur pris par d'autres",
              flush=True)
        del model
        gc.collect()
    return section(reglages, machine, pics, params, perte_avant, resultats,
                   args.tolerance)


def section(reglages, machine, pics, params, perte_avant, resultats, tolerance):
    """Tableaux, cibles et remarques à partir des mesures brutes."""
    guide = resultats["guide"]
    lignes, cibles, remarques = [], [], []
    for cle, r in resultats.items():
        lignes.append([
            NOMS[cle], r["pas"], nombre(r["duree_s"], 1),
            nombre(r["jetons_par_s"], 0), nombre(r["jetons_perte_par_s"], 0),
            pourcent(r["remplissage"]), pourcent(r["mfu_bf16"]),
            pourcent(r["mfu_fp32"]), nombre(r["perte_validation"], 3),
            nombre(r["pic_ajoute_gio"], 1) if "pic_ajoute_gio" in r else "—",
            facteur(guide["jetons_par_s"] / r["jetons_par_s"]),
            commun.part_autres(r["cpu_pris_par_autres"])])
    for cle in [c for c in AUTRES if c in resultats]:
        r = resultats[cle]
        for mesure, titre in (("jetons_par_s", "jetons/s"),
                              ("jetons_perte_par_s", "jetons de perte/s")):
            valeur = guide[mesure] / r[mesure]
            seuil = CIBLES[cle]
            cibles.append(commun.cible(f"guide / {NOMS[cle]}, {titre}", valeur,
                                       facteur(valeur), seuil))
        ecart = abs(r["perte_validation"] - guide["perte_validation"])
        cibles.append(commun.cible(
            f"écart de perte de validation, {NOMS[cle]} / guide", ecart,
            nombre(ecart, 3), tolerance, sens="<", unite=" nat"))
    if any("lora_sur_lm_head" in r["reglages"] for r in resultats.values()):
        remarques.append(
            "TRL refuse un adaptateur LoRA sur lm_head (sa perte se calcule depuis "
            "lm_head.weight) : ses chemins adaptent les mêmes couches sans la tête "
            "de langage. Ils font un peu moins de travail que le guide, et "
            "n'apprennent pas la fin de tour d'un modèle seulement pré-entraîné : "
            "leur perte de validation s'en ressent.")
    for c in cibles:
        if c["atteinte"] is False and "perte" in c["nom"].split(",")[0]:
            remarques.append(f"Pertes finales trop éloignées ({c['nom']} = "
                             f"{c['texte']}) : ce chemin n'apprend pas comme "
                             "le guide, son débit ne se compare qu'avec prudence.")
        elif c["atteinte"] is False:
            remarques.append(f"Le guide perd ici : {c['nom']} = {c['texte']} "
                             f"(visé {c['cible']}).")
    leviers = [c for c in LEVIERS if c in resultats]
    if leviers:
        remarques.append(
            "Ce que rapporte chaque levier du guide (durée du guide privé de ce "
            "levier / durée du guide ; entre parenthèses, perte de validation et pic "
            "de mémoire) : "
            + " ; ".join(
                f"{NOMS[c].removeprefix('guide, ').removeprefix('guide ')} "
                f"{facteur(guide['jetons_par_s'] / resultats[c]['jetons_par_s'])} "
                f"({nombre(resultats[c]['perte_validation'], 3)} contre "
                f"{nombre(guide['perte_validation'], 3)} ; pic ajouté "
                f"{nombre(resultats[c]['pic_ajoute_gio'], 1)} contre "
                f"{nombre(guide['pic_ajoute_gio'], 1)} Gio)" for c in leviers) + ".")
    remarques.append(
        f"Perte de validation avant entraînement : "
        f"{nombre(perte_avant, 3)} ; pics mesurés : bf16 "
        f"{nombre(pics['bf16'][0] / 1e9, 0)} Gflop/s, fp32 "
        f"{nombre(pics['fp32'][0] / 1e9, 0)} Gflop/s.")
    alerte = commun.alerte_autres([r["cpu_pris_par_autres"]
                                   for r in resultats.values()])
    if alerte:
        remarques.insert(0, alerte)
    remarques.append(
        "MFU = calcul utile (4 flop par poids gelé et par jeton réel, 6 par poids "
        "entraîné, tête de langage aux seuls jetons de perte, attention au sein "
        "des exemples négligée) / durée / pic ; le remplissage, le recalcul et "
        "l'attention masquée entre exemples d'une rangée n'y comptent pas.")
    for cle in [c for c in AUTRES if c in resultats]:
        details = ", ".join(f"{k}={v}" for k, v in resultats[cle]["reglages"].items())
        remarques.append(f"{NOMS[cle]} : {details} ; création du trainer "
                         f"{nombre(resultats[cle]['preparation_s'], 1)} s, non "
                         "comptée.")
    tableau = {"titre": "Débit d'entraînement, mêmes pas, mêmes données",
               "entetes": ["chemin", "mises à jour", "durée (s)", "jetons/s",
                           "jetons de perte/s", "remplissage", "MFU bf16",
                           "MFU fp32", "perte de validation",
                           "pic ajouté (Gio)", "guide / chemin",
                           "CPU pris par d'autres"],
               "lignes": lignes}
    return {"machine": machine, "config": reglages, "pics_flops": {
                k: v[0] for k, v in pics.items()},
            "parametres": params, "perte_validation_avant": perte_avant,
            "chemins": resultats, "tableaux": [tableau], "cibles": cibles,
            "remarques": remarques}


def main(argv=None):
    args = analyser_arguments(argv)
    # Les annonces de dépréciation de transformers noieraient les mesures.
    warnings.filterwarnings("ignore", category=FutureWarning)
    resultat = mesurer(args)
    commun.afficher_section(resultat)
    if not args.sans_json:
        commun.enregistrer("assistant" if args.assistant else "entrainement",
                           resultat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
