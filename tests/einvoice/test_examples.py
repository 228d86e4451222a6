"""The e-invoice examples in events/examples/invoices/: each parses, says what it is meant to
show, carries identifiers that are fake but well formed (check digits included), and its CII and
UBL pass every official EN 16931 rule (CEN/TC 434 artefacts; the CII also its XML Schema).

docs/e-invoicing.md lists the same examples with the formats each is meant for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from invoiceflow.domain import einvoice, parse_invoice
from invoiceflow.domain.model import Invoice
from invoiceflow.domain.totals import compute_totals
from support import official

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "events" / "examples" / "invoices"


@dataclass(frozen=True)
class Example:
    #: the formats the example is meant for (docs/e-invoicing.md says the same)
    formats: tuple[str, ...]
    #: the CII profile ``einvoice.cii_profile`` chooses
    profile: str = "en16931"
    document_type: str = "invoice"
    #: the VAT categories of its tax breakdown
    categories: frozenset[str] = frozenset({"S"})
    country: str = "DE"
    currency: str = "EUR"


#: the e-invoice examples (all of them are written as CII and UBL and checked, those that keep
#: an email address for CII with a Peppol one for UBL: the formats named here are the ones the
#: example is *meant* for)
EINVOICES: dict[str, Example] = {
    "de-xrechnung-b2g.json": Example(("cii", "pdf"), profile="xrechnung"),
    "de-facturx-b2b.json": Example(("facturx", "cii", "xlsx")),
    "fr-facturx.json": Example(("facturx", "cii", "ubl"), country="FR"),
    "be-peppol-ubl.json": Example(("ubl", "pdf"), country="BE"),
    "eu-reverse-charge.json": Example(
        ("ubl", "cii", "pdf"), categories=frozenset({"AE"}), country="NL"
    ),
    "export-outside-eu.json": Example(("facturx", "ubl"), categories=frozenset({"G"})),
    "de-credit-note.json": Example(("facturx", "cii", "ubl"), document_type="credit_note"),
    "ch-qr-bill.json": Example(("pdf", "xlsx"), country="CH", currency="CHF"),
}
NEW = sorted(EINVOICES)


@cache
def load(name: str) -> Invoice:
    doc = parse_invoice((EXAMPLES / name).read_bytes())
    assert doc.source_format == "canonical"
    return doc.invoice


# ------------------------------------------------------------------------ the documents


def test_there_are_the_eight_new_examples() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.json")}
    assert set(EINVOICES) <= on_disk
    assert len(EINVOICES) >= 8


@pytest.mark.parametrize("name", NEW)
def test_example_parses_with_what_it_is_meant_to_show(name: str) -> None:
    inv = load(name)
    ex = EINVOICES[name]
    assert inv.currency == ex.currency
    assert inv.document_type == ex.document_type
    assert einvoice.cii_profile(inv) == ex.profile
    assert inv.seller.postal is not None and inv.seller.postal.country == ex.country
    assert inv.bill_to.postal is not None and inv.bill_to.postal.country
    assert inv.seller.electronic_address is not None
    assert inv.bill_to.electronic_address is not None
    assert inv.seller.vat_id
    groups = compute_totals(inv).groups
    assert {g.category for g in groups} == ex.categories
    for category in ex.categories - {"S"}:
        exemption = einvoice.exemption(inv, category)
        assert exemption is not None and exemption.reason
        assert exemption.code == f"VATEX-EU-{category}"
    assert compute_totals(inv).balance_due > 0


def test_the_docs_list_every_example_with_the_formats_it_is_meant_for() -> None:
    text = (ROOT / "docs" / "e-invoicing.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([\w.-]+\.json)` \|.*\| ([^|]*) \|$", text, re.M)
    }
    assert set(rows) == set(EINVOICES)
    for name, cell in rows.items():
        assert tuple(re.findall(r"`(\w+)`", cell)) == EINVOICES[name].formats, name


def test_the_xrechnung_example_has_what_a_german_authority_asks_for() -> None:
    inv = load("de-xrechnung-b2g.json")
    assert inv.buyer_reference is not None and leitweg_id_valid(inv.buyer_reference)
    assert inv.bill_to.electronic_address is not None
    assert inv.bill_to.electronic_address.scheme == "0204"  # the Leitweg-ID as address
    contact = inv.seller.contact
    assert contact is not None and contact.name and contact.phone and contact.email  # BR-DE-5..7
    assert inv.invoicing_period is not None  # services: the period (BR-DE-TMP-32)
    assert all(it.period is not None for it in inv.items)
    assert inv.payment is not None and inv.payment.iban  # BR-DE-1, BR-DE-23-a
    for party in (inv.seller, inv.bill_to):  # BR-DE-3, -4, -8, -9
        assert party.postal is not None and party.postal.city and party.postal.postal_code


def test_the_german_b2b_example_has_two_rates_discount_and_shipping() -> None:
    inv = load("de-facturx-b2b.json")
    t = compute_totals(inv)
    assert sorted(g.rate for g in t.groups if g.rate is not None) == [7, 19]
    assert t.discount > 0 and t.shipping > 0


def test_the_french_example_has_siren_tva_and_its_two_rates() -> None:
    inv = load("fr-facturx.json")
    assert inv.locale == "fr-FR"
    seller = inv.seller
    assert seller.legal_id is not None and seller.legal_id.scheme == "0002"
    assert luhn_valid(seller.legal_id.id) and len(seller.legal_id.id) == 9
    assert seller.vat_id == french_vat(seller.legal_id.id)
    assert inv.bill_to.legal_id is not None
    assert inv.bill_to.vat_id == french_vat(inv.bill_to.legal_id.id)
    for party in (inv.seller, inv.bill_to):
        address = party.electronic_address
        assert address is not None and address.scheme == "0009"  # SIRET
        assert party.legal_id is not None and address.id.startswith(party.legal_id.id)
        assert luhn_valid(address.id) and len(address.id) == 14
    rates = sorted(g.rate for g in compute_totals(inv).groups if g.rate is not None)
    assert [str(r) for r in rates] == ["5.5", "20"]


def test_the_belgian_example_is_addressed_by_kbo_number() -> None:
    inv = load("be-peppol-ubl.json")
    assert inv.locale == "nl-BE"
    for party in (inv.seller, inv.bill_to):
        address = party.electronic_address
        assert address is not None and address.scheme == "0208"
        assert belgian_enterprise_number_valid(address.id)
        assert party.vat_id == f"BE{address.id}"
    assert {g.rate for g in compute_totals(inv).groups} == {21}
    assert inv.payment is not None and inv.payment.reference is not None
    assert belgian_structured_reference_valid(inv.payment.reference)


def test_reverse_charge_and_export_name_the_vat_ids_they_need() -> None:
    rc = load("eu-reverse-charge.json")
    assert rc.seller.vat_id and rc.bill_to.vat_id  # BR-AE-02
    assert rc.seller.postal and rc.bill_to.postal
    assert rc.seller.postal.country != rc.bill_to.postal.country
    export = load("export-outside-eu.json")
    assert export.bill_to.postal is not None and export.bill_to.postal.country == "US"
    assert export.shipping_vat_category == "G"


def test_the_credit_note_refers_to_the_invoice_it_corrects() -> None:
    credit = load("de-credit-note.json")
    invoice = load("de-facturx-b2b.json")
    (ref,) = credit.preceding_invoices
    assert ref.number == invoice.number and ref.issue_date == invoice.issue_date
    assert all(it.quantity > 0 and it.unit_price > 0 for it in credit.items)  # positive
    # what is credited was on the invoice, at the invoice's price
    sold = {(it.sku, it.unit_price, it.tax_rate) for it in invoice.items}
    assert all((it.sku, it.unit_price, it.tax_rate) in sold for it in credit.items)
    assert credit.payment is None  # no payment QR code asks the buyer to pay a credit


def test_the_swiss_example_carries_a_qr_iban_and_a_qr_reference() -> None:
    inv = load("ch-qr-bill.json")
    assert inv.currency == "CHF" and inv.seller.postal is not None
    postal = inv.seller.postal
    assert postal.country == "CH" and postal.city and postal.postal_code and postal.lines
    assert inv.bill_to.postal is not None and inv.bill_to.postal.city
    assert inv.payment is not None and inv.payment.iban and inv.payment.reference
    iban = einvoice.normalized_iban(inv.payment.iban)
    assert iban_valid(iban) and 30000 <= int(iban[4:9]) <= 31999  # a QR-IBAN (QR-IID)
    assert qr_reference_valid(inv.payment.reference)
    assert inv.seller.vat_id is not None and swiss_uid_valid(inv.seller.vat_id)
    assert {g.rate for g in compute_totals(inv).groups} == {Decimal("8.1")}


@pytest.mark.parametrize("name", NEW)
def test_identifiers_are_fake_but_well_formed(name: str) -> None:
    inv = load(name)
    if inv.payment is not None and inv.payment.iban:
        assert iban_valid(einvoice.normalized_iban(inv.payment.iban))
    for party in (inv.seller, inv.bill_to):
        if party.vat_id:
            assert vat_id_valid(party.vat_id), party.vat_id
        for who in (party.email, party.contact and party.contact.email):
            assert not who or who.endswith(".example"), who
        address = party.electronic_address
        if address is not None and address.scheme == "EM":
            assert address.id.endswith(".example")
    for it in inv.items:
        if it.standard_id is not None:
            assert it.standard_id.scheme == "0160" and gtin_valid(it.standard_id.id)


# ------------------------------------------------------------------ the official rules


@pytest.mark.parametrize("name", NEW)
def test_cii_passes_the_official_rules_and_schema(name: str) -> None:
    from invoiceflow.einvoice.cii import render_cii

    xml = render_cii(load(name))
    assert official.fatal(xml, "cii") == []
    assert official.cii_schema_errors(xml) == []
    guideline = re.search(rb"<ram:ID>(urn:cen\.eu:en16931:2017[^<]*)</ram:ID>", xml)
    assert guideline is not None
    expected = (
        einvoice.XRECHNUNG_CII if EINVOICES[name].profile == "xrechnung" else einvoice.EN16931_CII
    )
    assert guideline.group(1).decode() == expected


def test_the_xrechnung_example_passes_the_xrechnung_schematron() -> None:
    """KoSIT's BR-DE rules (../shared/xrechnung, run by support.xrechnung): not one failed
    assertion, not even a warning."""
    from invoiceflow.einvoice.cii import render_cii
    from support import xrechnung

    assert xrechnung.assertions(render_cii(load("de-xrechnung-b2g.json"))) == []


def _peppol_addressed(inv: Invoice) -> Invoice:
    """An example meant for CII only, its EM (email) addresses, which Peppol refuses
    (PEPPOL-EN16931-CL008), replaced by the party's German VAT id (9930)."""
    from dataclasses import replace

    from invoiceflow.domain.model import Identifier, Party

    def party(p: Party) -> Party:
        address = p.electronic_address
        if address is None or address.scheme != "EM":
            return p
        assert p.vat_id is not None and p.vat_id.startswith("DE")
        return replace(p, electronic_address=Identifier(p.vat_id, "9930"))

    return replace(inv, seller=party(inv.seller), bill_to=party(inv.bill_to))


@pytest.mark.parametrize("name", NEW)
def test_an_email_address_keeps_an_example_out_of_ubl(name: str) -> None:
    """Peppol has no EM scheme: only the examples not meant for ubl keep an email address,
    and ubl refuses it with PEPPOL-EN16931-CL008 (CII takes it)."""
    from invoiceflow.domain.en16931 import check

    inv = load(name)
    emails = [
        at
        for party, at in ((inv.seller, "/seller"), (inv.bill_to, "/bill_to"))
        if party.electronic_address is not None and party.electronic_address.scheme == "EM"
    ]
    assert not (emails and "ubl" in EINVOICES[name].formats), name
    assert check(inv, "cii") == []
    found = [(p.rule, p.pointer) for p in check(inv, "ubl")]
    assert found == [("PEPPOL-EN16931-CL008", f"{at}/electronic_address/scheme") for at in emails]


@pytest.mark.parametrize("name", NEW)
def test_ubl_passes_the_official_rules(name: str) -> None:
    from invoiceflow.einvoice.ubl import render_ubl

    xml = render_ubl(_peppol_addressed(load(name)))
    assert official.fatal(xml, "ubl") == []
    root = b"<CreditNote" if EINVOICES[name].document_type == "credit_note" else b"<Invoice"
    assert root in xml


def test_the_422_in_the_docs_is_what_the_rules_answer() -> None:
    """docs/e-invoicing.md shows the answer to the XRechnung example without the seller's VAT
    id and tax number: it is the rules' own answer."""
    from dataclasses import replace

    from invoiceflow.domain.en16931 import require_conformance
    from invoiceflow.errors import BusinessRuleViolation

    text = (ROOT / "docs" / "e-invoicing.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\"status\": 422.*?)```", text, re.S)
    assert block is not None
    shown = json.loads(block.group(1))
    inv = load("de-xrechnung-b2g.json")
    with pytest.raises(BusinessRuleViolation) as caught:
        require_conformance(
            replace(inv, seller=replace(inv.seller, vat_id=None, tax_id=None)), "cii"
        )
    assert caught.value.to_dict() == shown


# ------------------------------------------------------------- check digits, in full


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def iban_valid(iban: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban)) and (
        _mod97(iban[4:] + iban[:4]) == 1
    )


def leitweg_id_valid(text: str) -> bool:
    """A Leitweg-ID: coarse address (2-12 digits), optional fine address, two check digits
    (ISO 7064 MOD 97-10 over the whole, as the KoSIT specification states)."""
    m = re.fullmatch(r"(\d{2,12})(?:-([A-Z0-9]{1,30}))?-(\d{2})", text)
    return m is not None and _mod97(text.replace("-", "")) == 1


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return digits.isdigit() and total % 10 == 0


def french_vat(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def belgian_enterprise_number_valid(number: str) -> bool:
    return bool(re.fullmatch(r"[01]\d{9}", number)) and (
        97 - int(number[:8]) % 97 == int(number[8:])
    )


def belgian_structured_reference_valid(text: str) -> bool:
    """+++123/4567/89012+++: ten digits and their remainder modulo 97 (97 for 0)."""
    m = re.fullmatch(r"\+\+\+(\d{3})/(\d{4})/(\d{5})\+\+\+", text)
    if m is None:
        return False
    digits = "".join(m.groups())
    return (int(digits[:10]) % 97 or 97) == int(digits[10:])


def german_vat_valid(digits: str) -> bool:
    """ISO 7064 MOD 11,10 over the nine digits of a German VAT id."""
    product = 10
    for c in digits[:8]:
        s = (int(c) + product) % 10 or 10
        product = 2 * s % 11
    return (11 - product) % 10 == int(digits[8])


def dutch_vat_valid(vat: str) -> bool:
    m = re.fullmatch(r"NL(\d{9})B\d{2}", vat)
    if m is None:
        return False
    digits = m.group(1)
    weighted = sum(int(c) * w for c, w in zip(digits[:8], range(9, 1, -1), strict=True))
    return weighted % 11 == int(digits[8])


def swiss_uid_valid(text: str) -> bool:
    m = re.fullmatch(r"CHE-(\d{3})\.(\d{3})\.(\d{3})(?: (?:MWST|TVA|IVA))?", text)
    if m is None:
        return False
    digits = "".join(m.groups())
    weights = (5, 4, 3, 2, 7, 6, 5, 4)
    check = 11 - sum(int(c) * w for c, w in zip(digits[:8], weights, strict=True)) % 11
    return check != 10 and check % 11 == int(digits[8])


def vat_id_valid(vat: str) -> bool:
    if vat.startswith("DE"):
        return bool(re.fullmatch(r"DE\d{9}", vat)) and german_vat_valid(vat[2:])
    if vat.startswith("FR"):
        return bool(re.fullmatch(r"FR\d{11}", vat)) and vat == french_vat(vat[4:])
    if vat.startswith("BE"):
        return belgian_enterprise_number_valid(vat[2:])
    if vat.startswith("NL"):
        return dutch_vat_valid(vat)
    if vat.startswith("CHE"):
        return swiss_uid_valid(vat)
    return False


def qr_reference_valid(reference: str) -> bool:
    """A Swiss QR reference: 27 digits, the last a recursive modulo-10 check digit."""
    table = (0, 9, 4, 6, 8, 2, 7, 1, 3, 5)
    if not re.fullmatch(r"\d{27}", reference):
        return False
    carry = 0
    for c in reference[:26]:
        carry = table[(carry + int(c)) % 10]
    return (10 - carry) % 10 == int(reference[26])


def gtin_valid(gtin: str) -> bool:
    if not re.fullmatch(r"\d{8}|\d{12,14}", gtin):
        return False
    body = gtin[:-1]
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(gtin[-1])


def test_the_check_digit_functions_know_the_published_examples() -> None:
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert iban_valid("CH4431999123000889012")  # the Swiss Payment Standards' QR-IBAN
    assert leitweg_id_valid("04011000-1234512345-06")  # KoSIT's example
    assert not leitweg_id_valid("04011000-1234512345-07")
    assert qr_reference_valid("210000000003139471430009017")  # SIX's example
    assert not qr_reference_valid("210000000003139471430009018")
    assert gtin_valid("4006381333931") and not gtin_valid("4006381333932")
    assert swiss_uid_valid("CHE-116.281.710 MWST")  # an UID as the register shows them
    assert french_vat("404833048") == "FR83404833048"
    assert german_vat_valid("136695976")  # the Federal Central Tax Office's sample
    assert belgian_structured_reference_valid("+++090/9337/55493+++")
