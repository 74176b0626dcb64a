"""Points de reprise sûrs : processus tué (SIGKILL) à tout instant, disque plein.

Les tests « tués » lancent un vrai entraînement dans un autre processus (le petit
Llama aléatoire des tests), le tuent par SIGKILL, puis reprennent dans un nouveau
processus sur la même sortie : les poids finaux doivent être ceux d'un
entraînement jamais interrompu. Le pilote écrit par le test peut s'arrêter net
à un point précis de l'écriture (``PILOTE_ARRET``) ou ralentir chaque écriture
(``PILOTE_LENTEUR``) pour qu'un instant tiré au hasard tombe souvent dedans.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tutorial_code.entrainement as ent
from tests.conftest import construire_modele
from tests.test_entrainement import exemples_tokenises
from tutorial_code import RACINE
from tutorial_code.entrainement import (
    ConfigEntrainement,
    EcritureRepriseImpossible,
    appliquer_methode,
    charger_reprise,
    entrainer,
    ranger_reprise,
)

FICHIERS = {"poids.safetensors", "optimiseur.pt", "etat.json"}
N_PAS = 12  # 4 conversations, lots de 2, 6 époques


def config_test():
    return ConfigEntrainement(num_epochs=6, lr=1e-2, taille_lot=2, warmup=0.1,
                              lora_r=4, lora_alpha=8)


PILOTE = '''
"""Pilote de tests/test_reprise_sigkill.py : entraîne, un point de reprise par
mise à jour. Usage : python pilote.py SORTIE FINAL (SORTIE vide : sans reprise)."""
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

import tutorial_code.entrainement as ent
from tests.conftest import construire_modele, construire_tokenizer
from tests.test_reprise_sigkill import config_test, exemples_tokenises

ARRET = os.environ.get("PILOTE_ARRET", "")
LENTEUR = float(os.environ.get("PILOTE_LENTEUR", "0"))
SIGNAL = Path(os.environ["PILOTE_SIGNAL"])
sortie, final = sys.argv[1], sys.argv[2]


def point(nom, lenteur=LENTEUR):
    """Signale le point atteint ; s'y bloque si c'est celui demandé."""
    if nom == ARRET:
        SIGNAL.write_text(nom)
        time.sleep(3600)  # le test nous tue ici
    time.sleep(lenteur)


# sauver_reprise appelle torch.save (état d'AdamW) entre l'écriture des poids et
# celle de l'optimiseur ; os.replace met en place le point de reprise.
torch_save, os_replace = torch.save, os.replace


def save_ralenti(*args, **kwargs):
    resultat = torch_save(*args, **kwargs)
    if (Path(sortie) / "reprise").exists():  # un point précédent existe
        point("ecriture")
    else:
        time.sleep(LENTEUR)
    return resultat


def replace_ralenti(source, cible):
    os_replace(source, cible)
    if Path(cible).name == "reprise":
        point("apres_renommage")
    elif Path(source).name == "reprise":
        # Fenêtre plus courte : tué ici, l'essai suivant repart du début.
        point("entre_renommages", LENTEUR / 5)


torch.save, os.replace = save_ralenti, replace_ralenti
torch.set_num_threads(1)
config = config_test()
tokenizer = construire_tokenizer()
model = ent.appliquer_methode(construire_modele(tokenizer), config)
exemples = exemples_tokenises(tokenizer)
SIGNAL.write_text("pret")
ent.entrainer(model, exemples, [], config, sortie=sortie or None, sauver_tous=1)
save_file({n: p.detach().contiguous() for n, p in model.named_parameters()
           if p.requires_grad}, final)
print("fini")
'''


LANCES = []  # tous les pilotes, tués à la fin de chaque test s'ils tournent


@pytest.fixture(autouse=True)
def tuer_les_pilotes_restants():
    yield
    while LANCES:
        LANCES.pop().tuer()


class Pilote:
    """Un entraînement dans un autre processus, qu'on peut tuer."""

    def __init__(self, dossier, sortie, nom, arret="", lenteur=0.0):
        self.signal = dossier / f"{nom}.signal"
        self.journal = dossier / f"{nom}.log"
        self.final = dossier / f"{nom}.safetensors"
        pilote = dossier / "pilote.py"
        if not pilote.exists():
            pilote.write_text(PILOTE)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
               "PILOTE_ARRET": arret,
               "PILOTE_LENTEUR": str(lenteur), "PILOTE_SIGNAL": str(self.signal),
               "PYTHONPATH": os.pathsep.join(
                   [str(RACINE), os.environ.get("PYTHONPATH", "")])}
        with open(self.journal, "w") as journal:
            self.processus = subprocess.Popen(
                [sys.executable, str(pilote), str(sortie or ""), str(self.final)],
                cwd=RACINE, env=env, stdout=journal, stderr=subprocess.STDOUT)
        LANCES.append(self)

    def log(self):
        return self.journal.read_text()

    def attendre_signal(self, attendu, delai=180):
        fin = time.monotonic() + delai
        while time.monotonic() < fin:
            if self.signal.exists() and self.signal.read_text() == attendu:
                return
            if self.processus.poll() is not None:
                pytest.fail(f"le pilote s'est arrêté avant « {attendu} » :\n"
                            f"{self.log()[-3000:]}")
            time.sleep(0.01)
        self.tuer()
        pytest.fail(f"« {attendu} » jamais atteint en {delai} s :\n"
                    f"{self.log()[-3000:]}")

    def tuer(self):
        """SIGKILL ; renvoie True si le processus tournait encore."""
        vivant = self.processus.poll() is None
        if vivant:
            os.kill(self.processus.pid, signal.SIGKILL)
        self.processus.wait(timeout=60)
        return vivant

    def terminer(self, delai=300):
        try:
            code = self.processus.wait(timeout=delai)
        except subprocess.TimeoutExpired:
            self.tuer()
            pytest.fail(f"pilote trop long :\n{self.log()[-3000:]}")
        assert code == 0, self.log()[-3000:]
        return load_file(self.final)


def pas_du_point(dossier):
    """Le pas d'un dossier de point de reprise, après avoir vérifié qu'il est
    complet et lisible comme le lit ``charger_reprise``."""
    assert {f.name for f in dossier.iterdir()} == FICHIERS, dossier
    load_file(dossier / "poids.safetensors")
    torch.load(dossier / "optimiseur.pt", weights_only=True)
    return json.loads((dossier / "etat.json").read_text())["pas"]


def restes(sortie):
    return sorted(p.name for p in Path(sortie).iterdir()
                  if p.name.startswith("reprise."))


def memes_poids(obtenus, attendus):
    assert obtenus.keys() == attendus.keys()
    assert any("lora_" in n for n in attendus)
    for nom in attendus:
        torch.testing.assert_close(obtenus[nom], attendus[nom], rtol=0, atol=1e-6,
                                   msg=nom)


@pytest.fixture(scope="module")
def poids_ininterrompus(tmp_path_factory):
    """Poids finaux d'un entraînement jamais interrompu, sans point de reprise."""
    dossier = tmp_path_factory.mktemp("reference")
    return Pilote(dossier, None, "reference").terminer()


@pytest.mark.entrainement
def test_tue_aux_points_critiques_de_l_ecriture_puis_reprise_exacte(
        tmp_path, poids_ininterrompus):
    sortie = tmp_path / "sortie"
    reprise = sortie / "reprise"
    en_cours, ancienne = sortie / "reprise.en-cours", sortie / "reprise.ancienne"

    # 1. Tué au milieu de l'écriture du pas 2 : poids écrits, pas l'optimiseur.
    pilote = Pilote(tmp_path, sortie, "p1", arret="ecriture")
    pilote.attendre_signal("ecriture")
    assert pilote.tuer()
    assert pas_du_point(reprise) == 1  # le précédent, intact
    assert {f.name for f in en_cours.iterdir()} == {"poids.safetensors"}

    # 2. Tué entre les deux renommages : « reprise » n'existe plus un instant.
    pilote = Pilote(tmp_path, sortie, "p2", arret="entre_renommages")
    pilote.attendre_signal("entre_renommages")
    assert pilote.tuer()
    assert "Reprise au pas 1 " in pilote.log()  # le reste de 1. ignoré
    assert not reprise.exists()
    assert pas_du_point(ancienne) == 1 and pas_du_point(en_cours) == 2
    assert ranger_reprise(sortie)  # le nouveau point, complet, est mis en place
    assert pas_du_point(reprise) == 2 and restes(sortie) == []

    # 3. Tué juste après la mise en place, avant l'effacement de l'ancien.
    pilote = Pilote(tmp_path, sortie, "p3", arret="apres_renommage")
    pilote.attendre_signal("apres_renommage")
    assert pilote.tuer()
    assert "Reprise au pas 2 " in pilote.log()
    assert pas_du_point(reprise) == 3 and pas_du_point(ancienne) == 2

    # 4. Reprise jusqu'au bout : mêmes poids qu'un entraînement ininterrompu.
    pilote = Pilote(tmp_path, sortie, "p4")
    poids = pilote.terminer()
    assert "Reprise au pas 3 " in pilote.log()
    memes_poids(poids, poids_ininterrompus)
    assert pas_du_point(reprise) == N_PAS and restes(sortie) == []


@pytest.mark.entrainement
def test_tue_a_des_instants_au_hasard_puis_reprise_exacte(
        tmp_path, poids_ininterrompus):
    # La graine est affichée en cas d'échec ; GRAINE_SIGKILL=... pour rejouer.
    graine = int(os.environ.get("GRAINE_SIGKILL", random.randrange(10**6)))
    print(f"GRAINE_SIGKILL={graine}")
    hasard = random.Random(graine)
    sortie = tmp_path / "sortie"
    lenteur = 0.03  # par écriture et par renommage : ~0,1 s par point de reprise
    tues = 0
    for essai in range(3):
        pilote = Pilote(tmp_path, sortie, f"essai{essai}", lenteur=lenteur)
        pilote.attendre_signal("pret")
        time.sleep(hasard.uniform(0.05, 0.6))  # dans les premiers pas de l'essai
        tue = pilote.tuer()
        tues += tue
        pas = None
        if (sortie / "reprise").exists():  # jamais à moitié écrit
            pas = pas_du_point(sortie / "reprise")
            assert 1 <= pas <= N_PAS
        print(f"essai {essai} : tué {tue}, reprise au pas {pas}, "
              f"restes {restes(sortie)}")
    assert tues >= 1, f"aucun processus tué (graine {graine})"
    # Tué entre les deux renommages, il n'y a plus de « reprise » : ``entrainer``
    # repart alors du début (et finit avec les mêmes poids).
    avant = (sortie / "reprise").exists()
    pilote = Pilote(tmp_path, sortie, "fin")
    poids = pilote.terminer()
    assert ("Reprise au pas " in pilote.log()) == avant, f"graine {graine}"
    memes_poids(poids, poids_ininterrompus)
    assert restes(sortie) == []


# --- Dans ce processus : disque plein, restes d'une écriture tuée --------------


@pytest.fixture(scope="module")
def exemples(tokenizer_minuscule):
    return exemples_tokenises(tokenizer_minuscule)


def nouveau_modele(tokenizer, config):
    return appliquer_methode(construire_modele(tokenizer), config)


def contenu(dossier):
    return {f.name: f.read_bytes() for f in dossier.iterdir()}


@pytest.mark.parametrize("fichier_plein", sorted(FICHIERS))
def test_disque_plein_erreur_claire_et_point_precedent_intact(
        tokenizer_minuscule, exemples, tmp_path, monkeypatch, fichier_plein):
    config = config_test()
    continu = nouveau_modele(tokenizer_minuscule, config)
    entrainer(continu, exemples, None, config)

    model = nouveau_modele(tokenizer_minuscule, config)
    entrainer(model, exemples, None, config, sortie=tmp_path, sauver_tous=2,
              arreter_apres=2)
    reprise = tmp_path / "reprise"
    avant = contenu(reprise)

    class FichierPlein:
        """Écrit la moitié des octets, puis le disque est plein."""

        def __init__(self, chemin):
            self.fichier = open(chemin, "wb")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fichier.close()

        def write(self, donnees):
            donnees = memoryview(donnees).cast("B")
            self.fichier.write(donnees[:len(donnees) // 2])
            self.fichier.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def ouvrir(chemin, mode="r", *args, **kwargs):
        if Path(chemin).name == fichier_plein:
            return FichierPlein(chemin)
        return open(chemin, mode, *args, **kwargs)

    monkeypatch.setattr(ent, "open", ouvrir, raising=False)
    model = nouveau_modele(tokenizer_minuscule, config)
    with pytest.raises(EcritureRepriseImpossible) as erreur:
        entrainer(model, exemples, None, config, sortie=tmp_path, sauver_tous=2)
    message = str(erreur.value)
    assert str(reprise) in message and "pas 4" in message
    assert "disque plein" in message and "précédent est intact" in message
    assert isinstance(erreur.value, OSError) and erreur.value.errno == errno.ENOSPC
    assert erreur.value.__cause__.errno == errno.ENOSPC
    monkeypatch.undo()

    assert contenu(reprise) == avant  # octet pour octet
    assert restes(tmp_path) == []  # l'écriture partielle est effacée
    repris = nouveau_modele(tokenizer_minuscule, config)
    entrainer(repris, exemples, None, config, sortie=tmp_path, sauver_tous=2)
    for (n, a), (_, b) in zip(continu.named_parameters(), repris.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=n)


def test_disque_plein_des_le_premier_point(tokenizer_minuscule, exemples, tmp_path,
                                           monkeypatch):
    def plein(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ent, "open", plein, raising=False)
    config = config_test()
    model = nouveau_modele(tokenizer_minuscule, config)
    with pytest.raises(EcritureRepriseImpossible,
                       match="pas 1 .*disque plein.*Aucun point de reprise"):
        entrainer(model, exemples, None, config, sortie=tmp_path, sauver_tous=1)
    assert list(tmp_path.iterdir()) == []


def test_restes_d_une_ecriture_tuee_ignores_et_effaces(tokenizer_minuscule, exemples,
                                                      tmp_path):
    config = config_test()
    model = nouveau_modele(tokenizer_minuscule, config)
    entrainer(model, exemples, None, config, sortie=tmp_path, sauver_tous=2,
              arreter_apres=4)
    # Ce que laisserait un processus tué pendant une écriture, puis pendant
    # l'effacement de l'ancien point : des fichiers tronqués, illisibles.
    for reste in ("reprise.en-cours", "reprise.ancienne"):
        (tmp_path / reste).mkdir()
        (tmp_path / reste / "poids.safetensors").write_bytes(b"\x00tronque")
        (tmp_path / reste / "etat.json").write_text('{"pas": 99')

    model = nouveau_modele(tokenizer_minuscule, config)
    optimiseur = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr)
    planificateur = torch.optim.lr_scheduler.LambdaLR(optimiseur, lambda m: 1.0)
    pas, _ = charger_reprise(tmp_path, model, optimiseur, planificateur, config)
    assert pas == 4 and restes(tmp_path) == []

    (tmp_path / "reprise.en-cours").mkdir()  # tué pendant l'écriture suivante
    (tmp_path / "reprise.en-cours" / "poids.safetensors").write_bytes(b"\x00")
    ent.sauver_reprise(tmp_path, 5, model, optimiseur, planificateur, config,
                       {"pas": [], "perte": [], "validation": []})
    assert pas_du_point(tmp_path / "reprise") == 5 and restes(tmp_path) == []
