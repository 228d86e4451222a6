"""Payment QR codes in the PDF: the EPC069-12 GiroCode beside the payment details and the
Swiss QR-bill at the bottom of the last page. Each case renders the PDF, rasterises its pages
with pdfium and decodes the QR codes with zxing-cpp, then checks the payload line by line."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader

from invoiceflow.domain.model import Invoice, LineItem, PaymentDetails, PostalAddress
from invoiceflow.domain.totals import compute_totals
from invoiceflow.render import payqr
from invoiceflow.render.pdf import render_pdf
from support.einvoice_samples import german_b2b as german_document

MM = 72 / 25.4  # points per millimetre
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

QR_IBAN = "CH44 3199 9123 0008 8901 2"
QR_REFERENCE = "21 00000 00003 13947 14300 09017"
CH_IBAN = "CH58 0079 1123 0008 8901 2"
RF_REFERENCE = "RF18 5390 0754 7034"


def german_b2b(**changes: Any) -> Invoice:
    """The German sample with English labels (these tests read them; the locale still
    formats the amounts and dates)."""
    return german_document(language="en", **changes)


def decoded(pdf: bytes) -> list[list[str]]:
    """The QR codes on each page (their text), read from the page rasterised at scale 4."""
    doc = pdfium.PdfDocument(pdf)
    try:
        out = []
        for page in doc:
            image = page.render(scale=4, grayscale=True).to_pil()
            codes = zxingcpp.read_barcodes(image, formats=QR_ONLY)
            out.append([b.text for b in codes])
        return out
    finally:
        doc.close()


def all_codes(pdf: bytes) -> list[str]:
    return [code for page in decoded(pdf) for code in page]


def pages_text(pdf: bytes) -> list[str]:
    return [
        re.sub(r"\s+", " ", p.extract_text().replace("\u00a0", " "))
        for p in PdfReader(io.BytesIO(pdf)).pages
    ]


def text_bottom(pdf: bytes, page_index: int, needle: str) -> float:
    """The lower edge (points above the page's bottom edge) of ``needle`` on a page."""
    doc = pdfium.PdfDocument(pdf)
    try:
        textpage = doc[page_index].get_textpage()
        found = textpage.search(needle).get_next()
        assert found is not None, needle
        return float(textpage.get_charbox(found[0])[1])
    finally:
        doc.close()


def payment(inv: Invoice) -> PaymentDetails:
    assert inv.payment is not None
    return inv.payment


def balance(inv: Invoice) -> str:
    return f"{compute_totals(inv).balance_due:.2f}"


def swiss(**changes: Any) -> Invoice:
    """The German sample moved to Biel: a Swiss seller with a structured address, billing a
    buyer in Rorschach, in CHF."""
    inv = german_b2b()
    seller = replace(
        inv.seller,
        postal=PostalAddress(
            country="CH", lines=("Rue du Lac 1268",), city="Biel", postal_code="2501"
        ),
    )
    buyer = replace(
        inv.bill_to,
        postal=PostalAddress(
            country="CH", lines=("Grosse Marktgasse 28",), city="Rorschach", postal_code="9400"
        ),
    )
    payment = PaymentDetails(account_holder="Robert Schneider AG", iban=CH_IBAN)
    fields: dict[str, Any] = {
        "currency": "CHF",
        "locale": "de-CH",
        "seller": seller,
        "bill_to": buyer,
        "payment": payment,
    }
    return replace(inv, **{**fields, **changes})


# --------------------------------------------------------------------------------------------
# check digits
# --------------------------------------------------------------------------------------------


def test_creditor_reference_check_digits() -> None:
    assert payqr.creditor_reference("539007547034") == "RF18539007547034"
    assert payqr.creditor_reference("inv 2026 42") == payqr.creditor_reference("INV202642")
    assert payqr.is_creditor_reference("RF18539007547034")
    assert payqr.is_creditor_reference("rf18 5390 0754 7034")  # spaces and case
    assert payqr.is_creditor_reference("RF712348231")
    assert not payqr.is_creditor_reference("RF19539007547034")  # wrong check digits
    assert not payqr.is_creditor_reference("RF18539007547035")  # a changed digit
    assert not payqr.is_creditor_reference("RF18")
    assert not payqr.is_creditor_reference("RF18" + "1" * 22)  # longer than 25
    assert not payqr.is_creditor_reference("RE-2026-0042")
    for base in ("1", "A", "INV20260042", "Z" * 21):
        assert payqr.is_creditor_reference(payqr.creditor_reference(base))
    with pytest.raises(ValueError):
        payqr.creditor_reference("RE-2026-0042")  # a hyphen


def test_qr_reference_mod10_recursive() -> None:
    assert payqr.qr_reference_check_digit("21000000000313947143000901") == "7"
    assert payqr.qr_reference_check_digit("") == "0"
    assert payqr.qr_reference("21000000000313947143000901") == "210000000003139471430009017"
    assert payqr.qr_reference("12345") == "000000000000000000000123457"
    assert payqr.is_qr_reference("210000000003139471430009017")
    assert payqr.is_qr_reference(QR_REFERENCE)
    assert not payqr.is_qr_reference("210000000003139471430009018")  # check digit
    assert not payqr.is_qr_reference("210000000003139471430009107")  # swapped digits
    assert not payqr.is_qr_reference("21000000000313947143000901")  # 26 digits
    assert not payqr.is_qr_reference("0" * 27)
    assert not payqr.is_qr_reference("RF18539007547034")
    # every single-digit error is caught
    good = "210000000003139471430009017"
    for i in range(27):
        for d in "0123456789":
            if d != good[i]:
                assert not payqr.is_qr_reference(good[:i] + d + good[i + 1 :])


def test_iban_checks() -> None:
    assert payqr.iban_is_valid("DE89 3704 0044 0532 0130 00")
    assert payqr.iban_is_valid("de89370400440532013000")
    assert not payqr.iban_is_valid("DE88370400440532013000")
    assert not payqr.iban_is_valid("<b>DE89370400440532013000</b>")
    assert payqr.is_qr_iban(QR_IBAN)
    assert not payqr.is_qr_iban(CH_IBAN)
    assert not payqr.is_qr_iban("DE89370400440532013000")


@pytest.mark.parametrize(
    "iban",
    [
        pytest.param("CH91ABCDE123456789012", id="letters-for-the-institution-id"),
        pytest.param("LI060880A000000000000", id="a-letter-in-the-institution-id"),
        pytest.param("CH2130000000000000000000001", id="too-long"),
    ],
)
def test_a_swiss_iban_of_the_wrong_form_gets_no_qr_bill_and_the_pdf_renders(iban: str) -> None:
    """A CH or LI IBAN whose check digits are right but whose form is not the Swiss one (21
    characters, 5 digits of institution id): neither a QR-IBAN nor an account for a QR-bill,
    and the PDF still renders (it stopped with a ValueError)."""
    assert payqr.iban_is_valid(iban)
    assert not payqr.is_qr_iban(iban)
    inv = swiss(payment=PaymentDetails(iban=iban))
    assert payqr.swiss_bill(inv, compute_totals(inv)) is None
    assert all_codes(render_pdf(inv)) == []
    # the German invoice in EUR with it renders too (a GiroCode as for any valid IBAN)
    giro = replace(german_b2b(), payment=PaymentDetails(iban=iban, bic="UBSWCHZH80A"))
    payload = payqr.girocode_payload(giro, compute_totals(giro))
    assert all_codes(render_pdf(giro)) == [payload]


# --------------------------------------------------------------------------------------------
# EPC069-12 GiroCode
# --------------------------------------------------------------------------------------------


def test_girocode_in_the_pdf_decodes_field_by_field() -> None:
    inv = german_b2b()
    pdf = render_pdf(inv)
    pages = decoded(pdf)
    assert len(pages) == 1 and len(pages[0]) == 1
    code = pages[0][0]
    assert code.split("\n") == [
        "BCD",
        "002",
        "1",  # UTF-8
        "SCT",
        "COBADEFFXXX",
        "Nordlicht Verlag GmbH",
        "DE89370400440532013000",
        f"EUR{balance(inv)}",
        "",  # purpose
        "",  # no structured creditor reference
        "RE-2026-0042",  # payment.reference as unstructured remittance
    ]
    assert balance(inv) == "2027.06"
    assert not code.endswith("\n")
    assert code == payqr.girocode_payload(inv, compute_totals(inv))
    text = pages_text(pdf)[0]
    assert "Pay with a banking app" in text
    assert "PAYMENT DETAILS" in text


def test_girocode_in_the_full_width_payment_panel() -> None:
    """Payment details too long to stand beside the totals take the full width, the GiroCode
    in a column on their right."""
    inv = german_b2b()
    bank = "Hamburger Sparkasse, Filiale Hafencity, Am Sandtorkai 1, 20457 Hamburg"
    inv = replace(inv, payment=replace(payment(inv), bank_name=bank))
    pdf = render_pdf(inv)
    [code] = all_codes(pdf)
    assert code == payqr.girocode_payload(inv, compute_totals(inv))
    assert code.split("\n")[7] == f"EUR{balance(inv)}"
    assert "Pay with a banking app" in pages_text(pdf)[0]


def test_girocode_structured_reference_and_fallbacks() -> None:
    inv = german_b2b()
    rf = replace(payment(inv), reference="rf18 5390 0754 7034", bic=None, account_holder=None)
    [code] = all_codes(render_pdf(replace(inv, payment=rf)))
    assert code.split("\n") == [
        "BCD",
        "002",
        "1",
        "SCT",
        "",  # no BIC: optional in version 002
        "Nordlicht Verlag GmbH",  # the seller when no account holder is named
        "DE89370400440532013000",
        f"EUR{balance(inv)}",
        "",
        "RF18539007547034",  # structured, compact; nothing after it
    ]
    # an invalid RF reference is plain text; no reference: the invoice number
    bad = replace(payment(inv), reference="RF00 1234")
    payload = payqr.girocode_payload(replace(inv, payment=bad), compute_totals(inv))
    assert payload is not None and payload.split("\n")[9:] == ["", "RF00 1234"]
    none = replace(payment(inv), reference=None)
    [code] = all_codes(render_pdf(replace(inv, payment=none)))
    assert code.split("\n")[9:] == ["", "RE-2026-0042"]


def test_girocode_utf8_and_the_331_byte_limit() -> None:
    inv = german_b2b()
    holder = "Ölmühle Süd & Co. KG - Straße " + "Ж" * 60  # cut at 70 characters
    text = "Rechnung " + "Привет мир " * 20  # 2-byte letters, cut to fit 331 bytes
    pay = replace(payment(inv), account_holder=holder, reference=text)
    payload = payqr.girocode_payload(replace(inv, payment=pay), compute_totals(inv))
    assert payload is not None
    assert len(payload.encode("utf-8")) <= payqr.EPC_MAX_BYTES
    lines = payload.split("\n")
    assert lines[5] == holder[:70]
    assert lines[10].startswith("Rechnung Привет мир") and text.startswith(lines[10])
    [code] = all_codes(render_pdf(replace(inv, payment=pay)))
    assert code == payload  # decoded as UTF-8, umlauts and Cyrillic intact


@pytest.mark.parametrize(
    ("iban", "bic", "coded"),
    [
        pytest.param("TR330006100519786457841326", "TGBATRIS", False, id="turkey-not-sepa"),
        pytest.param("BR1800360305000010009795493C1", None, False, id="brazil-not-sepa"),
        pytest.param("GB33BUKB20201555555555", None, False, id="uk-without-bic"),
        pytest.param("GB33BUKB20201555555555", "BUKBGB22", True, id="uk-with-bic"),
        pytest.param("SM86U0322509800000000270100", "", False, id="san-marino-without-bic"),
        pytest.param("FR1420041010050500013M02606", None, True, id="france-eea-no-bic"),
        pytest.param("NO9386011117947", None, True, id="norway-eea-no-bic"),
        # the schemes' newest countries (2024-2025), outside the EEA: with the BIC
        pytest.param("AL47212110090000000235698741", "SGSBALTX", True, id="albania-with-bic"),
        pytest.param("ME25505000012345678951", "CKBCMEPG", True, id="montenegro-with-bic"),
        pytest.param("MD24AG000225100013104168", "AGRNMD2X", True, id="moldova-with-bic"),
        pytest.param("MK07250120000058984", "NBRMMK2X", True, id="north-macedonia-with-bic"),
        pytest.param("RS35260005601001611379", "AIKBRS22", True, id="serbia-with-bic"),
        pytest.param("RS35260005601001611379", None, False, id="serbia-without-bic"),
    ],
)
def test_girocode_only_for_a_sepa_iban_and_outside_the_eea_with_a_bic(
    iban: str, bic: str | None, coded: bool
) -> None:
    """A GiroCode initiates a SEPA credit transfer: not to an account outside SEPA, and to
    one in a SEPA country outside the EEA only with the BIC (optional in version 002 only
    within the EEA)."""
    base = german_b2b()
    inv = replace(base, payment=PaymentDetails(iban=iban, bic=bic))
    payload = payqr.girocode_payload(inv, compute_totals(inv))
    assert (payload is not None) is coded
    if payload is not None:
        assert payload.split("\n")[4:7] == [bic or "", "Nordlicht Verlag GmbH", iban]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"payment": PaymentDetails(bank_name="Bank", account_number="1")}, id="no-iban"
        ),
        pytest.param({"payment": None}, id="no-payment"),
        pytest.param({"amount_paid": D("2127.06")}, id="balance-0"),
        pytest.param({"amount_paid": D("3000")}, id="overpaid"),
        pytest.param({"currency": "USD", "locale": "en-US"}, id="usd"),
        pytest.param({"currency": "CHF"}, id="chf-german-iban"),
        pytest.param({"document_type": "credit_note"}, id="credit-note"),
        pytest.param(
            {"payment": PaymentDetails(iban="DE88 3704 0044 0532 0130 00")}, id="bad-iban"
        ),
    ],
)
def test_no_payment_code(changes: dict[str, Any]) -> None:
    inv = replace(german_b2b(), **changes)
    assert payqr.girocode_payload(inv, compute_totals(inv)) is None
    assert payqr.swiss_bill(inv, compute_totals(inv)) is None
    pdf = render_pdf(inv)
    assert all_codes(pdf) == []
    text = " ".join(pages_text(pdf))
    assert "Pay with a banking app" not in text and "Payment part" not in text


@pytest.mark.parametrize("code", ["49", "59"])
def test_no_payment_code_for_a_direct_debit(code: str) -> None:
    """A direct debit's IBAN is the buyer's account to be debited (BT-91): no code asks the
    buyer to pay into it (neither a GiroCode nor a QR-bill); the panel says it is debited."""
    base = german_b2b()
    inv = replace(base, payment=replace(payment(base), means_code=code))
    totals = compute_totals(inv)
    assert payqr.girocode_payload(inv, totals) is None
    assert not payqr.is_credit_transfer(inv)
    pdf = render_pdf(inv)
    assert all_codes(pdf) == []
    text = " ".join(pages_text(pdf))
    assert "Pay with a banking app" not in text
    assert "IBAN" not in text.split("PAYMENT DETAILS", 1)[1]
    means = "SEPA direct debit" if code == "59" else "Direct debit"
    assert f"Payment {means}" in text
    assert "Debited account DE89 3704 0044 0532 0130 00" in text
    due = "2.027,06 €"
    assert f"Collection The balance due of {due} will be collected from this account" in text
    # nor a Swiss QR-bill
    ch = swiss(payment=PaymentDetails(iban=CH_IBAN, means_code=code))
    assert payqr.swiss_bill(ch, compute_totals(ch)) is None
    pdf = render_pdf(ch)
    assert all_codes(pdf) == []
    text = " ".join(pages_text(pdf))
    assert "Payment part" not in text and "Debited account" in text


def test_a_direct_debit_credit_note_collects_nothing() -> None:
    base = german_b2b()
    inv = replace(
        base,
        document_type="credit_note",
        payment=replace(payment(base), means_code="59"),
    )
    text = " ".join(pages_text(render_pdf(inv)))
    assert "Direct debit account DE89" in text
    assert "Debited account" not in text and "collected" not in text


@pytest.mark.parametrize(
    ("code", "coded"),
    [
        pytest.param(None, True, id="default-58"),
        pytest.param("58", True, id="sepa-credit-transfer"),
        pytest.param("30", True, id="credit-transfer"),
        pytest.param("42", True, id="payment-to-bank-account"),
        pytest.param("31", False, id="debit-transfer"),
        pytest.param("48", False, id="bank-card"),
        pytest.param("10", False, id="cash"),
        pytest.param("1", False, id="not-defined"),
    ],
)
def test_payment_codes_only_for_a_credit_transfer(code: str | None, coded: bool) -> None:
    base = german_b2b()
    inv = replace(base, payment=replace(payment(base), means_code=code))
    assert payqr.is_credit_transfer(inv) is coded
    assert (payqr.girocode_payload(inv, compute_totals(inv)) is not None) is coded
    ch = swiss(payment=PaymentDetails(iban=CH_IBAN, means_code=code))
    assert (payqr.swiss_bill(ch, compute_totals(ch)) is not None) is coded
    # not a direct debit: the IBAN is printed as before
    assert "IBAN DE89" in " ".join(pages_text(render_pdf(inv)))


def test_the_symbol_is_vector_drawn_and_large_enough() -> None:
    pdf = render_pdf(german_b2b())
    page: Any = PdfReader(io.BytesIO(pdf)).pages[0]
    xobjects = page["/Resources"].get("/XObject") or {}
    assert not [x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image"]
    code = payqr.GiroCode(
        payqr.girocode_payload(german_b2b(), compute_totals(german_b2b())) or "", "Helvetica"
    )
    assert code.code >= 30 * MM - 1e-6 and code.module >= 0.5 * MM - 1e-9
    assert code.quiet == 4 * code.module and code.symbol == len(code.matrix) * code.module


# --------------------------------------------------------------------------------------------
# Swiss QR-bill
# --------------------------------------------------------------------------------------------


def swiss_lines(
    inv: Invoice, account: str, ref_type: str, reference: str, message: str
) -> list[str]:
    return [
        "SPC",
        "0200",
        "1",
        account,
        "S",
        "Robert Schneider AG",
        "Rue du Lac 1268",
        "",  # building number
        "2501",
        "Biel",
        "CH",
        *[""] * 7,  # ultimate creditor
        balance(inv),
        inv.currency,
        "S",
        "Müller & Söhne OHG",
        "Grosse Marktgasse 28",
        "",
        "9400",
        "Rorschach",
        "CH",
        ref_type,
        reference,
        message,
        "EPD",
    ]


def test_qr_bill_with_qr_iban_and_qr_reference() -> None:
    inv = swiss(
        payment=PaymentDetails(
            account_holder="Robert Schneider AG", iban=QR_IBAN, reference=QR_REFERENCE
        )
    )
    pdf = render_pdf(inv)
    codes = all_codes(pdf)
    assert len(codes) == 1  # no GiroCode beside it
    assert codes[0].split("\n") == swiss_lines(
        inv, "CH4431999123000889012", "QRR", "210000000003139471430009017", "RE-2026-0042"
    )
    assert balance(inv) == "2027.06"
    last = pages_text(pdf)[-1]
    for label in (
        "Receipt",
        "Payment part",
        "Account / Payable to",
        "Reference",
        "Additional information",
        "Payable by",
        "Currency",
        "Amount",
        "Acceptance point",
        "CH44 3199 9123 0008 8901 2",
        "21 00000 00003 13947 14300 09017",
        "2 027.06",
    ):
        assert label in last, label


def test_qr_bill_postal_codes_leave_out_their_own_country_prefix() -> None:
    """Typed ``CH-2501`` (as Swiss letterheads often write it) or Latvia's official
    ``LV-1010``: the code goes into the payload without it, and the payer's foreign address
    is printed ``LV-1010`` once; another text before a dash is part of the code."""
    inv = swiss()
    assert inv.seller.postal is not None
    seller = replace(inv.seller, postal=replace(inv.seller.postal, postal_code="CH-2501"))
    buyer = replace(
        inv.bill_to,
        postal=PostalAddress(
            country="LV", lines=("Brivibas iela 1",), city="Riga", postal_code="lv - 1010"
        ),
    )
    pdf = render_pdf(replace(inv, seller=seller, bill_to=buyer))
    lines = all_codes(pdf)[0].split("\n")
    assert lines[5:11] == ["Robert Schneider AG", "Rue du Lac 1268", "", "2501", "Biel", "CH"]
    assert lines[20:26] == ["S", "Müller & Söhne OHG", "Brivibas iela 1", "", "1010", "Riga"]
    assert lines[26] == "LV"
    last = pages_text(pdf)[-1]
    assert "LV-1010 Riga" in last and "LV-LV" not in last and "CH-2501" not in last
    assert payqr._without_country_prefix("D-79539", "DE") == "D-79539"
    assert payqr._without_country_prefix("CH-", "CH") == "CH-"


def test_qr_bill_with_iban_and_creditor_reference() -> None:
    inv = swiss(
        payment=PaymentDetails(
            account_holder="Robert Schneider AG", iban=CH_IBAN, reference=RF_REFERENCE
        )
    )
    pdf = render_pdf(inv)
    [code] = all_codes(pdf)
    assert code.split("\n") == swiss_lines(
        inv, "CH5800791123000889012", "SCOR", "RF18539007547034", "RE-2026-0042"
    )
    assert "RF18 5390 0754 7034" in pages_text(pdf)[-1]


def test_qr_bill_with_iban_and_no_reference() -> None:
    inv = swiss(
        payment=PaymentDetails(
            account_holder="Robert Schneider AG", iban=CH_IBAN, reference="Order 4711\nthanks"
        )
    )
    [code] = all_codes(render_pdf(inv))
    assert code.split("\n") == swiss_lines(
        inv, "CH5800791123000889012", "NON", "", "Order 4711 thanks"
    )


def test_qr_bill_without_debtor_address_and_in_eur() -> None:
    inv = swiss()
    inv = replace(inv, bill_to=replace(inv.bill_to, postal=None), currency="EUR")
    pdf = render_pdf(inv)
    [code] = all_codes(pdf)  # a Swiss IBAN in EUR: the QR-bill, not the GiroCode
    lines = code.split("\n")
    assert lines[18:20] == [balance(inv), "EUR"]
    assert lines[20:27] == [""] * 7  # no debtor
    assert lines[27:] == ["NON", "", "RE-2026-0042", "EPD"]
    assert "Payable by (name/address)" in pages_text(pdf)[-1]


def test_no_qr_bill_without_what_it_needs() -> None:
    base = swiss()
    totals = compute_totals(base)
    assert payqr.swiss_bill(base, totals) is not None
    # no structured seller address (v2.3 takes only structured ones)
    assert payqr.swiss_bill(replace(base, seller=replace(base.seller, postal=None)), totals) is None
    assert base.seller.postal is not None
    no_town = replace(base.seller, postal=replace(base.seller.postal, city=None))
    assert payqr.swiss_bill(replace(base, seller=no_town), totals) is None
    # a QR-IBAN needs a valid QR reference
    qr_iban = PaymentDetails(iban=QR_IBAN, reference=RF_REFERENCE)
    assert payqr.swiss_bill(replace(base, payment=qr_iban), totals) is None
    bad_ref = PaymentDetails(iban=QR_IBAN, reference="210000000003139471430009018")
    assert payqr.swiss_bill(replace(base, payment=bad_ref), totals) is None
    # a QR reference without a QR-IBAN is only a message
    plain = payqr.swiss_bill(
        replace(base, payment=PaymentDetails(iban=CH_IBAN, reference=QR_REFERENCE)), totals
    )
    assert plain is not None and plain.reference_type == "NON"
    assert plain.message == QR_REFERENCE
    # neither in USD nor with nothing to pay nor for a credit note
    changes: dict[str, Any]
    for changes in (
        {"currency": "USD"},
        {"amount_paid": D("2127.06")},
        {"document_type": "credit_note"},
    ):
        inv = replace(base, **changes)
        assert payqr.swiss_bill(inv, compute_totals(inv)) is None
        assert all_codes(render_pdf(inv)) == []


def test_qr_bill_text_is_reduced_to_the_permitted_characters() -> None:
    inv = swiss()
    inv = replace(
        inv,
        bill_to=replace(inv.bill_to, company="Łódź Ölmühle Ωmega 東京"),
        payment=PaymentDetails(iban=CH_IBAN, reference="Ș ț € ½ ok"),
    )
    bill = payqr.swiss_bill(inv, compute_totals(inv))
    assert bill is not None and bill.debtor is not None
    assert bill.debtor.name == "Łódź Ölmühle ?mega ??"
    assert bill.message == "Ș ț € ½ ok"
    [code] = all_codes(render_pdf(inv))
    assert code == bill.payload()


def test_qr_bill_text_in_decomposed_form_keeps_its_letters() -> None:
    """Text typed in decomposed form (NFD: a letter and a combining accent, as macOS often
    sends it) is the permitted letter, not the bare letter and a "?"; a ligature or a
    compatibility character outside the set keeps all of its letters."""
    inv = swiss()
    seller = inv.seller
    assert seller.postal is not None
    seller = replace(
        seller, postal=replace(seller.postal, city="Zu\u0308rich", lines=("Cafe\u0301 ﬁne 1",))
    )
    inv = replace(
        inv,
        seller=seller,
        bill_to=replace(inv.bill_to, company="Mu\u0308ller q\u0301 AG"),
        payment=PaymentDetails(iban=CH_IBAN, reference="Re\u0301f ①"),
    )
    bill = payqr.swiss_bill(inv, compute_totals(inv))
    assert bill is not None and bill.debtor is not None
    assert bill.creditor.town == "Zürich"
    assert bill.creditor.street == "Café fine 1"
    assert bill.debtor.name == "Müller q AG"  # a q has no acute: it loses the accent
    assert bill.message == "Réf 1"


def test_qr_bill_with_the_longest_texts_still_fits_version_25() -> None:
    inv = swiss()
    o = "Ö"  # two bytes in UTF-8
    seller = replace(
        inv.seller,
        company=o * 80,
        postal=PostalAddress(country="CH", lines=(o * 80,), city=o * 40, postal_code=o * 20),
    )
    buyer = replace(
        inv.bill_to,
        company=o * 80,
        postal=PostalAddress(country="CH", lines=(o * 80,), city=o * 40, postal_code=o * 20),
    )
    pay = PaymentDetails(iban=CH_IBAN, reference=o * 200)
    inv = replace(inv, seller=seller, bill_to=buyer, payment=pay)
    bill = payqr.swiss_bill(inv, compute_totals(inv))
    assert bill is not None
    assert bill.creditor.name == o * 70 and bill.creditor.town == o * 35
    assert bill.debtor is not None and bill.debtor.postal_code == o * 16
    assert 0 < len(bill.message) < 140  # shortened to fit
    [code] = all_codes(render_pdf(inv))
    assert code == bill.payload()


def test_qr_bill_fonts_are_embedded_liberation_sans_and_it_is_vector_drawn() -> None:
    pdf = render_pdf(swiss())
    page: Any = PdfReader(io.BytesIO(pdf)).pages[-1]
    xobjects = page["/Resources"].get("/XObject") or {}
    assert not [x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image"]
    fonts = {
        str(f.get_object()["/BaseFont"]).split("+")[-1]: f.get_object()
        for f in page["/Resources"]["/Font"].values()
    }
    for name in ("LiberationSans", "LiberationSans-Bold"):
        assert name in fonts
        descendant = fonts[name]
        descriptor = descendant.get("/FontDescriptor")
        assert descriptor is not None and "/FontFile2" in descriptor.get_object()


def test_qr_bill_on_the_last_page_with_the_footer_above_it() -> None:
    inv = swiss()
    pdf = render_pdf(inv)
    texts = pages_text(pdf)
    n = len(texts)
    assert "Payment part" in texts[-1] and all("Payment part" not in t for t in texts[:-1])
    # the footer moves up above the bill's top edge (105 mm)
    assert text_bottom(pdf, n - 1, f"Page {n} of {n}") > 105 * MM
    if n > 1:
        assert text_bottom(pdf, 0, f"Page 1 of {n}") < 20 * MM


def test_long_invoice_puts_the_qr_bill_on_a_new_page() -> None:
    """With enough lines the last page has no room for the 105 mm bill: it gets a page of its
    own, after the totals."""
    base = swiss()
    item = LineItem("Beratung", D(1), D("100.00"), tax_rate=D("8.1"), unit_code="HUR")
    for count in range(30, 90, 3):
        inv = replace(base, items=(item,) * count)
        pdf = render_pdf(inv)
        texts = pages_text(pdf)
        assert "Payment part" in texts[-1]
        if len(texts) >= 2 and "Balance due" not in texts[-1] and "Balance due" in texts[-2]:
            break
    else:
        pytest.fail("no line count between 30 and 90 put the bill on a page of its own")
    n = len(texts)
    assert "Beratung" not in texts[-1]
    assert f"Page {n} of {n}" in texts[-1]
    assert text_bottom(pdf, n - 1, f"Page {n} of {n}") > 105 * MM
    pages = decoded(pdf)
    assert pages[:-1] == [[]] * (n - 1)
    [code] = pages[-1]
    lines = code.split("\n")
    assert lines[18:20] == [balance(inv), "CHF"]
    assert lines[-4:] == ["NON", "", "RE-2026-0042", "EPD"]


def test_qr_bill_on_letter_paper_and_reproducible() -> None:
    """On US Letter (wider than A4) the bill stands at the right edge; the same document gives
    the same bytes."""
    inv = swiss(locale="en-US")
    pdf = render_pdf(inv)
    assert render_pdf(inv) == pdf
    page: Any = PdfReader(io.BytesIO(pdf)).pages[-1]
    assert round(float(page.mediabox.width)) == 612  # Letter
    [code] = all_codes(pdf)
    assert code.split("\n")[18:20] == [balance(inv), "CHF"]


@pytest.mark.parametrize(
    ("language", "headings"),
    [
        ("de", ("Empfangsschein", "Zahlteil", "Konto / Zahlbar an", "Annahmestelle")),
        ("fr", ("Récépissé", "Section paiement", "Compte / Payable à", "Point de dépôt")),
        ("it", ("Ricevuta", "Sezione pagamento", "Conto / Pagabile a", "Punto di accettazione")),
        ("ja", ("Receipt", "Payment part", "Account / Payable to", "Acceptance point")),
    ],
)
def test_the_qr_bill_headings_are_in_the_documents_language_where_the_guideline_has_it(
    language: str, headings: tuple[str, ...]
) -> None:
    """The guideline allows German, French, Italian and English headings: a document in one
    of them gets its own, any other language the English ones."""
    last = pages_text(render_pdf(swiss(language=language)))[-1]
    for heading in headings:
        assert heading in last, (language, heading)
    if language != "ja":
        assert "Payment part" not in last
