"""Lecture, validation, conversion, découpage et chaîne complète du
prétraitement."""

import json

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_code import pretraitement as pt
from tutorial_code.nettoyage import jaccard, trigrammes
from tutorial_code.pretraitement_lecture import (
    ROLES_STANDARD,
    ErreurChamp,
    ErreurEntree,
    analyser_roles,
    extraire_messages,
    lire_csv,
    lire_jsonl,
    valider_messages,
)

ROLES = {**ROLES_STANDARD, "client": "user", "conseiller": "assistant"}


def ecrire(chemin, lignes):
    chemin.write_text("\n".join(json.dumps(x, ensure_ascii=False) if isinstance(
        x, dict) else x for x in lignes) + "\n", encoding="utf-8")
    return chemin


def conv(*paires):
    return {"messages": [{"role": r, "content": c} for r, c in paires]}


# --- Fichiers illisibles : une erreur claire, en français -------------------------

def test_fichier_absent(tmp_path):
    with pytest.raises(ErreurEntree, match="fichier introuvable"):
        lire_jsonl(tmp_path / "absent.jsonl")


def test_fichier_vide(tmp_path):
    (tmp_path / "vide.jsonl").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ErreurEntree, match="le fichier est vide"):
        lire_jsonl(tmp_path / "vide.jsonl")


def test_mauvais_encodage_nomme_la_ligne(tmp_path):
    chemin = tmp_path / "latin1.jsonl"
    texte = '{"question": "ok"}\n{"question": "café ?"}\n'
    chemin.write_bytes(texte.encode("latin-1"))
    with pytest.raises(ErreurEntree, match=r"ligne 2 : le fichier n'est pas encodé "
                                           r"en UTF-8 \(octet 0xe9"):
        lire_jsonl(chemin)


def test_csv_entete_et_colonnes(tmp_path):
    chemin = tmp_path / "faq.csv"
    chemin.write_text('id,question,reponse\n1,"Sur deux\nlignes ?",Oui\n'
                      "2,Trop,de,colonnes\n3,Bien ?,Oui\n", encoding="utf-8")
    lignes, rejets = lire_csv(chemin, ["id", "question", "reponse"])
    # L'enregistrement 1 couvre les lignes 2-3 du fichier : le suivant est en 4.
    assert [n for n, _ in lignes] == [2, 5]
    assert [(r["ligne"], r["raison"]) for r in rejets] == [
        (4, "4 colonnes au lieu de 3")]
    with pytest.raises(ErreurEntree, match="en-tête"):
        lire_csv(chemin, ["id", "q", "r"])


# --- Lignes invalides : un rejet qui nomme fichier, ligne et champ ------------------

def test_json_mal_forme(tmp_path):
    chemin = ecrire(tmp_path / "a.jsonl", [conv(("user", "a"), ("assistant", "b")),
                                           '{"messages": [{"role": "user", "con'])
    lignes, rejets = lire_jsonl(chemin)
    assert len(lignes) == 1
    assert rejets[0]["ligne"] == 2 and rejets[0]["fichier"] == str(chemin)
    assert rejets[0]["raison"] == "JSON invalide, colonne 32 : chaîne non terminée"


@pytest.mark.parametrize("objet,champ,raison", [
    ({"id": "C015", "canal": "chat"}, "messages", "champ absent"),
    (conv(("client", "Bonjour"), ("superviseur", "Oui")), "messages[1].role",
     "rôle inconnu « superviseur »"),
    (conv(("client", "Bonjour"), ("conseiller", " <p> </p> ")),
     "messages[1].content", "contenu vide"),
    ({"question": "Horaires ?", "reponse": ""}, "reponse", "contenu vide"),
    (conv(("client", "Bonjour"), ("client", "Vous êtes là ?"),
          ("conseiller", "Oui")), "messages[1].role",
     "« user » au lieu de « assistant »"),
    (conv(("client", "Bonjour"),), "messages[0].role", "doit finir par une réponse"),
    ({"conversations": [{"from": "human"}]}, "conversations[0]", "attendus"),
])
def test_enregistrement_invalide(objet, champ, raison):
    with pytest.raises(ErreurChamp) as exc:
        valider_messages(extraire_messages(objet), ROLES, nettoyer=pt.nettoyer_texte)
    assert exc.value.champ == champ and raison in exc.value.raison


def test_rien_de_valide_n_est_perdu(tmp_path, tokenizer_minuscule):
    chemin = ecrire(tmp_path / "m.jsonl", [
        conv(("user", "Quels horaires ?"), ("assistant", "De 8 h 30 à 18 h 30.")),
        "pas du json",
        conv(("user", "Un impact ?"), ("robot", "69 €")),
        conv(("user", "Le devis ?"), ("assistant", "Gratuit, valable 3 mois.")),
        conv(("user", "Quels horaires ?"), ("assistant", "De 8 h 30 à 18 h 30."))])
    source = ("fichier", chemin, *lire_jsonl(chemin), ROLES_STANDARD)
    jeu, rejets, comptes = pt.preparer([source], tokenizer_minuscule, part=0)
    assert jeu["train"]["id"] == ["m.jsonl:1", "m.jsonl:4"]
    assert [(r["ligne"], r["champ"]) for r in rejets] == [
        (2, "(ligne)"), (3, "messages[1].role"), (5, "(ligne)")]
    assert rejets[2]["raison"] == "doublon exact de la ligne 1 (similarité 1,00)"
    assert comptes["lus"] == {"fichier": 5} and comptes["uniques"] == {"fichier": 2}


def test_trop_long_signale_avec_ses_jetons(tokenizer_minuscule):
    court = [{"role": "user", "content": "Bonjour"},
             {"role": "assistant", "content": "Bonjour !"}]
    long = [court[0], {"role": "assistant", "content": "Le remplacement. " * 40}]
    n = pt.compter_jetons(long, tokenizer_minuscule)
    jeu = datasets.Dataset.from_list([{"messages": court}, {"messages": long}])
    gardes, trop_longs = pt.signaler_trop_longs(jeu, tokenizer_minuscule, 100)
    assert n > 100 and gardes["messages"] == [court]
    assert trop_longs["n_jetons"] == [n]


# --- Conversion des schémas courants ----------------------------------------------

@pytest.mark.parametrize("objet,attendu", [
    ({"conversations": [{"from": "human", "value": "Q"},
                        {"from": "gpt", "value": "R"}]},
     [("user", "Q"), ("assistant", "R")]),
    ({"messages": [{"role": "UTILISATEUR", "content": "Q"},
                   {"role": "ASSISTANT", "content": "R"}]},
     [("user", "Q"), ("assistant", "R")]),
    ({"question": " Q ", "answer": "R"}, [("user", "Q"), ("assistant", "R")]),
    ({"instruction": "Réponds.", "input": "Q", "output": "R"},
     [("user", "Réponds.\n\nQ"), ("assistant", "R")]),
    ({"instruction": "Q", "input": "", "output": "R"},
     [("user", "Q"), ("assistant", "R")]),
])
def test_conversion_des_schemas(objet, attendu):
    roles = {**ROLES_STANDARD, **analyser_roles(
        "human=user,gpt=assistant,UTILISATEUR=user,ASSISTANT=assistant")}
    messages = valider_messages(extraire_messages(objet), roles,
                                nettoyer=pt.nettoyer_texte)
    assert [(m["role"], m["content"]) for m in messages] == attendu


@pytest.mark.parametrize("texte", ["human", "human=bot", "=user"])
def test_roles_invalides(texte):
    with pytest.raises(ValueError, match="ANCIEN=NOUVEAU"):
        analyser_roles(texte)


# --- Découpage : reproductible et sans recouvrement --------------------------------

@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), part=st.sampled_from([0.1, 0.2, 0.5]),
       graine=st.integers(0, 1000))
def test_decoupage_disjoint_et_reproductible(n, part, graine):
    jeu = datasets.Dataset.from_dict({"id": [str(i) for i in range(n)]})
    a, b = pt.decouper(jeu, part, graine), pt.decouper(jeu, part, graine)
    train, val = set(a["train"]["id"]), set(a["validation"]["id"])
    assert not train & val and len(train | val) == n
    assert a["train"]["id"] == b["train"]["id"]


# --- La chaîne complète sur les données de l'entreprise ----------------------------

@pytest.fixture(scope="module")
def entreprise():
    return pt.preparer_entreprise()


def test_comptes_sur_les_donnees_du_projet(entreprise):
    jeu, rejets, comptes = entreprise
    total = {etape: sum(c.values()) for etape, c in comptes.items()}
    assert comptes["lus"] == {"faq": 354, "chat": 50, "tickets": 804}
    assert comptes["valides"] == {"faq": 347, "chat": 45, "tickets": 804}
    assert comptes["uniques"] == {"faq": 335, "chat": 45, "tickets": 804}
    assert total["sans fuite"] == total["assez courts"] == 1184
    assert (total["train"], total["validation"]) == (1065, 119)
    assert sum(r["raison"].startswith("doublon") for r in rejets) == 12
    assert len(rejets) == 24


def test_format_du_jeu(entreprise):
    jeu = entreprise[0]
    assert set(jeu) == {"train", "validation"}
    for exemple in jeu["train"]:
        assert exemple["source"] in ("faq", "chat", "tickets")
        assert exemple["messages"][0] == {"role": "system",
                                          "content": pt.PROMPT_SYSTEME}
        roles = [m["role"] for m in exemple["messages"][1:]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        assert (exemple["ref_fiche"] is None) == (exemple["source"] == "chat")
    texte = json.dumps(list(jeu["train"]["messages"]), ensure_ascii=False)
    assert "06 12 34" not in texte and "@exemple.fr" not in texte
    assert "&eacute;" not in texte and "<p>" not in texte


def test_aucune_fuite_vers_le_jeu_de_test(entreprise):
    jeu = entreprise[0]
    tests = [trigrammes(q["question"]) for q in pt.charger_questions_test()]
    assert len(tests) >= 60
    for partie in jeu.values():
        for messages in partie["messages"]:
            for m in messages:
                if m["role"] == "user":
                    tri = trigrammes(m["content"])
                    assert max(jaccard(tri, t) for t in tests) < pt.SEUIL_FUITE


def test_une_fuite_est_retiree(tokenizer_minuscule, tmp_path):
    question = pt.charger_questions_test()[0]["question"]
    chemin = ecrire(tmp_path / "f.jsonl", [
        {"question": question, "answer": "En 2009, à Lyon."},
        {"question": "Horaires ?", "answer": "De 8 h 30 à 18 h 30."}])
    source = ("fichier", chemin, *lire_jsonl(chemin), ROLES_STANDARD)
    jeu, rejets, _ = pt.preparer([source], tokenizer_minuscule,
                                 questions=pt.charger_questions_test(), part=0)
    assert jeu["train"]["id"] == ["f.jsonl:2"]
    assert rejets[0]["raison"].startswith("fuite : ressemble à la question de "
                                          "test T001")


def test_fiche_et_questions():
    fiche = pt.charger_fiche()
    assert len(fiche) >= 60 and fiche[0]["id"] == "F001"
    assert isinstance(fiche[0]["cles"], list)
    question = pt.charger_questions_test()[0]
    assert set(question) == {"id", "ref_fiche", "question", "faits_cles"}


def test_charger_jeu_met_en_cache(tmp_path, monkeypatch, entreprise):
    appels = []

    def preparer_compte():
        appels.append(1)
        return entreprise

    monkeypatch.setattr(pt, "preparer_entreprise", preparer_compte)
    jeu = pt.charger_jeu(tmp_path / "donnees")
    assert len(appels) == 1 and jeu["train"].num_rows == 1065
    assert pt.charger_jeu(tmp_path / "donnees")["validation"].num_rows == 119
    assert len(appels) == 1  # relu depuis le disque
    (tmp_path / "donnees" / "empreinte.txt").write_text("ancienne")
    pt.charger_jeu(tmp_path / "donnees")
    assert len(appels) == 2  # recalculé : les entrées ont « changé »
    assert (tmp_path / "donnees" / "train.jsonl").exists()


# --- La ligne de commande ----------------------------------------------------------

def test_cli_export_oasst(tmp_path, capsys, dossier_modele_minuscule):
    code = pt.main([str(pt.RACINE / "data/exemples/export_oasst.jsonl"),
                    "--sortie", str(tmp_path / "oasst"),
                    "--roles", "UTILISATEUR=user,ASSISTANT=assistant",
                    "--tokenizer", str(dossier_modele_minuscule)])
    assert code == 0
    assert "Lus : 10 ; gardés : 10 (train : 9, validation : 1) ; rejetés : 0 ; " \
           "doublons : 0." in capsys.readouterr().out
    jeu = datasets.load_from_disk(str(tmp_path / "oasst" / "arrow"))
    assert jeu["train"][0]["messages"][0]["role"] == "user"
    assert (tmp_path / "oasst" / "rejets.jsonl").read_text() == ""


@pytest.mark.parametrize("contenu,message", [
    (None, "fichier introuvable"),
    (b"", "le fichier est vide"),
    ('{"question": "café ?", "answer": "oui"}\n'.encode("latin-1"), "UTF-8"),
    (b'{"conversations": [{"from": "human", "value": "a"}]}\n',
     "aucun exemple valide"),
])
def test_cli_entree_illisible(tmp_path, capsys, contenu, message):
    chemin = tmp_path / "entree.jsonl"
    if contenu is not None:
        chemin.write_bytes(contenu)
    assert pt.main([str(chemin), "--sortie", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err
    # Aucun jeu écrit ; seulement les rejets, quand des lignes ont été lues.
    ecrits = sorted(p.name for p in (tmp_path / "s").glob("*"))
    assert ecrits == (["rejets.jsonl"] if message == "aucun exemple valide" else [])


def test_cli_aide_en_francais(capsys):
    with pytest.raises(SystemExit):
        pt.main(["--help"])
    aide = capsys.readouterr().out
    assert aide.startswith("utilisation : ") and "affiche cette aide" in aide


def test_cli_sans_exemple_valide_ecrit_quand_meme_les_rejets(tmp_path, capsys):
    from tutorial_code.pretraitement import main

    entree = tmp_path / "mauvais.jsonl"
    entree.write_text('{"messages": [{"role": "human", "content": "Salut"}]}\n'
                      "{oups\n", encoding="utf-8")
    assert main([str(entree), "--sortie", str(tmp_path / "sortie")]) == 2
    assert "aucun exemple valide" in capsys.readouterr().err
    rejets = (tmp_path / "sortie" / "rejets.jsonl").read_text(encoding="utf-8")
    assert len(rejets.splitlines()) == 2  # les deux lignes, chacune avec sa raison
    assert "ligne" in rejets and "JSON invalide" in rejets
