"""The label catalogues and the tax terms (render.i18n): every language has every message of
the template, the template has every message of the source, the committed .mo files are
compiled from their .po files, the language follows the document, and the tax's name and the
VAT id's label follow each country's usage."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from invoiceflow.domain.model import Invoice, LineItem, Party
from invoiceflow.domain.totals import TaxGroup
from invoiceflow.render import i18n
from invoiceflow.render.content import tax_line_label

PACKAGE = Path(i18n.__file__).resolve().parents[1]
TEMPLATE = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
CATALOGUED = [lang for lang in i18n.LANGUAGES if lang != "en"]
NBSP = "\u00a0"


def inv(locale: str, language: str | None = None, **kw: Any) -> Invoice:
    fields: dict[str, Any] = {
        "number": "INV-1",
        "issue_date": date(2026, 3, 5),
        "currency": "EUR",
        "seller": Party(name="Seller"),
        "bill_to": Party(name="Buyer"),
        "items": (LineItem("Work", D(1), D("100.00"), tax_rate=D(19)),),
        "locale": locale,
        "language": language,
    }
    fields.update(kw)
    return Invoice(**fields)


def _read(path: Path) -> Any:
    with path.open("rb") as fh:
        return read_po(fh)


def _ids(catalog: Any) -> set[str]:
    return {m.id for m in catalog if m.id}


def test_every_language_has_a_catalogue_and_no_other_catalogue_exists() -> None:
    found = {p.parent.parent.name for p in i18n.LOCALE_DIR.glob("*/LC_MESSAGES/*.po")}
    assert found == set(CATALOGUED)
    assert len(i18n.LANGUAGES) == 15


@pytest.mark.parametrize("lang", CATALOGUED)
def test_a_catalogue_translates_every_message_of_the_template(lang: str) -> None:
    template = _ids(_read(TEMPLATE))
    catalog = _read(i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po")
    assert catalog.locale is not None and str(catalog.locale.language) == lang
    assert _ids(catalog) == template, "run pybabel update (CONTRIBUTING.md)"
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"{lang}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{lang}: {message.id!r} is fuzzy"
        # the same placeholders, so `%` never fails and nothing is dropped
        assert list(catalog.check()) == []


@pytest.mark.parametrize("lang", CATALOGUED)
def test_the_committed_mo_is_compiled_from_its_po(lang: str) -> None:
    """A .po changed without `pybabel compile` fails here (the .mo would be stale)."""
    folder = i18n.LOCALE_DIR / lang / "LC_MESSAGES"
    compiled = io.BytesIO()
    write_mo(compiled, _read(folder / f"{i18n.DOMAIN}.po"))
    assert (folder / f"{i18n.DOMAIN}.mo").read_bytes() == compiled.getvalue(), (
        f"{lang}: the .mo is stale; run pybabel compile (CONTRIBUTING.md)"
    )


def test_the_template_has_every_message_of_the_source() -> None:
    """Babel's extraction over the package (the `pybabel extract` of CONTRIBUTING.md) finds no
    message that the .pot lacks, and the .pot has none that the source no longer uses."""
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(str(PACKAGE))
        if isinstance(message, str)
    }
    assert extracted
    assert extracted == _ids(_read(TEMPLATE)), "run pybabel extract (CONTRIBUTING.md)"


def test_a_message_without_a_translation_prints_english() -> None:
    assert i18n.labels("de").gettext("Not a message of the catalogue") == (
        "Not a message of the catalogue"
    )
    assert i18n.labels("xx").language == "en"


@pytest.mark.parametrize(
    ("locale", "language", "expected"),
    [
        ("de-DE", None, "de"),  # the locale's language
        ("de-DE", "en", "en"),  # the document's language wins
        ("en-US", "fr", "fr"),
        ("pt-BR", None, "pt"),
        ("en-GB", "zh-Hans", "zh"),
        ("zh-CN", None, "zh"),
        ("zh-TW", None, "en"),  # traditional characters: no catalogue
        ("en-US", "zh-Hant", "en"),
        ("fi-FI", None, "en"),  # no catalogue: English
        ("ar-KW", None, "ar"),
        ("he-IL", None, "he"),
        ("en-US", "not a tag!", "en"),
    ],
)
def test_the_language_of_the_labels(locale: str, language: str | None, expected: str) -> None:
    assert i18n.language(inv(locale, language)) == expected


@pytest.mark.parametrize(
    ("lang", "direction"),
    [("en", "ltr"), ("de", "ltr"), ("ja", "ltr"), ("ar", "rtl"), ("he", "rtl")],
)
def test_direction(lang: str, direction: str) -> None:
    assert i18n.direction(lang) == direction


#: locale, document language -> the tax's name, the VAT id's label
TAX_TERMS = [
    ("en-GB", None, "VAT", "VAT reg. no."),
    ("en-IE", None, "VAT", "VAT no."),
    ("en-US", None, "Sales tax", "VAT ID"),
    ("en-CA", None, "Sales tax", "VAT ID"),
    ("ja-JP", "en", "Consumption tax", "VAT ID"),
    ("en-AU", None, "GST", "ABN"),
    ("en-NZ", None, "GST", "GST no."),
    ("en-IN", None, "GST", "GSTIN"),
    ("en-SG", None, "GST", "GST reg. no."),
    ("de-DE", None, "MwSt.", "USt-IdNr."),
    ("de-AT", None, "USt.", "USt-IdNr."),
    ("de-CH", None, "MWST", "MWST-Nr."),
    ("fr-FR", None, "TVA", "N° TVA"),
    ("fr-BE", None, "TVA", "N° TVA"),
    ("es-ES", None, "IVA", "NIF"),
    ("es-PE", None, "IGV", "NIF"),
    ("es-MX", None, "IVA", "NIF"),
    ("it-IT", None, "IVA", "P.IVA"),
    ("nl-NL", None, "BTW", "BTW-nr."),
    ("nl-BE", None, "BTW", "BTW-nr."),
    ("pt-PT", None, "IVA", "NIF"),
    ("pl-PL", None, "VAT", "NIP"),
    ("sv-SE", None, "Moms", "Momsreg.nr"),
    ("da-DK", None, "Moms", "CVR-nr."),
    ("el-GR", None, "ΦΠΑ", "ΑΦΜ"),
    ("ja-JP", None, "消費税", "登録番号"),
    ("zh-CN", None, "增值税", "税号"),
    ("ar-AE", None, "ضريبة القيمة المضافة", "الرقم الضريبي"),
    ("he-IL", None, "מע״מ", "מס\u05f3 עוסק מורשה"),
    # English labels on a German document: the English words for Germany
    ("de-DE", "en", "VAT", "VAT ID"),
    # a language's word for VAT only where the tax is a VAT: Brazil's taxes (ICMS, IPI,
    # ISS...) are no IVA, the US's sales tax no MwSt., Canada's GST/HST no TVA; there the
    # language's word for "tax"
    ("pt-BR", None, "Imposto", "CNPJ/CPF"),
    ("pt-BR", "en", "Tax", "VAT ID"),
    ("es-US", None, "Impuesto", "NIF"),
    ("fr-CA", None, "Taxe", "N° TVA"),
    ("zh-SG", None, "税", "税号"),
    ("en-US", "de", "Steuer", "USt-IdNr."),
    ("es-MX", None, "IVA", "NIF"),
    ("pt-AO", None, "IVA", "NIF"),
]


def test_every_language_has_a_word_for_tax_where_the_tax_is_no_vat() -> None:
    """Each language with labels names the tax in the territories whose tax is not a VAT
    (those with English names of their own: Sales tax, GST...) by its word for tax, never
    by its word for VAT."""
    for lang in i18n.LANGUAGES:
        vat = i18n.tax_name(inv("de-DE", lang))
        for locale in ("en-US", "pt-BR", "en-AU", "en-CA"):
            name = i18n.tax_name(inv(locale, lang))
            assert name != vat, (lang, locale, name)


@pytest.mark.parametrize(("locale", "language", "tax", "vat_id"), TAX_TERMS)
def test_tax_terms_follow_the_country(
    locale: str, language: str | None, tax: str, vat_id: str
) -> None:
    document = inv(locale, language)
    assert i18n.tax_name(document) == tax
    assert i18n.vat_id_label(document) == vat_id


def test_the_tax_line_says_the_tax_in_the_documents_words() -> None:
    group = TaxGroup(
        rate=D("19"),
        lines=D("1234.00"),
        discount=D(0),
        shipping=D(0),
        base=D("1234.00"),
        tax=D("234.46"),
    )
    assert tax_line_label(group, inv("de-DE")) == f"MwSt. 19{NBSP}% auf 1.234,00{NBSP}€"
    assert tax_line_label(group, inv("de-DE", "en")) == f"VAT 19{NBSP}% on 1.234,00{NBSP}€"
    assert tax_line_label(group, inv("en-US", currency="USD")) == "Sales tax 19% on $1,234.00"
    assert tax_line_label(group, inv("fr-FR")).startswith("TVA 19")
    exempt = TaxGroup(
        rate=None,
        lines=D("50.00"),
        discount=D(0),
        shipping=D(0),
        base=D("50.00"),
        tax=D(0),
        category="O",
    )
    assert tax_line_label(exempt, inv("en-US", currency="USD")).startswith(
        "Not subject to sales tax on"
    )
    assert tax_line_label(exempt, inv("en-GB")).startswith("Not subject to VAT on")
    # where the tax is no VAT by name, the language's plain word for tax is no name to put
    # in a sentence: its own phrase (not "Não sujeito a Imposto", "Niepodlegające Podatek")
    for locale, language, phrase in [
        ("pt-BR", None, "Não sujeito a imposto"),
        ("es-US", None, "No sujeto a impuesto"),
        ("fr-CA", None, "Non taxable"),
        ("en-US", "pl", "Niepodlegające opodatkowaniu"),
        ("en-US", "el", "Εκτός πεδίου φόρου"),
        ("en-US", "de", "Nicht steuerbar"),
        ("ja-JP", None, "消費税対象外"),  # Japan's tax has its name
        ("pt-PT", None, "Não sujeito a IVA"),
        ("fr-FR", None, "Non soumis à la TVA"),
    ]:
        label = tax_line_label(exempt, inv(locale, language))
        assert label.startswith(phrase), (locale, language, label)


@pytest.mark.parametrize(
    ("lang", "invoice", "credit_note", "corrected"),
    [
        ("en", "Invoice", "Credit note", "Corrected invoice"),
        ("de", "Rechnung", "Gutschrift", "Korrigierte Rechnung"),
        ("fr", "Facture", "Avoir", "Facture rectificative"),
        ("es", "Factura", "Nota de crédito", "Factura rectificativa"),
        ("it", "Fattura", "Nota di credito", "Fattura correttiva"),
        ("nl", "Factuur", "Creditnota", "Gecorrigeerde factuur"),
        ("pt", "Fatura", "Nota de crédito", "Fatura retificativa"),
        ("pl", "Faktura", "Faktura korygująca", "Korekta faktury"),
        ("sv", "Faktura", "Kreditfaktura", "Korrigerad faktura"),
        ("da", "Faktura", "Kreditnota", "Korrigeret faktura"),
        ("el", "Τιμολόγιο", "Πιστωτικό τιμολόγιο", "Διορθωτικό τιμολόγιο"),
        ("ja", "請求書", "クレジットノート", "訂正請求書"),
        ("zh", "发票", "贷项通知单", "更正发票"),
        ("ar", "فاتورة", "إشعار دائن", "فاتورة مصححة"),
        ("he", "חשבונית", "חשבונית זיכוי", "חשבונית מתוקנת"),
    ],
)
def test_document_names_in_every_language(
    lang: str, invoice: str, credit_note: str, corrected: str
) -> None:
    labels = i18n.labels(lang)
    assert labels.language == lang
    names = [labels.gettext(m) for m in ("Invoice", "Credit note", "Corrected invoice")]
    assert names == [invoice, credit_note, corrected]
    # three different names, and the credit note's last figure is not the invoice's
    assert len(set(names)) == 3
    assert labels.gettext("Amount to be refunded") != labels.gettext("Balance due")


def test_greek_capitals_drop_the_accent() -> None:
    assert i18n.upper("Τιμολόγιο", "el") == "ΤΙΜΟΛΟΓΙΟ"
    assert i18n.upper("Rechnung", "de") == "RECHNUNG"
