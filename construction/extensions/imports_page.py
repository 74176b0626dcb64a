"""Le bloc d'imports d'une page, calculé depuis le code qu'elle montre.

``.. imports-de-la-page::`` affiche les imports dont ont besoin les blocs de
code de la page (ses ``literalinclude`` Python), copiés dans l'ordre dans une
même session : chaque nom que ces blocs lisent sans le définir est importé
comme le fait le module d'où vient le bloc (``import torch``, ``from
tutorial_code.lots import collate_packing``), ou, s'il est défini dans un module
de ``tutorial_code``, depuis ce module. Les modules n'importent ainsi que ce
qu'ils utilisent, et le bloc montré suit le code montré.

Un nom introuvable, ou défini seulement dans le code de la construction, arrête
la construction : le lecteur ne pourrait pas exécuter la page.
"""

import ast
import builtins
import re
import symtable
import sys
from pathlib import Path

from docutils import nodes
from sphinx.directives.code import LiteralIncludeReader
from sphinx.util.docutils import SphinxDirective

INCLUSION = re.compile(r"^ *\.\. literalinclude::[ \t]*(\S+)\n((?: +:.*\n)*)", re.M)
OPTION = re.compile(r"^ +:([\w-]+):[ \t]*(.*)$", re.M)
BIBLIOTHEQUE = "tutorial_code"  # ce que le lecteur importe
CONSTRUCTION = ("construction", "bench")  # ce qu'il n'importe pas
LARGEUR = 88


def blocs_montres(texte_rst, dossier, config):
    """``(fichier, code)`` de chaque ``literalinclude`` Python de la page."""
    for chemin, brut in INCLUSION.findall(texte_rst):
        options = dict(OPTION.findall(brut))
        if not chemin.endswith(".py"):
            continue
        if "dedent" in options:
            options["dedent"] = int(options["dedent"])
        fichier = (Path(dossier) / chemin).resolve()
        code, _ = LiteralIncludeReader(str(fichier), options, config).read()
        yield fichier, code


def noms_lus_et_lies(code):
    """Les noms globaux que ``code`` lit, et ceux qu'il définit au niveau du
    module. Les portées comptent (``symtable``) : un paramètre ou un import
    dans une fonction reste local à cette fonction."""
    table = symtable.symtable(code, "<bloc>", "exec")
    lies = {s.get_name() for s in table.get_symbols()
            if s.is_assigned() or s.is_imported()}
    lus = {s.get_name() for s in table.get_symbols() if s.is_referenced()}

    def parcourir(t):
        for enfant in t.get_children():
            lus.update(s.get_name() for s in enfant.get_symbols()
                       if s.is_referenced() and s.is_global())
            parcourir(enfant)

    parcourir(table)
    return lus, lies


def nom_de_module(fichier, racine):
    """``tutorial_code/lots.py`` → ``tutorial_code.lots``."""
    return ".".join(Path(fichier).relative_to(racine).with_suffix("").parts)


def liaisons(fichier, racine):
    """``{nom: import}`` au niveau du module ``fichier`` ; un import est
    ``("import", module, alias)`` ou ``("from", module, nom, alias)``."""
    module = nom_de_module(fichier, racine)
    trouve = {}
    for n in ast.parse(Path(fichier).read_text(encoding="utf-8")).body:
        if isinstance(n, ast.Import):
            for a in n.names:
                trouve[a.asname or a.name.split(".")[0]] = (
                    "import", a.name if a.asname else a.name.split(".")[0], a.asname)
        elif isinstance(n, ast.ImportFrom) and n.module:
            for a in n.names:
                trouve[a.asname or a.name] = ("from", n.module, a.name, a.asname)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            trouve[n.name] = ("from", module, n.name, None)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            cibles = n.targets if isinstance(n, ast.Assign) else [n.target]
            for c in cibles:
                for m in ast.walk(c):
                    if isinstance(m, ast.Name):
                        trouve[m.id] = ("from", module, m.id, None)
    return trouve


def section(module):
    """0 : bibliothèque standard ; 1 : paquets installés ; 2 : le guide."""
    racine = module.split(".")[0]
    if racine in sys.stdlib_module_names:
        return 0
    return 2 if racine == BIBLIOTHEQUE else 1


def cle_nom(nom):
    """L'ordre d'isort (et de ruff) : CONSTANTES, puis Classes, puis le reste."""
    genre = 0 if nom.isupper() else 1 if nom[:1].isupper() else 2
    return genre, nom


def ligne_from(module, noms):
    """``from module import a, b`` ; au-delà de 88 caractères, entre
    parenthèses, les noms remplissant des lignes en retrait de 4."""
    ligne = f"from {module} import {', '.join(noms)}"
    if len(ligne) <= LARGEUR:
        return ligne
    lignes, courante = [f"from {module} import ("], "   "
    for k, nom in enumerate(noms):
        morceau = f" {nom}" + (")" if k == len(noms) - 1 else ",")
        if len(courante + morceau) > LARGEUR:
            lignes.append(courante)
            courante = "   "
        courante += morceau
    return "\n".join(lignes + [courante])


def ecrire_imports(imports):
    """Le bloc d'imports, groupé et trié comme le ferait ruff (règles « I »)."""
    directs, depuis = set(), {}
    for imp in imports:
        if imp[0] == "import":
            directs.add((imp[1], imp[2]))
        else:
            nom = imp[2] + (f" as {imp[3]}" if imp[3] else "")
            depuis.setdefault(imp[1], set()).add(nom)
    groupes = []
    for s in range(3):
        lignes = [f"import {m}" + (f" as {a}" if a else "")
                  for m, a in sorted(directs, key=lambda d: (d[0].lower(), d))
                  if section(m) == s]
        lignes += [ligne_from(m, sorted(noms, key=cle_nom))
                   for m, noms in sorted(depuis.items(), key=lambda d: d[0].lower())
                   if section(m) == s]
        if lignes:
            groupes.append("\n".join(lignes))
    return "\n\n".join(groupes)


def imports_de_la_page(texte_rst, dossier, racine, config):
    """``(code, fichiers, erreurs)`` : le bloc d'imports des blocs montrés."""
    blocs = list(blocs_montres(texte_rst, dossier, config))
    # Dans l'ordre de la page : un nom lu par un bloc avant qu'un bloc (celui-ci
    # ou un précédent) le définisse doit venir des imports.
    lies, besoins = set(dir(builtins)), {}
    for fichier, code in blocs:
        lus, definis = noms_lus_et_lies(code)
        lies |= definis
        for nom in lus - lies:
            besoins.setdefault(nom, fichier)  # le premier bloc qui le lit
    fichiers = list(dict.fromkeys(f for f, _ in blocs))
    imports, erreurs = set(), []
    for nom, fichier in sorted(besoins.items()):
        # D'abord le module du bloc qui lit le nom, puis les autres de la page.
        for source in [fichier] + [f for f in fichiers if f != fichier]:
            imp = liaisons(source, racine).get(nom)
            if imp is not None:
                break
        if imp is None or imp[1].split(".")[0] in CONSTRUCTION:
            erreurs.append(nom)
        else:
            imports.add(imp)
    return ecrire_imports(imports), fichiers, erreurs


class ImportsDeLaPage(SphinxDirective):
    has_content = False

    def run(self):
        source = Path(self.state.document.current_source)
        texte = source.read_text(encoding="utf-8")
        racine = Path(self.env.srcdir).parent
        code, fichiers, erreurs = imports_de_la_page(
            texte, source.parent, racine, self.config)
        if erreurs:
            raise self.error(
                f"{source.name} : nom(s) lu(s) par le code montré, importables "
                f"de nulle part : {', '.join(erreurs)}. Montrez leur définition, "
                f"ou définissez-les dans un module de {BIBLIOTHEQUE}.")
        for f in fichiers:
            self.env.note_dependency(str(f))
        bloc = nodes.literal_block(code, code)
        bloc["language"] = "python"
        return [bloc]


def setup(app):
    app.add_directive("imports-de-la-page", ImportsDeLaPage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
