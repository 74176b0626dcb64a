"""Le tableau des derniers résultats des bancs, réécrit dans README.md.

``make bench`` le lance en dernier : entre les deux marqueurs ci-dessous, le
README reçoit la machine, le commit, la date, les tableaux de mesures, chaque
cible (mesuré, visé, verdict) et ce que les bancs disent là où le guide
perd. Un bloc par type de processeur : un run ne remplace que celui de sa
machine, et dans ce bloc que les sections des bancs qu'il a lancés (chacune
garde son commit et sa date). Rien n'y est recopié à la main ; le reste du
README n'est jamais touché.

Exécutable : ``python -m bench.readme`` (depuis ``bench/resultats.json``).
"""

import json
import re
import sys

from bench import commun

DEBUT = "<!-- debut:resultats-bancs (généré par make bench) -->"
FIN = "<!-- fin:resultats-bancs -->"
README = commun.RACINE / "README.md"


class MarqueursAbsents(ValueError):
    """Le README n'a pas (ou plus) la paire de marqueurs du tableau."""


def texte_extensions(m):
    """Les extensions de calcul du processeur, telles que le README les écrit."""
    return ", ".join(m["extensions"]) or "sans AVX-512"


def section_readme(tout):
    """Le texte markdown mis entre les marqueurs, depuis le JSON des bancs."""
    if not tout:
        return "_Aucun résultat : lancez `make bench`._\n"
    texte = ""
    for cle in [c for c in commun.TITRES if c in tout]:
        section = tout[cle]
        m = section["machine"]
        extensions = texte_extensions(m)
        texte += (f"**{commun.TITRES[cle]}** — {m['processeur']}, "
                  f"{m['coeurs']} cœurs ({extensions}), commit `{m['commit']}`, "
                  f"{m['date']}\n\n")
        for tableau in section.get("tableaux", []):
            texte += commun.tableau_markdown(tableau["entetes"],
                                             tableau["lignes"]) + "\n"
        lignes = [[c["nom"], c["texte"], c["cible"], commun.verdict(c["atteinte"])]
                  for c in section.get("cibles", [])]
        texte += commun.tableau_markdown(["cible", "mesuré", "visé", "verdict"],
                                         lignes) + "\n"
        # Ce que le banc dit en clair (où le guide perd, pourquoi), sans les
        # remarques de méthode, qui restent dans bench/resultats.md.
        remarques = [r for r in section.get("remarques", [])
                     if r.startswith(("Le guide perd", "Pertes finales", "TRL refuse",
                                      "D'autres processus", "Pourquoi",
                                      "Le guide génère en fp32"))]
        texte += "".join(f"- {r}\n" for r in remarques) + ("\n" if remarques else "")
    return texte


# Une marque par type de processeur : chaque make bench ne réécrit que le bloc
# de la machine où il tourne, les résultats des autres types restent à côté.
MARQUE = re.compile(r"^<!-- processeur : (.+) -->$", re.M)


def genre_machine(m):
    """Le type de processeur d'un run : son nom et ses extensions de calcul."""
    return f"{m['processeur']} ({texte_extensions(m)})"


def blocs_par_genre(contenu):
    """``{type de processeur: texte}`` des résultats déjà entre les marqueurs,
    dans leur ordre. Un bloc d'avant les marques de type est rattaché au type
    que nomme sa première ligne (« — Processeur, 2 cœurs (extensions) »)."""
    parties = MARQUE.split(contenu)
    blocs = {}
    premiere = re.search(r"— (.+?), \d+ cœurs \((.*?)\)", parties[0])
    if premiere:
        blocs[f"{premiere[1]} ({premiere[2]})"] = parties[0].strip()
    for genre, texte in zip(parties[1::2], parties[2::2]):
        blocs[genre] = texte.strip()
    return blocs


def sections_par_banc(bloc):
    """``{banc: texte}`` d'un bloc, coupé à chaque titre (« **Titre** — … »)."""
    titres = {f"**{titre}** — ": cle for cle, titre in commun.TITRES.items()}
    sections, cle = {}, None
    for ligne in bloc.splitlines(keepends=True):
        cle = next((c for t, c in titres.items() if ligne.startswith(t)), cle)
        if cle is not None:
            sections[cle] = sections.get(cle, "") + ligne
    return sections


def contenu_fusionne(contenu_actuel, tout):
    """Le contenu entre les marqueurs : dans le bloc de cette machine, les
    sections des bancs de ``tout`` (ce run) remplacées, les autres gardées
    (chacune avec son commit et sa date) ; les blocs des autres types gardés."""
    blocs = blocs_par_genre(contenu_actuel)
    if tout:
        genre = genre_machine(next(iter(tout.values()))["machine"])
        sections = sections_par_banc(blocs.get(genre, ""))
        sections.update({cle: section_readme({cle: section})
                         for cle, section in tout.items()})
        blocs[genre] = "\n\n".join(sections[c].strip() for c in commun.TITRES
                                    if c in sections)
    if not blocs:
        return section_readme({})
    return "\n\n".join(f"<!-- processeur : {genre} -->\n{texte}"
                       for genre, texte in blocs.items()) + "\n"


def entre_marqueurs(readme):
    """Le texte actuel entre les deux marqueurs (vide s'ils manquent)."""
    if readme.count(DEBUT) != 1 or readme.count(FIN) != 1:
        return ""
    return readme.split(DEBUT)[1].split(FIN)[0]


def remplacer(readme, contenu):
    """``readme`` avec ``contenu`` entre les marqueurs (le reste intact)."""
    if readme.count(DEBUT) != 1 or readme.count(FIN) != 1 \
            or readme.index(DEBUT) > readme.index(FIN):
        raise MarqueursAbsents(
            f"README.md : il faut une ligne « {DEBUT} » puis une ligne « {FIN} », "
            "une seule fois chacune ; le tableau des bancs va entre les deux.")
    avant, reste = readme.split(DEBUT)
    _, apres = reste.split(FIN)
    return f"{avant}{DEBUT}\n{contenu.rstrip()}\n{FIN}{apres}"


def main(argv=None):
    commun.analyseur("python -m bench.readme",
                     "Réécrit dans README.md le tableau des derniers résultats "
                     "des bancs (depuis bench/resultats.json).").parse_args(argv)
    try:
        tout = json.loads(commun.RESULTATS_JSON.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tout = {}
    try:
        readme = README.read_text(encoding="utf-8")
        texte = remplacer(readme, contenu_fusionne(entre_marqueurs(readme), tout))
    except MarqueursAbsents as erreur:
        print(f"Erreur : {erreur}", file=sys.stderr)
        return 2
    README.write_text(texte, encoding="utf-8")
    print(f"Tableau des bancs réécrit dans {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
