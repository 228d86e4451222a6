"""Complete EN 16931 documents as model values, for the writers' and the rules' tests.

``german_b2b()`` satisfies every EN 16931 rule (and, with a buyer reference, XRechnung's);
tests derive variants from it with ``dataclasses.replace``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoiceflow.domain.model import (
    Contact,
    Identifier,
    Invoice,
    LineItem,
    Party,
    PaymentDetails,
    Period,
    PostalAddress,
)

D = Decimal


def seller_de() -> Party:
    return Party(
        name="Nordlicht Verlag GmbH",
        postal=PostalAddress(
            country="DE", lines=("Hafenstraße 12",), city="Hamburg", postal_code="20457"
        ),
        email="rechnung@nordlicht.example",
        phone="+49 40 1234567",
        vat_id="DE123456789",
        tax_id="22/815/08154",
        legal_id=Identifier("HRB 123456"),
        electronic_address=Identifier("DE123456789", "9930"),
        contact=Contact("Anna Schmidt", "+49 40 1234567", "anna.schmidt@nordlicht.example"),
    )


def buyer_de() -> Party:
    return Party(
        name="Buchhandlung Müller",
        company="Müller & Söhne OHG",
        postal=PostalAddress(
            country="DE", lines=("Marktplatz 3",), city="München", postal_code="80331"
        ),
        vat_id="DE987654321",
        electronic_address=Identifier("DE987654321", "9930"),
    )


def german_b2b(**changes: object) -> Invoice:
    """A German B2B invoice at 7 % and 19 %, with a line discount, an invoice discount,
    shipping, a prepayment and SEPA payment details."""
    from dataclasses import replace

    inv = Invoice(
        number="RE-2026-0042",
        issue_date=date(2026, 11, 24),
        due_date=date(2026, 12, 8),
        payment_terms="14 Tage netto",
        currency="EUR",
        locale="de-DE",
        seller=seller_de(),
        bill_to=buyer_de(),
        items=(
            LineItem(
                description='Kochbuch "Norddeutsche Küche"',
                quantity=D("25"),
                unit="Stk.",
                unit_price=D("24.90"),
                tax_rate=D("7"),
                sku="NL-1001",
            ),
            LineItem(
                description="Bildband Hamburg bei Nacht",
                quantity=D("10"),
                unit_code="C62",
                unit_price=D("39.95"),
                tax_rate=D("7"),
                discount=None,
            ),
            LineItem(
                description="Satz und Layout",
                quantity=D("12.5"),
                unit="Std.",
                unit_price=D("68.00"),
                tax_rate=D("19"),
                period=Period(date(2026, 11, 1), date(2026, 11, 20)),
            ),
        ),
        shipping=D("18.50"),
        shipping_tax_rate=D("19"),
        amount_paid=D("100.00"),
        delivery_date=date(2026, 11, 20),
        purchase_order="PO-7781",
        payment=PaymentDetails(
            bank_name="Hamburger Sparkasse",
            account_holder="Nordlicht Verlag GmbH",
            iban="DE89 3704 0044 0532 0130 00",
            bic="COBADEFFXXX",
            reference="RE-2026-0042",
        ),
    )
    return replace(inv, **changes)  # type: ignore[arg-type]
