"""The Excel workbook renderer: read the workbook back with openpyxl, and *evaluate* its
formulas with pycel to check every figure against ``compute_totals()``.

pycel's own ROUND rounds the full binary value (``3 * 0.075`` is 0.22499999999999998, so 0.22),
while Excel and LibreOffice round the value as shown to 15 significant digits (0.225, so 0.23,
which is also what Decimal gives). The tests evaluate with that Excel ROUND (a pycel plugin
below), and again with a ROUND of the binary value's shortest decimal (LibreOffice 7.4 at large
amounts: ``6320273454.789*50/100`` rounds to .394, not to the tie's .395).

Every formula cell also carries its figure as a cached value (for viewers that do not
calculate). pycel returns a formula cell's cached value instead of evaluating it when it loads
the file itself, so it is always given the workbook without its cached values
(:func:`_compiler`); the cached values are read with ``data_only=True`` and compared both with
``compute_totals()`` and with the evaluated formulas.
"""

from __future__ import annotations

import io
import random
import re
import sys
import types
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from invoiceflow.domain.model import Discount, Invoice, LineItem, Party, PaymentDetails
from invoiceflow.domain.money import minor_digits
from invoiceflow.domain.parse import parse_invoice
from invoiceflow.domain.totals import Totals, compute_totals
from invoiceflow.errors import RenderError
from invoiceflow.render.content import tax_groups
from invoiceflow.render.view import build_view
from invoiceflow.render.xlsx import render_xlsx

NAVY = "FF1F3864"
WHITE = "FFFFFFFF"

SELLER = Party(
    name="Anna Schmidt",
    company="Nordlicht GmbH",
    address=("Friedrichstraße 123", "10117 Berlin"),
    email="billing@nordlicht.example",
    phone="+49 30 1234567",
    tax_id="DE123456789",
)
BUYER = Party(
    name="Zoë Łukasz",
    company="Acme Ltd.",
    address=("42 Harbour Road", "Dublin"),
    tax_id="IE9876543W",
)
SHIP_TO = Party(name="Acme Warehouse", address=("Unit 7, Docklands", "Dublin D01"))


def invoice(items: list[LineItem] | tuple[LineItem, ...], **kw: Any) -> Invoice:
    fields: dict[str, Any] = {
        "number": "INV-7",
        "issue_date": date(2026, 3, 5),
        "currency": "EUR",
        "seller": SELLER,
        "bill_to": BUYER,
        "items": tuple(items),
        "locale": "en-GB",
        # English labels whatever the locale (the tests find cells by them)
        "language": "en",
        "due_date": date(2026, 4, 4),
    }
    fields.update(kw)
    return Invoice(**fields)


def item(qty: str, price: str, rate: str | None = "19", **kw: Any) -> LineItem:
    return LineItem(
        kw.pop("description", f"{qty} x {price}"),
        D(qty),
        D(price),
        tax_rate=None if rate is None else D(rate),
        **kw,
    )


FULL = invoice(
    [
        item("24", "95.00", sku="DEV", unit="h"),
        item("6.5", "110.00", sku="ARCH", unit="h", discount=Discount("percent", D("10"))),
        item("3", "39.50", "7", sku="BOOK", unit="pcs"),
        item("10", "12.00", "7", discount=Discount("amount", D("5.00"))),
        item("1", "4.20", None, description="Postage (not taxed)"),
    ],
    ship_to=SHIP_TO,
    payment_terms="Net 30",
    discount=Discount("percent", D("5")),
    shipping=D("25.00"),
    shipping_tax_rate=D("19"),
    amount_paid=D("500.00"),
    notes="Thank you!\nSee you soon.",
    terms="Payable within 30 days.",
    payment=PaymentDetails(
        bank_name="Sparkasse", iban="DE89370400440532013000", bic="COBADEFFXXX", reference="INV-7"
    ),
)

#: invoices whose every figure is evaluated and compared with compute_totals()
EDGE_CASES: dict[str, Invoice] = {
    "half-cent ties": invoice(
        [
            item("1", "0.005"),
            item("3", "0.335"),
            item("3", "0.075", "7"),
            item("1", "1.005", "7"),
            item("3", "0.145", "7"),
            item("7", "0.215", None),
        ]
    ),
    "tax ties": invoice([item("1", "10.50"), item("1", "0.30", "5"), item("1", "1.05", "21")]),
    # EN 16931 groups by VAT category and rate: Z and E both at 0 %, AE without a rate, an
    # uncategorised untaxed line, an amount discount split over all of them, shipping in S
    "VAT categories at one rate": invoice(
        [
            LineItem("zero rated", D(3), D("10.00"), tax_rate=D(0), tax_category="Z"),
            LineItem("exempt", D(1), D("20.00"), tax_rate=D(0), tax_category="E"),
            LineItem("reverse charge", D(2), D("15.55"), tax_category="AE"),
            LineItem("standard", D(1), D("33.33"), tax_rate=D(19)),
            LineItem("untaxed", D(1), D("5.00")),
        ],
        discount=Discount("amount", D("7.77")),
        shipping=D("4.90"),
        shipping_tax_rate=D(19),
        shipping_tax_category="S",
    ),
    "KWD, 3 decimals": invoice(
        [item("3", "0.3335", "5"), item("2", "1.2345", "5"), item("1", "10.0005", "15")],
        currency="KWD",
        discount=Discount("percent", D("2.5")),
        shipping=D("1.2345"),
        shipping_tax_rate=D("5"),
        amount_paid=D("1.0005"),
    ),
    "JPY, no decimals": invoice(
        [
            item("3", "33.5", "10"),
            item("1", "0.5", "8"),
            item("2", "149.75", "10"),
            item("1", "1234", "8", discount=Discount("percent", D("12.5"))),
        ],
        currency="JPY",
        locale="ja-JP",
        shipping=D("500"),
        shipping_tax_rate=D("10"),
        amount_paid=D("1000"),
    ),
    "two rates, percent discount, taxed shipping": invoice(
        [item("2", "19.99"), item("3", "7.49", "7"), item("1", "0.99", "7")],
        discount=Discount("percent", D("10")),
        shipping=D("4.95"),
        shipping_tax_rate=D("19"),
    ),
    "amount discount split with a remainder": invoice(
        [item("1", "10.00", None), item("1", "10.00", "7"), item("1", "10.00", "19")],
        discount=Discount("amount", D("10.00")),
    ),
    "amount discount, uneven bases": invoice(
        [item("3", "3.33", "7"), item("1", "0.01", "19"), item("2", "17.17", "21")],
        discount=Discount("amount", D("7.777")),
        shipping=D("3.50"),
        shipping_tax_rate=D("19"),
    ),
    "credit lines": invoice(
        [
            item("2", "49.99"),
            item("-1", "25.125", credit=True),
            item("1", "-0.005", "7", credit=True),
            item("1", "12.00", "7"),
        ],
        discount=Discount("amount", D("1.00")),
    ),
    "line discounts": invoice(
        [
            item("3", "0.335", discount=Discount("percent", D("10"))),
            item("2", "9.99", discount=Discount("amount", D("0.005"))),
            item("1", "0.50", "7", discount=Discount("amount", D("1.00"))),
            item("4", "2.675", "7", discount=Discount("percent", D("33.3"))),
        ]
    ),
    # an amount discount takes the line's sign (SIGN() in the formula): it brings a credit
    # line towards zero, as a percentage does
    "line discounts on credit lines": invoice(
        [
            item("3", "10.00"),
            item("-1", "10.00", credit=True, discount=Discount("amount", D("10.00"))),
            item("-2", "3.335", "7", credit=True, discount=Discount("amount", D("0.005"))),
            item("1", "-4.99", "7", credit=True, discount=Discount("amount", D("1.00"))),
            item("-1", "8.00", credit=True, discount=Discount("percent", D("25"))),
        ]
    ),
    "zero rate and untaxed, untaxed shipping": invoice(
        [item("1", "10.00", "0"), item("2", "5.005", None), item("1", "100.00")],
        discount=Discount("percent", D("3")),
        shipping=D("5.00"),
    ),
    "amount discount on a zero subtotal": invoice(
        [item("1", "10.00"), item("-1", "10.00", credit=True)],
        discount=Discount("amount", D("5.00")),
    ),
    # inputs that come to nothing: a 0 % discount, shipping and a payment that round to 0.00,
    # a 0 % line discount: no rows for them (as in the PDF), and the figures still add up
    "inputs that round to nothing": invoice(
        [item("2", "10.00", discount=Discount("percent", D("0"))), item("1", "5.00", "7")],
        discount=Discount("percent", D("0")),
        shipping=D("0.004"),
        shipping_tax_rate=D("19"),
        amount_paid=D("0.004"),
    ),
    # 6320273454.789 x 50 % is the tie 3160136727.3945, 3160136727.3944998 in binary: the
    # formulas round the exact decimals first (LibreOffice rounded it to .394)
    "binary noise at a tie": invoice(
        [item("1", "6320273454.789", "50"), item("3", "0.075", "7")],
        currency="KWD",
        discount=Discount("percent", D("50")),
    ),
    "shipping is its own tax group": invoice(
        [item("1", "100.00", "7")],
        shipping=D("9.99"),
        shipping_tax_rate=D("21"),
        discount=Discount("amount", D("10.00")),
    ),
}


# --------------------------------------------------------------------------- helpers


def _excel_round(number: float, num_digits: float = 0) -> float:
    """ROUND as Excel and LibreOffice compute it: half away from zero, on the value rounded
    to the 15 significant digits a spreadsheet shows."""
    quantum = Decimal(1).scaleb(-int(num_digits))
    return float(Decimal(f"{float(number):.15g}").quantize(quantum, rounding=ROUND_HALF_UP))


def test_excel_round_is_excels() -> None:
    assert _excel_round(3 * 0.075, 2) == 0.23  # 0.22499999999999998 in binary
    assert _excel_round(1.005, 2) == 1.01
    assert _excel_round(-25.125, 2) == -25.13  # away from zero, like ROUND_HALF_UP
    assert _excel_round(0.0045, 2) == 0.0
    assert _excel_round(100.5, 0) == 101.0


@pytest.fixture(scope="module")
def excel_round_plugin() -> Iterator[str]:
    """A pycel plugin module whose ROUND is Excel's (plugins are looked up first).

    pycel (a test dependency, in requirements-dev.lock) evaluates the formulas."""
    from pycel.lib.function_helpers import excel_math_func

    name = "_invoiceflow_test_excel_round"
    module = types.ModuleType(name)
    module.round_ = excel_math_func(_excel_round)  # type: ignore[attr-defined]
    sys.modules[name] = module
    yield name
    del sys.modules[name]


def _binary_round(number: float, num_digits: float = 0) -> float:
    """ROUND on the binary value as its shortest decimal (``repr``), half away from zero: how
    LibreOffice rounds large amounts (``6320273454.789*50/100`` to 3160136727.394)."""
    quantum = Decimal(1).scaleb(-int(num_digits))
    return float(Decimal(repr(float(number))).quantize(quantum, rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def binary_round_plugin() -> Iterator[str]:
    from pycel.lib.function_helpers import excel_math_func

    name = "_invoiceflow_test_binary_round"
    module = types.ModuleType(name)
    module.round_ = excel_math_func(_binary_round)  # type: ignore[attr-defined]
    sys.modules[name] = module
    yield name
    del sys.modules[name]


def _load(data: bytes, data_only: bool = False) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=data_only)


def _compiler(data: bytes, plugin: str) -> Any:
    """A pycel compiler that evaluates every formula (given an openpyxl workbook, pycel reads
    no cached values; given a file name, it would return them instead of calculating)."""
    from pycel import ExcelCompiler

    return ExcelCompiler(excel=_load(data), plugins=[plugin])


class Layout:
    """Where things are on the Invoice sheet (the layout adapts to the invoice)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.head = next(
            r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "Description"
        )
        self.cols: dict[str, int] = {}
        for c in range(1, ws.max_column + 1):
            title = ws.cell(self.head, c).value
            if title:
                self.cols[title] = c
        self.ncols = len(self.cols)
        self.first = self.head + 1
        #: label -> coordinate of its value, for the totals block
        self.totals: dict[str, str] = {}
        for r in range(self.head + 1, ws.max_row + 1):
            label, value = ws.cell(r, self.ncols - 1).value, ws.cell(r, self.ncols).value
            if (
                isinstance(label, str)
                and not label.startswith("=")
                and isinstance(value, str)
                and value.startswith("=")
            ):
                self.totals[label] = ws.cell(r, self.ncols).coordinate
        #: label -> cell, for the invoice data in the header
        self.meta = {
            ws.cell(r, self.ncols - 1).value: ws.cell(r, self.ncols)
            for r in range(1, self.head)
            if ws.cell(r, self.ncols - 1).value
        }

    def total(self, prefix: str) -> str:
        found = [coord for label, coord in self.totals.items() if label.startswith(prefix)]
        assert len(found) == 1, (prefix, self.totals)
        return found[0]

    def letter(self, title: str) -> str:
        return str(openpyxl.utils.get_column_letter(self.cols[title]))

    def column_a(self) -> list[Any]:
        return [self.ws.cell(r, 1).value for r in range(1, self.ws.max_row + 1)]


#: the Tax sheet: a title row, an empty row, the header row, then one row per tax group
TAX_HEAD = 3
TAX_FIRST = TAX_HEAD + 1


def _dec(value: Any) -> Decimal:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _assert_figures(inv: Invoice, plugin: str) -> None:
    """Evaluate the workbook's formulas and compare every figure with compute_totals(); then
    compare every formula cell's cached value with what its formula evaluates to."""
    data = render_xlsx(inv)
    xl = _compiler(data, plugin)

    def ev(ref: str) -> Decimal:
        sheet_ref = ref if "!" in ref else f"Invoice!{ref}"
        return _dec(xl.evaluate(sheet_ref))

    _assert_totals(inv, data, ev)
    _assert_cached_values_are_evaluated(data, xl)


def _assert_cached_figures(inv: Invoice) -> None:
    """Read the workbook as a viewer that does not calculate would (openpyxl's
    ``data_only=True``: the cached values) and compare every figure with compute_totals()."""
    data = render_xlsx(inv)
    wb = _load(data, data_only=True)
    unit = Decimal(1).scaleb(-minor_digits(inv.currency))

    def cached(ref: str) -> Decimal:
        sheet, _, coord = ref.rpartition("!")
        value = wb[sheet or "Invoice"][coord.replace("$", "")].value
        assert isinstance(value, int | float) and not isinstance(value, bool), (ref, value)
        number = Decimal(str(value))
        assert number.quantize(unit) == number, (ref, value)  # no more digits than the money
        return number.quantize(unit)

    _assert_totals(inv, data, cached)


def _formula_cells(wb: Any) -> Iterator[Any]:
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":
                    yield c


def _assert_cached_values_are_evaluated(data: bytes, xl: Any) -> None:
    """Every formula cell's cached value is exactly (as a number) what the formula computes."""
    values = _load(data, data_only=True)
    cells = list(_formula_cells(_load(data)))
    assert cells
    for c in cells:
        ref = f"{c.parent.title}!{c.coordinate}"
        value = values[c.parent.title][c.coordinate].value
        assert isinstance(value, int | float) and not isinstance(value, bool), (ref, value)
        evaluated = xl.evaluate(ref)
        assert _dec(value) == _dec(evaluated), (ref, c.value, value, evaluated)


def _assert_totals(inv: Invoice, data: bytes, ev: Callable[[str], Decimal]) -> None:
    """Every figure of the workbook (``ev`` reads one, by reference) is compute_totals()'s."""
    t: Totals = compute_totals(inv)
    lay = Layout(_load(data)["Invoice"])

    has_line_discounts = "Line discount" in lay.cols
    for i, lt in enumerate(t.lines):
        r = lay.first + i
        assert ev(f"{lay.letter('Amount')}{r}") == lt.amount, (i, lt)
        if has_line_discounts:
            assert ev(f"{lay.letter('Gross')}{r}") == lt.gross, (i, lt)
            assert ev(f"{lay.letter('Line discount')}{r}") == lt.discount, (i, lt)

    assert ev(lay.total("Subtotal")) == t.subtotal
    # a row for each figure the PDF prints (the view's rows): none for one that is nothing
    if t.line_discounts:
        # deductions are negative figures (the view's one sign convention)
        assert ev(lay.total("incl. line discounts")) == -t.line_discounts
    else:
        assert "incl. line discounts" not in lay.totals
    if t.discount:
        assert ev(lay.total("Discount")) == -t.discount
    else:
        assert not any(label.startswith("Discount") for label in lay.totals)
    if t.shipping:
        assert ev(lay.total("Shipping")) == t.shipping
    else:
        assert not any(label.startswith("Shipping") for label in lay.totals)
    # one tax line per taxed group, each the Tax sheet's figure
    ws = lay.ws
    tax_lines = {}
    for label, coord in lay.totals.items():
        m = re.fullmatch(r"=Tax!\$F\$(\d+)", ws[coord].value)
        if m:
            tax_lines[int(m.group(1)) - TAX_FIRST] = (label, coord)
    printed = tax_groups(t)
    assert sorted(tax_lines) == [i for i, g in enumerate(t.groups) if g in printed]
    for i, (label, coord) in tax_lines.items():
        g = t.groups[i]
        assert ev(coord) == g.tax, (label, g)
    assert ev(lay.total("Total")) == t.total
    if t.amount_paid:
        assert ev(lay.total("Amount paid")) == -t.amount_paid
    else:  # no row for nothing paid, as in the PDF
        assert "Amount paid" not in lay.totals
    assert ev(lay.total("Balance due")) == t.balance_due

    tax = _load(data)["Tax"]
    for i, g in enumerate(t.groups):
        r = TAX_FIRST + i
        rate = tax.cell(r, 1).value
        assert (rate is None) if g.rate is None else (_dec(rate) == g.rate), (rate, g)
        for col, expected in zip(
            "BCDEF", (g.lines, g.discount, g.shipping, g.base, g.tax), strict=True
        ):
            assert ev(f"Tax!{col}{r}") == expected, (col, g)
    r = TAX_FIRST + len(t.groups)
    assert tax.cell(r, 1).value == "Total"
    assert ev(f"Tax!B{r}") == t.subtotal
    assert ev(f"Tax!C{r}") == t.discount
    assert ev(f"Tax!D{r}") == t.shipping
    assert ev(f"Tax!E{r}") == sum((g.base for g in t.groups), D(0))
    assert ev(f"Tax!F{r}") == t.tax


# --------------------------------------------------------------------------- the figures


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_formulas_compute_the_totals(name: str, excel_round_plugin: str) -> None:
    _assert_figures(EDGE_CASES[name], excel_round_plugin)


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_formulas_round_the_exact_figure_not_the_binary_noise(
    name: str, binary_round_plugin: str
) -> None:
    """A ROUND that sees the binary value (LibreOffice's, at large amounts) still gives
    compute_totals()'s figures: each product is first rounded to its exact decimals."""
    _assert_figures(EDGE_CASES[name], binary_round_plugin)


def test_full_invoice_figures(excel_round_plugin: str) -> None:
    _assert_figures(FULL, excel_round_plugin)


@pytest.mark.parametrize("name", [*EDGE_CASES, "full"])
def test_cached_values_are_the_totals(name: str) -> None:
    """What a viewer that does not recalculate shows (previews, data_only, pandas): every
    line amount and total, and the Tax sheet, with the figures of compute_totals()."""
    _assert_cached_figures(FULL if name == "full" else EDGE_CASES[name])


def test_cached_values_cover_the_cases_asked_for() -> None:
    """The cases above include JPY, KWD, credit lines and an amount discount split across
    rates (guards against the list being trimmed)."""
    currencies = {inv.currency for inv in EDGE_CASES.values()}
    assert {"JPY", "KWD"} <= currencies
    assert any(it.credit for inv in EDGE_CASES.values() for it in inv.items)
    assert any(
        inv.discount is not None
        and inv.discount.kind == "amount"
        and len(compute_totals(inv).groups) > 2
        for inv in EDGE_CASES.values()
    )


def test_formula_cells_carry_numeric_cached_values() -> None:
    """In the XML: every formula is followed by its value, as a number (no t="str"), and the
    workbook still has spreadsheets recalculate everything on load."""
    data = render_xlsx(FULL)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [z.read(f"xl/worksheets/sheet{i}.xml").decode() for i in (1, 2)]
        workbook = z.read("xl/workbook.xml").decode()
    assert re.search(r'<calcPr [^>]*fullCalcOnLoad="1"', workbook)
    for xml in sheets:
        formula_cells = re.findall(r"<c [^>]*><f>.*?</c>", xml)
        assert formula_cells
        for c in formula_cells:
            assert re.fullmatch(
                r'<c r="[A-Z]+\d+"( s="\d+")?><f>[^<]+</f><v>-?\d+(\.\d+)?</v></c>', c
            ), c
    ws = _load(data, data_only=True)["Invoice"]
    lay = Layout(_load(data)["Invoice"])
    assert ws[lay.total("Total")].value == 3576.1
    assert ws[lay.total("Balance due")].value == 3076.1
    assert ws[f"{lay.letter('Amount')}{lay.first}"].value == 2280


def test_no_negative_zero_cached() -> None:
    """A credit line that rounds to nothing is cached as 0 (a spreadsheet's ROUND gives 0)."""
    inv = invoice([item("-1", "0.004", credit=True), item("1", "1.00")])
    assert compute_totals(inv).lines[0].amount.is_signed()  # Decimal keeps the sign: -0.00
    data = render_xlsx(inv)
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>-0" not in xml
    _assert_cached_figures(inv)


def _random_invoice(rng: random.Random) -> Invoice:
    currency = rng.choice(["EUR", "USD", "JPY", "KWD"])
    rates = [None, "0", "5", "7", "7.5", "19", "21"]

    def amount(most: int = 100000, places: int = 4) -> Decimal:
        return D(rng.randint(1, most)) / D(10) ** rng.randint(0, places)

    items = []
    for _ in range(rng.randint(1, 7)):
        qty = D(rng.randrange(1, 40, 2)) / D(10) ** rng.randint(0, 2)
        price = amount(20000, 3)
        credit = rng.random() < 0.15
        if credit:
            qty = -qty
        disc = None
        roll = rng.random()
        if roll < 0.2:
            disc = Discount("percent", D(rng.randint(1, 400)) / 10)
        elif roll < 0.3:
            disc = Discount("amount", amount(500, 3))
        rate = rng.choice(rates)
        items.append(
            LineItem(
                "x",
                qty,
                price,
                tax_rate=None if rate is None else D(rate),
                discount=disc,
                credit=credit,
            )
        )
    kw: dict[str, Any] = {"currency": currency}
    roll = rng.random()
    if roll < 0.35:
        kw["discount"] = Discount("percent", D(rng.randint(1, 300)) / 10)
    elif roll < 0.7:
        kw["discount"] = Discount("amount", amount(5000, 3))
    if rng.random() < 0.6:
        kw["shipping"] = amount(5000, 3)
        rate = rng.choice(rates)
        kw["shipping_tax_rate"] = None if rate is None else D(rate)
    if rng.random() < 0.5:
        kw["amount_paid"] = amount(100000, 3)
    return invoice(items, **kw)


@pytest.mark.parametrize("seed", range(24))
def test_random_invoices_compute_the_totals(seed: int, excel_round_plugin: str) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    inv = _random_invoice(rng)
    _assert_figures(inv, excel_round_plugin)
    _assert_cached_figures(inv)


def test_every_figure_is_a_rounded_formula() -> None:
    wb = _load(render_xlsx(FULL))
    lay = Layout(wb["Invoice"])
    ws = lay.ws
    for r in range(lay.first, lay.first + len(FULL.items)):
        for title in ("Gross", "Line discount", "Amount"):
            value = ws[f"{lay.letter(title)}{r}"].value
            assert value.startswith("=ROUND(") and value.endswith(",2)"), value
    amount = ws[f"{lay.letter('Amount')}{lay.first + 1}"].value
    q, p, g = lay.letter("Quantity"), lay.letter("Unit price"), lay.letter("Discount %")
    r = lay.first + 1
    assert amount == (
        f"=ROUND(ROUND({q}{r}*{p}{r}-({q}{r}*{p}{r}*{g}{r}/100+SIGN({q}{r}*{p}{r})*H{r}),3),2)"
    )
    expected = {
        "Subtotal",
        "incl. line discounts",
        "Discount (5%)",
        "Shipping (VAT 19%)",
        "VAT 7% on €221.82",
        "VAT 19% on €2,802.32",
        "Total",
        "Amount paid",
        "Balance due",
    }
    assert set(lay.totals) == expected
    a = lay.letter("Amount")
    assert ws[lay.totals["Subtotal"]].value == (
        f"=ROUND(SUM({a}{lay.first}:{a}{lay.first + len(FULL.items) - 1}),2)"
    )
    assert ws[lay.totals["VAT 19% on €2,802.32"]].value.startswith("=Tax!")
    assert ws[lay.totals["Shipping (VAT 19%)"]].value == "=ROUND(25.00,2)"
    for label in ("Total", "Amount paid", "Balance due"):
        assert ws[lay.totals[label]].value.startswith("=ROUND(")
    # one sign convention: the block adds up, each deduction a negative figure
    v = lay.totals
    assert ws[v["Discount (5%)"]].value == "=-Tax!$C$7"
    assert ws[v["Amount paid"]].value == "=ROUND((-500.00),2)"
    total, paid = ws[v["Total"]].coordinate, ws[v["Amount paid"]].coordinate
    assert ws[v["Balance due"]].value == f"=ROUND({total}+{paid},2)"

    tax = wb["Tax"]
    # a title row with the document and its number, then the table
    assert tax["A1"].value == "Tax breakdown \u00b7 Invoice INV-7" and tax["A2"].value is None
    assert [c.value for c in tax[TAX_HEAD]][:6] == [
        "Rate",
        "Lines",
        "Discount share",
        "Shipping",
        "Base",
        "Tax",
    ]
    rng = f"Invoice!${a}${lay.first}:${a}${lay.first + len(FULL.items) - 1}"
    # not taxed, 7 %, 19 %: the groups of compute_totals(), in its order
    assert tax["A4"].value is None and tax["G4"].value == "not taxed"
    assert tax["B4"].value.startswith("=ROUND(SUMIF(Invoice!$") and f',"",{rng}),2)' in (
        tax["B4"].value
    )
    assert tax["B5"].value.endswith(f",A5,{rng}),2)")
    assert tax["F4"].value == 0
    assert tax["F5"].value == "=ROUND(ROUND(E5*A5/100,4),2)"
    assert tax["E6"].value == "=ROUND(B6-C6+D6,2)"
    assert tax["D6"].value.startswith("=Invoice!$")
    assert tax["C5"].value == "=ROUND(ROUND(B5*$B$9/100,4),2)"
    assert tax["A9"].value == "Invoice discount (percent)" and tax["B9"].value == 5
    assert tax["A7"].value == "Total"
    assert all(tax[f"{c}7"].value.startswith("=ROUND(SUM(") for c in "BCDEF")


def test_amount_discount_split_formulas() -> None:
    tax = _load(render_xlsx(EDGE_CASES["amount discount split with a remainder"]))["Tax"]
    sub = tax["C4"].value.split("=0")[0][len("=IF(") :]
    assert sub.startswith("Invoice!$")
    assert tax["C4"].value == f"=IF({sub}=0,0,ROUND($C$7*B4/{sub},2))"
    assert tax["C5"].value == f"=IF({sub}=0,0,ROUND($C$7*B5/{sub},2))"
    # the last group takes the remainder, so the shares add up to the discount exactly
    assert tax["C6"].value == "=ROUND($C$7-SUM(C4:C5),2)"
    assert tax["C7"].value == f"=IF({sub}=0,0,ROUND($B$9,2))"
    assert tax["A9"].value == "Invoice discount (amount)" and tax["B9"].value == 10


# --------------------------------------------------------------------------- the sheet


def test_sheets_and_header_information() -> None:
    wb = _load(render_xlsx(FULL))
    assert wb.sheetnames == ["Invoice", "Tax"]
    ws = wb["Invoice"]
    lay = Layout(ws)
    col_a = lay.column_a()
    assert col_a[0] == "Invoice INV-7"
    for text in (
        "Nordlicht GmbH",
        "Anna Schmidt",
        "Friedrichstraße 123",
        "10117 Berlin",
        "billing@nordlicht.example",
        "+49 30 1234567",
        "Tax ID: DE123456789",
        "Bill to",
        "Acme Ltd.",
        "Zoë Łukasz",
        "42 Harbour Road",
        "Tax ID: IE9876543W",
        "Notes",
        "Thank you!",
        "See you soon.",
        "Terms and conditions",
        "Payable within 30 days.",
        "Payment details",
        "Bank: Sparkasse",
        "IBAN: DE89370400440532013000",
        "BIC: COBADEFFXXX",
        "Reference: INV-7",
    ):
        assert text in col_a, text
    assert ws.cell(col_a.index("Nordlicht GmbH") + 1, 1).font.b
    # Ship To beside Bill To
    bill_row = col_a.index("Bill to") + 1
    ship = [c.value for c in ws[bill_row] if c.value == "Ship to"]
    assert ship == ["Ship to"]
    ship_col = next(c.column for c in ws[bill_row] if c.value == "Ship to")
    assert ws.cell(bill_row + 1, ship_col).value == "Acme Warehouse"
    assert ws.cell(bill_row + 2, ship_col).value == "Unit 7, Docklands"

    meta = lay.meta
    assert meta["Invoice number"].value == "INV-7"
    issue = meta["Issue date"]
    assert issue.is_date and issue.value == datetime(2026, 3, 5)
    # the locale's CLDR short date with the year in full (en-GB: dd/MM/y), as the PDF prints it
    assert issue.number_format == "dd\\/mm\\/yyyy"
    assert meta["Due date"].is_date and meta["Due date"].value == datetime(2026, 4, 4)
    assert meta["Payment terms"].value == "Net 30"
    assert meta["Currency"].value == "EUR"


def test_payment_terms_without_due_date_and_no_ship_to() -> None:
    inv = invoice([item("1", "1.00")], due_date=None, payment_terms="Due on receipt")
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    assert "Due date" not in lay.meta
    assert lay.meta["Payment terms"].value == "Due on receipt"
    assert not any(c.value == "Ship To" for row in ws.iter_rows() for c in row)


@pytest.mark.parametrize(
    ("accent", "text"),
    [("#FFFF00", "FF1E2329"), ("#F5F5DC", "FF1E2329"), ("#0F766E", WHITE), ("#C0392B", WHITE)],
)
def test_the_header_row_text_on_the_accent_is_what_the_pdf_sets(accent: str, text: str) -> None:
    """On a light accent the header row's text is ink, on a dark one white: as the PDF's accent
    bars (one rule, render/contrast.py). It was always white: white on yellow in the workbook
    where the PDF prints ink."""
    from dataclasses import replace

    from reportlab.lib import colors

    from invoiceflow.domain.model import Branding
    from invoiceflow.render.pdf import INK, _on
    from invoiceflow.render.pdf import WHITE as PDF_WHITE

    ws = _load(render_xlsx(replace(FULL, branding=Branding(accent_color=accent))))["Invoice"]
    lay = Layout(ws)
    for c in range(1, lay.ncols + 1):
        cell = ws.cell(lay.head, c)
        assert cell.fill.fgColor.rgb == "FF" + accent[1:]
        assert cell.font.color.rgb == text
    expected_pdf = PDF_WHITE if text == WHITE else INK
    assert _on(colors.HexColor(accent)) == expected_pdf


def test_table_header_style_freeze_filter_and_widths() -> None:
    ws = _load(render_xlsx(FULL))["Invoice"]
    lay = Layout(ws)
    assert list(lay.cols) == [
        "Description",
        "SKU",
        "Quantity",
        "Unit",
        "Unit price",
        "Tax rate",
        "Discount %",
        "Discount amount",
        "Gross",
        "Line discount",
        "Amount",
    ]
    for c in range(1, lay.ncols + 1):
        cell = ws.cell(lay.head, c)
        assert cell.fill.fill_type == "solid"
        assert cell.fill.fgColor.rgb == NAVY
        assert cell.font.b is True
        assert cell.font.color.rgb == WHITE
    assert ws.freeze_panes == f"A{lay.head + 1}"
    last = lay.head + len(FULL.items)
    assert ws.auto_filter.ref == f"A{lay.head}:K{last}"
    widths = {k: ws.column_dimensions[lay.letter(k)].width for k in lay.cols}
    assert widths["Description"] >= 28
    assert all(w >= 9 for w in widths.values())
    assert widths["Amount"] >= 13


def test_unused_columns_are_left_out() -> None:
    ws = _load(render_xlsx(invoice([item("1", "2.00"), item("2", "3.00", "7")])))["Invoice"]
    lay = Layout(ws)
    assert list(lay.cols) == ["Description", "Quantity", "Unit price", "Tax rate", "Amount"]
    assert ws[f"E{lay.first}"].value == f"=ROUND(B{lay.first}*C{lay.first},2)"


def test_print_setup() -> None:
    wb = _load(render_xlsx(FULL))
    ws = wb["Invoice"]
    lay = Layout(ws)
    assert ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    # portrait, as wide as the page, however many columns (11 here)
    assert ws.page_setup.orientation == "portrait"
    assert ws.page_setup.paperSize == 9  # A4 for en-GB
    assert ws.print_title_rows == f"${lay.head}:${lay.head}"
    assert ws.print_area == f"'Invoice'!$A$1:$K${ws.max_row}"
    assert "&P" in ws.oddFooter.center.text
    narrow = _load(render_xlsx(invoice([item("1", "2.00")], locale="en-US")))["Invoice"]
    assert narrow.page_setup.orientation == "portrait"
    assert narrow.page_setup.paperSize == 1  # Letter for en-US
    tax = wb["Tax"]
    assert tax.page_setup.fitToWidth == 1 and tax.sheet_properties.pageSetUpPr.fitToPage
    assert tax.page_setup.fitToHeight == 0 and tax.page_setup.orientation == "portrait"
    assert tax.page_setup.paperSize == 9
    assert tax.print_title_rows == "$3:$3" and tax.freeze_panes == "A4"


@pytest.mark.parametrize(
    ("currency", "locale", "money", "absent"),
    [
        ("EUR", "en-US", '"€"#,##0.00', None),
        ("USD", "en-US", '"$"#,##0.00', None),
        ("EUR", "de-DE", '#,##0.00"\xa0€"', None),
        ("JPY", "en-US", '"¥"#,##0', "."),
        ("KWD", "en-US", '"KWD\xa0"#,##0.000', None),
    ],
)
def test_currency_number_formats(
    currency: str, locale: str, money: str, absent: str | None
) -> None:
    inv = invoice(
        [item("1", "5.125"), item("2", "3")],
        currency=currency,
        locale=locale,
        discount=Discount("percent", D("5")),
    )
    wb = _load(render_xlsx(inv))
    ws = wb["Invoice"]
    lay = Layout(ws)
    amount = ws[f"{lay.letter('Amount')}{lay.first}"]
    assert amount.number_format == money
    # every figure of the totals in the money format (the discount is a negative figure)
    for label, coord in lay.totals.items():
        assert ws[coord].number_format == money, label
    # unit prices keep their own decimals, at least the currency's
    prices = [ws[f"{lay.letter('Unit price')}{lay.first + i}"].number_format for i in (0, 1)]
    assert "#,##0.000" in prices[0]
    assert prices[1] == money
    if absent:
        assert absent not in money
    for row in wb["Tax"].iter_rows(min_row=TAX_FIRST, max_row=TAX_FIRST, min_col=2, max_col=6):
        assert all(c.number_format == money for c in row)


@pytest.mark.parametrize(
    ("currency", "locale", "money", "negative"),
    [
        # CLDR's negative pattern puts the minus elsewhere than before the whole figure: the
        # format's negative section says where, as the PDF prints it (Excel would show
        # "-CHF 500.00" from the positive section alone)
        ("CHF", "de-CH", '"CHF\xa0"#,##0.00;"CHF-"#,##0.00', "CHF-500.00"),
        ("EUR", "nl-NL", '"€\xa0"#,##0.00;"€\xa0-"#,##0.00', "€\xa0-500,00"),
        # a minus before the whole figure: the positive section alone shows it so
        ("EUR", "de-DE", '#,##0.00"\xa0€"', "-500,00\xa0€"),
        ("USD", "en-US", '"$"#,##0.00', "-$500.00"),
    ],
)
def test_negative_amounts_show_as_the_pdf_prints_them(
    currency: str, locale: str, money: str, negative: str
) -> None:
    inv = invoice(
        [item("1", "1000.00")],
        currency=currency,
        locale=locale,
        amount_paid=D("500.00"),
        discount=Discount("amount", D("5.00")),
    )
    view = build_view(inv, compute_totals(inv))
    paid = view.total_row("paid")
    assert paid is not None and paid.text == negative
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    assert ws[lay.total("Amount paid")].number_format == money
    assert ws[lay.total("Discount")].number_format == money
    assert ws[f"{lay.letter('Unit price')}{lay.first}"].number_format == money


def test_number_cells_show_their_decimals() -> None:
    inv = invoice([item("2", "1.00", "7.5"), item("0.125", "8.00", "19")])
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    q, r = lay.letter("Quantity"), lay.letter("Tax rate")
    assert ws[f"{q}{lay.first}"].number_format == "#,##0"
    assert ws[f"{q}{lay.first + 1}"].number_format == "#,##0.000"
    assert ws[f"{r}{lay.first}"].number_format == '0.0"%"'
    assert ws[f"{r}{lay.first + 1}"].number_format == '0"%"'
    assert ws[f"{r}{lay.first}"].value == 7.5


@pytest.mark.parametrize(
    ("locale", "rate_format", "printed"),
    [
        ("de-DE", '0"\xa0%"', "19\xa0%"),
        ("fr-FR", '0"\xa0%"', "19\xa0%"),
        ("tr-TR", '"%"0', "%19"),
        ("en-GB", '0"%"', "19%"),
    ],
)
def test_rates_show_as_the_pdf_prints_them(locale: str, rate_format: str, printed: str) -> None:
    inv = invoice([item("2", "1.00", "19")], locale=locale)
    assert build_view(inv, compute_totals(inv)).lines[0].tax == printed
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    assert ws[f"{lay.letter('Tax rate')}{lay.first}"].number_format == rate_format
    assert _load(render_xlsx(inv))["Tax"].cell(TAX_FIRST, 1).number_format == rate_format


def test_untaxed_lines_leave_the_rate_empty() -> None:
    inv = EDGE_CASES["zero rate and untaxed, untaxed shipping"]
    wb = _load(render_xlsx(inv))
    lay = Layout(wb["Invoice"])
    rates = [wb["Invoice"][f"{lay.letter('Tax rate')}{lay.first + i}"].value for i in range(3)]
    assert rates == [0, None, 19]
    tax = wb["Tax"]
    assert [tax.cell(r, 1).value for r in (4, 5, 6)] == [None, 0, 19]
    assert tax["G4"].value == "not taxed"
    assert tax["D4"].value.startswith("=Invoice!$")  # untaxed shipping joins the untaxed group
    assert {label.split(" on ")[0] for label in lay.totals} >= {"VAT 0%", "VAT 19%"}


def test_document_properties() -> None:
    wb = _load(render_xlsx(FULL))
    p = wb.properties
    assert p.title == "Invoice INV-7"
    assert p.creator == "Anna Schmidt"
    assert "INV-7" in p.subject and "Acme Ltd." in p.subject
    assert p.created == datetime(2026, 3, 5)
    assert p.modified == datetime(2026, 3, 5)
    assert p.category == "Invoice"


def test_output_is_reproducible() -> None:
    first = render_xlsx(FULL)
    assert render_xlsx(FULL) == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 3, 5, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    assert "2026-03-05T00:00:00Z" in core
    other = render_xlsx(invoice(FULL.items, issue_date=date(2026, 3, 6)))
    assert other != first


def test_old_issue_date_clamps_zip_time() -> None:
    data = render_xlsx(invoice([item("1", "1.00")], issue_date=date(1975, 1, 2)))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 2, 0, 0, 0)}
    assert _load(data).properties.created == datetime(1975, 1, 2)


def test_user_text_is_never_a_formula() -> None:
    inv = invoice(
        [
            item("1", "1.00", description='=HYPERLINK("http://x")'),
            item("1", "1.00", description="#N/A"),
            item("1", "1.00", description="bell\x07 and\x00 nul"),
            item("1", "1.00", description="  <b>Fish & Chips</b> ]]> \t"),
            item("1", "1.00", description="Grüße ✓ 日本 🧾"),
        ],
        notes="=1+1",
        seller=Party(name="=CMD()"),
    )
    data = render_xlsx(inv)
    ws = _load(data)["Invoice"]
    lay = Layout(ws)
    descs = [ws.cell(lay.first + i, 1) for i in range(3)]
    assert descs[0].value == '=HYPERLINK("http://x")' and descs[0].data_type == "s"
    assert descs[1].value == "#N/A" and descs[1].data_type == "s"
    assert descs[2].value == "bell and nul"  # control characters cannot be stored
    assert ws.cell(lay.first + 3, 1).value == "  <b>Fish & Chips</b> ]]> \t"
    assert ws.cell(lay.first + 4, 1).value == "Grüße ✓ 日本 🧾"
    assert "=1+1" in lay.column_a()
    assert "=CMD()" in lay.column_a()
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>1+1</f>" not in sheet_xml and "<f>CMD()</f>" not in sheet_xml


def test_long_texts_wrap_on_taller_rows() -> None:
    inv = invoice(
        [
            item("1", "1.00", description="short"),
            item("1", "1.00", description="long " * 30),
            item("1", "1.00", description="two\nlines"),
        ],
        payment_terms="Net 30 days, 2 % discount if paid within 10 days of the date",
        notes="A short note.\n" + "A long note that needs more than one line. " * 8,
    )
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    rows = [lay.first + i for i in range(3)]
    assert [bool(ws.cell(r, 1).alignment.wrap_text) for r in rows] == [False, True, True]
    heights = [ws.row_dimensions[r].height for r in rows]
    assert heights[0] is None and heights[1] >= 45 and heights[2] == 30
    terms = lay.meta["Payment terms"]
    assert terms.alignment.wrap_text and ws.row_dimensions[terms.row].height >= 30
    col_a = lay.column_a()
    assert inv.notes is not None
    long_note = col_a.index(inv.notes.splitlines()[1]) + 1
    short_note = col_a.index("A short note.") + 1
    assert f"A{long_note}:K{long_note}" not in ws.merged_cells  # 5 columns: A..E
    assert f"A{long_note}:E{long_note}" in ws.merged_cells
    assert ws.cell(long_note, 1).alignment.wrap_text and ws.row_dimensions[long_note].height
    assert f"A{short_note}:E{short_note}" not in ws.merged_cells


def test_more_digits_than_a_spreadsheet_holds_is_a_render_error() -> None:
    inv = invoice([item("1.0000000000000001", "2.00")])
    with pytest.raises(RenderError) as err:
        render_xlsx(inv)
    assert err.value.status == 422
    assert err.value.problems[0].pointer == "/items/0/quantity"


def test_dates_before_1900_are_a_render_error() -> None:
    with pytest.raises(RenderError) as err:
        render_xlsx(invoice([item("1", "1.00")], issue_date=date(1899, 12, 31)))
    assert [p.pointer for p in err.value.problems] == ["/issue_date"]


def test_unknown_locale_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render_xlsx(invoice([item("1", "1.00")], locale="xx-YY"))


def test_many_lines() -> None:
    items = tuple(
        item(str(i % 5 + 1), f"{i % 13}.{i % 100:02d}", ("7", "19", None)[i % 3])
        for i in range(1000)
    )
    inv = invoice(items)
    ws = _load(render_xlsx(inv))["Invoice"]
    lay = Layout(ws)
    last = lay.head + 1000
    assert ws.auto_filter.ref == f"A{lay.head}:E{last}"
    assert ws[f"E{last}"].value == f"=ROUND(B{last}*C{last},2)"
    assert ws[lay.totals["Subtotal"]].value == f"=ROUND(SUM(E{lay.first}:E{last}),2)"


def test_sample_invoice_fixture_renders(sample_invoice: Any, excel_round_plugin: str) -> None:
    """The shared sample (EUR/de-DE, logo, two rates, both discounts) evaluates exactly."""
    for inv in (sample_invoice(), sample_invoice(n_items=40, currency="KWD", locale="ar-KW")):
        _assert_figures(inv, excel_round_plugin)
        _assert_cached_figures(inv)


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "events/examples/invoices").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_writer_writes_what_openpyxls_own_writer_writes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renderer's writer (stylesheet and app.xml made once, then reused) gives the same
    bytes as openpyxl's ExcelWriter, for a first workbook and for one whose stylesheet comes
    from the cache: an openpyxl upgrade that changes its writer shows up here."""
    from openpyxl.writer.excel import ExcelWriter

    from invoiceflow.render import xlsx

    inv = parse_invoice(path.read_bytes()).invoice
    monkeypatch.setattr(xlsx, "_STYLESHEETS", {})
    first = render_xlsx(inv)
    assert len(xlsx._STYLESHEETS) == 1  # made once...
    again = render_xlsx(inv)
    assert len(xlsx._STYLESHEETS) == 1  # ...and reused
    monkeypatch.setattr(xlsx, "_WRITER", ExcelWriter)
    assert render_xlsx(inv) == first == again


def test_stylesheets_differ_with_the_styles(sample_invoice: Any) -> None:
    """Two invoices whose styles differ (currency digits, accent colour...) get their own
    stylesheets from the cache, never each other's."""

    eur = render_xlsx(sample_invoice())
    kwd = render_xlsx(sample_invoice(currency="KWD"))
    with zipfile.ZipFile(io.BytesIO(eur)) as a, zipfile.ZipFile(io.BytesIO(kwd)) as b:
        assert a.read("xl/styles.xml") != b.read("xl/styles.xml")
        assert "0.000" in b.read("xl/styles.xml").decode()
        assert "0.000" not in a.read("xl/styles.xml").decode()
    assert render_xlsx(sample_invoice()) == eur


# --------------------------------------------------------------------------- shown text

_FORMAT_TOKEN = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|[#0.,]|.', re.DOTALL)
_CONDITION = re.compile(r"\[(<=|>=|<>|<|>|=)(-?[0-9.]+)\]")
_COMPARE: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
}


def _sections(number_format: str) -> list[str]:
    sections, current = [], ""
    for token in _FORMAT_TOKEN.findall(number_format):
        if token == ";":
            sections.append(current)
            current = ""
        else:
            current += token
    return [*sections, current]


def _section_for(number_format: str, value: Decimal) -> tuple[str, bool]:
    """The section a spreadsheet shows ``value`` with, and whether it puts the minus sign
    before it. Without conditions, the second section shows negative numbers without their
    sign, the third zero. With conditions on the first two sections, a number is shown by
    the first whose condition it meets, else by the third; there Excel and LibreOffice
    differ on the sign (ECMA-376 leaves conditions to the application), so this refuses
    every figure for which they would show a different sign:

    * Excel (as SheetJS's SSF has it from Excel 2019): the sign in the third section, and in
      the first two unless the section's condition only a negative number can meet
      (``[<-5]``, ``[<0]``, ``[=-1]``);
    * LibreOffice (7.4, by its CSV export of the shown text): the sign in the first section
      only, never in the second or third."""
    sections = _sections(number_format)
    conditions = [_CONDITION.match(s) for s in sections]
    if not any(conditions):
        assert len(sections) <= 3, number_format
        if value < 0 and len(sections) >= 2:
            return sections[1], False
        if value == 0 and len(sections) == 3:
            return sections[2], False
        return sections[0], value < 0
    assert len(sections) == 3 and conditions[0] and conditions[1], number_format
    shown_by, excel_sign, libreoffice_sign = sections[2], value < 0, False
    for i, (section, condition) in enumerate(zip(sections, conditions[:2], strict=False)):
        assert condition is not None
        op, limit = condition.group(1), Decimal(condition.group(2))
        if _COMPARE[op](value, limit):
            negative_only = op in ("<", "=", "<=") and (limit < 0 or (op == "<" and limit == 0))
            shown_by = section[condition.end() :]
            excel_sign = value < 0 and not negative_only
            libreoffice_sign = value < 0 and i == 0
            break
    assert excel_sign == libreoffice_sign, ("Excel and LibreOffice differ", number_format, value)
    return shown_by, excel_sign


def shown(value: Decimal | float, number_format: str) -> str:
    """What a spreadsheet shows for a number cell in one of the workbook's number formats
    (quoted and escaped literals, the digit placeholders ``0`` and ``#``, the thousands
    separator ``,`` between placeholders, one ``.``), with the en-US separators."""
    value = _dec(value) if not isinstance(value, Decimal) else value
    section, sign = _section_for(number_format, value)
    parts: list[tuple[str, str]] = []  # (placeholder or "lit", text)
    grouped, decimals, seen_point = False, 0, False
    tokens = _FORMAT_TOKEN.findall(section)
    for i, token in enumerate(tokens):
        if token.startswith('"'):
            parts.append(("lit", token[1:-1]))
        elif token.startswith("\\"):
            parts.append(("lit", token[1:]))
        elif token in ("#", "0"):
            if seen_point:
                decimals += 1
            else:
                parts.append((token, ""))
        elif token == ".":
            seen_point = True
            parts.append((".", ""))
        elif token == ",":
            between = 0 < i < len(tokens) - 1 and {tokens[i - 1], tokens[i + 1]} <= {"#", "0"}
            assert between, (token, number_format)
            grouped = True
        else:
            raise AssertionError(f"not a format this helper knows: {number_format!r}")
    quantum = Decimal(1).scaleb(-decimals)
    figure = abs(value).quantize(quantum, rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{figure:f}".partition(".")
    integer = [p for p in parts if p[0] in ("#", "0")]
    if grouped:
        assert all(p[0] != "lit" for p in parts[parts.index(integer[0]) : parts.index(integer[-1])])
        whole = f"{int(whole):,}"
    digits = list(whole.lstrip("0") or ("0" if any(p[0] == "0" for p in integer) else ""))
    if grouped:
        digits = list(whole)
    # the integer placeholders take the digits from the right; the first takes the rest
    out = [text for _, text in parts]
    positions = [i for i, p in enumerate(parts) if p[0] in ("#", "0")]
    for n, i in enumerate(reversed(positions)):
        if n == len(positions) - 1:
            out[i] = "".join(digits)
        elif digits:
            out[i] = digits.pop()
        else:
            out[i] = "0" if parts[i][0] == "0" and not grouped else ""
    for i, p in enumerate(parts):
        if p[0] == ".":
            out[i] = "." + fraction
    return ("-" if sign else "") + "".join(out)


def test_shown_is_what_a_spreadsheet_shows() -> None:
    assert shown(D("1234.5"), '"$"#,##0.00') == "$1,234.50"
    assert shown(D("-1234.5"), '"$"#,##0.00') == "-$1,234.50"
    assert shown(D("-5"), '"CHF\xa0"#,##0.00;"CHF-"#,##0.00') == "CHF-5.00"
    assert shown(D("0.125"), "#,##0.000") == "0.125"
    lakh = "[>=10000000]##\\,##\\,##\\,##0.00;[>=100000]##\\,##\\,##0.00;#,##0.00"
    assert shown(D("12345678.9"), lakh) == "1,23,45,678.90"
    assert shown(D("123456.7"), lakh) == "1,23,456.70"
    assert shown(D("99999.99"), lakh) == "99,999.99"
    # a literal is shown where it stands, digits or not: hence the conditions
    assert shown(D("5"), "##\\,##\\,##0") == ",,5"
    # the sign of a negative number: Excel's and LibreOffice's rules (_section_for)
    assert shown(D("-5"), "[>1]0;[<-1]\\-0;0") == "-5"  # neither puts one there
    assert shown(D("-5"), "[<1]0;[>5]0;0") == "-5"  # both put one in the first section
    for differ in ("[<-1]0;[>1]0;0", "[>-1]0;[>-9]0;0", "[>=1]0;[>=9]0;0", lakh):
        with pytest.raises(AssertionError, match="differ"):
            shown(D("-123456.7"), differ)  # Excel shows it with its sign, LibreOffice not


_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))

#: amounts around each Indian group boundary (a lakh is 1,00,000, a crore 1,00,00,000)
_LAKH_PRICES = ("0.50", "999.99", "12345.67", "99999.99", "100000.00", "1234567.89", "99999999.99")


@pytest.mark.parametrize("locale", ["en-IN", "hi-IN", "bn-IN"])
def test_indian_grouping_shows_as_the_pdf_prints_it(locale: str) -> None:
    """en-IN's CLDR pattern is #,##,##0.00: the first group has 3 digits, the others 2
    (12,34,567.89). A spreadsheet format groups by 3 only; the workbook's amounts show the
    PDF's figures all the same, positive and negative (credit lines, deductions)."""
    items = [item("1", price, "18") for price in _LAKH_PRICES]
    items += [item("-1", price, "18", credit=True) for price in _LAKH_PRICES[3:]]
    items.append(item("1500000", "0.01", "18"))  # quantities: the decimal pattern's grouping
    inv = invoice(
        items,
        currency="INR",
        locale=locale,
        discount=Discount("amount", D("150000.00")),
        amount_paid=D("1234567.00"),
    )
    view = build_view(inv, compute_totals(inv))
    data = render_xlsx(inv)
    lay = Layout(_load(data)["Invoice"])
    ws = _load(data, data_only=True)["Invoice"]  # the figures (cached values)
    for i, line in enumerate(view.lines):
        cells = (("Amount", line.amount), ("Unit price", line.unit_price))
        for title, printed in (*cells, ("Quantity", line.quantity)):
            cell = ws[f"{lay.letter(title)}{lay.first + i}"]
            assert shown(cell.value, cell.number_format) == printed.translate(_BIDI), title
    for row in view.totals_rows:
        cell = ws[lay.total(row.label)]
        assert shown(cell.value, cell.number_format) == row.text.translate(_BIDI), row.label


@pytest.mark.parametrize("locale", ["en-IN", "de-CH", "en-US"])
def test_money_formats_show_every_digit_of_any_figure(locale: str) -> None:
    """Whatever figure a cell comes to (a spreadsheet recalculates when an input is changed),
    its format shows all its digits and its sign, never a stray separator."""
    inv = invoice(
        [item("1", "1234567.89"), item("-1", "250000.00", credit=True)],
        currency="INR",
        locale=locale,
        amount_paid=D("100.00"),
    )
    ws = _load(render_xlsx(inv), data_only=True)["Invoice"]
    formats = {c.number_format for row in ws.iter_rows() for c in row if c.data_type == "n"}
    money = {f for f in formats if "0.00" in f and "%" not in f}
    assert money
    for number_format in money:
        for figure in ("0", "0.5", "7", "123456.78", "-123456.78", "12345678901.5", "-99.99"):
            text = shown(D(figure), number_format)
            digits = re.sub(r"[^0-9]", "", text).lstrip("0")
            expected = re.sub(r"[^0-9]", "", f"{abs(D(figure)):.2f}").lstrip("0")
            assert digits == expected, (number_format, figure, text)
            assert text.count("-") == (D(figure) < 0), (number_format, figure, text)
            assert ",," not in text and not re.search(r"(^|[^0-9]),", text), (number_format, text)
