"""La sonde : un classifieur linéaire sur un modèle gelé, qui reclasse BM25."""

import pytest
import torch

from tutorial_code.assistant import trouve
from tutorial_code.sonde import Encodeur, IndexMixte, Sonde

FICHE = [
    {"id": "F1", "fait": "La réparation d'un impact coûte 69 €.", "cles": ["69 €"]},
    {"id": "F2", "fait": "Les agences ferment le dimanche.", "cles": ["dimanche"]},
]
PAR_FAIT = {"F1": ["un caillou a touché la vitre avant", "impact sur le pare-brise"],
            "F2": ["êtes-vous ouverts le dimanche ?", "horaires du week-end"]}
# Le « sens » que verrait un modèle : des synonymes sur une même dimension.
SENS = {"caillou": 0, "gravillon": 0, "impact": 0, "vitre": 0, "pare-brise": 0,
        "dimanche": 1, "week-end": 1, "samedi": 1, "horaires": 1, "ouverts": 1}


class EncodeurDeSens:
    """Un encodeur de test : compte les mots de chaque « sens »."""

    def __call__(self, questions):
        x = torch.zeros(len(questions), 2)
        for i, q in enumerate(questions):
            for mot in q.lower().replace("?", " ").split():
                if mot in SENS:
                    x[i, SENS[mot]] += 1
        return x


def test_la_sonde_remet_en_tete_le_fait_que_bm25_ne_voit_pas():
    index = IndexMixte(FICHE, PAR_FAIT, EncodeurDeSens())
    # « gravillon » n'est dans aucun document : BM25 ne voit que « dimanche »
    # (F2) ; la sonde voit quatre mots du sens « impact » (F1), un seul de F2.
    question = "gravillon gravillon gravillon gravillon dimanche"
    seul = dict(index.bm25.chercher([question], k=2)[0])
    assert seul["F2"] > 0 and seul["F1"] == 0
    premier, second = index.chercher([question], k=2)[0]
    assert (premier[0], second[0]) == ("F1", "F2")
    # Les scores rendus restent ceux de BM25 : le seuil garde son sens.
    assert premier[1] == seul["F1"] and second[1] == seul["F2"]


def test_le_seuil_de_bm25_decide_encore_qu_on_n_a_rien_trouve():
    index = IndexMixte(FICHE, PAR_FAIT, EncodeurDeSens())
    index.seuil = 0.3
    assert index.bm25.seuil == 0.3  # un seul seuil, celui de BM25
    sans_mots = index.chercher(["gravillon samedi"], k=2)[0]
    assert all(score == 0 for _, score in sans_mots) and not trouve(index, sans_mots)
    assert trouve(index, index.chercher(["impact le dimanche"], k=2)[0])


def test_la_sonde_apprend_les_classes_et_seulement_elles():
    torch.manual_seed(0)
    centres = torch.randn(3, 8) * 3
    y = torch.arange(3).repeat(20)
    x = centres[y] + torch.randn(60, 8) * 0.5
    sonde = Sonde(["A", "B", "C"], x, y)
    logp = sonde.log_probas(centres)
    assert logp.argmax(1).tolist() == [0, 1, 2]
    assert torch.allclose(logp.exp().sum(1), torch.ones(3))
    # Déterministe : la même entrée donne la même sonde (L-BFGS, sans hasard).
    assert torch.equal(Sonde(["A", "B", "C"], x, y).log_probas(centres), logp)


def test_le_vecteur_d_une_question_ne_depend_pas_de_son_lot(dossier_modele_minuscule):
    encodeur = Encodeur(str(dossier_modele_minuscule), couches=1)
    courte, longue = "Bonjour", "Nous sommes ouverts du lundi au samedi, de 8 h 30."
    seul = encodeur([courte])
    encodeur.cache.clear()
    en_lot = encodeur([longue, courte])  # « courte » est remplie de jetons vides
    assert torch.allclose(seul[0], en_lot[1], atol=1e-5)
    # Le modèle rendu, les vecteurs restent : rien n'est recalculé.
    encodeur.liberer()
    assert encodeur.corps is None
    assert torch.equal(encodeur([courte, longue]), en_lot.flip(0))
    assert encodeur.corps is None


def test_la_sonde_sauvegardee_n_est_relue_que_pour_les_memes_questions(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(12, 4), torch.arange(3).repeat(4)
    sonde = Sonde(["A", "B", "C"], x, y)
    chemin = tmp_path / "sonde" / "sonde.safetensors"
    sonde.sauver(chemin, "empreinte-1")
    relue = Sonde.charger(chemin, "empreinte-1")
    assert relue.ids == ["A", "B", "C"]
    assert torch.equal(relue.log_probas(x), sonde.log_probas(x))
    assert Sonde.charger(chemin, "empreinte-2") is None  # appris sur autre chose
    assert Sonde.charger(tmp_path / "absente.safetensors", "empreinte-1") is None


@pytest.mark.modele_reel
def test_sur_le_vrai_modele_la_sonde_ameliore_bm25_en_validation():
    """Gemma 3 270M gelé, les vraies questions : sur la validation (jamais dans
    l'index ni dans la sonde), plus de bons faits en tête qu'avec BM25 seul."""
    from tutorial_code.evaluation import questions_validation
    from tutorial_code.pretraitement import charger_fiche, charger_jeu
    from tutorial_code.recherche import rappel_recherche
    from tutorial_code.sonde import index_mixte

    jeu, fiche = charger_jeu(), charger_fiche()
    questions = questions_validation(jeu["validation"], fiche)
    mixte = index_mixte(jeu, fiche, Encodeur())
    (bm25, _), (avec, _) = (rappel_recherche(i, questions, ks=(1,))
                            for i in (mixte.bm25, mixte))
    assert avec[1] > bm25[1], (bm25, avec)
