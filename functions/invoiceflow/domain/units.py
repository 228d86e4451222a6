"""Units of measure: UN/ECE Recommendation 20 codes (EN 16931 BT-130) and the readable
names users write, in one table.

A line may give ``unit_code`` (a Rec 20 code) or only ``unit`` (free text, as v1 documents
always did); :func:`unit_code` finds the code for the common readable names in several
languages, and :func:`unit_name` gives a readable English name for a code (what the PDF prints
when a line has a code and no text).
"""

from __future__ import annotations

from invoiceflow.domain.model import LineItem

#: Rec 20 code -> (readable English name, other names users write for it)
UNITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "C62": (
        "piece",
        (
            "pc",
            "pcs",
            "piece",
            "pieces",
            "unit",
            "units",
            "ea",
            "each",
            "stk",
            "stk.",
            "stück",
            "st",
            "st.",
            "pz",
            "pz.",
            "pièce",
            "pièces",
            "pce",
            "unité",
            "unidad",
            "unidades",
            "uds",
            "ud",
            "un",
            "stuk",
            "stuks",
            "szt",
            "szt.",
            "個",
            "个",
            "件",
        ),
    ),
    "H87": ("piece", ()),
    "HUR": (
        "hour",
        (
            "h",
            "hr",
            "hrs",
            "hour",
            "hours",
            "std",
            "std.",
            "stunde",
            "stunden",
            "heure",
            "heures",
            "hora",
            "horas",
            "ora",
            "ore",
            "uur",
            "godz",
            "godz.",
            "timme",
            "timmar",
            "time",
            "timer",
            "時間",
            "小时",
        ),
    ),
    "MIN": ("minute", ("min", "mins", "minute", "minutes", "minuten")),
    "DAY": (
        "day",
        (
            "d",
            "day",
            "days",
            "tag",
            "tage",
            "jour",
            "jours",
            "día",
            "días",
            "dia",
            "dias",
            "giorno",
            "giorni",
            "dag",
            "dagen",
            "dzień",
            "dni",
            "日",
        ),
    ),
    "WEE": ("week", ("wk", "week", "weeks", "woche", "wochen", "semaine", "semaines")),
    "MON": ("month", ("mo", "month", "months", "monat", "monate", "mois", "mes", "meses")),
    "ANN": ("year", ("yr", "year", "years", "jahr", "jahre", "an", "ans", "año", "años")),
    "KGM": ("kilogram", ("kg", "kgs", "kilogram", "kilograms", "kilogramm")),
    "GRM": ("gram", ("g", "gram", "grams", "gramm")),
    "TNE": ("tonne", ("t", "tonne", "tonnes", "ton")),
    "MTR": ("metre", ("m", "meter", "meters", "metre", "metres")),
    "KMT": ("kilometre", ("km", "kilometer", "kilometers", "kilometre", "kilometres")),
    "CMT": ("centimetre", ("cm",)),
    "MTK": ("square metre", ("m2", "m²", "sqm", "square metre", "square meter")),
    "MTQ": ("cubic metre", ("m3", "m³", "cbm", "cubic metre", "cubic meter")),
    "LTR": ("litre", ("l", "liter", "liters", "litre", "litres")),
    "KWH": ("kilowatt hour", ("kwh",)),
    "SET": ("set", ("set", "sets", "satz")),
    "PR": ("pair", ("pair", "pairs", "paar")),
    "LS": ("lump sum", ("lump sum", "pauschal", "pauschale", "flat", "forfait")),
    "XPK": ("package", ("pack", "package", "packages", "pkg", "packung", "paket")),
    "XBX": ("box", ("box", "boxes", "karton")),
    "E48": ("service unit", ("service", "service unit")),
    "ZZ": ("mutually defined", ()),
}

#: readable name (lower case) -> code
_BY_NAME: dict[str, str] = {
    name: code for code, (_, names) in UNITS.items() for name in names if code != "H87"
}


def is_known_unit_code(code: str) -> bool:
    return code in UNITS


def code_for_name(text: str) -> str | None:
    """The Rec 20 code of a readable unit name, or None when the name is not known."""
    return _BY_NAME.get(text.strip().lower())


def unit_code(item: LineItem) -> str | None:
    """The line's unit code: the one given; else the code of its readable unit; else ``C62``
    (one) when the line names no unit at all; None when its unit text is unknown."""
    if item.unit_code is not None:
        return item.unit_code
    if item.unit is None:
        return "C62"
    return code_for_name(item.unit)


def unit_name(code: str) -> str:
    """A readable English name for a code (the code itself when it is not in the table)."""
    return UNITS[code][0] if code in UNITS else code
