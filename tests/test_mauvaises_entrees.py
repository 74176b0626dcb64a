"""Les mauvaises entrées de la page Prétraitement : chaque cas, exécuté pour de
bon, donne un message en français qui dit où, et rien ne se perd
(lus = gardés + rejetés)."""

import re

import pytest

from tutorial_code import mauvaises_entrees as me

# Des mots anglais qu'un message d'erreur laissé tel quel contiendrait.
ANGLAIS = re.compile(r"\b(error|while|invalid|the|not|found|expect\w*|failed|"
                     r"cannot|could|header|file|missing|delimiter|value|"
                     r"unterminated|string|such)\b", re.I)

# Ce que chaque message doit nommer : fichier, ligne, champ, raison.
ATTENDUS = {
    "ligne JSON mal formée": ["json_casse.jsonl", "ligne 2", "(ligne)",
                              "JSON invalide"],
    "ligne qui n'est pas un objet": ["liste.jsonl", "ligne 2", "objet JSON"],
    "réponse vide": ["reponse_vide.jsonl", "ligne 2", "messages[1].content",
                     "contenu vide"],
    "rôle inconnu": ["role_inconnu.jsonl", "ligne 2", "messages[1].role",
                     "« superviseur »", "--roles superviseur="],
    "conversation qui finit sur l'utilisateur": [
        "sans_reponse.jsonl", "ligne 2", "messages[0].role", "doit finir"],
    "conversation trop longue": ["trop_long.jsonl", "ligne 2", "messages :",
                                 "jetons > 512"],
    "doublon": ["doublon.jsonl", "ligne 3", "doublon exact de la ligne 1"],
    "champ manquant": ["sans_contenu.jsonl", "ligne 2", "messages[1]",
                       "« content »"],
    "champ du mauvais type": ["mauvais_type.jsonl", "ligne 2", "messages :",
                              "liste non vide"],
    "fuite d'une question de test": ["fuite.jsonl", "ligne 2",
                                     "question de test T001"],
    "fichier qui n'est pas en UTF-8": ["latin1.jsonl", "ligne 2", "UTF-8",
                                       "iconv"],
    "fichier vide": ["vide.jsonl", "le fichier est vide"],
    "fichier absent": ["absent.jsonl", "fichier introuvable"],
    "aucune ligne valide (rôles non déclarés)": [
        "sharegpt.jsonl", "ligne 1", "messages[0].role", "--roles human=",
        "Les 2 rejets sont dans sortie_sharegpt/rejets.jsonl"],
    "modèle absent (dossier)": ["./modeles/assistant-vitrage", "n'existe pas"],
    "modèle du Hub absent du cache, hors ligne": [
        "vitrexpress/assistant-vitrage", "HF_HUB_OFFLINE=1"],
    "fichier safetensors abîmé": ["modele_abime"],
    "point de reprise d'une autre configuration": [
        "entrainement/reprise", "différences : lr, taille_lot"],
}
# Une ligne fautive entre deux bonnes : deux gardées, une rejetée.
UNE_MAUVAISE_LIGNE = [cas for cas, _, _ in me.CAS_LIGNES] + [
    "fuite d'une question de test"]
REFUSES = ["fichier qui n'est pas en UTF-8", "fichier vide", "fichier absent"]


@pytest.fixture(scope="module")
def resultats(dossier_modele_minuscule):
    # Le petit tokenizer des tests au lieu de celui du modèle embarqué.
    return {r["cas"]: r for r in me.essayer_mauvaises_entrees(
        tokenizer=dossier_modele_minuscule)}


def test_au_moins_douze_sortes_de_cas(resultats):
    assert len(resultats) >= 12
    assert set(resultats) == set(ATTENDUS)


@pytest.mark.parametrize("cas", ATTENDUS)
def test_un_message_francais_qui_dit_ou(resultats, cas):
    message = resultats[cas]["message"]
    assert message, f"{cas} : aucun message"
    for attendu in ATTENDUS[cas]:
        assert attendu in message, f"{cas} : « {attendu} » absent de {message!r}"
    assert not ANGLAIS.search(message), f"{cas} : message en anglais {message!r}"


@pytest.mark.parametrize("cas", UNE_MAUVAISE_LIGNE)
def test_une_ligne_rejetee_les_autres_gardees(resultats, cas):
    r = resultats[cas]
    assert r["code"] == 0
    assert (r["lus"], r["gardes"], r["rejetes"]) == (3, 2, 1)


def test_rien_n_est_perdu(resultats):
    donnees = [r for r in resultats.values() if r["lus"] is not None]
    assert len(donnees) == len(UNE_MAUVAISE_LIGNE) + 1
    for r in donnees:
        assert r["lus"] == r["gardes"] + r["rejetes"], r["cas"]
        assert me.bilan(r) == f"{r['lus']} = {r['gardes']} + {r['rejetes']}"
    tout_rejete = resultats["aucune ligne valide (rôles non déclarés)"]
    assert (tout_rejete["code"], tout_rejete["gardes"], tout_rejete["rejetes"]) == (
        2, 0, 2)


@pytest.mark.parametrize("cas", REFUSES)
def test_un_fichier_illisible_est_refuse_sans_rien_ecrire(resultats, cas):
    r = resultats[cas]
    assert r["code"] == 2 and r["lus"] is None
    assert r["message"].startswith("Erreur : ")
    assert me.bilan(r) == "fichier refusé en entier, rien d'écrit (code 2)"


def test_un_separateur_unicode_ne_coupe_pas_une_ligne(tmp_path):
    """U+2028 est légal dans une chaîne JSON : la ligne reste une seule ligne."""
    import json

    from tutorial_code.pretraitement_lecture import lire_jsonl

    chemin = tmp_path / "u2028.jsonl"
    messages = [{"role": "user", "content": "a\u2028b"},
                {"role": "assistant", "content": "c"}]
    chemin.write_text(json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
                      + json.dumps({"messages": messages}) + "\n", encoding="utf-8")
    enregistrements, rejets = lire_jsonl(chemin)
    assert len(enregistrements) == 2 and not rejets
