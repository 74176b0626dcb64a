"""Les sorties de la page « Tokenisation », produites par la construction.

Chaque bloc ``# [region:…]`` est montré tel quel dans la page ; ce qu'il
affiche est capturé dans ``docs/_sorties/tokenisation/``.
"""

import torch
from matplotlib.figure import Figure
from transformers import AutoTokenizer, DataCollatorWithFlattening

from construction.ecrire import capturer, ecrire_tableau
from tutorial_code.jetons import (
    PHRASES,
    decoupage,
    erreur_bos_double,
    erreur_eos_absent,
    erreur_gabarit_double,
    jetons_par_mot,
    vue_html_labels,
)
from tutorial_code.lots import collate_packing, collate_padding, gaspillage_padding
from tutorial_code.modeles import (
    MODELE_EMBARQUE,
    charger_modele,
    preparer_modele_embarque,
)
from tutorial_code.nombres import accorder, formater, pourcent
from tutorial_code.pretraitement import LONGUEUR_MAX, charger_jeu
from tutorial_code.tokenisation import (
    IGNORE,
    ExempleTropLong,
    rendre,
    tokeniser_conversation,
    tokeniser_jeu,
)


def produire_sorties(dossier):
    """Exécute le code de la page et écrit ses sorties dans ``dossier``."""
    # [region:charger]
    tokenizer = AutoTokenizer.from_pretrained(preparer_modele_embarque())
    jeu = charger_jeu()  # DatasetDict : train, validation
    # [fin:charger]
    with capturer(dossier / "decoupage.txt"):
        # [region:bpe]
        for texte in ["Le remplacement du pare-brise coûte 129,90 €.",
                      "The windshield replacement costs €129.90.",
                      "réparation", "repair", "pare-brise", "windshield"]:
            print(decoupage(tokenizer, texte))
        # [fin:bpe]
    tableau_jetons_par_mot(tokenizer, dossier / "jetons_par_mot.rst")
    with capturer(dossier / "speciaux.txt"):
        # [region:speciaux]
        for nom in ("bos_token", "eos_token", "pad_token", "unk_token"):
            jeton = getattr(tokenizer, nom)
            identifiant = tokenizer.convert_tokens_to_ids(jeton)
            print(f"{nom:10s} {jeton!r:16s} id {identifiant}")
        # [fin:speciaux]
    with capturer(dossier / "gabarit.txt"):
        # [region:gabarit]
        conversation = jeu["train"][0]["messages"]
        print(tokenizer.apply_chat_template(conversation, tokenize=False))
        # [fin:gabarit]
    with capturer(dossier / "invite.txt"):
        # [region:invite]
        question = conversation[:2]  # système + utilisateur, sans la réponse
        print(tokenizer.apply_chat_template(question, tokenize=False,
                                            add_generation_prompt=True))
        # [fin:invite]
    with capturer(dossier / "erreurs.txt"):
        # [region:montrer-erreurs]
        courte = [{"role": "user", "content": "Un devis, c'est gratuit ?"},
                  {"role": "assistant", "content": "Oui, et valable 3 mois."}]
        print("1) Gabarit appliqué deux fois :")
        print(erreur_gabarit_double(tokenizer, courte))
        print("2) Quatre premiers jetons, BOS ajouté deux fois :")
        print(erreur_bos_double(tokenizer, courte))
        fins, apprises = erreur_eos_absent(tokenizer, courte)
        print(f"3) Jetons <|im_end|> : {fins} ; comptés dans la perte : {apprises}")
        # [fin:montrer-erreurs]
    with capturer(dossier / "troncature.txt"):
        # [region:troncature]
        # La première conversation du jeu qui dépasse 100 jetons :
        longue = next(m for m in jeu["train"]["messages"]
                      if len(rendre(tokenizer, m)) > 100)
        texte = tokenizer.apply_chat_template(longue, tokenize=False)
        coupe = tokenizer(texte, truncation=True, max_length=100)["input_ids"]
        print(f"{len(rendre(tokenizer, longue))} jetons ; fin du texte complet :",
              repr(texte[-50:]))
        print("Tronqué à 100 jetons :", repr(tokenizer.decode(coupe)[-50:]))
        try:
            tokeniser_conversation(tokenizer, longue, max_length=100)
        except ExempleTropLong as erreur:
            print("Avec tokeniser_conversation :", erreur)
        # [fin:troncature]
    with capturer(dossier / "jeu.txt"):
        # [region:tokeniser-jeu]
        entrainement, ecartes = tokeniser_jeu(jeu["train"], tokenizer, LONGUEUR_MAX)
        print(entrainement)
        ecartees = accorder(len(ecartes), "conversation écartée",
                            "conversations écartées")
        print(f"Limite {LONGUEUR_MAX} jetons : {ecartees}.")
        _, ecartes = tokeniser_jeu(jeu["train"], tokenizer, 128)
        print(f"Limite 128 jetons : {accorder(len(ecartes), 'écartée', 'écartées')}"
              ", dont :")
        for index, nb_jetons in ecartes[:3]:
            print(f"  exemple n° {index} : {nb_jetons} jetons")
        # [fin:tokeniser-jeu]
    with capturer(dossier / "labels.txt"):
        # [region:labels]
        dialogue = next(e["messages"] for e in jeu["train"]
                        if e["source"] == "chat" and len(e["messages"]) == 5)
        exemple = tokeniser_conversation(tokenizer, dialogue)
        comptes = sum(e != IGNORE for e in exemple["labels"])
        print(f"{len(exemple['input_ids'])} jetons, dont {comptes} dans la perte")
        masque = tokenizer.apply_chat_template(
            dialogue, tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True)["assistant_masks"]
        print(f"return_assistant_tokens_mask : {sum(masque)} jeton marqué")
        # [fin:labels]
    html_labels = vue_html_labels(tokenizer, exemple)
    (dossier / "labels.html").write_text(html_labels, encoding="utf-8")
    sorties_lots(dossier, tokenizer, jeu, entrainement)


def tableau_jetons_par_mot(tokenizer, chemin):
    """Le tableau français / anglais de la page, en reStructuredText, et la
    phrase qui le lit (``chemin`` avec le suffixe ``_lecture.rst``)."""
    lignes, rapports = [], []
    francais = jetons_par_mot(tokenizer, [fr for fr, _ in PHRASES])
    anglais = jetons_par_mot(tokenizer, [en for _, en in PHRASES])
    for (fr, en), (m_fr, j_fr, r_fr), (m_en, j_en, r_en) in zip(
            PHRASES, francais, anglais):
        rapports.append(j_fr / j_en)  # jetons pour dire la même chose
        lignes.append([fr, f"{j_fr} / {m_fr}", formater(r_fr, 2), en,
                       f"{j_en} / {m_en}", formater(r_en, 2),
                       formater(rapports[-1], 2)])
    ecrire_tableau(chemin, ["français", "jetons / mots", "jetons par mot",
                            "anglais", "jetons / mots", "jetons par mot",
                            "jetons français / anglais"], lignes)
    bas, haut = min(rapports), max(rapports)
    if bas > 1:
        lecture = (f"Pour dire la même chose, le français demande ici de "
                   f"{formater(bas, 1)} à {formater(haut, 1)} fois plus de "
                   "jetons que l'anglais (dernière colonne).")
    else:
        lecture = ("La dernière colonne rapporte les jetons du français à ceux de "
                   f"l'anglais : de {formater(bas, 1)} à {formater(haut, 1)} ; "
                   "le français n'en demande pas toujours plus.")
    chemin.with_name(chemin.stem + "_lecture.rst").write_text(lecture + "\n",
                                                            encoding="utf-8")


def figure_gaspillage(longueurs, parts, chemin):
    """Histogramme des longueurs et part de remplissage par stratégie (PNG)."""
    fig = Figure(figsize=(10, 3.6))  # sans pyplot : aucun écran requis
    gauche, droite = fig.subplots(1, 2)
    gauche.hist(longueurs, bins=30, color="#4a7ab5")
    gauche.set(title="Longueur des exemples", xlabel="jetons", ylabel="exemples")
    noms = [n.replace(", ", ",\n").replace(" en ", "\nen ") for n in parts]
    barres = droite.barh(noms[::-1], [100 * p for p in list(parts.values())[::-1]],
                         color="#d9822b")
    droite.bar_label(barres, labels=[pourcent(p, 1)
                                     for p in list(parts.values())[::-1]], padding=3)
    droite.set(title="Jetons de remplissage (%)", xlim=(0, 100))
    fig.tight_layout()
    fig.savefig(chemin, dpi=110)


def sorties_lots(dossier, tokenizer, jeu, entrainement):
    """Les sorties de la partie « mise en lots » de la page Tokenisation."""
    # [region:modele]
    modele, _ = charger_modele(MODELE_EMBARQUE, dtype=torch.float32, verbeux=False)
    # [fin:modele]
    with capturer(dossier / "cote.txt"), torch.inference_mode():
        # [region:cote]
        textes = [tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False,
            add_generation_prompt=True)
            for q in ["Bonjour", "Combien coûte un pare-brise pour une Clio ?"]]
        for cote in ("right", "left"):
            tokenizer.padding_side = cote
            lot = tokenizer(textes, padding=True, add_special_tokens=False,
                            return_tensors="pt")
            suivant = modele(**lot).logits[:, -1].argmax(-1)  # dernière position
            print(f"padding_side={cote!r}")
            for masque, jeton in zip(lot["attention_mask"], suivant):
                print("  ", "".join(map(str, masque.tolist())), "→ prochain jeton :",
                      repr(tokenizer.decode(jeton)))
        tokenizer.padding_side = "right"  # le réglage d'entraînement
        # [fin:cote]
    with capturer(dossier / "packing.txt"), torch.inference_mode():
        # [region:comparer-packing]
        exemples = [entrainement[i] for i in range(4)]
        paquet = collate_packing(exemples)
        reference = DataCollatorWithFlattening()(exemples)
        identique = all(torch.equal(paquet[k], reference[k]) for k in reference)
        print("Identique à DataCollatorWithFlattening :",
              "oui" if identique else "non")
        print("Forme :", tuple(paquet["input_ids"].shape), "; position_ids :",
              paquet["position_ids"][0, :5].tolist(), "…")
        remplis = collate_padding(exemples, tokenizer.pad_token_id)
        for nom, lot, cache in [("remplis", remplis, False),
                                ("empaquetés", paquet, False),
                                ("empaquetés, use_cache=True", paquet, True)]:
            perte = modele(**lot, use_cache=cache).loss.item()
            print(f"Perte, {nom:27s} : {formater(perte, 6)}")
        # [fin:comparer-packing]
    # [region:gaspillage-jeu]
    longueurs = entrainement["longueur"]
    parts = gaspillage_padding(longueurs, taille_lot=8, max_length=LONGUEUR_MAX)
    # [fin:gaspillage-jeu]
    ecrire_tableau(dossier / "gaspillage.rst", ["stratégie", "remplissage"],
                   [[nom, pourcent(p, 1)]
                    for nom, p in parts.items()])
    figure_gaspillage(longueurs, parts, dossier / "gaspillage.png")
    utiles = formater(sum(longueurs), 0)  # 50244 → « 50 244 »
    (dossier / "gaspillage_lots.txt").write_text(
        f"{len(longueurs)} exemples, {utiles} jetons utiles, lots de 8, "
        f"max_length = {LONGUEUR_MAX}", encoding="utf-8")
