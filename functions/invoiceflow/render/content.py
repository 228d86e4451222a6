"""What both renderers print about the parties and the payment, computed once for both.

A party is printed as its title (:func:`party_title`: the company, else the person's name)
above its details (:func:`party_details`); the payment details as labelled fields
(:func:`payment_fields`). The renderers differ only in layout: the PDF sets the title in a
bold paragraph and the details below it, and puts the payment fields into a two-column
panel; the workbook gives each line a row (the title bold) and writes each field as
``Label: value``.
"""

from __future__ import annotations

from invoiceflow.domain.model import Party, PaymentDetails

__all__ = ["party_details", "party_title", "payment_fields"]


def party_title(party: Party) -> str:
    """The party's first line: its company, else its name."""
    return party.company or party.name


def party_details(party: Party) -> list[str]:
    """The lines under :func:`party_title`: the person's name (when a company is the title),
    the address lines, email, phone and tax id; empty fields are left out."""
    lines = []
    if party.company and party.name and party.name != party.company:
        lines.append(party.name)
    lines += [line for line in party.address if line]
    if party.email:
        lines.append(party.email)
    if party.phone:
        lines.append(party.phone)
    if party.tax_id:
        lines.append(f"Tax ID: {party.tax_id}")
    return lines


def payment_fields(payment: PaymentDetails) -> list[tuple[str, str]]:
    """The payment details as printed, ``(label, value)`` in order; empty fields are left out."""
    fields = [
        ("Bank", payment.bank_name),
        ("Account holder", payment.account_holder),
        ("Account number", payment.account_number),
        ("IBAN", payment.iban),
        ("BIC", payment.bic),
        ("Reference", payment.reference),
    ]
    return [(label, value) for label, value in fields if value]
