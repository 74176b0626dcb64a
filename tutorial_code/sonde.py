"""Sonde : reclasser les fiches de BM25 avec ce qu'un modèle gelé comprend.

BM25 ne voit que des mots : « mon pare-brise a une étoile » et « un caillou
a fendu la vitre avant » ne partagent presque rien. Les états cachés d'un
modèle de langue, eux, rapprochent les questions de même sens. On n'affine
pas le modèle : on le lit. Chaque question d'entraînement passe dans les
premières couches de Gemma 3 270M ; la moyenne de ses états (640 nombres) est
l'entrée d'une régression logistique qui apprend le fait visé (67 classes).
C'est la forme la plus simple de l'affinage : une couche linéaire apprise sur
un modèle gelé (« linear probe »).

La sonde ne remplace pas BM25 : elle le corrige. Score d'une fiche :
BM25 + ``POIDS`` × log p(fiche | question). Le seuil qui décide qu'on n'a
rien trouvé reste celui de BM25.

Exécutable : ``python -m tutorial_code.sonde`` compare le rappel de BM25 seul
et de BM25 + sonde sur les questions de test ; ``--rapide`` : 2 couches.
"""

import hashlib
import json

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from tutorial_code.aide import creer_parser
from tutorial_code.modeles import MODELE_BASE, charger_modele
from tutorial_code.nombres import pourcent
from tutorial_code.pretraitement import (
    charger_fiche,
    charger_jeu,
    charger_questions_test,
)
from tutorial_code.recherche import (
    IndexFiches,
    documents_fiche,
    questions_par_fait,
    rappel_recherche,
)

# [region:reglages]
COUCHES = 6  # couches gardées, sur les 18 de Gemma 3 270M
GABARIT = ("Question d'un client à un garage de vitrage automobile : « {q} »\n"
           "En un mot, le sujet de cette question est :")
POIDS = 0.5  # score = BM25 + 0,5 × log p ; choisi sur la validation
# [fin:reglages]


class Encodeur:
    """Les premières couches d'un modèle gelé : une question → 640 nombres.

    Le modèle n'est chargé qu'au premier besoin ; ``liberer`` rend sa mémoire
    en gardant les vecteurs déjà calculés, qu'on ne recalcule jamais.
    """

    def __init__(self, nom=MODELE_BASE, couches=COUCHES):
        self.nom, self.couches, self.corps, self.cache = nom, couches, None, {}

    def charger(self):
        """Charge le modèle (s'il ne l'est pas déjà)."""
        if self.corps is not None:
            return
        # Sur le processeur même s'il y a un GPU : six couches suffisent, et
        # la sonde, ses vecteurs et BM25 restent au même endroit.
        model, self.tokenizer = charger_modele(self.nom, dtype=torch.float32,
                                               device="cpu", verbeux=False)
        # On ne garde que les premières couches (puis la normalisation finale) :
        # la passe ne calcule que celles-là.
        model.model.layers = model.model.layers[:self.couches]
        self.corps = model.model.eval()  # sans la tête de langage
        # Remplissage à droite : les jetons réels gardent leurs positions, et
        # le vecteur d'une question ne dépend pas des autres questions du lot.
        self.tokenizer.padding_side = "right"

    def liberer(self):
        self.corps = None

    @torch.no_grad()
    def __call__(self, questions, lot=32):
        """Un tenseur (questions, dimension) : la moyenne des états cachés."""
        nouvelles = sorted({q for q in questions if q not in self.cache})
        if nouvelles:
            self.charger()
        for i in tqdm(range(0, len(nouvelles), lot), desc="Encodage",
                      disable=len(nouvelles) <= lot):
            textes = nouvelles[i:i + lot]
            enc = self.tokenizer([GABARIT.format(q=q) for q in textes],
                                 return_tensors="pt", padding=True)
            etats = self.corps(**enc).last_hidden_state  # (lot, jetons, 640)
            masque = enc["attention_mask"].unsqueeze(-1).float()
            moyennes = (etats * masque).sum(1) / masque.sum(1)  # sans remplissage
            self.cache.update(zip(textes, moyennes))
        return torch.stack([self.cache[q] for q in questions])


class Sonde:
    """Régression logistique : vecteur d'une question → log p(fait)."""

    def __init__(self, ids, x, y, l2=1e-2):
        self.ids = ids
        self.moyenne, self.ecart = x.mean(0), x.std(0) + 1e-6  # centrer, réduire
        x = (x - self.moyenne) / self.ecart
        # (640, 67) poids et 67 biais : 43 000 paramètres, tout le reste est gelé
        self.w = torch.zeros(x.shape[1], len(ids), requires_grad=True)
        self.b = torch.zeros(len(ids), requires_grad=True)
        # L-BFGS sur toutes les questions à la fois : une optimisation
        # déterministe, sans pas d'apprentissage à régler ni lots à tirer.
        optimiseur = torch.optim.LBFGS([self.w, self.b], max_iter=300,
                                       line_search_fn="strong_wolfe")

        def perte():
            optimiseur.zero_grad()
            p = F.cross_entropy(x @ self.w + self.b, y) + l2 * (self.w ** 2).sum()
            p.backward()
            return p
        optimiseur.step(perte)

    @torch.no_grad()
    def log_probas(self, x):
        return F.log_softmax((x - self.moyenne) / self.ecart @ self.w + self.b, -1)

    TENSEURS = ("w", "b", "moyenne", "ecart")

    def sauver(self, chemin, empreinte):
        """En safetensors, avec l'empreinte de ce qui l'a apprise."""
        chemin.parent.mkdir(parents=True, exist_ok=True)
        save_file({n: getattr(self, n).detach().contiguous() for n in self.TENSEURS},
                  str(chemin), metadata={"empreinte": empreinte,
                                         "ids": json.dumps(self.ids)})

    @classmethod
    def charger(cls, chemin, empreinte):
        """La sonde sauvegardée, ou ``None`` si elle manque ou a été apprise
        sur autre chose (autres questions, autres couches, autre modèle)."""
        if not chemin.exists():
            return None
        from safetensors import safe_open
        with safe_open(str(chemin), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("empreinte") != empreinte:
            return None
        sonde = cls.__new__(cls)
        sonde.ids = json.loads(meta["ids"])
        for nom, tenseur in load_file(str(chemin)).items():
            setattr(sonde, nom, tenseur)
        return sonde


class IndexMixte:
    """BM25 reclassé par la sonde ; même interface qu'``IndexFiches``.

    ``chercher`` rend les ``k`` fiches de meilleur score mêlé, chacune avec son
    score BM25 : le seuil (``seuil``, celui de BM25) garde son sens.
    """

    def __init__(self, fiche, par_fait, encodeur, poids=POIDS, sonde=None):
        self.bm25 = IndexFiches(documents_fiche(fiche, par_fait))
        self.ids, self.encodeur, self.poids = self.bm25.ids, encodeur, poids
        paires = [(q, self.ids.index(fid)) for fid, qs in par_fait.items()
                  for q in qs]
        if sonde is None:  # l'apprendre : un vecteur par question d'entraînement
            x = encodeur([q for q, _ in paires])
            sonde = Sonde(self.ids, x, torch.tensor([c for _, c in paires]))
        self.sonde = sonde

    @property
    def seuil(self):
        return self.bm25.seuil

    @seuil.setter
    def seuil(self, valeur):
        self.bm25.seuil = valeur

    def chercher(self, questions, k=3):
        tous = self.bm25.chercher(questions, k=len(self.ids))  # 67 par question
        bm25 = torch.zeros(len(questions), len(self.ids))
        for ligne, trouves in zip(bm25, tous):
            for fid, score in trouves:
                ligne[self.ids.index(fid)] = score
        mele = bm25 + self.poids * self.sonde.log_probas(self.encodeur(questions))
        rangs = mele.topk(k, dim=1).indices  # (questions, k)
        return [[(self.ids[i], float(bm25[q, i])) for i in ligne.tolist()]
                for q, ligne in enumerate(rangs)]


def empreinte_sonde(encodeur, fiche, par_fait):
    """SHA-256 de tout ce qui fait la sonde : modèle, couches, gabarit, faits,
    questions d'entraînement."""
    texte = json.dumps([encodeur.nom, encodeur.couches, GABARIT,
                        [f["id"] for f in fiche], par_fait], ensure_ascii=False)
    return hashlib.sha256(texte.encode()).hexdigest()


def index_mixte(jeu=None, fiche=None, encodeur=None, fichier=None):
    """L'index de l'entreprise reclassé par la sonde (partie ``train`` seule).

    ``fichier`` : la sonde y est relue si elle a été apprise sur les mêmes
    questions, sinon apprise (une minute : un vecteur par question) et écrite.
    """
    jeu = jeu if jeu is not None else charger_jeu()
    fiche, encodeur = fiche or charger_fiche(), encodeur or Encodeur()
    par_fait = questions_par_fait(jeu["train"])
    empreinte = empreinte_sonde(encodeur, fiche, par_fait)
    sonde = Sonde.charger(fichier, empreinte) if fichier else None
    index = IndexMixte(fiche, par_fait, encodeur, sonde=sonde)
    if fichier and sonde is None:
        index.sonde.sauver(fichier, empreinte)
    return index


def main(argv=None):
    parser = creer_parser(
        "python -m tutorial_code.sonde",
        description="Rappel de la recherche sur les questions de test : BM25 "
                    "seul, puis reclassé par la sonde.")
    parser.add_argument("--rapide", action="store_true",
                        help="2 couches au lieu de 6 (essai)")
    args = parser.parse_args(argv)
    jeu, fiche, questions = charger_jeu(), charger_fiche(), charger_questions_test()
    encodeur = Encodeur(couches=2 if args.rapide else COUCHES)
    mixte = index_mixte(jeu, fiche, encodeur)
    for nom, index in (("BM25 seul", mixte.bm25), ("BM25 + sonde", mixte)):
        rappels, _ = rappel_recherche(index, questions)
        print(f"{nom} : " + ", ".join(f"@{k} {pourcent(r)}"
                                      for k, r in rappels.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
