"""Sample invoices for the renderer tests (PDF and XLSX).

``make_invoice(**overrides)`` (also the ``sample_invoice`` fixture, which *is* that factory) builds
a realistic EUR/de-DE invoice: two tax rates (19 % and 7 %), a line discount, an invoice
discount, shipping, a partial payment, a logo, Ship To, payment details, notes and terms. Every
field of :class:`~invoiceflow.domain.model.Invoice` can be overridden; ``n_items`` makes that
many generated lines instead of the default five.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from functools import cache
from typing import Any

import pytest

from invoiceflow.domain.model import (
    Discount,
    Invoice,
    LineItem,
    Logo,
    Party,
    PaymentDetails,
)


@cache
def png_bytes(size: int = 96) -> bytes:
    """A small RGBA PNG logo written by hand with zlib: a navy rounded square with a white
    "N" and an orange accent, anti-aliased, transparent corners."""

    def shape(x: float, y: float) -> tuple[int, int, int, int]:
        u, v = x / size, y / size  # 0..1, v downwards
        r = 0.18  # corner radius
        cx, cy = min(max(u, r), 1 - r), min(max(v, r), 1 - r)
        if (u - cx) ** 2 + (v - cy) ** 2 > r * r:
            return (0, 0, 0, 0)
        if 0.24 <= v <= 0.76:
            if 0.26 <= u <= 0.38 or 0.62 <= u <= 0.74:
                return (255, 255, 255, 255)
            # the diagonal of the N, from the top of the left bar to the foot of the right one
            t = (v - 0.24) / 0.52
            if 0.26 + t * 0.36 <= u <= 0.38 + t * 0.36:
                return (255, 255, 255, 255)
        if 0.82 <= v <= 0.88 and 0.26 <= u <= 0.74:
            return (231, 111, 81, 255)
        return (31, 58, 95, 255)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    n = 3  # n x n samples per pixel
    raw = bytearray()
    for y in range(size):
        raw.append(0)  # filter: none
        for x in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(n):
                for sx in range(n):
                    r_, g, b, a = shape(x + (sx + 0.5) / n, y + (sy + 0.5) / n)
                    acc[0] += r_ * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            alpha = acc[3]
            raw += (
                bytes((0, 0, 0, 0))
                if alpha == 0
                else bytes((acc[0] // alpha, acc[1] // alpha, acc[2] // alpha, alpha // (n * n)))
            )
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


SELLER = Party(
    name="Anna Schmidt",
    company="Nordlicht Software GmbH",
    address=("Friedrichstraße 123", "10117 Berlin", "Germany"),
    email="billing@nordlicht.example",
    phone="+49 30 1234567",
    tax_id="DE123456789",
)
BILL_TO = Party(
    name="Zoë Łukasz",
    company="Acme Trading Ltd.",
    address=("42 Harbour Road", "Dublin D02 XY45", "Ireland"),
    email="accounts@acme.example",
    tax_id="IE9876543W",
)
SHIP_TO = Party(name="Acme Warehouse", address=("Unit 7, Docklands", "Dublin D01 K2P3", "Ireland"))
PAYMENT = PaymentDetails(
    bank_name="Berliner Sparkasse",
    account_holder="Nordlicht Software GmbH",
    iban="DE89370400440532013000",
    bic="COBADEFFXXX",
    reference="INV-2026-0042",
)

DEFAULT_ITEMS = (
    LineItem(
        "Software development (sprint 12), backend API and database migrations",
        D("24"),
        D("95.00"),
        unit="h",
        sku="DEV-BE",
        tax_rate=D("19"),
    ),
    LineItem(
        "Code review and architecture workshop",
        D("6.5"),
        D("110.00"),
        unit="h",
        sku="ARCH",
        tax_rate=D("19"),
        discount=Discount("percent", D("10")),
    ),
    LineItem(
        "Hosting, managed Kubernetes cluster (monthly)",
        D("1"),
        D("349.90"),
        sku="HOST-K8S",
        tax_rate=D("19"),
    ),
    LineItem(
        "Technical handbook, printed edition",
        D("3"),
        D("39.50"),
        unit="pcs",
        sku="BOOK-1",
        tax_rate=D("7"),
    ),
    LineItem(
        "Onboarding training materials (e-book)",
        D("10"),
        D("12.00"),
        unit="pcs",
        sku="EBOOK-2",
        tax_rate=D("7"),
        discount=Discount("amount", D("5.00")),
    ),
)


def generated_items(n: int) -> tuple[LineItem, ...]:
    """``n`` lines with varied descriptions (every 7th one long enough to wrap)."""
    out = []
    for i in range(n):
        desc = f"Item {i + 1}: consulting services, work package {i % 17 + 1}"
        if i % 7 == 3:
            desc += (
                " including detailed analysis, documentation, stakeholder meetings and "
                "follow-up tasks agreed in the statement of work"
            )
        out.append(
            LineItem(
                desc,
                D(i % 5 + 1),
                D("12.50") + D(i % 13),
                unit="h" if i % 2 else None,
                sku=f"SKU-{i:05d}",
                tax_rate=D("19") if i % 3 else D("7"),
            )
        )
    return tuple(out)


def make_invoice(n_items: int | None = None, **overrides: Any) -> Invoice:
    """The sample invoice, with any field overridden; ``n_items`` generates that many lines."""
    fields: dict[str, Any] = {
        "number": "INV-2026-0042",
        "issue_date": date(2026, 3, 5),
        "due_date": date(2026, 4, 4),
        "payment_terms": "Net 30",
        "currency": "EUR",
        "locale": "de-DE",
        # the labels in English (the tests read them); the locale formats numbers and dates
        "language": "en",
        "seller": SELLER,
        "bill_to": BILL_TO,
        "ship_to": SHIP_TO,
        "items": DEFAULT_ITEMS if n_items is None else generated_items(n_items),
        "logo": Logo("image/png", png_bytes()),
        "discount": Discount("percent", D("5")),
        "shipping": D("25.00"),
        "shipping_tax_rate": D("19"),
        "amount_paid": D("500.00"),
        "notes": "Thank you for your business!",
        "terms": "Payable within 30 days without deduction. Late payments accrue interest "
        "of 9 percentage points above the base rate (§ 288 BGB).",
        "payment": PAYMENT,
    }
    fields.update(overrides)
    return Invoice(**fields)


@pytest.fixture(scope="session")
def sample_invoice() -> Callable[..., Invoice]:
    """The :func:`make_invoice` factory: ``sample_invoice()``, ``sample_invoice(n_items=300,
    locale="en-US", currency="USD")``..."""
    return make_invoice


@pytest.fixture
def logo_png() -> bytes:
    return png_bytes()
