"""segno's choice of a QR code's data mask, made the same way, without its per-module loops.

A QR code is masked with one of eight patterns; ISO/IEC 18004 (7.8.3) has the encoder try all
eight and keep the one with the lowest penalty score (runs and blocks of one colour, finder-like
patterns, the balance of dark and light). segno does this in pure Python, module by module: for
a GiroCode or a QR-bill (versions 5 to 13, 37 to 69 modules a side) 6-10 ms on the
benchmark's fastest machine and 11-23 ms on a slower one, a quarter to a third of such an
invoice's whole PDF (bench/analysis.md). :func:`find_and_apply_best_mask` is segno's function
of the same name with the same arguments and the same answer (the mask number and the masked
matrix), computed row by row and column by column on ``bytes`` and integers: each mask is one
XOR per row, runs of one colour (N1) are found with ``bytes.find``, 2 x 2 blocks (N2) are bit
operations, the 1:1:3:1:1 patterns (N3) are segno's own ``bytes.find`` scan and the dark
proportion (N4) is a bit count, each with segno's exact arithmetic, ties going to the lower
mask number as in segno.

:func:`install` puts it in ``segno.encoder`` (the module segno's encoder looks it up in at each
encoding) before the renderer makes a code. Micro QR codes, a mask the caller proposes and a
matrix with anything but dark and light modules go to segno's own function. The codes are the
same bytes as segno makes them (tests/render/test_qrmask.py compares both for every version and
error level and for the product's payloads); segno is pinned (requirements.lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

#: for penalty N1: one colour's modules -> 0x0, the other's and anything else -> 0x1
_AS_LIGHT = bytes(0 if value == 0x0 else 1 for value in range(256))
_AS_DARK = bytes(0 if value == 0x1 else 1 for value in range(256))
_FIVE = b"\x00" * 5
#: dark, light, dark, dark, dark, light, dark (penalty N3), as segno looks for it
_FINDER_LIKE = b"\x01\x00\x01\x01\x01\x00\x01"
_NOT_MODULES = b"\x00\x01"  # bytes.translate deletes these: what is left is not a module

_lock = threading.Lock()
_segno_own: Callable[..., Any] | None = None


def _encoder() -> Any:
    """segno's encoder module (untyped: its functions are called as Any)."""
    from segno import encoder

    return encoder


def install() -> None:
    """Make segno's encoder use :func:`find_and_apply_best_mask` (once per process)."""
    global _segno_own
    if _segno_own is not None:
        return
    encoder = _encoder()
    with _lock:
        if _segno_own is None:
            _segno_own = encoder.find_and_apply_best_mask
            encoder.find_and_apply_best_mask = find_and_apply_best_mask


def segno_own() -> Callable[..., Any]:
    """segno's own ``find_and_apply_best_mask`` (the one :func:`install` replaced)."""
    if _segno_own is not None:
        return _segno_own
    own: Callable[..., Any] = _encoder().find_and_apply_best_mask
    return own


def find_and_apply_best_mask(
    matrix: Sequence[bytearray], width: int, height: int, proposed_mask: int | None = None
) -> tuple[int, tuple[bytearray, ...]]:
    """segno's ``encoder.find_and_apply_best_mask``: the mask with the lowest penalty and the
    matrix it masks (new bytearrays; ``matrix`` is left as it is)."""
    if (
        width != height
        or width < 21  # a Micro QR code
        or proposed_mask is not None
        or any(row.translate(None, _NOT_MODULES) for row in matrix)
    ):
        chosen: tuple[int, tuple[bytearray, ...]] = segno_own()(
            matrix, width, height, proposed_mask
        )
        return chosen
    data = [int.from_bytes(row, "big") for row in matrix]
    best_score = -1
    best_mask = 0
    best_rows: list[bytes] = []
    for number, mask in enumerate(_masks(width)):
        bits = [d ^ m for d, m in zip(data, mask, strict=True)]
        rows = [b.to_bytes(width, "big") for b in bits]
        score = _penalty(rows, bits, width)
        if best_score < 0 or score < best_score:
            best_score, best_mask, best_rows = score, number, rows
    return best_mask, tuple(bytearray(row) for row in best_rows)


#: segno's 0x0/0x1 modules -> 0, its 0x2 ("not a function pattern yet") -> 1
_REGION = bytes(1 if value > 0x1 else 0 for value in range(256))
#: every data mask pattern of ISO/IEC 18004 repeats after 12 modules down and across (the
#: periods are 2, 3, 4 and 6): the table is taken over 12 x 12 modules
_PERIOD = 12


@cache
def _masks(size: int) -> tuple[tuple[int, ...], ...]:
    """For each of the eight data mask patterns, each row's XOR as an integer (module j in
    the low bit of byte j): the pattern's dark modules inside the encoding region, as segno's
    ``apply_mask`` flips them (the region is where segno's function patterns are not)."""
    encoder = _encoder()
    function = encoder.make_matrix(size, size)
    encoder.add_finder_patterns(function, size, size)
    encoder.add_alignment_patterns(function, size, size)
    function[-8][8] = 0x1
    region = [int.from_bytes(row.translate(_REGION), "big") for row in function]
    repeats = -(-size // _PERIOD)
    masks = []
    for pattern in encoder.get_data_mask_functions(False):
        rows = [
            int.from_bytes(
                (bytes(1 if pattern(i, j) else 0 for j in range(_PERIOD)) * repeats)[:size], "big"
            )
            for i in range(_PERIOD)
        ]
        masks.append(tuple(region[i] & rows[i % _PERIOD] for i in range(size)))
    return tuple(masks)


@cache
def _after_first(size: int) -> int:
    """The low bit of every module's byte but the first's, in a row of ``size`` modules."""
    return int.from_bytes(b"\x00" + b"\x01" * (size - 1), "big")


def _penalty(rows: list[bytes], bits: list[int], size: int) -> int:
    """segno's ``evaluate_mask`` (N1 + N2 + N3 + N4) of a square matrix of 0/1 modules:
    ``rows`` as bytes and as integers (``bits``, module j in the low bit of byte j)."""
    columns = [bytes(column) for column in zip(*rows, strict=True)]
    # N1: a run of 5 + i modules of one colour, in a row or a column, scores 3 + i
    n1 = _runs(b"\x02".join(rows)) + _runs(b"\x02".join(columns))
    # N2: 3 for each 2 x 2 block of one colour. A row as an integer holds module j in the low
    # bit of its byte j; shifted by a byte, each module meets the one before it (j >= 1:
    # _after_first), in the row, in the row above, and the two rows' modules with each other
    after_first = _after_first(size)
    same = [~(b ^ (b >> 8)) & after_first for b in bits]
    n2 = 3 * sum(
        (same[i] & same[i - 1] & ~(bits[i] ^ bits[i - 1])).bit_count() for i in range(1, size)
    )
    # N3: 40 for each finder-like pattern with four light modules on one side
    n3 = _finder_like(rows) + _finder_like(columns)
    # N4: 10 for each 5 % the dark modules are away from half of the symbol
    dark = sum(b.bit_count() for b in bits)
    percent = float(dark) / (size**2)
    n4 = 10 * int(abs(percent * 100 - 50) / 5)
    return n1 + n2 + n3 + n4


def _runs(lines: bytes) -> int:
    """Penalty N1 of ``lines`` (rows or columns joined by a byte that is neither colour, so
    that no run crosses from one line to the next): 3 + i for each run of 5 + i modules of
    one colour. Each colour's runs are found in a copy where it is 0x0 and all else 0x1."""
    score = 0
    for table in (_AS_LIGHT, _AS_DARK):
        seq = lines.translate(table)
        start = seq.find(_FIVE)
        while start != -1:
            end = seq.find(b"\x01", start)
            if end == -1:
                end = len(seq)
            score += end - start - 2
            start = seq.find(_FIVE, end)
    return score


#: four light modules: around and between the lines :func:`_finder_like` scans
_LIGHT4 = b"\x00" * 4


def _finder_like(lines: list[bytes]) -> int:
    """segno's ``n3_pattern_occurrences`` summed over ``lines``: 40 for each 1:1:3:1:1
    pattern with no dark module among the four modules before it or the four after it, a
    line's end counting as light (segno counts a pattern at either end of a line and looks
    at fewer modules near one). The lines are scanned as one, four light modules around each:
    the pattern has no two light modules in a row, so no match spans two lines. After a
    pattern that scored the scan goes on behind it, after one that did not at its third
    dark module (where the next can start), as segno's does."""
    seq = _LIGHT4 + _LIGHT4.join(lines) + _LIGHT4
    count = 0
    idx = seq.find(_FINDER_LIKE)
    while idx != -1:
        after = idx + 7
        if not any(seq[idx - 4 : idx]) or not any(seq[after : after + 4]):
            count += 40
            idx = seq.find(_FINDER_LIKE, after)
        else:
            idx = seq.find(_FINDER_LIKE, idx + 4)
    return count
