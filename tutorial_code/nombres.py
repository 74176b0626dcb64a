"""Les nombres à la française, pour tout ce que les pages affichent.

Virgule décimale, espace fine insécable (U+202F) entre les milliers, espace
insécable (U+00A0) avant « % » : ``formater(6738415616, 0)`` donne
« 6 738 415 616 », ``pourcent(0.294)`` donne « 29 % ».
"""


def formater(x, decimales=1):
    """Nombre à la française : espace fine pour les milliers, virgule décimale."""
    return f"{x:,.{decimales}f}".replace(",", "\u202f").replace(".", ",")


def pourcent(x, decimales=0):
    """Une proportion (0.294) en pourcentage à la française (« 29 % »)."""
    return f"{formater(100 * x, decimales)}\u00a0%"


def puissance(x):
    """Un petit nombre en notation scientifique à la française : « 9 × 10⁻⁵ »."""
    if x == 0:
        return "0"
    mantisse, exposant = f"{x:.0e}".split("e")  # "9e-05" → "9", "-05"
    exposant = str(int(exposant)).translate(str.maketrans("-0123456789",
                                                          "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{mantisse}\u00a0×\u00a010{exposant}"


def accorder(n, singulier, pluriel=None):
    """« 1 rejet », « 0 rejet », « 2 rejets » : le nombre et le nom accordé
    (singulier sous 2, comme le veut l'usage français)."""
    mot = singulier if abs(n) < 2 else (pluriel or singulier + "s")
    return f"{formater(n, 0)} {mot}"
