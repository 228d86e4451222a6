"""The language of a document's labels and the words it uses for tax.

Labels come from gettext catalogues (``invoiceflow/locale/<lang>/LC_MESSAGES/invoiceflow.mo``,
compiled with Babel from the ``.po`` beside it; ``invoiceflow.pot`` lists every message). The
language is the document's ``language`` (BCP 47), else its locale's language
(:func:`language`); a language without a catalogue prints English, and so does a message a
catalogue does not translate. docs/localization.md has the workflow and the tax-term table.

Tax terms are not messages: they follow each country's usage, so they are looked up here by
the label language and the locale's territory (:func:`tax_name`, :func:`vat_id_label`), in
tables that the tests check locale by locale.
"""

from __future__ import annotations

import gettext as _gettext
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from invoiceflow.records import record
from invoiceflow.render import localize

if TYPE_CHECKING:
    from invoiceflow.domain.model import Invoice

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "Labels",
    "direction",
    "document_direction",
    "labels",
    "labels_for",
    "language",
    "tax_name",
    "upper",
    "vat_id_label",
]

#: the gettext domain: the catalogues' file name
DOMAIN = "invoiceflow"
#: where the catalogues are (package data)
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
#: the languages with labels; English is the messages themselves (no catalogue)
LANGUAGES = (
    "en",
    "de",
    "fr",
    "es",
    "it",
    "nl",
    "pt",
    "pl",
    "sv",
    "da",
    "el",
    "ja",
    "zh",
    "ar",
    "he",
)
#: Chinese written in traditional characters: no catalogue (the zh one is Simplified)
_TRADITIONAL_TERRITORIES = frozenset({"TW", "HK", "MO"})


def N_(message: str) -> str:
    """Mark ``message`` for extraction where it is defined; it is translated where used."""
    return message


def _tag_language(tag: str) -> str:
    """The catalogue for a BCP 47 tag or Babel locale: its language, ``en`` when there is no
    catalogue for it (also Chinese in traditional characters)."""
    from babel import Locale, UnknownLocaleError

    try:
        parsed = Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return "en"
    lang = str(parsed.language)
    if lang == "zh" and (
        parsed.script == "Hant"
        or (parsed.script is None and parsed.territory in _TRADITIONAL_TERRITORIES)
    ):
        return "en"
    return lang if lang in LANGUAGES else "en"


@lru_cache(maxsize=256)
def _language_of(document_language: str | None, babel_locale: str) -> str:
    return _tag_language(document_language or babel_locale)


def language(invoice: Invoice) -> str:
    """The language of the invoice's labels (one of :data:`LANGUAGES`)."""
    return _language_of(invoice.language, invoice.babel_locale)


@lru_cache(maxsize=32)
def direction(lang: str) -> Literal["ltr", "rtl"]:
    """``rtl`` for a language written right to left (CLDR's character order), else ``ltr``."""
    from babel import Locale

    return "rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr"


@lru_cache(maxsize=256)
def _direction_of(document_language: str | None, babel_locale: str) -> Literal["ltr", "rtl"]:
    from babel import UnknownLocaleError

    tag = (document_language or babel_locale).replace("-", "_")
    # the whole tag (pa-Arab is right to left, pa is not), else its language
    for candidate in (tag, tag.split("_")[0].lower()):
        try:
            return direction(candidate)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return "ltr"


def document_direction(invoice: Invoice) -> Literal["ltr", "rtl"]:
    """The direction of the document in every format: its language's (``language``, else its
    locale's), also where that language has no catalogue and its labels print English
    (Persian, Urdu: right to left)."""
    return _direction_of(invoice.language, invoice.babel_locale)


def upper(text: str, lang: str) -> str:
    """``text`` in capitals as ``lang`` writes them: Greek capitals drop the accent (tonos)."""
    capitals = text.upper()
    if lang == "el":
        decomposed = unicodedata.normalize("NFD", capitals).replace("\u0301", "")
        capitals = unicodedata.normalize("NFC", decomposed)
    return capitals


@record
class Labels:
    """The labels of one language: :meth:`gettext` translates a message (English when the
    catalogue lacks it)."""

    language: str
    catalogue: _gettext.NullTranslations

    def gettext(self, message: str) -> str:
        return self.catalogue.gettext(message)


@lru_cache(maxsize=len(LANGUAGES))
def labels(lang: str) -> Labels:
    """The labels of ``lang`` (a language of :data:`LANGUAGES`; anything else prints English).
    Each catalogue is read once per process."""
    if lang not in LANGUAGES or lang == "en":
        return Labels("en", _gettext.NullTranslations())
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as fh:
        return Labels(lang, _gettext.GNUTranslations(fh))


def labels_for(invoice: Invoice | None) -> Labels:
    """The labels of the invoice's language; English without an invoice."""
    return labels("en" if invoice is None else language(invoice))


# ------------------------------------------------------------------------------ tax terms

#: English: the tax's customary name by the locale's territory; anywhere else "VAT". These
#: are the territories whose tax is not a VAT by name: other languages do not call it by
#: their word for VAT either (:data:`_TAX_WORDS`)
_EN_TAX_NAMES = {
    "US": "Sales tax",
    "CA": "Sales tax",
    "AU": "GST",
    "NZ": "GST",
    "SG": "GST",
    "IN": "GST",
    "MY": "SST",
    "JP": "Consumption tax",
    # ICMS, IPI, ISS, PIS/COFINS: several taxes, none of them a VAT by name
    "BR": "Tax",
}
#: the word for "tax" by label language: the tax's name in a territory of
#: :data:`_EN_TAX_NAMES` (pt-BR ``Imposto``, not Portugal's ``IVA``) unless the table below
#: names it for that territory
_TAX_WORDS = {
    "de": "Steuer",
    "fr": "Taxe",
    "es": "Impuesto",
    "it": "Imposta",
    "nl": "Belasting",
    "pt": "Imposto",
    "pl": "Podatek",
    "sv": "Skatt",
    "da": "Skat",
    "el": "Φόρος",
    "ja": "税",
    "zh": "税",
    "ar": "ضريبة",
    "he": "מס",
}
#: the tax's name by label language (its word for VAT), or by (language, territory) where a
#: country differs
_TAX_NAMES: dict[str | tuple[str, str], str] = {
    "de": "MwSt.",
    ("de", "AT"): "USt.",
    ("de", "CH"): "MWST",
    "fr": "TVA",
    "es": "IVA",
    ("es", "PE"): "IGV",  # Peru's Impuesto General a las Ventas
    "it": "IVA",
    "nl": "BTW",
    "pt": "IVA",
    "pl": "VAT",
    "sv": "Moms",
    "da": "Moms",
    "el": "ΦΠΑ",
    "ja": "消費税",
    ("ja", "JP"): "消費税",
    "zh": "增值税",
    "ar": "ضريبة القيمة المضافة",
    "he": "מע״מ",
}
#: English: the label of a party's VAT id by the locale's territory; anywhere else "VAT ID"
_EN_VAT_ID_LABELS = {
    "GB": "VAT reg. no.",
    "IE": "VAT no.",
    "AU": "ABN",
    "NZ": "GST no.",
    "IN": "GSTIN",
    "SG": "GST reg. no.",
}
#: the label of a party's VAT id by label language, or by (language, territory)
_VAT_ID_LABELS: dict[str | tuple[str, str], str] = {
    "de": "USt-IdNr.",
    ("de", "CH"): "MWST-Nr.",
    "fr": "N° TVA",
    ("fr", "CH"): "N° TVA",
    "es": "NIF",
    "it": "P.IVA",
    ("it", "CH"): "N. IVA",
    "nl": "BTW-nr.",
    "pt": "NIF",
    ("pt", "BR"): "CNPJ/CPF",
    "pl": "NIP",
    "sv": "Momsreg.nr",
    "da": "CVR-nr.",
    "el": "ΑΦΜ",
    "ja": "登録番号",
    "zh": "税号",
    "ar": "الرقم الضريبي",
    "he": "מס\u05f3 עוסק מורשה",  # "no." with a geresh,
}


def _term(
    invoice: Invoice,
    english: dict[str, str],
    table: dict[str | tuple[str, str], str],
    default: str,
) -> str:
    """The term in the document's language for its territory: the English table's, else
    the table's for (language, territory), else the language's."""
    lang = language(invoice)
    territory = localize.locale_of(invoice).territory or ""
    if lang == "en":
        return english.get(territory, default)
    return table.get((lang, territory)) or table.get(lang) or default


def _tax_word(invoice: Invoice) -> str | None:
    """The language's plain word for tax (:data:`_TAX_WORDS`) where it is the tax's name: a
    non-English document for a territory whose tax is no VAT by name (:data:`_EN_TAX_NAMES`)
    that :data:`_TAX_NAMES` does not name for that language; else None."""
    lang = language(invoice)
    territory = localize.locale_of(invoice).territory or ""
    if lang == "en" or territory not in _EN_TAX_NAMES or (lang, territory) in _TAX_NAMES:
        return None
    return _TAX_WORDS.get(lang)


def tax_name(invoice: Invoice) -> str:
    """The tax's name as the document's country and language say it: ``VAT`` (en-GB),
    ``Sales tax`` (en-US), ``GST`` (en-AU), ``MwSt.`` (de-DE), ``USt.`` (de-AT), ``TVA``...;
    the language's word for tax where the country's tax is no VAT (pt-BR ``Imposto``)."""
    return _tax_word(invoice) or _term(invoice, _EN_TAX_NAMES, _TAX_NAMES, "VAT")


def tax_is_generic(invoice: Invoice) -> bool:
    """Whether :func:`tax_name` is the language's plain word for tax (:func:`_tax_word`),
    which a sentence does not use as a name ("Not subject to tax", not "Não sujeito a
    Imposto")."""
    return _tax_word(invoice) is not None


def vat_id_label(invoice: Invoice | None) -> str:
    """The label of a party's VAT id: ``USt-IdNr.`` (de), ``N° TVA`` (fr), ``NIF`` (es),
    ``P.IVA`` (it), ``VAT reg. no.`` (en-GB)...; ``VAT ID`` without an invoice."""
    if invoice is None:
        return "VAT ID"
    return _term(invoice, _EN_VAT_ID_LABELS, _VAT_ID_LABELS, "VAT ID")
