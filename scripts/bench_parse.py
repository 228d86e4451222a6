"""Parse and validate a 1,000-line document against its PDF render, side by side.

The issue's target: parsing and validating a 1,000-line document costs at most 10 % of its
PDF render time. The document is ``long-300-lines.json`` cycled to 1,000 items, as
``bench/render.py`` builds it. Runs are interleaved (parse, load, render in each round) and
every figure is a median; the load average is printed with them.

    PYTHONPATH=functions:local:tests:. .venv/bin/python scripts/bench_parse.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()

    from bench.common import invoice_document

    from invoiceflow.domain import parse
    from invoiceflow.domain.model import to_json
    from invoiceflow.render.pdf import render_pdf

    doc = invoice_document(args.lines)
    submitted = json.dumps(doc).encode()
    invoice = parse.parse_invoice(submitted, max_bytes=1 << 40).invoice
    completed = json.dumps(to_json(invoice), ensure_ascii=False, indent=2).encode()
    load_canonical = getattr(parse, "load_canonical", None)

    def accept() -> object:  # what an upload runs: the full parse of the submitted file
        return parse.parse_invoice(submitted, max_bytes=1 << 40)

    def load() -> object:  # what a render step runs on the completed document
        if load_canonical is None:  # before: the full parse again
            return parse.parse_invoice(completed, max_bytes=1 << 40)
        return load_canonical(parse.load_json(completed, max_bytes=1 << 40))

    def full_schema() -> object:  # the jsonschema validator alone (lists every problem)
        return list(parse._validator().iter_errors(parse.load_json(submitted, max_bytes=1 << 40)))

    cases: dict[str, Callable[[], object]] = {
        "accept (parse+validate)": accept,
        "render-step load": load,
        "jsonschema alone (+load_json)": full_schema,
        "render_pdf": lambda: render_pdf(invoice),
    }
    for fn in cases.values():  # warm-up: imports, caches, fonts
        fn()
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            runs[name].append(_timed(fn))
    med = {name: statistics.median(v) * 1000 for name, v in runs.items()}
    print(f"{args.lines} lines, {args.rounds} rounds interleaved, load average {os.getloadavg()}")
    for name, ms in med.items():
        spread = f"{min(runs[name]) * 1000:.1f}..{max(runs[name]) * 1000:.1f}"
        print(f"  {name:32} median {ms:8.1f} ms  ({spread})")
    pdf = med["render_pdf"]
    for name in ("accept (parse+validate)", "render-step load"):
        print(f"  {name} / render_pdf = {med[name] / pdf:.1%}  (target <= 10%)")


if __name__ == "__main__":
    main()
