"""De mauvaises entrées, une à une : le message que voit le lecteur, et rien de perdu.

Chaque cas écrit une petite entrée fautive dans un dossier temporaire, la passe
au code qu'un lecteur utiliserait (la ligne de commande du prétraitement, la
chaîne :func:`~tutorial_code.pretraitement.preparer`,
:func:`~tutorial_code.modeles.charger_modele`,
:func:`~tutorial_code.entrainement.charger_reprise`) et relève le message
affiché ou levé, tel quel. Pour les données, il relit aussi ce que la chaîne a
écrit : lus (lignes non blanches du fichier) = gardés (``train.jsonl`` et
``validation.jsonl``) + rejetés (``rejets.jsonl``).

:func:`essayer_mauvaises_entrees` renvoie un dict par cas ; la page
« Prétraitement » en fait un tableau.
"""

import contextlib
import io
import json
import tempfile
from pathlib import Path

import torch

from tutorial_code.entrainement import (
    ConfigEntrainement,
    charger_reprise,
    sauver_reprise,
)
from tutorial_code.modeles import charger_modele, config_llama_minuscule
from tutorial_code.pretraitement import (
    charger_questions_test,
    charger_tokenizer,
    main,
    preparer,
    sauvegarder,
)
from tutorial_code.pretraitement_lecture import ROLES_STANDARD, lire_jsonl


def conversation(*paires):
    """``{"messages": [...]}`` à partir de paires (rôle, contenu)."""
    return {"messages": [{"role": r, "content": c} for r, c in paires]}


HORAIRES = conversation(("user", "Vous êtes ouverts le samedi ?"),
                        ("assistant", "Oui, de 9 h à 17 h dans toutes nos agences."))
DEVIS = conversation(("user", "Le devis est-il payant ?"),
                     ("assistant", "Non, il est gratuit et valable trois mois."))
LONG = conversation(("user", "Racontez-moi tout sur la pose d'un pare-brise."),
                    ("assistant", "On dépose l'ancien, on colle le neuf. " * 120))

# Une ligne fautive entre deux bonnes : (cas, nom du fichier, lignes). Une ligne
# est un dict (écrit en JSON), un texte (écrit tel quel) ou des octets.
CAS_LIGNES = [
    ("ligne JSON mal formée", "json_casse.jsonl",
     [HORAIRES, '{"messages": [{"role": "user", "content": "Un devis ?"}', DEVIS]),
    ("ligne qui n'est pas un objet", "liste.jsonl",
     [HORAIRES, '["user", "Un devis ?"]', DEVIS]),
    ("réponse vide", "reponse_vide.jsonl",
     [HORAIRES, conversation(("user", "Et le dimanche ?"), ("assistant", "")), DEVIS]),
    ("rôle inconnu", "role_inconnu.jsonl",
     [HORAIRES, conversation(("user", "Un devis ?"), ("superviseur", "Gratuit.")),
      DEVIS]),
    ("conversation qui finit sur l'utilisateur", "sans_reponse.jsonl",
     [HORAIRES, conversation(("user", "Allô ?")), DEVIS]),
    ("conversation trop longue", "trop_long.jsonl", [HORAIRES, LONG, DEVIS]),
    ("doublon", "doublon.jsonl", [HORAIRES, DEVIS, HORAIRES]),
    ("champ manquant", "sans_contenu.jsonl",
     [HORAIRES, {"messages": [{"role": "user", "content": "Un devis ?"},
                              {"role": "assistant"}]}, DEVIS]),
    ("champ du mauvais type", "mauvais_type.jsonl",
     [HORAIRES, {"messages": "Un devis ?"}, DEVIS]),
]

# Le fichier entier en cause (None : le fichier n'existe pas).
CAS_FICHIERS = [
    ("fichier qui n'est pas en UTF-8", "latin1.jsonl",
     [DEVIS, json.dumps(HORAIRES, ensure_ascii=False).encode("latin-1")]),
    ("fichier vide", "vide.jsonl", ["", "  "]),
    ("fichier absent", "absent.jsonl", None),
    ("aucune ligne valide (rôles non déclarés)", "sharegpt.jsonl",
     [conversation(("human", "Un devis ?"), ("gpt", "Gratuit.")),
      conversation(("human", "Le samedi ?"), ("gpt", "De 9 h à 17 h."))]),
]


def ecrire_lignes(chemin, lignes):
    """Écrit les lignes d'un cas (dicts en JSON, textes, octets) ; rien si None."""
    if lignes is None:
        return
    octets = [ligne if isinstance(ligne, bytes) else (
        json.dumps(ligne, ensure_ascii=False) if isinstance(ligne, dict)
        else ligne).encode("utf-8") for ligne in lignes]
    chemin.write_bytes(b"\n".join(octets) + b"\n")


def compter_lignes(chemin):
    """Le nombre de lignes non blanches d'un fichier (0 s'il n'existe pas)."""
    if not chemin.is_file():
        return 0
    return sum(1 for ligne in chemin.read_bytes().splitlines() if ligne.strip())


def decrire_rejets(sortie, nom):
    """Les rejets écrits par la chaîne, comme les lit le lecteur."""
    chemin = sortie / "rejets.jsonl"
    if not chemin.is_file():
        return []
    rejets = [json.loads(ligne) for ligne in chemin.read_text("utf-8").splitlines()]
    return [f"{nom}, ligne {r['ligne']}, {r['champ']} : {r['raison']}"
            for r in rejets]


def relire(sortie, nom, lus):
    """Le résultat d'un cas de données, relu dans ``sortie`` (``lus`` : None si
    le fichier a été refusé en entier)."""
    gardes = sum(compter_lignes(sortie / f"{partie}.jsonl")
                 for partie in ("train", "validation"))
    return {"message": "\n".join(decrire_rejets(sortie, nom)), "lus": lus,
            "gardes": gardes, "rejetes": compter_lignes(sortie / "rejets.jsonl")}


# [region:essayer_fichier]
def essayer_fichier(cas, nom, lignes, tokenizer=None):
    """Écrit le fichier du cas, lance la commande du prétraitement, relit tout.

    Dans le dossier courant (temporaire) : ``sortie_<nom sans extension>/``
    reçoit ce qu'écrit la commande. Le message est sa sortie d'erreur si elle échoue,
    sinon les rejets qu'elle a écrits ; les comptes sont relus sur le disque.
    """
    fichier, sortie = Path(nom), Path(f"sortie_{Path(nom).stem}")
    ecrire_lignes(fichier, lignes)
    argv = [nom, "--sortie", str(sortie)]
    argv += ["--tokenizer", str(tokenizer)] if tokenizer else []
    erreurs = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(erreurs):
        code = main(argv)  # python -m tutorial_code.pretraitement NOM --sortie …
    # Refusé en entier, le fichier n'a rien donné à lire : pas de comptes.
    resultat = relire(sortie, nom, compter_lignes(fichier) if sortie.exists()
                      else None)
    if code:
        resultat["message"] = erreurs.getvalue().strip()
    return {"cas": cas, "code": code, **resultat}
# [fin:essayer_fichier]


def essayer_fuite(tokenizer=None):
    """Une question du jeu de test recopiée dans les données : la chaîne l'écarte.

    La commande sur un fichier quelconque ne connaît pas le jeu de test de
    l'entreprise ; c'est :func:`preparer` avec ``questions`` qui cherche les
    fuites (comme :func:`preparer_entreprise`).
    """
    nom, sortie = "fuite.jsonl", Path("sortie_fuite")
    questions = charger_questions_test()
    copie = conversation(("user", questions[0]["question"]),
                         ("assistant", "Depuis 2009, à Lyon."))
    ecrire_lignes(Path(nom), [HORAIRES, copie, DEVIS])
    source = ("fichier", nom, *lire_jsonl(nom), ROLES_STANDARD)
    sauvegarder(*preparer([source], charger_tokenizer(tokenizer),
                          questions=questions), sortie)
    return {"cas": "fuite d'une question de test", "code": 0,
            **relire(sortie, nom, compter_lignes(Path(nom)))}


def message_levee(cas, fonction, *args, **kwargs):
    """Appelle ``fonction`` ; renvoie le cas et le message de l'exception levée.

    Une exception d'un type inattendu (ni ``OSError`` ni ``ValueError``) est
    montrée avec son nom : c'est ce qu'afficherait la trace.
    """
    resultat = {"cas": cas, "code": None, "lus": None, "gardes": None,
                "rejetes": None, "message": "", "type": None}
    try:
        fonction(*args, **kwargs)
    except Exception as exc:  # on montre l'erreur telle quelle, quelle qu'elle soit
        message = str(exc).strip()
        if not isinstance(exc, (OSError, ValueError)):
            message = f"{type(exc).__name__} : {message}"
        resultat.update(message=message, type=type(exc).__name__)
    return resultat  # sans erreur, le message reste vide : le test échoue


def essayer_modeles(tokenizer=None):
    """Modèle absent (dossier, puis Hub hors ligne), safetensors abîmé."""
    abime = Path("modele_abime")
    charger_tokenizer(tokenizer).save_pretrained(abime)
    config_llama_minuscule().save_pretrained(abime)
    (abime / "model.safetensors").write_bytes(b"\x00" * 64)  # en-tête illisible
    return [
        message_levee("modèle absent (dossier)", charger_modele,
                      "./modeles/assistant-vitrage", verbeux=False),
        message_levee("modèle du Hub absent du cache, hors ligne", charger_modele,
                      "vitrexpress/assistant-vitrage", local_files_only=True,
                      verbeux=False),
        message_levee("fichier safetensors abîmé", charger_modele, f"./{abime}",
                      verbeux=False),
    ]


def essayer_reprise():
    """Un point de reprise écrit pour une configuration, relu avec une autre."""
    modele = torch.nn.Linear(4, 4)  # la vérification précède tout chargement
    optimiseur = torch.optim.AdamW(modele.parameters())
    plan = torch.optim.lr_scheduler.LambdaLR(optimiseur, lambda pas: 1.0)
    sauver_reprise("entrainement", 4, modele, optimiseur, plan,
                   ConfigEntrainement(), {"pas": [], "perte": [], "validation": []})
    autre = ConfigEntrainement(lr=1e-3, taille_lot=16)
    return message_levee("point de reprise d'une autre configuration",
                         charger_reprise, "entrainement", modele, optimiseur, plan,
                         autre)


def essayer_mauvaises_entrees(tokenizer=None):
    """Tous les cas, dans un dossier temporaire ; un dict par cas."""
    with tempfile.TemporaryDirectory() as dossier, contextlib.chdir(dossier):
        resultats = [essayer_fichier(*cas, tokenizer) for cas in CAS_LIGNES]
        resultats.append(essayer_fuite(tokenizer))
        resultats += [essayer_fichier(*cas, tokenizer) for cas in CAS_FICHIERS]
        resultats += essayer_modeles(tokenizer)
        resultats.append(essayer_reprise())
        # Un message peut citer le chemin absolu du dossier temporaire, qui
        # change à chaque fois : on le retire, le nom du fichier reste.
        for resultat in resultats:
            resultat["message"] = resultat["message"].replace(
                f"{Path(dossier).resolve()}/", "")
    return resultats


def bilan(resultat):
    """« 3 = 2 + 1 » (lus = gardés + rejetés), ou ce qui en tient lieu."""
    if resultat["lus"] is not None:
        egal = resultat["lus"] == resultat["gardes"] + resultat["rejetes"]
        return (f"{resultat['lus']} {'=' if egal else '≠'} {resultat['gardes']} "
                f"+ {resultat['rejetes']}")
    if resultat["code"] == 2:
        return "fichier refusé en entier, rien d'écrit (code 2)"
    return "sans objet"
