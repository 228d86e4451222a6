"""One measured call under callgrind (``bench/callgrind.py`` starts this under valgrind).

``python bench/_callgrind_one.py RENDERER LINES``: builds the invoice, warms the renderer up
on a 10-line invoice (fonts, styles, caches: not collected), then makes the one call that is
collected: through ``sys.call_tracing``, whose C function (``sys_call_tracing``) is what
callgrind's ``--toggle-collect`` switches on. ``RENDERER`` ``none`` measures an empty call
(the mechanism alone: a few hundred instructions), without importing the product.
"""

from __future__ import annotations

import sys


def main() -> int:
    renderer, lines = sys.argv[1], int(sys.argv[2])
    if renderer == "none":
        sys.call_tracing(bytes, ())
        return 0
    from bench.common import invoice_document, parse

    if renderer == "pdf":
        from invoiceflow.render.pdf import render_pdf as render
    elif renderer == "xlsx":
        from invoiceflow.render.xlsx import render_xlsx as render
    else:
        raise SystemExit(f"unknown renderer {renderer!r}")
    render(parse(invoice_document(10, "WARM-1")))
    invoice = parse(invoice_document(lines))
    sys.call_tracing(render, (invoice,))
    return 0


if __name__ == "__main__":
    sys.exit(main())
