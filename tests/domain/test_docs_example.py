"""The complete example in docs/invoice-format.md is a valid document and an e-invoice, and
its line rounding rule is what the totals compute."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from invoiceflow.domain import parse_invoice
from invoiceflow.domain.einvoice import cii_profile
from invoiceflow.domain.en16931 import Syntax, check
from invoiceflow.domain.model import Invoice
from invoiceflow.einvoice.cii import cii_xml
from invoiceflow.einvoice.ubl import ubl_xml
from support import official, xrechnung

DOC = Path(__file__).resolve().parents[2] / "docs" / "invoice-format.md"


def complete_example() -> Invoice:
    text = DOC.read_text()
    section = text.split("### A complete example", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    return parse_invoice(json.dumps(json.loads(block.group(1)))).invoice


@pytest.mark.parametrize("syntax", ["cii", "ubl", "facturx"])
def test_the_docs_complete_example_breaks_no_rule(syntax: Syntax) -> None:
    inv = complete_example()
    assert inv.document_type == "credit_note"
    assert [f"{p.rule} {p.pointer}" for p in check(inv, syntax)] == []


def test_the_docs_complete_example_passes_the_official_artefacts() -> None:
    inv = complete_example()
    assert cii_profile(inv) == "xrechnung"
    cii, ubl = cii_xml(inv), ubl_xml(inv)
    assert [f"{a.id}: {a.text}" for a in official.fatal(cii, "cii")] == []
    assert [f"{a.id}: {a.text}" for a in xrechnung.fatal(cii)] == []
    assert [f"{a.id}: {a.text}" for a in official.fatal(ubl, "ubl")] == []


def test_the_docs_line_rule_is_what_line_total_computes() -> None:
    """The rounding section's line rule (step 2) names the discount shown as the rounded gross
    less the amount, and its worked example is line_total's figures (not round(discount),
    which would be 59.93 there and not add up)."""
    from decimal import Decimal

    from invoiceflow.domain.model import Discount, LineItem
    from invoiceflow.domain.totals import line_total

    rule = DOC.read_text().split("\n2. Line:", 1)[1].split("\n3. ", 1)[0]
    rule = " ".join(rule.split())
    assert "the discount shown is what it takes off the rounded gross" in rule
    assert "`round(quantity x unit_price) - amount`" in rule
    assert "round(line_discount)`" not in rule
    m = re.search(r"(\d+) x ([\d.]+) less (\d+) %: ([\d.]+) - ([\d.]+) = ([\d.]+)", rule)
    assert m is not None
    qty, price, percent, gross, discount, amount = (Decimal(g) for g in m.groups())
    item = LineItem("x", qty, price, discount=Discount("percent", percent))
    lt = line_total(item, "EUR")
    assert (lt.gross, lt.discount, lt.amount) == (gross, discount, amount)
