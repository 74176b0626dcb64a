"""Les fonctions pures des bancs d'essai (bench/) : arithmétique, verdicts,
écriture des résultats. Aucune durée n'est vérifiée ici : les bancs ne sont
pas des tests, ils se lancent avec ``make bench``."""

import json

import pytest
import torch

from bench import commun
from bench.calcul import compter_parametres, flops_matmul, flops_utiles, mfu
from bench.chemins import Compteur
from bench.entrainement import section
from tests.conftest import construire_modele, construire_tokenizer


def test_nombres_a_la_francaise():
    assert commun.nombre(12345.678, 1) == "12\u202f345,7"
    assert commun.facteur(1.5) == "1,50×"
    assert commun.pourcent(0.125) == "12,5\u00a0%"
    assert [commun.court(x) for x in (1.5, 0.05, 60, 0)] == ["1,5", "0,05", "60",
                                                             "0"]


def test_flops_utiles_lora_et_complet():
    lora = {"corps_gele": 100, "corps_entraine": 10, "tete": 50,
            "tete_entrainee": False}
    # 3 jetons × (4 × 100 + 6 × 10) + 2 jetons de perte × 4 × 50
    assert flops_utiles(3, 2, lora) == 3 * 460 + 2 * 200
    complet = {"corps_gele": 0, "corps_entraine": 100, "tete": 50,
               "tete_entrainee": True}
    assert flops_utiles(1, 1, complet) == 6 * 100 + 6 * 50
    assert flops_matmul(10) == 2000


def test_mfu():
    assert mfu(1e12, 2.0, 1e12) == pytest.approx(0.5)
    assert mfu(1e12, 0.0, 1e12) is None


def test_compter_parametres_avec_lora():
    from tutorial_code.entrainement import ConfigEntrainement, appliquer_methode

    tokenizer = construire_tokenizer()
    modele = appliquer_methode(construire_modele(tokenizer),
                               ConfigEntrainement(lora_r=4))
    comptes = compter_parametres(modele)
    lineaires = [m for m in modele.modules() if isinstance(m, torch.nn.Linear)]
    entraines = sum(p.numel() for p in modele.parameters() if p.requires_grad)
    assert comptes["tete"] == len(tokenizer) * 64
    assert not comptes["tete_entrainee"]
    assert comptes["corps_entraine"] == entraines  # LoRA seul s'entraîne
    assert (comptes["corps_gele"] + comptes["corps_entraine"] + comptes["tete"]
            == sum(m.weight.numel() for m in lineaires))
    assert comptes["corps_avant_seul"] == comptes["tete_lora"] == 0


def test_compter_parametres_lora_dernieres_couches_et_tete():
    """LoRA sur la dernière couche et la tête (recette de l'assistant) : les
    couches du dessous ne font que la passe avant, la tête reste comptée à part."""
    from tutorial_code.entrainement import ConfigEntrainement, appliquer_methode

    tokenizer = construire_tokenizer()
    modele = construire_modele(tokenizer)
    n_couches = modele.config.num_hidden_layers
    modele = appliquer_methode(modele, ConfigEntrainement(
        lora_r=4, lora_couches=1, lora_tete=True))
    comptes = compter_parametres(modele)
    assert comptes["tete"] == len(tokenizer) * 64 and not comptes["tete_entrainee"]
    assert comptes["tete_lora"] == 4 * (64 + len(tokenizer))
    assert comptes["corps_avant_seul"] > 0
    # (n - 1) couches sur n ne font que la passe avant : même taille chacune
    par_couche = comptes["corps_avant_seul"] / (n_couches - 1)
    assert comptes["corps_gele"] == pytest.approx(par_couche)


def test_compteur_rempli_et_empaquete():
    compteur = Compteur()
    compteur.ajouter({"input_ids": torch.zeros(2, 4, dtype=torch.long),
                      "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
                      "labels": torch.tensor([[-100, -100, 5, 6],
                                              [-100, 7, -100, -100]])})
    compteur.ajouter({"input_ids": torch.zeros(1, 5, dtype=torch.long),
                      "labels": torch.tensor([[-100, 1, -100, -100, 2]])})
    assert (compteur.jetons, compteur.jetons_calcules) == (6 + 5, 8 + 5)
    assert (compteur.jetons_perte, compteur.pas) == (3 + 2, 2)


def test_cibles_et_verdicts():
    assert commun.cible("x", 2.0, "2×", 1.5)["atteinte"] is True
    assert commun.cible("x", 1.2, "1,2×", 1.5)["atteinte"] is False
    assert commun.cible("t", 3.0, "3 s", 2.0, sens="<", unite=" s")["cible"] == "< 2 s"
    assert commun.cible("x", None, "—", 1.5)["atteinte"] is None


def chemin(jetons_par_s, perte):
    return {"pas": 2, "duree_s": 10.0, "preparation_s": 0.0, "jetons": 100,
            "jetons_perte": 40, "jetons_calcules": 120,
            "jetons_par_s": jetons_par_s, "jetons_perte_par_s": jetons_par_s / 2,
            "remplissage": 1 / 6, "flops_utiles": 1e9, "mfu_bf16": 0.1,
            "mfu_fp32": 0.5, "perte_validation": perte, "reglages": {},
            "cpu_pris_par_autres": 0.0}


def test_section_dit_ou_le_guide_perd():
    resultats = {"guide": chemin(120.0, 2.0), "trl": chemin(40.0, 2.01),
                 "trl_regle": chemin(100.0, 2.0), "trainer": chemin(60.0, 2.5)}
    resultats["trl"]["pic_ajoute_gio"] = 6.34
    pics = {"bf16": (1e12, 1024), "fp32": (1e11, 1024)}
    s = section({"mode": "test"}, {"fils_torch": 2}, pics, {}, 3.0, resultats,
                tolerance=0.1)
    verdicts = {c["nom"]: c["atteinte"] for c in s["cibles"]}
    # 120 / 40 = 3× TRL par défaut : atteint ; 120 / 100 = 1,2× TRL réglé < 1,5×
    assert verdicts["guide / TRL SFTTrainer (défauts), jetons/s"] is True
    assert verdicts["guide / TRL SFTTrainer (réglé), jetons/s"] is False
    ligne_trl = next(li for li in s["tableaux"][0]["lignes"] if "défauts" in li[0]
                     and "TRL" in li[0])
    assert "6,3" in ligne_trl  # pic ajouté, en Gio
    assert verdicts["guide / transformers Trainer (défauts), jetons/s"] is True
    assert any("Le guide perd ici" in r and "TRL" in r for r in s["remarques"])
    assert any("Pertes finales trop éloignées" in r and "Trainer" in r
               for r in s["remarques"])
    assert not any("autres processus" in r for r in s["remarques"])


def test_enregistrer_garde_les_autres_sections(tmp_path, monkeypatch):
    machine = {"processeur": "CPU", "coeurs": 2, "fils_torch": 2,
               "extensions": [], "memoire_gio": 1, "charge_au_depart": [0, 0, 0],
               "python": "3.11", "versions": {}, "commit": "abc", "date": "d"}
    partie = {"machine": machine, "config": {"mode": "rapide"},
              "tableaux": [{"titre": "T", "entetes": ["a", "b"],
                            "lignes": [[1, 2]]}],
              "cibles": [commun.cible("c", 2.0, "2×", 1.5)], "remarques": ["r"]}
    json_, md = tmp_path / "r.json", tmp_path / "r.md"
    commun.enregistrer("generation", partie, json_, md)
    commun.enregistrer("entrainement", partie, json_, md)
    tout = json.loads(json_.read_text(encoding="utf-8"))
    assert set(tout) == {"generation", "entrainement"}
    texte = md.read_text(encoding="utf-8")
    assert texte.index("## Entraînement") < texte.index("## Génération")
    assert "| a | b |" in texte and "| c | 2× | ≥ 1,5× | atteinte |" in texte


def test_chapitres_dependants():
    from construction.chapitres import NOMS
    from construction.sorties import chapitres_dependants

    assert chapitres_dependants("tutorial_code/introduction.py") == ["introduction"]
    assert chapitres_dependants("tutorial_code/modeles.py") == list(NOMS)


def test_docs_copie_les_entrees_sous_travail(tmp_path, monkeypatch):
    """Le clone du banc reçoit ce que les chapitres lisent sous _travail/
    (ignoré par git), et rien d'autre : sinon l'empreinte de « Recherche »
    change et il se recalcule au lieu de reprendre ses sorties."""
    import construction.sorties
    from bench.docs import entrees_hors_depot

    adaptateur = tmp_path / "_travail" / "assistant" / "modele" / "a.safetensors"
    donnees = tmp_path / "data" / "brut" / "fiche.csv"
    fichiers = {"entrainement": [donnees], "recherche": [donnees, adaptateur]}
    monkeypatch.setattr(construction.sorties, "fichiers_du_chapitre",
                        lambda c: fichiers[c])
    assert entrees_hors_depot(["entrainement", "recherche"], tmp_path) == [adaptateur]
    assert entrees_hors_depot(["entrainement"], tmp_path) == []


def test_generation_lot_trop_lent_et_chargement():
    from types import SimpleNamespace

    from bench.generation import section as section_generation

    lot = SimpleNamespace(duree=4.0, autres=0.0)
    un = SimpleNamespace(duree=10.0, autres=0.5)
    chargements = [{"import_s": 3.0, "chargement_s": x} for x in (1.0, 1.5, 9.0)]
    s = section_generation({}, {"fils_torch": 2}, chargements, lot, un, 80, 80,
                           8, 8)
    verdicts = {c["nom"]: c["atteinte"] for c in s["cibles"]}
    assert verdicts["lot de 8 / un à la fois (durée)"] is False  # 2,5×
    assert verdicts["chargement du modèle depuis le cache"] is True  # 1,5 s
    assert s["acceleration"] == pytest.approx(2.5)
    assert "50\u00a0%" in s["remarques"][0]  # d'autres processus ont pris la moitié


def test_docs_chapitre_de_trop_signale():
    from bench.docs import section as section_docs

    mesures = {"premiere": (100.0, []), "tiede": (8.0, []),
               "modifie": (30.0, ["introduction", "echelle"])}
    s = section_docs({}, {}, mesures, "tutorial_code/introduction.py",
                     ["introduction"])
    verdicts = [c["atteinte"] for c in s["cibles"]]
    assert verdicts == [True, True, False]
    assert any("Le guide perd ici" in r for r in s["remarques"])


def test_docs_memoire_des_chapitres(tmp_path):
    """Le banc relit la mémoire que chaque chapitre a mesurée et la compare à
    la cible : le plus gros pic est nommé, avec son chapitre."""
    import json

    from bench.docs import section as section_docs
    from construction.sorties import mesures_des_chapitres

    for chapitre, pic in {"introduction": 1500, "recherche": 6 * 1024}.items():
        (tmp_path / chapitre).mkdir()
        (tmp_path / chapitre / "memoire.json").write_text(
            json.dumps({"duree_s": 30.0, "pic_mio": pic}))
    memoire = mesures_des_chapitres(tmp_path)
    assert set(memoire) == {"introduction", "recherche"}
    mesures = {"premiere": (100.0, []), "tiede": (8.0, []),
               "modifie": (30.0, ["introduction"])}
    s = section_docs({}, {}, mesures, "tutorial_code/introduction.py",
                     ["introduction"], memoire=memoire)
    pic = s["cibles"][-1]
    assert pic["nom"] == "pic de mémoire d'un chapitre (recherche)"
    assert pic["valeur"] == 6 and pic["atteinte"] is False
    assert ["recherche", "30", "6,0"] in s["tableaux"][1]["lignes"]


def test_chrono_mesure_une_duree():
    import time

    with commun.Chrono() as chrono:
        time.sleep(0.2)  # 0,2 s d'attente, sans calcul
    assert 0.19 <= chrono.duree < 5
    assert chrono.autres is None or 0 <= chrono.autres <= 1


def test_readme_tableau_remplace_entre_les_marqueurs():
    from bench.readme import DEBUT, FIN, MarqueursAbsents, remplacer, section_readme

    m = {"processeur": "Xeon", "coeurs": 2, "extensions": ["amx_bf16"],
         "commit": "abc1234", "date": "2026-12-01T19:00:00+00:00"}
    tout = {"generation": {
        "machine": m,
        "tableaux": [{"titre": "Génération", "entetes": ["mode", "durée (s)"],
                      "lignes": [["un lot de 8", "4,76"]]}],
        "cibles": [commun.cible("lot / un", 3.1, "3,10×", 4.0)],
        "remarques": ["Processus neuf : imports 3 s.",
                      "Le guide perd ici : lot / un = 3,10× (visé ≥ 4×)."]}}
    contenu = section_readme(tout)
    assert "| lot / un | 3,10× | ≥ 4× | **manquée** |" in contenu
    assert "| un lot de 8 | 4,76 |" in contenu
    assert "Le guide perd ici" in contenu and "Processus neuf" not in contenu
    readme = f"# Titre\n\navant\n{DEBUT}\nancien tableau\n{FIN}\naprès\n"
    nouveau = remplacer(readme, contenu)
    assert "ancien tableau" not in nouveau and "abc1234" in nouveau
    assert nouveau.startswith("# Titre\n\navant\n") and nouveau.endswith("après\n")
    assert remplacer(nouveau, contenu) == nouveau  # idempotent
    with pytest.raises(MarqueursAbsents, match="README.md"):
        remplacer("# sans marqueurs\n", contenu)
    with pytest.raises(MarqueursAbsents):
        remplacer(f"{FIN}\n{DEBUT}\n", contenu)  # dans le mauvais ordre


def test_readme_du_depot_a_ses_marqueurs():
    from bench.readme import DEBUT, FIN, README, remplacer, section_readme

    texte = README.read_text(encoding="utf-8")  # lève si les marqueurs manquent
    vide = remplacer(texte, section_readme({}))
    assert "_Aucun résultat : lancez `make bench`._" in vide
    assert vide.split(DEBUT)[0] == texte.split(DEBUT)[0]  # le reste intact
    assert vide.split(FIN)[1] == texte.split(FIN)[1]


def test_pourquoi_lot_decompose_l_acceleration():
    from bench.generation import pourquoi_lot

    # 4 réponses de 9, 9, 4 et 2 jetons (+ 1 jeton de fin chacune) : le lot
    # fait 10 pas, 28 places utiles sur 40 ; un pas à 4 coûte
    # (5 s / 10) / (12 s / (24 + 4)) = 1,17 pas à 1.
    texte = pourquoi_lot(5.0, 12.0, [9, 9, 4, 2], 24)
    assert texte.startswith("Pourquoi : un pas de décodage à 4 prompts coûte 1,17×")
    assert "70\u00a0%" in texte  # 28 / 40 places utiles
    # 4 × 0,7 / 1,1667 = 2,40× : exactement l'accélération mesurée (12 s / 5 s),
    # puisque les réponses sont les mêmes dans le lot et une à une.
    assert texte.endswith("≈ 2,40×.")


def test_readme_garde_les_autres_types_de_processeur():
    """Un run sur un AMD ne remplace que le bloc de l'AMD : celui du Xeon reste."""
    from bench.readme import blocs_par_genre, contenu_fusionne, section_readme

    def resultats(processeur, extensions, commit):
        m = {"processeur": processeur, "coeurs": 2, "extensions": extensions,
             "commit": commit, "date": "2026-12-03T14:00:00+00:00"}
        return {"assistant": {"machine": m, "tableaux": [], "remarques": [],
                              "cibles": [commun.cible("guide / TRL", 3.2,
                                                      "3,2×", 3.0)]}}

    xeon = section_readme(resultats("Xeon", ["amx_bf16"], "aaa1111"))  # ancien format
    amd = contenu_fusionne(xeon, resultats("EPYC", ["avx512_bf16"], "bbb2222"))
    assert list(blocs_par_genre(amd)) == ["Xeon (amx_bf16)", "EPYC (avx512_bf16)"]
    assert "aaa1111" in amd and "bbb2222" in amd
    encore = contenu_fusionne(amd, resultats("EPYC", ["avx512_bf16"], "ccc3333"))
    assert "bbb2222" not in encore and "ccc3333" in encore and "aaa1111" in encore
    assert contenu_fusionne(encore, {}) == encore  # sans résultat : rien ne bouge
    assert "_Aucun résultat" in contenu_fusionne("", {})


def test_readme_garde_les_autres_bancs_de_la_machine():
    """Un banc relancé seul ne remplace que sa section : les autres sections du
    bloc de la machine restent, avec leur commit, dans l'ordre des bancs."""
    from bench.readme import contenu_fusionne, sections_par_banc

    def resultats(banc, commit, mesure):
        m = {"processeur": "EPYC", "coeurs": 2, "extensions": ["avx512_bf16"],
             "commit": commit, "date": "2026-12-05T02:00:00+00:00"}
        return {banc: {"machine": m, "tableaux": [], "remarques": [],
                       "cibles": [commun.cible("rapport", mesure,
                                               f"{mesure}×", 3.0)]}}

    complet = contenu_fusionne("", {**resultats("entrainement", "aaa1111", 3.1),
                                    **resultats("docs", "aaa1111", 1.0)})
    apres = contenu_fusionne(complet, resultats("assistant", "bbb2222", 4.4))
    sections = sections_par_banc(apres)
    assert list(sections) == ["entrainement", "assistant", "docs"]
    assert "aaa1111" in sections["entrainement"] and "aaa1111" in sections["docs"]
    assert "bbb2222" in sections["assistant"] and "4.4×" in sections["assistant"]
    encore = contenu_fusionne(apres, resultats("assistant", "ccc3333", 4.5))
    assert "bbb2222" not in encore and encore.count("aaa1111") == 2
    # « Entraînement » ne happe pas la section de l'assistant, qui commence
    # par le même mot
    assert "4.5×" not in sections_par_banc(encore)["entrainement"]


def test_section_discussion_medianes_et_cibles():
    from bench.generation import Chronometre, section_discussion

    mesures = [{"recherche_s": 0.004, "invite": 120, "premier_jeton_s": p,
                "reponse_s": r, "jetons": 40} for p, r in
               ((0.5, 2.5), (0.7, 2.7), (1.5, 6.5))]
    tableau, cibles, remarque = section_discussion("essai", 3.0, mesures)
    # médianes : 0,7 s et 2,7 s ; débit : 120 jetons en 2 + 2 + 5 = 9 s
    assert tableau["lignes"] == [["4,0", 120, "0,70", "2,70", 40, "13,3"]]
    assert [c["atteinte"] for c in cibles] == [True, True]
    assert "3,0 s de démarrage" in remarque
    chrono = Chronometre()
    for _ in range(3):  # l'invite, puis deux jetons
        chrono.put(None)
    assert len(chrono.instants) == 2


def test_rendre_memoire_libre_revient_au_niveau_vivant():
    import torch

    from bench.commun import rendre_memoire_libre

    depart = rendre_memoire_libre()
    blocs = [torch.ones(256, 1024) for _ in range(256)]  # 256 Mio en 1 Mio
    avec = rendre_memoire_libre()
    del blocs
    apres = rendre_memoire_libre()
    assert avec - depart > 200 * 2**20
    assert apres < depart + 50 * 2**20  # la mémoire libérée est rendue


def test_logits_partout_meme_perte_que_le_guide(tokenizer_minuscule):
    # Le levier « tête de langage aux seules positions de la perte » ne change
    # pas la perte : seulement le calcul.
    import torch
    from conftest import construire_modele

    from bench.chemins import perte_somme_logits_partout
    from tutorial_code.entrainement import perte_somme
    from tutorial_code.lots import collate_packing
    from tutorial_code.tokenisation import tokeniser_conversation

    model = construire_modele(tokenizer_minuscule)
    conversations = [[{"role": "user", "content": "Bonjour"},
                      {"role": "assistant", "content": "Le remplacement coûte 129 €."}],
                     [{"role": "user", "content": "La garantie ?"},
                      {"role": "assistant", "content": "Pendant 2 ans."}]]
    lot = collate_packing([tokeniser_conversation(tokenizer_minuscule, c)
                           for c in conversations])
    with torch.no_grad():
        attendu, n = perte_somme(model, lot)
        obtenu, m = perte_somme_logits_partout(model, lot)
    assert n == m > 0
    torch.testing.assert_close(obtenu, attendu)


def test_chemin_guide_base_bf16_comme_l_assistant(dossier_modele_minuscule,
                                                   tokenizer_minuscule):
    # Le guide du banc de l'assistant entraîne, comme entrainer_assistant, une
    # base gelée en bf16 sous des matrices LoRA en fp32, puis rend un modèle
    # tout en fp32 pour la perte de validation ; le levier « base_fp32 » la
    # garde en fp32.
    from dataclasses import replace

    import torch

    from bench.chemins import chemin_guide, chemin_levier, modele_lora
    from tutorial_code.entrainement import ConfigEntrainement
    from tutorial_code.tokenisation import tokeniser_conversation

    config = ConfigEntrainement(bf16=True, max_pas=2, taille_lot=2, accumulation=1)
    model, _ = modele_lora(config, str(dossier_modele_minuscule), base_bf16=True)
    types = {n: p.dtype for n, p in model.named_parameters()}
    assert {t for n, t in types.items() if "lora_" in n} == {torch.float32}
    assert {t for n, t in types.items() if "lora_" not in n} == {torch.bfloat16}
    conversation = [{"role": "user", "content": "Bonjour"},
                    {"role": "assistant", "content": "Le pare-brise coûte 129 €."}]
    train = [tokeniser_conversation(tokenizer_minuscule, conversation)] * 4
    config = replace(config, lr=1e-3)
    dossier = str(dossier_modele_minuscule)
    model, compteur, _, _, reglages = chemin_guide(config, train, dossier, True)
    assert reglages["base_bf16"] is True and compteur.jetons > 0
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    _, _, _, _, reglages = chemin_levier("base_fp32", config, train, dossier, True)
    assert reglages["base_bf16"] is False  # le levier garde la base en fp32


def test_precision_dit_ou_le_bf16_gagne_et_ou_il_perd():
    from bench.precision import enumerer
    from bench.precision import section as section_precision

    mesures = {"SmolLM2, un lot de 8": {"fp32": 4.0, "bf16": 2.0, "n": 8,
                                        "identiques": 6},
               "SmolLM2, un prompt à la fois": {"fp32": 16.0, "bf16": 15.8, "n": 8,
                                               "identiques": 7},
               "assistant, un lot": {"fp32": 6.0, "bf16": 10.0, "n": 8,
                                     "identiques": 8}}
    tableau, remarque = section_precision(mesures, 5, 8, 8, ["avx512_bf16"])
    assert [ligne[3] for ligne in tableau["lignes"]] == ["2,00×", "1,01×", "0,60×"]
    assert tableau["lignes"][0][4] == "6 sur 8"
    # 2× plus vite pour le lot, 0,6× pour l'assistant ; 1 % d'écart ne compte pas
    assert "plus vite pour « SmolLM2, un lot de 8 » (2,00×), mais moins vite " \
           "pour « assistant, un lot » (0,60×)" in remarque
    assert "prompt à la fois »" not in remarque
    assert enumerer(["a", "b", "c"]) == "a, b et c"
    assert "8 sur 8 en fp32, 5 sur 8 en bf16, qui arrondit plus gros" in remarque
    _, remarque = section_precision({"a": {"fp32": 1.0, "bf16": 2.0, "n": 8,
                                           "identiques": 8}}, 8, 8, 8, ["amx_bf16"])
    assert "n'irait plus vite nulle part ici, moins vite pour « a » (0,50×)" \
        in remarque
    assert "arrondit" not in remarque  # autant d'identiques : pas d'explication


def test_en_tete_nomme_allocateur_et_cache_onednn(monkeypatch):
    from bench.commun import machine, texte_machine

    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    assert "cache oneDNN de 64 primitives" in texte_machine(machine())
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    assert "cache oneDNN de 1\u202f024 primitives" in texte_machine(machine())
