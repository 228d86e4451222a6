"""Payment QR codes for the PDF: the payloads, their check digits and the drawing.

Both codes ask the payer to transfer the amount to the account given, so they are printed only
for a **credit transfer** (:func:`is_credit_transfer`): the payment means code
(:func:`invoiceflow.domain.einvoice.payment_means_code`, BT-81, UNTDID 4461) is 30 (credit
transfer), 58 (SEPA credit transfer) or 42 (payment to bank account), which is also what the
code defaults to when none is given and an IBAN is (58 in EUR, 30 otherwise). Never for a
direct debit (49, 59): its IBAN is the buyer's account to be debited (BT-91), and a code
asking the buyer to pay into it would be wrong. Not for 31 either: UNTDID 4461 calls it "debit
transfer" ("payment by debit movement of funds from one account to another"), which does not
say the payer initiates it, and printing no code there only costs a convenience, while a wrong
one asks for a payment. Nor for any other means (cash, cheque, card, 1 "not defined"...).

EPC069-12 version 002 ("GiroCode", SEPA credit transfer): :func:`girocode_payload`
    When the payment means is a credit transfer (see above), the invoice is in EUR, has a valid
    IBAN (mod 97) of a SEPA country (:data:`SEPA_EEA_COUNTRIES`; outside the EEA,
    :data:`SEPA_NON_EEA_COUNTRIES`, only with a BIC) that is not a Swiss QR-IBAN, is not a
    credit note, no Swiss QR-bill is printed instead, and the balance due is 0.01 to
    999999999.99. The lines are: service tag ``BCD``, version ``002``, character set ``1``
    (UTF-8), identification ``SCT``, the BIC (left empty when it is not 8 or 11 characters:
    optional in version 002 within the EEA), the beneficiary (the account holder, else the
    seller's company or name; at most 70 characters), the IBAN, the amount (``EUR12.34``), an
    empty purpose, then the remittance: a valid ISO 11649 creditor reference (``RF..``) in the
    structured field, otherwise ``payment.reference`` (else the invoice number) as
    unstructured text (at most 140 characters). Lines are joined with LF; empty
    trailing elements are left out (no trailing LF). At most 331 bytes (QR version 13 at level
    M): a longer payload (long non-Latin texts) has its remittance text, then its name,
    shortened. Error correction M.
    Drawn by :class:`GiroCode`: 30 mm wide with its quiet zone of 4 modules (wider when
    the modules would be under 0.5 mm), with a caption.

Swiss QR-bill (Swiss Implementation Guidelines QR-bill v2.3): :func:`swiss_bill`
    When the payment means is a credit transfer (see above), the invoice is in CHF, or in EUR
    with a Swiss or Liechtenstein IBAN, the IBAN is a valid CH/LI IBAN of the Swiss form (21
    characters, a 5-digit institution id: :func:`is_swiss_iban`), the balance due is 0.01
    to 999999999.99, it is not a credit note, and **the seller has a structured postal address
    with postal code and town** (``seller.postal``; without it no QR-bill is printed: version
    2.3 accepts only structured addresses, type ``S``). A QR-IBAN (institution id 30000-31999)
    requires a valid 27-digit QR reference (modulo 10 recursive) in ``payment.reference`` (type
    ``QRR``; without one no QR-bill is printed, as the bank would refuse it); with an ordinary
    IBAN a valid ``RF`` creditor reference is ``SCOR``, anything else ``NON`` with the reference
    as the unstructured message. The debtor is printed and encoded (type ``S``) when
    ``bill_to.postal`` has a postal code and town, else the payer writes it into the blank
    "Payable by (name/address)" box. The street is the address lines joined with ", " (the
    building number stays empty). Texts are reduced to the character set the guideline permits
    (Latin, Latin-1, Latin Extended-A, Ș ș Ț ț, €), composed first (a letter typed with a
    combining accent is the permitted letter): other letters lose their accents where that
    helps, the rest become ``?``. The payload ends with the trailer ``EPD``; lines are joined
    with LF. It fits QR version 25 at level M: when long names in accented letters would not,
    the message is shortened (and without one that fits, no QR-bill is printed).

    Drawn by :class:`SwissQRBill`: the receipt (62 mm) and the payment part (148 mm), 105 mm
    high, at the bottom of the page (the flowable moves to a new page when the rest of the page
    is too short), with dashed separation lines and scissors above and between them; the QR
    code 46 x 46 mm with the 7 mm Swiss cross in its middle. Headings in the document's language
    when the guideline has it (de, fr, it), else English (:data:`BILL_HEADINGS`). Font: Liberation
    Sans (regular and bold, embedded from ``render/fonts/``, SIL OFL), one of the fonts the
    guideline allows (Helvetica, Arial, Frutiger, Liberation Sans); headings 6 pt (receipt) and
    8 pt (payment part) bold, values 8 and 10 pt, titles 11 pt bold; values shrink by up to two
    points when long names and messages would not fit their section.

Both QR codes are built with segno (byte mode, no ECI; its mask chosen by :mod:`.qrmask`,
the same choice made faster) and drawn as vector rectangles.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable

from invoiceflow.domain.einvoice import normalized_iban, payment_means_code
from invoiceflow.domain.model import Invoice, Party, PostalAddress
from invoiceflow.domain.totals import Totals
from invoiceflow.records import record
from invoiceflow.render.content import party_title
from invoiceflow.render.scripts import document_language

if TYPE_CHECKING:
    import segno

__all__ = [
    "BILL_HEIGHT",
    "BILL_WIDTH",
    "GiroCode",
    "SwissAddress",
    "SwissBill",
    "SwissQRBill",
    "creditor_reference",
    "girocode_payload",
    "iban_is_valid",
    "is_credit_transfer",
    "is_creditor_reference",
    "is_qr_iban",
    "is_qr_reference",
    "is_swiss_iban",
    "qr_matrix",
    "qr_reference",
    "qr_reference_check_digit",
    "swiss_bill",
]

FONTS_DIR = Path(__file__).with_name("fonts")
BILL_FONT = "LiberationSans"
BILL_FONT_BOLD = "LiberationSans-Bold"
#: the scissors symbol is not in Liberation Sans; DejaVu Sans (render/fonts/) has it
SYMBOL_FONT = "DejaVuSans"

MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")
#: the payment means codes (UNTDID 4461) whose IBAN is the payee's account to transfer to:
#: 30 credit transfer, 42 payment to bank account, 58 SEPA credit transfer (see the module
#: docstring for 31 and the direct debits 49 and 59)
CREDIT_TRANSFER_CODES = frozenset({"30", "42", "58"})
#: the IBAN countries of the SEPA schemes (the EPC's list of SEPA scheme countries, EPC409-09)
#: in the EEA, where EPC069-12 version 002 lets the BIC out (French overseas departments,
#: the Azores, Madeira, the Canaries and Åland have their country's IBAN)
SEPA_EEA_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK"
    " GF GP MQ RE YT MF".split()
)
#: ... and outside it, where a SEPA credit transfer needs the BIC (Jersey, Guernsey and the
#: Isle of Man have GB IBANs; Albania and Montenegro joined the schemes' scope in November
#: 2024, Moldova and North Macedonia in March 2025, Serbia in May 2025: 41 countries)
SEPA_NON_EEA_COUNTRIES = frozenset("AD AL BL CH GB GI MC MD ME MK PM RS SM VA".split())
EPC_MAX_BYTES = 331
EPC_MAX_VERSION = 13
SWISS_MAX_VERSION = 25

# --------------------------------------------------------------------------------------------
# check digits: IBAN and ISO 11649 (mod 97), the Swiss QR reference (mod 10 recursive)
# --------------------------------------------------------------------------------------------


def _compact(text: str) -> str:
    return "".join(text.split()).upper()


def _mod97(alnum: str) -> int:
    """The ISO 7064 MOD 97-10 remainder of an alphanumeric string (A=10 .. Z=35)."""
    return int("".join(str(int(c, 36)) for c in alnum)) % 97


_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def iban_is_valid(iban: str) -> bool:
    """An IBAN of a plausible form whose check digits are right (spaces allowed)."""
    s = normalized_iban(iban)
    return _IBAN.fullmatch(s) is not None and _mod97(s[4:] + s[:4]) == 1


#: the form of a Swiss or Liechtenstein IBAN: 21 characters, the institution id (IID) 5 digits
_SWISS_IBAN = re.compile(r"(?:CH|LI)[0-9]{2}[0-9]{5}[A-Z0-9]{12}")


def is_swiss_iban(iban: str) -> bool:
    """A valid IBAN of the Swiss form (CH or LI, 21 characters, a 5-digit institution id)."""
    s = normalized_iban(iban)
    return iban_is_valid(s) and _SWISS_IBAN.fullmatch(s) is not None


def is_qr_iban(iban: str) -> bool:
    """A Swiss or Liechtenstein QR-IBAN: its institution id (IID) is 30000 to 31999."""
    s = normalized_iban(iban)
    return is_swiss_iban(s) and 30000 <= int(s[4:9]) <= 31999


_RF = re.compile(r"RF[0-9]{2}[A-Z0-9]{1,21}")


def is_creditor_reference(ref: str) -> bool:
    """A valid ISO 11649 structured creditor reference (``RF`` + 2 check digits + up to 21
    letters or digits; spaces allowed, any case)."""
    s = _compact(ref)
    return _RF.fullmatch(s) is not None and _mod97(s[4:] + s[:4]) == 1


def creditor_reference(base: str) -> str:
    """The ISO 11649 creditor reference for ``base`` (1 to 21 letters or digits)."""
    s = _compact(base)
    if not re.fullmatch(r"[A-Z0-9]{1,21}", s):
        raise ValueError("a creditor reference holds 1 to 21 letters or digits")
    return f"RF{98 - _mod97(s + 'RF00'):02d}{s}"


_MOD10_TABLE = (0, 9, 4, 6, 8, 2, 7, 1, 3, 5)


def qr_reference_check_digit(digits: str) -> str:
    """The modulo 10 recursive check digit of a string of digits (the Swiss QR reference)."""
    if not re.fullmatch(r"[0-9]*", digits):
        raise ValueError("only digits have a modulo 10 check digit")
    carry = 0
    for d in digits:
        carry = _MOD10_TABLE[(carry + int(d)) % 10]
    return str((10 - carry) % 10)


def qr_reference(base: str) -> str:
    """The 27-digit QR reference for ``base`` (up to 26 digits, zero-padded on the left)."""
    s = _compact(base)
    if not re.fullmatch(r"[0-9]{1,26}", s):
        raise ValueError("a QR reference holds up to 26 digits before its check digit")
    s = s.rjust(26, "0")
    return s + qr_reference_check_digit(s)


def is_qr_reference(ref: str) -> bool:
    """A valid Swiss QR reference: 27 digits (spaces allowed), not all zero, whose last digit
    is the modulo 10 recursive check digit of the first 26."""
    s = _compact(ref)
    return (
        re.fullmatch(r"[0-9]{27}", s) is not None
        and s.strip("0") != ""
        and qr_reference_check_digit(s[:26]) == s[26]
    )


# --------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------


def _one_line(text: str | None) -> str:
    """Text as one line for a payload: controls, format characters and lone surrogates
    become spaces, whitespace runs one space."""
    if not text:
        return ""
    s = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(s.split())


def _swiss_char_ok(c: str) -> bool:
    o = ord(c)
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0x17F or 0x218 <= o <= 0x21B or o == 0x20AC


def _swiss_text(text: str | None, limit: int) -> str:
    """Text in the character set of the QR-bill (v2.3), at most ``limit`` characters: composed
    (NFC) first, so that a letter typed with a combining accent is the permitted letter; a
    character outside the set is its compatibility decomposition without accents when that is
    in the set (``ǖ`` u, ``ﬁ`` fi), a combining accent that composes with nothing is left out,
    anything else is ``?``."""
    out = []
    for c in unicodedata.normalize("NFC", _one_line(text)):
        if not _swiss_char_ok(c):
            if unicodedata.combining(c):
                continue
            decomposed = unicodedata.normalize("NFKD", c)
            base = "".join(d for d in decomposed if not unicodedata.combining(d))
            c = base if base and all(_swiss_char_ok(d) for d in base) else "?"
        out.append(c)
    return "".join(out)[:limit].strip()


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that is at most ``max_bytes`` in UTF-8."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", "ignore")


def _amount_text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):f}"


def is_credit_transfer(invoice: Invoice) -> bool:
    """Whether the invoice is paid by a credit transfer into the account it names, the only
    case a payment QR code is printed for (:data:`CREDIT_TRANSFER_CODES`)."""
    return payment_means_code(invoice) in CREDIT_TRANSFER_CODES


# --------------------------------------------------------------------------------------------
# EPC069-12 (GiroCode)
# --------------------------------------------------------------------------------------------

_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def girocode_payload(invoice: Invoice, totals: Totals) -> str | None:
    """The EPC069-12 version 002 payload, or None when the invoice gets no GiroCode (see the
    module docstring for when)."""
    p = invoice.payment
    if (
        p is None
        or not p.iban
        or invoice.currency != "EUR"
        or invoice.document_type == "credit_note"
        or not is_credit_transfer(invoice)
    ):
        return None
    iban = normalized_iban(p.iban)
    if not iban_is_valid(iban) or is_qr_iban(iban):
        return None
    bic = _compact(p.bic or "")
    if _BIC.fullmatch(bic) is None:
        bic = ""
    if iban[:2] not in SEPA_EEA_COUNTRIES and (iban[:2] not in SEPA_NON_EEA_COUNTRIES or not bic):
        return None  # SEPA takes no other account, and outside the EEA only with the BIC
    amount = totals.balance_due
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return None
    if swiss_bill(invoice, totals) is not None:
        return None
    name = _one_line(p.account_holder or party_title(invoice.seller))[:70]
    if not name:
        return None
    reference = _one_line(p.reference)
    structured, text = "", ""
    if reference and is_creditor_reference(reference):
        structured = _compact(reference)
    else:
        text = (reference or _one_line(invoice.number))[:140]

    def build() -> str:
        fields = ["BCD", "002", "1", "SCT", bic, name, iban, f"EUR{_amount_text(amount)}", ""]
        fields += [structured, text]
        return "\n".join(fields).rstrip("\n")

    payload = build()
    over = len(payload.encode("utf-8")) - EPC_MAX_BYTES
    if over > 0 and text:
        text = _cut_utf8(text, len(text.encode("utf-8")) - over).rstrip()
        payload = build()
        over = len(payload.encode("utf-8")) - EPC_MAX_BYTES
    if over > 0:
        name = _cut_utf8(name, len(name.encode("utf-8")) - over).rstrip()
        payload = build()
    return payload


# --------------------------------------------------------------------------------------------
# Swiss QR-bill
# --------------------------------------------------------------------------------------------

ReferenceType = Literal["QRR", "SCOR", "NON"]


@record
class SwissAddress:
    """A structured address (type ``S``) as the QR-bill encodes and prints it."""

    name: str
    street: str
    building: str
    postal_code: str
    town: str
    country: str

    def fields(self) -> list[str]:
        return [
            "S",
            self.name,
            self.street,
            self.building,
            self.postal_code,
            self.town,
            self.country,
        ]

    def lines(self) -> list[str]:
        """As printed: name, street (and number), postal code and town; the country code goes
        before the postal code for an address outside Switzerland."""
        out = [self.name]
        street = " ".join(s for s in (self.street, self.building) if s)
        if street:
            out.append(street)
        prefix = "" if self.country == "CH" else f"{self.country}-"
        out.append(f"{prefix}{self.postal_code} {self.town}")
        return out


def _without_country_prefix(postal_code: str, country: str) -> str:
    """The postal code without the address's own country code in front (``CH-8000``, Latvia's
    official ``LV-1010``): the QR-bill carries the country in its own field and wants the code
    without it (SIX, Swiss Implementation Guidelines for the QR-bill, 4.2.2), and prints
    ``LV-1010`` from the two, never ``LV-LV-1010``."""
    code = postal_code.strip()
    head, dash, rest = code.partition("-")
    if dash and _compact(head) == country and rest.strip():
        return rest.strip()
    return code


def _swiss_address(party: Party, name: str) -> SwissAddress | None:
    postal: PostalAddress | None = party.postal
    if postal is None:
        return None
    country = _compact(postal.country)
    address = SwissAddress(
        name=_swiss_text(name, 70),
        street=_swiss_text(", ".join(line for line in postal.lines if line.strip()), 70),
        building="",
        postal_code=_swiss_text(_without_country_prefix(postal.postal_code or "", country), 16),
        town=_swiss_text(postal.city, 35),
        country=country,
    )
    if (
        not address.name
        or not address.postal_code
        or not address.town
        or re.fullmatch(r"[A-Z]{2}", country) is None
    ):
        return None
    return address


#: the QR-bill's headings in the four languages the guideline (SIX, Swiss Implementation
#: Guidelines for the QR-bill, 3.4) allows: the wording is the guideline's, not the
#: catalogues' (a document in another language gets the English headings)
BILL_HEADINGS: dict[str, dict[str, str]] = {
    "en": {
        "receipt": "Receipt",
        "payment_part": "Payment part",
        "account": "Account / Payable to",
        "reference": "Reference",
        "information": "Additional information",
        "payable_by": "Payable by",
        "payable_by_blank": "Payable by (name/address)",
        "currency": "Currency",
        "amount": "Amount",
        "acceptance_point": "Acceptance point",
    },
    "de": {
        "receipt": "Empfangsschein",
        "payment_part": "Zahlteil",
        "account": "Konto / Zahlbar an",
        "reference": "Referenz",
        "information": "Zusätzliche Informationen",
        "payable_by": "Zahlbar durch",
        "payable_by_blank": "Zahlbar durch (Name/Adresse)",
        "currency": "Währung",
        "amount": "Betrag",
        "acceptance_point": "Annahmestelle",
    },
    "fr": {
        "receipt": "Récépissé",
        "payment_part": "Section paiement",
        "account": "Compte / Payable à",
        "reference": "Référence",
        "information": "Informations supplémentaires",
        "payable_by": "Payable par",
        "payable_by_blank": "Payable par (nom/adresse)",
        "currency": "Monnaie",
        "amount": "Montant",
        "acceptance_point": "Point de dépôt",
    },
    "it": {
        "receipt": "Ricevuta",
        "payment_part": "Sezione pagamento",
        "account": "Conto / Pagabile a",
        "reference": "Riferimento",
        "information": "Informazioni supplementari",
        "payable_by": "Pagabile da",
        "payable_by_blank": "Pagabile da (nome/indirizzo)",
        "currency": "Valuta",
        "amount": "Importo",
        "acceptance_point": "Punto di accettazione",
    },
}


def _bill_language(invoice: Invoice) -> str:
    """The document's language when the guideline has headings in it, else English."""
    language = document_language(invoice)
    return language if language in BILL_HEADINGS else "en"


@record
class SwissBill:
    """The content of a Swiss QR-bill; :meth:`payload` is what the QR code holds."""

    account: str  # the IBAN or QR-IBAN, without spaces
    creditor: SwissAddress
    amount: Decimal
    currency: str
    debtor: SwissAddress | None
    reference_type: ReferenceType
    reference: str  # without spaces; empty for NON
    message: str  # the unstructured message (at most 140 characters)
    #: the language of the headings: de, fr, it or en (the guideline's four)
    language: str = "en"

    def payload(self) -> str:
        fields = ["SPC", "0200", "1", self.account, *self.creditor.fields()]
        fields += [""] * 7  # the ultimate creditor: reserved, always empty
        fields += [_amount_text(self.amount), self.currency]
        fields += self.debtor.fields() if self.debtor is not None else [""] * 7
        fields += [self.reference_type, self.reference, self.message, "EPD"]
        return "\n".join(fields)

    # as printed -------------------------------------------------------------------------
    def account_text(self) -> str:
        return " ".join(self.account[i : i + 4] for i in range(0, len(self.account), 4))

    def reference_text(self) -> str:
        ref = self.reference
        if self.reference_type == "QRR":  # groups of 5 from the right: 2 + 5 x 5
            return " ".join([ref[:2], *(ref[i : i + 5] for i in range(2, len(ref), 5))])
        return " ".join(ref[i : i + 4] for i in range(0, len(ref), 4))

    def amount_text(self) -> str:
        whole, cents = _amount_text(self.amount).split(".")
        groups: list[str] = []
        while whole:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        return f"{' '.join(groups)}.{cents}"


def swiss_bill(invoice: Invoice, totals: Totals) -> SwissBill | None:
    """The QR-bill of the invoice, or None when it gets none (see the module docstring).

    A QR-bill needs the seller's structured postal address (``seller.postal`` with postal
    code, town and country): without it no QR-bill is printed."""
    p = invoice.payment
    if (
        p is None
        or not p.iban
        or invoice.document_type == "credit_note"
        or not is_credit_transfer(invoice)
    ):
        return None
    iban = normalized_iban(p.iban)
    if not is_swiss_iban(iban):
        return None
    if invoice.currency not in ("CHF", "EUR"):
        return None
    amount = totals.balance_due
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return None
    creditor = _swiss_address(invoice.seller, p.account_holder or party_title(invoice.seller))
    if creditor is None:
        return None
    debtor = _swiss_address(invoice.bill_to, party_title(invoice.bill_to))
    reference = _compact(p.reference or "")
    ref_type: ReferenceType
    if is_qr_iban(iban):
        if not is_qr_reference(reference):
            return None  # a QR-IBAN takes only QR references
        ref_type, message = "QRR", invoice.number
    elif reference and is_creditor_reference(reference):
        ref_type, message = "SCOR", invoice.number
    else:
        ref_type, reference, message = "NON", "", p.reference or invoice.number
    bill = SwissBill(
        account=iban,
        creditor=creditor,
        amount=amount,
        currency=invoice.currency,
        debtor=debtor,
        reference_type=ref_type,
        reference=reference,
        message=_swiss_text(message, 140),
        language=_bill_language(invoice),
    )
    # long names and addresses in 2-byte letters can outgrow version 25: shorten the message
    while _qr_version(bill.payload()) > SWISS_MAX_VERSION:
        if not bill.message:
            return None
        bill = replace(bill, message=bill.message[: len(bill.message) - 10].rstrip())
    return bill


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _qr(payload: str) -> segno.QRCode:
    """The QR code of ``payload`` at error correction level M (kept for the last few
    payloads: the QR-bill asks for its version, then for its modules; nothing changes a code
    once made). segno chooses the mask with :mod:`.qrmask`'s faster evaluation (the same
    choice, the same code)."""
    import segno  # lazily: only a document with a GiroCode or a QR-bill makes one (~25 ms)

    from invoiceflow.render import qrmask

    qrmask.install()
    return segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8")


def _qr_version(payload: str) -> int:
    return int(_qr(payload).version)


def qr_matrix(payload: str, max_version: int | None = None) -> tuple[bytes, ...]:
    """The QR modules (rows of 0/1, no quiet zone) at error correction level M."""
    qr = _qr(payload)
    if max_version is not None and int(qr.version) > max_version:
        raise ValueError(f"the payload needs QR version {qr.version} (at most {max_version})")
    return tuple(bytes(row) for row in qr.matrix)  # copies: the code is kept (_qr)


def _draw_modules(canv: Canvas, matrix: Sequence[bytes], x: float, y: float, size: float) -> None:
    """Draw the dark modules as one filled path of rectangles (a run of dark modules in a row
    is one rectangle); ``(x, y)`` is the lower left corner of the symbol."""
    n = len(matrix)
    m = size / n
    path = canv.beginPath()
    for r, row in enumerate(matrix):
        bottom = y + size - (r + 1) * m
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                path.rect(x + start * m, bottom, (c - start) * m, m)
            else:
                c += 1
    canv.drawPath(path, stroke=0, fill=1)


class GiroCode(Flowable):  # type: ignore[misc]  # ReportLab is untyped
    """The EPC QR code with its quiet zone of 4 modules: 30 mm wide in all (more when its
    modules would be smaller than 0.5 mm), the caption below it; or, given a ``width`` wider
    than the code, the caption on its right (wrapped). ``caption=None``: the code alone (the
    caller sets the caption, e.g. in a script this flowable's one font cannot draw)."""

    #: the symbol with its quiet zone is at least this wide, its modules at least MODULE
    SIZE = 30 * mm
    MODULE = 0.5 * mm
    CAPTION_SIZE = 7.0

    def __init__(
        self,
        payload: str,
        font: str,
        caption: str | None = "Pay with a banking app",
        caption_color: Any = colors.black,
        width: float = 0.0,
    ) -> None:
        super().__init__()
        self.payload = payload
        self.matrix = qr_matrix(payload, EPC_MAX_VERSION)
        n = len(self.matrix) + 8  # modules across, with a quiet zone of 4 on each side
        self.module = max(self.SIZE / n, self.MODULE)
        self.quiet = 4 * self.module
        self.symbol = self.module * len(self.matrix)
        self.font, self.caption, self.caption_color = font, caption, caption_color
        self.code = self.module * n  # the symbol with its quiet zone
        room = width - self.code
        self.caption_lines = (
            simpleSplit(caption, font, self.CAPTION_SIZE, room)
            if caption is not None and room >= 15 * mm
            else []
        )
        if caption is None:
            self.width, self.height = self.code, self.code
        elif self.caption_lines:  # the caption on the right
            self.width, self.height = width, self.code
        else:
            self.width, self.height = self.code, self.code + self.CAPTION_SIZE + 2

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canv = self.canv
        canv.saveState()
        bottom = self.height - self.code
        canv.setFillColor(colors.black)
        q = self.quiet
        _draw_modules(canv, self.matrix, q, bottom + q, self.symbol)
        canv.setFillColor(self.caption_color)
        canv.setFont(self.font, self.CAPTION_SIZE)
        if self.caption_lines:
            leading = self.CAPTION_SIZE + 2
            y = self.code / 2 + (len(self.caption_lines) * leading) / 2 - self.CAPTION_SIZE
            for line in self.caption_lines:
                canv.drawString(self.code, y, line)
                y -= leading
        elif self.caption is not None:
            canv.drawCentredString(self.code / 2, 1, self.caption)
        canv.restoreState()


@cache
def _register_bill_fonts() -> None:
    from invoiceflow.render.scripts import register_font  # the one place fonts are registered

    register_font(BILL_FONT, "LiberationSans-Regular.ttf")
    register_font(BILL_FONT_BOLD, "LiberationSans-Bold.ttf")
    register_font(SYMBOL_FONT, "DejaVuSans.ttf")


BILL_WIDTH = 210 * mm
BILL_HEIGHT = 105 * mm
RECEIPT_WIDTH = 62 * mm
_MARGIN = 5 * mm
_QR_SIZE = 46 * mm
_CROSS = 7 * mm

#: a block of the information section: its heading and either value lines or a blank box
#: (width, height) for the payer to write into
_Block = tuple[str, list[str] | tuple[float, float]]


def _corner_box(canv: Canvas, x: float, top: float, w: float, h: float) -> None:
    """The blank field with corner marks (``top`` is its upper edge)."""
    canv.saveState()
    canv.setLineWidth(0.75)
    canv.setStrokeColor(colors.black)
    arm_x, arm_y = 3 * mm, 2 * mm
    bottom = top - h
    for cx, dx in ((x, arm_x), (x + w, -arm_x)):
        for cy, dy in ((top, -arm_y), (bottom, arm_y)):
            canv.line(cx, cy, cx + dx, cy)
            canv.line(cx, cy, cx, cy + dy)
    canv.restoreState()


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Lines of at most ``width``: broken between words, and inside words too long for a
    line."""
    out: list[str] = []
    for line in simpleSplit(text, BILL_FONT, size, width) or [""]:
        while len(line) > 1 and pdfmetrics.stringWidth(line, BILL_FONT, size) > width:
            n = len(line) - 1
            while n > 1 and pdfmetrics.stringWidth(line[:n], BILL_FONT, size) > width:
                n -= 1
            out.append(line[:n])
            line = line[n:]
        out.append(line)
    return out


def _column(
    canv: Canvas,
    x: float,
    top: float,
    width: float,
    height: float,
    blocks: Sequence[_Block],
    head: float,
    value: float,
) -> None:
    """Draw headed blocks from ``top`` down, wrapped to ``width``; the values shrink (by up to
    two points) until everything fits ``height``; what still does not fit is left out."""
    for size in (value, value - 1, value - 2):
        leading = gap = size + 1
        laid: list[tuple[str, list[str] | tuple[float, float]]] = []
        total = 0.0
        for heading, content in blocks:
            if isinstance(content, tuple):
                laid.append((heading, content))
                total += head + 2 + content[1] + gap
            else:
                lines = [part for text in content for part in _wrap(text, size, width)]
                laid.append((heading, lines))
                total += head + 2 + len(lines) * leading + gap
        if total - gap <= height:
            break
    y = top
    floor = top - height
    for heading, content in laid:
        if y - head < floor:
            break
        canv.setFont(BILL_FONT_BOLD, head)
        canv.drawString(x, y - head, heading)
        y -= head + 2
        if isinstance(content, tuple):
            w, h = content
            _corner_box(canv, x, y - 1, w, h)
            y -= h + gap
            continue
        canv.setFont(BILL_FONT, size)
        for line in content:
            if y - leading < floor:
                break
            canv.drawString(x, y - size, line)
            y -= leading
        y -= gap


def _swiss_cross(canv: Canvas, cx: float, cy: float) -> None:
    """The Swiss cross, 7 x 7 mm (a white edge round a black square with a white cross)."""
    canv.saveState()
    canv.setFillColor(colors.white)
    canv.rect(cx - _CROSS / 2, cy - _CROSS / 2, _CROSS, _CROSS, stroke=0, fill=1)
    black = _CROSS - 0.8 * mm
    canv.setFillColor(colors.black)
    canv.rect(cx - black / 2, cy - black / 2, black, black, stroke=0, fill=1)
    arm, span = black * 6 / 32, black * 20 / 32  # the proportions of the Swiss flag's cross
    canv.setFillColor(colors.white)
    canv.rect(cx - arm / 2, cy - span / 2, arm, span, stroke=0, fill=1)
    canv.rect(cx - span / 2, cy - arm / 2, span, arm, stroke=0, fill=1)
    canv.restoreState()


def draw_swiss_bill(canv: Canvas, bill: SwissBill, line_from: float = 0.0) -> None:
    """Draw the receipt and payment part with ``(0, 0)`` at their lower left corner; the
    dashed line above them starts at ``line_from`` (negative on pages wider than the bill, so
    that it crosses the whole page)."""
    _register_bill_fonts()
    H = BILL_HEIGHT
    canv.saveState()
    canv.setFillColor(colors.white)
    canv.rect(0, 0, BILL_WIDTH, H, stroke=0, fill=1)
    canv.setFillColor(colors.black)

    # the separation lines (dashed) with scissors
    canv.setStrokeColor(colors.black)
    canv.setLineWidth(0.5)
    canv.setDash(2, 2)
    canv.line(line_from, H, BILL_WIDTH, H)
    canv.line(RECEIPT_WIDTH, 0, RECEIPT_WIDTH, H)
    canv.setDash()
    canv.setFont(SYMBOL_FONT, 10)
    canv.drawString(_MARGIN, H - 3.6, "\u2702")
    canv.saveState()
    canv.translate(RECEIPT_WIDTH - 3.6, H - 8 * mm)
    canv.rotate(-90)
    canv.drawString(0, 0, "\u2702")
    canv.restoreState()

    h = BILL_HEADINGS[bill.language]
    reference = bill.reference_text() if bill.reference_type != "NON" else ""
    account = [bill.account_text(), *bill.creditor.lines()]
    debtor = bill.debtor.lines() if bill.debtor is not None else None

    # the receipt
    x = _MARGIN
    canv.setFont(BILL_FONT_BOLD, 11)
    canv.drawString(x, H - _MARGIN - 11, h["receipt"])
    blocks = _blocks(h, account, reference, "", debtor, (52 * mm, 20 * mm))
    _column(canv, x, H - 12 * mm, RECEIPT_WIDTH - 2 * _MARGIN, 56 * mm, blocks, 6, 8)
    _currency_amount(canv, bill, h, x, 12 * mm, (6, 2, 8))
    canv.setFont(BILL_FONT_BOLD, 6)
    canv.drawRightString(RECEIPT_WIDTH - _MARGIN, H - 82 * mm - 6, h["acceptance_point"])

    # the payment part
    x = RECEIPT_WIDTH + _MARGIN
    canv.setFont(BILL_FONT_BOLD, 11)
    canv.drawString(x, H - _MARGIN - 11, h["payment_part"])
    qr_bottom = H - 17 * mm - _QR_SIZE
    _draw_modules(canv, qr_matrix(bill.payload(), SWISS_MAX_VERSION), x, qr_bottom, _QR_SIZE)
    _swiss_cross(canv, x + _QR_SIZE / 2, qr_bottom + _QR_SIZE / 2)
    _currency_amount(canv, bill, h, x, 14 * mm, (8, 3, 10))

    x = RECEIPT_WIDTH + _MARGIN + 51 * mm
    blocks = _blocks(h, account, reference, bill.message, debtor, (65 * mm, 25 * mm))
    _column(canv, x, H - _MARGIN, BILL_WIDTH - _MARGIN - x, 85 * mm, blocks, 8, 10)
    canv.restoreState()


def _blocks(
    h: dict[str, str],
    account: list[str],
    reference: str,
    message: str,
    debtor: list[str] | None,
    blank: tuple[float, float],
) -> list[_Block]:
    """The headed blocks of the receipt or the payment part: the account, the reference and
    the message when there are any, the payer (or a ``blank`` box to write them into)."""
    blocks: list[_Block] = [(h["account"], account)]
    if reference:
        blocks.append((h["reference"], [reference]))
    if message:
        blocks.append((h["information"], [message]))
    if debtor is not None:
        blocks.append((h["payable_by"], debtor))
    else:
        blocks.append((h["payable_by_blank"], blank))
    return blocks


def _currency_amount(
    canv: Canvas,
    bill: SwissBill,
    h: dict[str, str],
    x: float,
    amount_dx: float,
    sizes: tuple[float, float, float],
) -> None:
    """The currency and amount headings and values 68 mm below the top: ``sizes`` are the
    heading size, the gap below it and the value size."""
    head, gap, value = sizes
    top = BILL_HEIGHT - 68 * mm
    canv.setFont(BILL_FONT_BOLD, head)
    canv.drawString(x, top - head, h["currency"])
    canv.drawString(x + amount_dx, top - head, h["amount"])
    canv.setFont(BILL_FONT, value)
    canv.drawString(x, top - head - gap - value, bill.currency)
    canv.drawString(x + amount_dx, top - head - gap - value, bill.amount_text())


class SwissQRBill(Flowable):  # type: ignore[misc]  # ReportLab is untyped
    """The QR-bill at the bottom of the page, across its full width (right-aligned on pages
    wider than A4). It takes the rest of the frame; when less than ``reserve`` points are left
    it moves to the next page. It sets ``canvas.payqr_bill_top`` (points from the bottom edge
    of the page) so the page's footer can be drawn above it."""

    def __init__(self, bill: SwissBill, reserve: float) -> None:
        super().__init__()
        self.bill = bill
        self.reserve = reserve

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self.width = availWidth
        self.height = max(availHeight, self.reserve)
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        return []

    def drawOn(self, canvas: Canvas, x: float, y: float, _sW: float = 0) -> None:
        page_width = canvas._pagesize[0]
        canvas.saveState()
        canvas.translate(page_width - BILL_WIDTH, 0)
        draw_swiss_bill(canvas, self.bill, line_from=min(0.0, BILL_WIDTH - page_width))
        canvas.restoreState()
        canvas.payqr_bill_top = BILL_HEIGHT

    def draw(self) -> None:  # drawn by drawOn, in page coordinates
        pass
