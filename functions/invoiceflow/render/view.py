"""Everything a reader sees of a document, decided once: :func:`build_view`.

The PDF (:mod:`.pdf`), the workbook (:mod:`.xlsx`) and the emails (:mod:`invoiceflow.emails`)
take their words and figures from the :class:`DocumentView` of the document and its totals
(:func:`invoiceflow.domain.totals.compute_totals`): the labels in the document's language
(:mod:`.i18n`), its direction, the title, the header's fields, the parties, the column
headings, each line's cells, the totals, the tax and exemption lines, the payment fields,
the page footer, the paper, the date pattern and the emails' texts. A renderer only lays
them out. The parts are built by the functions of :mod:`.content`; numbers, amounts and dates
are formatted by :mod:`.localize` for the document's locale.

Signs: one convention for every format. The totals block adds up down the page: each
deduction (the line discounts included in the subtotal, the invoice discount, the amount
already paid) is a negative figure in :attr:`DocumentView.totals_rows`, so the PDF prints
``Amount paid -500,00 €`` and the workbook's cell holds -500 (its formulas add the block up;
the line-discounts row is information, already inside the subtotal, and is not added again).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Literal

from invoiceflow.domain.model import Invoice, Party
from invoiceflow.domain.totals import TaxGroup, Totals
from invoiceflow.records import record
from invoiceflow.render import content, i18n, localize
from invoiceflow.render.i18n import N_, Labels

__all__ = [
    "DocumentView",
    "EmailTexts",
    "LineCells",
    "TotalRow",
    "build_view",
    "email_texts",
]

TotalKey = Literal[
    "subtotal", "line_discounts", "discount", "shipping", "tax", "total", "paid", "balance"
]


@record
class TotalRow:
    """One row of the totals block. ``amount`` is signed as printed (deductions negative),
    ``text`` is it formatted; ``group`` is the tax group of a ``tax`` row."""

    key: TotalKey
    label: str
    amount: Decimal
    text: str
    group: TaxGroup | None = None


@record
class LineCells:
    """One item's cells as printed (``tax``/``discount`` empty when the item has none)."""

    number: str
    sku: str
    description: str
    quantity: str
    unit_price: str
    tax: str
    discount: str
    amount: str


@record
class PartyBlock:
    """A party: its heading (``Bill to``; empty for the seller), title and detail lines."""

    heading: str
    title: str
    lines: tuple[str, ...]


@record
class EmailTexts:
    """The words of the emails about one document. The subjects and intros are patterns
    with ``%(number)s`` (the email may set the number in bold); ``total`` and ``due_date``
    are whole lines (``Total: 1.234,00 €``), empty when the document is not known."""

    language: str
    ready_subject: str
    ready_intro: str
    failed_subject: str
    failed_intro: str
    total: str
    due_date: str
    status: str
    reason: str
    details: str
    unknown_reason: str
    downloads_text: str
    downloads_html: str
    #: the line that says why a ready email came without its files (too large to attach)
    attachments_too_large: str
    #: the branding's accent colour (``#RRGGBB``) for the HTML email, None for none
    accent_color: str | None


#: the column headings (PDF: short; workbook: one column per input)
_HEADINGS = {
    "n": "#",
    "sku": N_("SKU"),
    "desc": N_("Description"),
    "qty": N_("Qty"),
    "quantity": N_("Quantity"),
    "unit": N_("Unit"),
    "price": N_("Unit price"),
    "tax": N_("Tax"),
    "rate": N_("Tax rate"),
    "cat": N_("VAT category"),
    "disc": N_("Discount"),
    "dpct": N_("Discount %"),
    "damt": N_("Discount amount"),
    "gross": N_("Gross"),
    "ldisc": N_("Line discount"),
    "amount": N_("Amount"),
}

_READY_SUBJECTS = {
    "invoice": N_("Invoice %(number)s is ready"),
    "credit_note": N_("Credit note %(number)s is ready"),
    "corrected": N_("Corrected invoice %(number)s is ready"),
}
_READY_INTROS = {
    "invoice": N_("Your invoice %(number)s is ready."),
    "credit_note": N_("Your credit note %(number)s is ready."),
    "corrected": N_("Your corrected invoice %(number)s is ready."),
}
_FAILED_SUBJECTS = {
    "invoice": N_("Invoice %(number)s could not be produced"),
    "credit_note": N_("Credit note %(number)s could not be produced"),
    "corrected": N_("Corrected invoice %(number)s could not be produced"),
}
_FAILED_INTROS = {
    "invoice": N_("Your invoice %(number)s could not be produced."),
    "credit_note": N_("Your credit note %(number)s could not be produced."),
    "corrected": N_("Your corrected invoice %(number)s could not be produced."),
}


@record
class DocumentView:
    """What every format shows of one document (see the module's docstring)."""

    invoice: Invoice
    totals: Totals
    labels: Labels
    language: str
    direction: Literal["ltr", "rtl"]
    #: the document's name in running text (``Invoice``, ``Gutschrift``)
    name: str
    #: the PDF's title (``INVOICE``)
    title: str
    #: the header's fields beside the title: number, dates, terms, references, currency
    meta: tuple[tuple[str, str], ...]
    seller: PartyBlock
    bill_to: PartyBlock
    ship_to: PartyBlock | None
    headings: dict[str, str]
    totals_rows: tuple[TotalRow, ...]
    exemption_lines: tuple[str, ...]
    payment_heading: str
    payment_fields: tuple[tuple[str, str], ...]
    #: the caption of the payment QR code (GiroCode)
    girocode_caption: str
    notes_heading: str
    terms_heading: str
    #: the page footer's left part (``Invoice RE-1 · Seller``) and the running header's right
    footer: str
    continued: str
    paper: Literal["letter", "a4"]
    #: the CLDR pattern of every date (:func:`.localize.date_pattern`)
    date_pattern: str
    tax_name: str

    def gettext(self, message: str) -> str:
        """Any other label, in the document's language."""
        return self.labels.gettext(message)

    def page_label(self, page: int, pages: int) -> str:
        """The footer's ``Page N of M``."""
        return self.labels.gettext("Page %(page)s of %(pages)s") % {"page": page, "pages": pages}

    def date(self, value: date) -> str:
        return localize.date(value, self.invoice)

    def money(self, amount: Decimal) -> str:
        return localize.money(amount, self.invoice)

    def total_row(self, key: TotalKey) -> TotalRow | None:
        """The first totals row of ``key`` (None when the document has none)."""
        return next((row for row in self.totals_rows if row.key == key), None)

    @property
    def subject(self) -> str:
        """The subject of the files' metadata (the PDF's, the workbook's properties): the
        document, its date and the buyer (``Gutschrift GS-7, 05.03.2026, Acme``), in words
        of the document's own and none of another language."""
        invoice = self.invoice
        return (
            f"{self.name} {invoice.number}, {self.date(invoice.issue_date)}, {self.bill_to.title}"
        )

    @property
    def balance(self) -> TotalRow:
        """The last figure: ``Balance due`` or, on a credit note, ``Amount to be refunded``."""
        return self.totals_rows[-1]

    @cached_property
    def lines(self) -> tuple[LineCells, ...]:
        """Each item's cells as printed (formatted once, on first use)."""
        inv, out = self.invoice, []
        for i, (it, lt) in enumerate(zip(inv.items, self.totals.lines, strict=True), 1):
            unit = content.unit_label(it)
            discount = ""
            if it.discount is not None:
                discount = (
                    localize.percent(it.discount.value, inv)
                    if it.discount.kind == "percent"
                    else localize.money(lt.discount, inv)
                )
            out.append(
                LineCells(
                    number=str(i),
                    sku=it.sku or "",
                    description=it.description,
                    quantity=localize.quantity(it.quantity, inv) + (f" {unit}" if unit else ""),
                    unit_price=localize.money(it.unit_price, inv),
                    tax=content.tax_rate_text(it, inv) or "\u2013",
                    discount=discount,
                    amount=localize.money(lt.amount, inv),
                )
            )
        return tuple(out)

    @cached_property
    def email(self) -> EmailTexts:
        return email_texts(self.invoice, self.invoice.number, self)


def _party(heading: str, invoice: Invoice, party: Party) -> PartyBlock:
    return PartyBlock(
        heading,
        content.party_title(party),
        tuple(content.party_details(party, invoice)),
    )


def _totals_rows(invoice: Invoice, totals: Totals, t: Labels) -> tuple[TotalRow, ...]:
    def row(key: TotalKey, label: str, amount: Decimal, group: TaxGroup | None = None) -> TotalRow:
        return TotalRow(key, label, amount, localize.money(amount, invoice), group)

    rows = [row("subtotal", t.gettext("Subtotal"), totals.subtotal)]
    if totals.line_discounts:
        rows.append(
            row("line_discounts", t.gettext("incl. line discounts"), -totals.line_discounts)
        )
    if totals.discount:
        label = t.gettext("Discount")
        if invoice.discount is not None and invoice.discount.kind == "percent":
            label = t.gettext("Discount (%(rate)s)") % {
                "rate": localize.percent(invoice.discount.value, invoice)
            }
        rows.append(row("discount", label, -totals.discount))
    if totals.shipping:
        label = t.gettext("Shipping")
        if invoice.shipping_tax_rate is not None:
            label = t.gettext("Shipping (%(tax)s %(rate)s)") % {
                "tax": i18n.tax_name(invoice),
                "rate": localize.percent(invoice.shipping_tax_rate, invoice),
            }
        rows.append(row("shipping", label, totals.shipping))
    for group in content.tax_groups(totals):
        rows.append(row("tax", content.tax_line_label(group, invoice), group.tax, group))
    rows.append(row("total", t.gettext("Total"), totals.total))
    if totals.amount_paid:
        rows.append(row("paid", t.gettext("Amount paid"), -totals.amount_paid))
    rows.append(row("balance", content.balance_label(invoice), totals.balance_due))
    return tuple(rows)


def build_view(invoice: Invoice, totals: Totals) -> DocumentView:
    """The view of ``invoice`` with its ``totals`` (those of ``compute_totals(invoice)``).

    Raises :class:`~invoiceflow.errors.RenderError` for an unknown locale."""
    lang = i18n.language(invoice)
    t = i18n.labels(lang)
    name = content.document_name(invoice)
    meta = [
        (content.number_label(invoice), invoice.number),
        (t.gettext("Issue date"), localize.date(invoice.issue_date, invoice)),
    ]
    if invoice.due_date is not None:
        meta.append((t.gettext("Due date"), localize.date(invoice.due_date, invoice)))
    if invoice.payment_terms:
        # one line each, as written (XRechnung's Skonto lines end with a line break: no
        # empty line after them; \r\n and U+2028 as \n, so no control character is drawn)
        terms = "\n".join(invoice.payment_terms.splitlines()).strip("\n")
        meta.append((t.gettext("Payment terms"), terms))
    meta += content.reference_fields(invoice)
    meta.append((t.gettext("Currency"), invoice.currency))
    payment = (
        content.payment_fields(invoice.payment, invoice, totals)
        if invoice.payment is not None
        else []
    )
    seller = content.party_title(invoice.seller)
    return DocumentView(
        invoice=invoice,
        totals=totals,
        labels=t,
        language=lang,
        direction=i18n.document_direction(invoice),
        name=name,
        title=content.document_title(invoice),
        meta=tuple(meta),
        seller=_party("", invoice, invoice.seller),
        bill_to=_party(t.gettext("Bill to"), invoice, invoice.bill_to),
        ship_to=(
            _party(t.gettext("Ship to"), invoice, invoice.ship_to)
            if invoice.ship_to is not None
            else None
        ),
        headings={key: t.gettext(text) for key, text in _HEADINGS.items()},
        totals_rows=_totals_rows(invoice, totals, t),
        exemption_lines=tuple(content.tax_exemption_lines(invoice, totals)),
        payment_heading=t.gettext("Payment details"),
        payment_fields=tuple(payment),
        girocode_caption=t.gettext("Pay with a banking app"),
        notes_heading=t.gettext("Notes"),
        terms_heading=t.gettext("Terms and conditions"),
        footer=f"{name} {invoice.number} \u00b7 {seller}",
        continued=t.gettext("continued"),
        paper=localize.paper_size(invoice),
        date_pattern=localize.date_pattern(invoice),
        tax_name=i18n.tax_name(invoice),
    )


def email_texts(
    invoice: Invoice | None, number: str, view: DocumentView | None = None
) -> EmailTexts:
    """The emails' words for document ``number``: in the document's language, named by its
    type (an invoice when the document is not known, e.g. it could not be read: English)."""
    t = i18n.labels_for(invoice)
    kind = invoice.document_type if invoice is not None else "invoice"
    values = {"number": number}
    total = due = ""
    accent = None
    if view is not None:
        total_label, due_label = t.gettext("Total"), t.gettext("Due date")
        total = f"{total_label}: {view.money(view.totals.total)}"
        if view.invoice.due_date is not None:
            due = f"{due_label}: {view.date(view.invoice.due_date)}"
    if invoice is not None and invoice.branding is not None:
        accent = invoice.branding.accent_color
    return EmailTexts(
        language=t.language,
        ready_subject=t.gettext(_READY_SUBJECTS[kind]) % values,
        ready_intro=t.gettext(_READY_INTROS[kind]),
        failed_subject=t.gettext(_FAILED_SUBJECTS[kind]) % values,
        failed_intro=t.gettext(_FAILED_INTROS[kind]),
        total=total,
        due_date=due,
        status=t.gettext("Status"),
        reason=t.gettext("Reason"),
        details=t.gettext("Details"),
        unknown_reason=t.gettext("unknown reason"),
        downloads_text=t.gettext("Downloads need your API token (Authorization: Bearer ...)."),
        downloads_html=t.gettext("Downloads need your API token."),
        attachments_too_large=t.gettext(
            "The files were too large to attach to this email; download them with the links above."
        ),
        accent_color=accent,
    )
