"""Exports aux noms de champs propres : champ des messages nommé ou détecté,
clés du rôle et du contenu renommées, troncature des conversations trop
longues par tours entiers. Les exports sont écrits par les tests."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_code import pretraitement as pt
from tutorial_code import pretraitement_lecture as lecture
from tutorial_code.pretraitement_lecture import ErreurChamp, Extracteur

QUESTIONS = ["Combien coûte un pare-brise ?", "Et le délai ?",
             "La garantie couvre quoi ?", "Vous êtes ouverts le samedi ?"]
REPONSES = ["Le remplacement coûte 129 €.", "Il prend 48 h.",
            "Les fuites, pendant 2 ans.", "Oui, de 8 h 30 à 18 h."]


def ecrire(chemin, objets):
    chemin.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n"
                              for o in objets), encoding="utf-8")
    return chemin


def tours(n, debut=0, cle_role="role", cle_texte="content",
          user="user", assistant="assistant"):
    """``n`` tours question/réponse, distincts d'une conversation à l'autre."""
    messages = []
    for i in range(debut, debut + n):
        messages += [{cle_role: user, cle_texte: QUESTIONS[i % 4] + f" ({i})"},
                     {cle_role: assistant, cle_texte: REPONSES[i % 4]}]
    return messages


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, tokenizer_minuscule):
    """Lance la CLI sur un export, avec le petit tokenizer des tests ; renvoie
    ``(code, sortie, erreurs, dossier)``."""
    monkeypatch.setattr(pt, "charger_tokenizer", lambda nom=None: tokenizer_minuscule)

    def lancer(entree, *options):
        dossier = tmp_path / "sortie"
        code = pt.main([str(entree), "--sortie", str(dossier), "--validation", "0",
                        *options])
        sortie = capsys.readouterr()
        return code, sortie.out, sortie.err, dossier

    return lancer


def lire_sortie(dossier, nom):
    lignes = (dossier / nom).read_text(encoding="utf-8").splitlines()
    return [json.loads(ligne) for ligne in lignes]


# --- Le champ des messages, nommé ------------------------------------------------

@pytest.mark.parametrize("champ", ["dialogue", "turns", "échanges"])
def test_champ_nomme(tmp_path, cli, champ):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"id": f"c{i}", champ: tours(2, debut=2 * i), "canal": "chat"}
        for i in range(3)])
    code, sortie, _, dossier = cli(entree, "--champ-messages", champ)
    assert code == 0
    assert "Lus : 3 ; gardés : 3 (train : 3) ; rejetés : 0 ; doublons : 0." in sortie
    assert "détecté" not in sortie  # nommé, pas détecté
    train = lire_sortie(dossier, "train.jsonl")
    assert [e["id"] for e in train] == ["c0", "c1", "c2"]
    assert train[1]["messages"] == tours(2, debut=2)


def test_champ_imbrique(tmp_path, cli):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"id": "a", "data": {"turns": tours(1), "langue": "fr"}},
        {"id": "b", "data": {"turns": tours(2, debut=1)}}])
    code, sortie, _, dossier = cli(entree, "--champ-messages", "data.turns")
    assert code == 0 and "gardés : 2 (train : 2)" in sortie
    assert lire_sortie(dossier, "train.jsonl")[1]["messages"] == tours(2, debut=1)


def test_champ_dont_le_nom_contient_un_point():
    # Un champ « data.turns » au premier niveau est pris tel quel.
    objet = {"data.turns": tours(1), "data": {"turns": "autre chose"}}
    bruts = Extracteur("data.turns")(objet)
    assert [b[:2] for b in bruts] == [("user", QUESTIONS[0] + " (0)"),
                                      ("assistant", REPONSES[0])]


# --- Les clés du rôle et du contenu -------------------------------------------------

def test_cles_sharegpt_sans_declarer_les_roles(tmp_path, cli):
    # from/value et human/gpt : les rôles ShareGPT sont ajoutés d'office.
    entree = ecrire(tmp_path / "sharegpt.jsonl", [
        {"dialogue": tours(2, debut=2 * i, cle_role="from", cle_texte="value",
                           user="human", assistant="gpt")} for i in range(2)])
    code, sortie, _, dossier = cli(entree, "--champ-messages", "dialogue",
                                   "--cle-role", "from", "--cle-contenu", "value")
    assert code == 0 and "gardés : 2 (train : 2)" in sortie
    messages = lire_sortie(dossier, "train.jsonl")[0]["messages"]
    assert messages == tours(2)  # role/content, user/assistant


def test_cles_et_roles_maison(tmp_path, cli):
    entree = ecrire(tmp_path / "maison.jsonl", [
        {"messages": tours(1, cle_role="qui", cle_texte="texte", user="client",
                           assistant="conseiller")}])
    code, sortie, _, dossier = cli(entree, "--cle-role", "qui",
                                   "--cle-contenu", "texte",
                                   "--roles", "client=user,conseiller=assistant")
    assert code == 0 and "gardés : 1 (train : 1)" in sortie
    assert lire_sortie(dossier, "train.jsonl")[0]["messages"] == tours(1)


def test_sans_les_bonnes_cles_le_message_nomme_le_champ(tmp_path, cli):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"dialogue": tours(1, cle_role="from", cle_texte="value")}])
    code, _, erreurs, dossier = cli(entree, "--champ-messages", "dialogue")
    assert code == 2 and "aucun exemple valide" in erreurs
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["fichier"], r["ligne"], r["champ"]) == (str(entree), 1, "dialogue[0]")
    assert r["raison"] == "champs « role » et « content » attendus"


# --- La détection automatique ------------------------------------------------------

def test_detection_d_un_champ_inconnu(tmp_path, cli):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"id": "a", "dialogue": tours(1), "tags": ["devis"]},
        {"id": "b", "dialogue": tours(2, debut=1), "note": 4},
        {"id": "c", "data": {"turns": tours(1, debut=3)}},
        {"id": "d", "messages": tours(1, debut=2)}])  # schéma reconnu
    code, sortie, _, dossier = cli(entree)
    assert code == 0 and "Lus : 4 ; gardés : 4 (train : 4)" in sortie
    assert "Champ des messages détecté : « dialogue » (2 enregistrements)." in sortie
    assert "Champ des messages détecté : « data.turns » (1 enregistrement)." in sortie
    assert "« messages »" not in sortie  # un schéma reconnu n'est pas « détecté »
    assert [e["id"] for e in lire_sortie(dossier, "train.jsonl")] == [
        "a", "b", "c", "d"]


def test_detection_avec_des_cles_renommees():
    extraire = Extracteur(cle_role="from", cle_texte="value")
    objet = {"historique": tours(1, cle_role="from", cle_texte="value"),
             "sources": [{"role": "doc", "content": "ignoré : autres clés"}]}
    bruts = extraire(objet)
    assert [b[2] for b in bruts] == ["historique[0].from", "historique[1].from"]
    assert extraire.detectes == {"historique": 1}


def test_detection_refusee_si_deux_listes(tmp_path, cli):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"dialogue": tours(1)},
        {"dialogue": tours(1, debut=1), "resume": tours(1, debut=2)}])
    code, sortie, _, dossier = cli(entree)
    assert code == 0 and "Lus : 2 ; gardés : 1 (train : 1) ; rejetés : 1" in sortie
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["ligne"], r["champ"]) == (2, "messages")
    assert r["raison"] == ("plusieurs listes de messages possibles (« dialogue », "
                           "« resume ») : choisissez avec --champ-messages CHAMP")
    # Nommer le champ lève l'ambiguïté (la ligne 1 n'a pas ce champ-là).
    code, sortie, _, dossier = cli(entree, "--champ-messages", "resume")
    assert code == 0 and "gardés : 1 (train : 1)" in sortie
    assert lire_sortie(dossier, "train.jsonl")[0]["messages"] == tours(1, debut=2)
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["ligne"], r["champ"], r["raison"]) == (
        1, "resume", "champ absent (champs présents : dialogue)")


def test_rien_a_detecter(tmp_path, cli):
    entree = ecrire(tmp_path / "export.jsonl", [{"id": "C1", "texte": "Bonjour"}])
    code, _, erreurs, dossier = cli(entree)
    assert code == 2 and "aucun exemple valide" in erreurs
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["ligne"], r["champ"]) == (1, "messages")
    assert r["raison"].startswith("champ absent ; schémas reconnus")
    assert "(champs présents : id, texte)" in r["raison"]
    assert "--champ-messages" in r["raison"] and "--cle-role" in r["raison"]


# --- Mauvaises entrées : fichier, ligne et champ nommés ----------------------------

@pytest.mark.parametrize("objet,champ,raison", [
    ({"id": "x"}, "data.turns", "champ absent (champs présents : id)"),
    ({"data": {"tours": []}}, "data.turns",
     "champ absent (champs présents dans « data » : tours)"),
    ({"data": "texte"}, "data", "un objet {…} est attendu pour atteindre "
                                "« data.turns »"),
    ({"data": {"turns": []}}, "data.turns",
     "une liste non vide de messages est attendue"),
    ({"data": {"turns": [{"role": ["user"], "content": "Bonjour"}]}},
     "data.turns[0].role", "rôle non textuel"),
    ({"data": {"turns": [{"role": "user", "content": "Q"},
                         {"role": "robot", "content": "R"}]}},
     "data.turns[1].role", "rôle inconnu « robot »"),
    ({"data": {"turns": [{"role": "user", "content": "Q"},
                         {"role": "assistant", "content": "  "}]}},
     "data.turns[1].content", "contenu vide"),
])
def test_rejet_nomme_fichier_ligne_et_champ(tmp_path, cli, objet, champ, raison):
    entree = ecrire(tmp_path / "export.jsonl", [{"data": {"turns": tours(1)}}, objet])
    code, _, _, dossier = cli(entree, "--champ-messages", "data.turns")
    assert code == 0
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["fichier"], r["ligne"], r["champ"]) == (str(entree), 2, champ)
    assert r["raison"].startswith(raison)


@pytest.mark.parametrize("options,message", [
    (["--champ-messages", "data..turns"], "chemin de champ invalide « data..turns »"),
    (["--champ-messages", ""], "--champ-messages : le nom de champ est vide"),
    (["--champ-messages", "data. "], "chemin de champ invalide « data.  »"),
    (["--cle-role", "x", "--cle-contenu", "x"], "la même clé « x »"),
    (["--cle-contenu", " "], "--cle-contenu : le nom de clé est vide"),
])
def test_options_invalides(tmp_path, cli, options, message):
    entree = ecrire(tmp_path / "export.jsonl", [{"messages": tours(1)}])
    code, _, erreurs, dossier = cli(entree, *options)
    assert code == 2 and erreurs.startswith("Erreur : ") and message in erreurs
    assert not dossier.exists()


def test_options_d_export_sans_fichier(capsys):
    assert pt.main(["--tronquer", "tours"]) == 2
    assert "demandent un fichier ENTREE" in capsys.readouterr().err


# --- Troncature par tours -------------------------------------------------------------

def test_garder_des_tours(tokenizer_minuscule):
    systeme = {"role": "system", "content": "Tu es l'assistant."}
    messages = [systeme, *tours(4)]
    limite = pt.compter_jetons(messages[:5], tokenizer_minuscule)  # 2 tours
    garde = pt.garder_des_tours(messages, tokenizer_minuscule, limite)
    assert garde == {"messages": messages[:5], "tronque": True}
    # Un jeton de moins : il ne reste qu'un tour.
    garde = pt.garder_des_tours(messages, tokenizer_minuscule, limite - 1)
    assert garde["messages"] == messages[:3] and garde["messages"][-1]["role"] \
        == "assistant"
    # Assez de place : rien ne change ; trop peu pour un tour : rien non plus.
    assert pt.garder_des_tours(messages, tokenizer_minuscule, 10_000) == {
        "messages": messages, "tronque": False}
    assert pt.garder_des_tours(messages, tokenizer_minuscule, 5) == {
        "messages": messages, "tronque": False}


@settings(max_examples=30, deadline=None)
@given(longueurs=st.lists(st.integers(1, 12), min_size=1, max_size=5),
       limite=st.integers(20, 160))
def test_troncature_garde_le_plus_long_debut_qui_tient(tokenizer_minuscule,
                                                        longueurs, limite):
    messages = []
    for i, n in enumerate(longueurs):
        messages += [{"role": "user", "content": f"Question {i} ?"},
                     {"role": "assistant", "content": "Le devis est gratuit. " * n}]
    garde = pt.garder_des_tours(messages, tokenizer_minuscule, limite)
    sortie = garde["messages"]
    assert sortie == messages[:len(sortie)] and len(sortie) % 2 == 0
    assert sortie[-1]["role"] == "assistant"
    if garde["tronque"]:
        assert pt.compter_jetons(sortie, tokenizer_minuscule) <= limite
        # Le tour suivant n'aurait pas tenu : c'est le plus long début possible.
        suivant = messages[:len(sortie) + 2]
        assert pt.compter_jetons(suivant, tokenizer_minuscule) > limite
    else:  # tout tient, ou même le premier tour dépasse
        assert sortie == messages
        assert (pt.compter_jetons(messages, tokenizer_minuscule) <= limite
                or pt.compter_jetons(messages[:2], tokenizer_minuscule) > limite)


def test_cli_tronque_par_tours(tmp_path, cli, tokenizer_minuscule):
    long = tours(4, debut=0)
    limite = pt.compter_jetons(long[:4], tokenizer_minuscule)  # 2 tours tiennent
    premier_trop_long = [{"role": "user", "content": "Bonjour " * 200},
                         {"role": "assistant", "content": "Oui."}]
    entree = ecrire(tmp_path / "export.jsonl", [
        {"id": "court", "dialogue": tours(1, debut=5)},
        {"id": "long", "dialogue": long},
        {"id": "impossible", "dialogue": premier_trop_long}])
    options = ["--champ-messages", "dialogue", "--longueur-max", str(limite)]

    # Par défaut, ce qui dépasse est rejeté.
    code, sortie, _, dossier = cli(entree, *options)
    assert code == 0
    assert "Lus : 3 ; gardés : 1 (train : 1) ; rejetés : 2 ; doublons : 0." in sortie
    assert "tronqué" not in sortie

    # Avec --tronquer tours : le long est gardé, raccourci, et compté à part.
    code, sortie, _, dossier = cli(entree, *options, "--tronquer", "tours")
    assert code == 0
    assert ("Lus : 3 ; gardés : 2, dont 1 tronqué (train : 2) ; rejetés : 1 ; "
            "doublons : 0.") in sortie
    train = {e["id"]: e["messages"] for e in lire_sortie(dossier, "train.jsonl")}
    assert train == {"court": tours(1, debut=5), "long": long[:4]}
    assert "tronque" not in lire_sortie(dossier, "train.jsonl")[0]
    [r] = lire_sortie(dossier, "rejets.jsonl")
    assert (r["ligne"], r["champ"]) == (3, "messages")
    assert r["raison"].startswith("trop long : ")
    comptes = json.loads((dossier / "comptes.json").read_text(encoding="utf-8"))
    assert comptes["tronqués"] == {"fichier": 1}
    # Gardés + rejetés = lus : un tronqué est gardé, pas rejeté.
    assert comptes["assez courts"]["fichier"] + 1 == comptes["lus"]["fichier"] == 3


# --- L'aide et la lecture seule ------------------------------------------------------

def test_aide_liste_les_nouvelles_options(capsys):
    with pytest.raises(SystemExit):
        pt.main(["--help"])
    aide = capsys.readouterr().out
    for option in ("--champ-messages CHAMP", "--cle-role CLÉ", "--cle-contenu CLÉ",
                   "--tronquer {non,tours}"):
        assert option in aide
    assert "champ imbriqué" in aide and "tours entiers" in aide


def test_lecture_seule_signale_le_champ_detecte(tmp_path, capsys):
    entree = ecrire(tmp_path / "export.jsonl", [
        {"dialogue": tours(1, cle_role="from", cle_texte="value", user="human",
                           assistant="gpt")},
        {"dialogue": "pas une liste"}])
    assert lecture.main([str(entree), "--cle-role", "from",
                         "--cle-contenu", "value"]) == 0
    sortie = capsys.readouterr().out
    assert "1 enregistrement valide, 1 rejet." in sortie
    assert "Champ des messages détecté : « dialogue » (1 enregistrement)." in sortie
    assert "ligne 2, messages : champ absent" in sortie


def test_erreur_champ_porte_le_champ():
    with pytest.raises(ErreurChamp) as exc:
        Extracteur("a.b")({"a": {"c": 1}})
    assert exc.value.champ == "a.b" and "dans « a » : c" in exc.value.raison
