"""The EN 16931 business rules (and XRechnung's BR-DE rules), checked natively on the
canonical document before an e-invoice is written. (Being written: the rules land with
issue 10; until then nothing is checked.)"""

from __future__ import annotations

from typing import Literal

from invoiceflow.domain.model import Invoice
from invoiceflow.errors import Problem

#: the e-invoice output formats whose documents are held to the rules
Syntax = Literal["cii", "ubl", "facturx"]


def check(invoice: Invoice, syntax: Syntax) -> list[Problem]:
    """Every broken rule, each a Problem with its rule id, official sentence and pointer."""
    return []


def require_conformance(invoice: Invoice, syntax: Syntax) -> None:
    """Raise BusinessRuleViolation listing every broken rule; return when none is broken."""
    problems = check(invoice, syntax)
    if problems:
        from invoiceflow.errors import BusinessRuleViolation

        raise BusinessRuleViolation(problems)
