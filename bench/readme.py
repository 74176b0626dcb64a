"""Le tableau des derniers résultats des bancs, réécrit dans README.md.

``make bench`` le lance en dernier : entre les deux marqueurs ci-dessous, le
README reçoit la machine, le commit, la date, les tableaux de mesures, chaque
cible (mesuré, visé, verdict) et ce que les bancs disent là où le guide
perd. Rien n'y est recopié à la main ; le reste du README n'est jamais touché.

Exécutable : ``python -m bench.readme`` (depuis ``bench/resultats.json``).
"""

import json
import sys

from bench import commun

DEBUT = "<!-- debut:resultats-bancs (généré par make bench) -->"
FIN = "<!-- fin:resultats-bancs -->"
README = commun.RACINE / "README.md"


class MarqueursAbsents(ValueError):
    """Le README n'a pas (ou plus) la paire de marqueurs du tableau."""


def section_readme(tout):
    """Le texte markdown mis entre les marqueurs, depuis le JSON des bancs."""
    if not tout:
        return "_Aucun résultat : lancez `make bench`._\n"
    texte = ""
    for cle in [c for c in commun.TITRES if c in tout]:
        section = tout[cle]
        m = section["machine"]
        extensions = ", ".join(m["extensions"]) or "sans AVX-512"
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
                     if r.startswith(("Le guide perd", "Pertes finales",
                                      "D'autres processus", "Pourquoi"))]
        texte += "".join(f"- {r}\n" for r in remarques) + ("\n" if remarques else "")
    return texte


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
        texte = remplacer(README.read_text(encoding="utf-8"), section_readme(tout))
    except MarqueursAbsents as erreur:
        print(f"Erreur : {erreur}", file=sys.stderr)
        return 2
    README.write_text(texte, encoding="utf-8")
    print(f"Tableau des bancs réécrit dans {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
