"""L'évaluation : faits reconnus dans une réponse, erreurs classées."""

from tutorial_code.evaluation import classer_erreurs, contient_faits, normaliser


def test_normalisation_des_faits():
    assert normaliser("8h30") == normaliser("8 h 30") == normaliser("8\u00a0h\u00a030")
    assert contient_faits("Comptez 129 euros et 48h.", ["129 €", "48 h"])
    assert contient_faits("Ouvert dès 8\u00a0h\u00a030.", ["8 h 30"])
    assert contient_faits("Le tarif est de 1.5 €", ["1,5 €"])
    assert not contient_faits("Comptez 129 €.", ["129 €", "48 h"])  # tous requis
    assert not contient_faits("Réparé à Lyons", ["42 agences"])
    assert contient_faits("Réparation à Évry", ["evry"])  # accents
    assert contient_faits("Réponse sous 48 heures.", ["48 h"])
    assert contient_faits("Dès 1 000 €.", ["1000 €"])
    # Mots entiers : un fait n'est pas reconnu à l'intérieur d'un autre mot.
    assert not contient_faits("Le remplacement coûte 290 €", ["remplacé"])
    assert not contient_faits("Comptez 115 €.", ["15 €"])
    assert contient_faits("Il sera remplacé.", ["remplacé"])


def test_classer_erreurs_par_fait_donne():
    fiche = [{"id": "F1", "categorie": "tarifs", "cles": ["69 €"]},
             {"id": "F2", "categorie": "tarifs", "cles": ["25 €"]},
             {"id": "F3", "categorie": "agences", "cles": ["42 agences"]}]
    lignes = [
        {"ref_fiche": "F1", "reponse": "Comptez 69 euros.", "correct": True},
        {"ref_fiche": "F1", "reponse": "Chaque impact en plus : 25 €.",
         "correct": False},  # un fait voisin
        {"ref_fiche": "F1", "reponse": "Nous avons 42 agences.", "correct": False},
        {"ref_fiche": "F3", "reponse": "Bonne journée !", "correct": False},
        # 125 € ne contient pas « 25 € » en mot entier : aucun fait
        {"ref_fiche": "F3", "reponse": "Cela coûte 125 €.", "correct": False},
    ]
    assert classer_erreurs(lignes, fiche) == {
        "même catégorie": 1, "autre catégorie": 1, "aucun fait": 2}
