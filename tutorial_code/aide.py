"""L'aide des commandes du guide, en français.

argparse écrit « usage: », « options: » et « show this help message and
exit » ; chaque commande ``python -m tutorial_code.X`` (et chaque banc) crée
son analyseur ici, pour que ``--help`` soit entièrement en français.
"""

import argparse


class AideFrancaise(argparse.HelpFormatter):
    """L'aide d'argparse, avec « utilisation : » au lieu de « usage: »."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix or "utilisation : ")


def creer_parser(prog, description):
    """Un ``ArgumentParser`` dont l'aide (``--help``) est entièrement en français."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=AideFrancaise, add_help=False)
    parser._positionals.title = "arguments"
    parser._optionals.title = "options"
    parser.add_argument("-h", "--help", action="help",
                        help="affiche cette aide et quitte")
    return parser
