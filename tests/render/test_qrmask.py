"""invoiceflow.render.qrmask chooses the same QR mask as segno and masks the same modules:
for every version and error level, for the product's own payment codes, and in the PDFs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import segno
from segno import encoder as segno_encoder

from invoiceflow.render import qrmask
from support.fresh import words_per_mode

encoder: Any = segno_encoder  # untyped
SEGNO_OWN = qrmask.segno_own()


@contextmanager
def _segno_choosing(choose: Any) -> Iterator[None]:
    """segno's encoder with ``choose`` as its find_and_apply_best_mask for the block."""
    installed = encoder.find_and_apply_best_mask
    encoder.find_and_apply_best_mask = choose
    try:
        yield
    finally:
        encoder.find_and_apply_best_mask = installed


def _unmasked(payloads: list[tuple[Any, dict[str, Any]]]) -> list[tuple[list[bytearray], int]]:
    """The unmasked matrices segno hands to its mask choice for each (payload, options)."""
    caught: list[tuple[list[bytearray], int]] = []

    def spy(matrix: Any, width: int, height: int, proposed: int | None = None) -> Any:
        caught.append(([bytearray(row) for row in matrix], width))
        return SEGNO_OWN(matrix, width, height, proposed)

    with _segno_choosing(spy):
        for payload, options in payloads:
            segno.make_qr(payload, boost_error=False, **options)
    return caught


def _every_version() -> list[tuple[Any, dict[str, Any]]]:
    rng = random.Random(20261201)  # noqa: S311 - test data, not secrets
    out: list[tuple[Any, dict[str, Any]]] = []
    for version in range(1, 41):
        for error in "lmqh":
            # at most 7 characters: what version 1 holds at level H
            text = "".join(rng.choice("ABCxyz0189 -/:") for _ in range(rng.randint(1, 7)))
            out.append((text, {"version": version, "error": error}))
    for size in (1, 40, 120, 300, 700, 1500, 2300):  # byte mode, versions picked by segno
        out.append((bytes(rng.getrandbits(8) for _ in range(size)), {"error": "m"}))
    return out


def test_every_version_and_error_level_gets_segnos_mask_and_modules() -> None:
    matrices = _unmasked(_every_version())
    assert {width for _, width in matrices} == {17 + 4 * v for v in range(1, 41)}
    for matrix, width in matrices:
        before = [bytes(row) for row in matrix]
        mine = qrmask.find_and_apply_best_mask(matrix, width, width)
        assert [bytes(row) for row in matrix] == before  # the input is left as it was
        theirs = SEGNO_OWN([bytearray(row) for row in matrix], width, width)
        assert mine[0] == theirs[0], f"version {(width - 17) // 4}"
        assert list(mine[1]) == list(theirs[1])
        assert all(isinstance(row, bytearray) for row in mine[1])  # segno writes into them


def test_each_penalty_is_segnos_for_every_mask() -> None:
    """Not only the winner: the score of every mask equals segno's evaluate_mask."""
    matrix, width = _unmasked([("GiroCode and QR-bill sized payload " * 4, {"error": "m"})])[0]
    patterns = encoder.get_data_mask_functions(False)
    function = encoder.make_matrix(width, width)
    encoder.add_finder_patterns(function, width, width)
    encoder.add_alignment_patterns(function, width, width)
    function[-8][8] = 0x1
    data = [int.from_bytes(row, "big") for row in matrix]
    for number, mask in enumerate(qrmask._masks(width)):
        theirs = [bytearray(row) for row in matrix]
        encoder.apply_mask(
            theirs, patterns[number], width, width, lambda i, j: function[i][j] > 0x1
        )
        bits = [d ^ m for d, m in zip(data, mask, strict=True)]
        mine = [b.to_bytes(width, "big") for b in bits]
        assert mine == [bytes(row) for row in theirs]
        assert qrmask._penalty(mine, bits, width) == encoder.evaluate_mask(theirs, width, width)


def test_the_products_payment_codes_are_the_same_symbols() -> None:
    """The GiroCode and QR-bill payloads of the examples: the same modules and mask with
    segno's own choice and with this one installed (as the renderer runs it)."""
    from invoiceflow.domain.parse import parse_invoice
    from invoiceflow.domain.totals import compute_totals
    from invoiceflow.render import payqr

    payloads = []
    for name in ("ch-qr-bill.json", "de-xrechnung-b2g.json", "eur-two-rates.json"):
        with open(f"events/examples/invoices/{name}", "rb") as handle:
            invoice = parse_invoice(handle.read()).invoice
        totals = compute_totals(invoice)
        bill = payqr.swiss_bill(invoice, totals) if name.startswith("ch-") else None
        payload = bill.payload() if bill is not None else payqr.girocode_payload(invoice, totals)
        assert payload, name
        payloads.append(payload)
    for payload in payloads:
        with _segno_choosing(SEGNO_OWN):
            theirs = segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8")
        with _segno_choosing(qrmask.find_and_apply_best_mask):
            mine = segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8")
        assert (mine.version, mine.mask) == (theirs.version, theirs.mask)
        assert mine.matrix == theirs.matrix


def test_micro_codes_and_a_proposed_mask_are_segnos_own() -> None:
    with _segno_choosing(qrmask.find_and_apply_best_mask):
        micro = segno.make_micro("12345")
        proposed = segno.make_qr("invoiceflow", mask=5)
    with _segno_choosing(SEGNO_OWN):
        assert segno.make_micro("12345").matrix == micro.matrix
        assert segno.make_qr("invoiceflow", mask=5).matrix == proposed.matrix
    assert proposed.mask == 5


def test_install_replaces_segnos_function_once() -> None:
    qrmask.install()
    qrmask.install()
    assert encoder.find_and_apply_best_mask is qrmask.find_and_apply_best_mask
    assert qrmask.segno_own() is SEGNO_OWN is not qrmask.find_and_apply_best_mask


PDFS = """
import hashlib, sys
from segno import encoder
if sys.argv[1] == "segno":
    from invoiceflow.render import qrmask
    qrmask.install = lambda: None  # segno chooses, as before
from invoiceflow.domain import parse_invoice
from invoiceflow.render.pdf import render_pdf
words = []
for name in ("ch-qr-bill.json", "de-xrechnung-b2g.json", "fr-facturx.json"):
    data = open(f"events/examples/invoices/{name}", "rb").read()
    words.append(hashlib.sha256(render_pdf(parse_invoice(data).invoice)).hexdigest())
words.append(encoder.find_and_apply_best_mask.__module__)
print(" ".join(words))
"""


@pytest.mark.slow
def test_the_pdfs_are_the_same_bytes() -> None:
    """The QR-bill's and GiroCodes' PDFs, in fresh processes, with segno choosing the mask
    and with qrmask choosing it (as the renderer does)."""
    runs = words_per_mode(PDFS, ("segno", "qrmask"))
    assert runs["segno"][-1] == "segno.encoder"
    assert runs["qrmask"][-1] == "invoiceflow.render.qrmask"
    assert runs["segno"][:-1] == runs["qrmask"][:-1]
