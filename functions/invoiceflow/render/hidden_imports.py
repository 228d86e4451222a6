"""``hidden``: while a library is imported, an optional module it would load is not installed.

Some libraries import an optional dependency at import time whenever it is installed, for a
feature the renderers never use: ReportLab loads HarfBuzz for its own shaping
(:mod:`.platypus_import`), openpyxl loads Pillow for images in workbooks
(:mod:`.openpyxl_import`). Each costs milliseconds of a renderer's cold start. Inside
``with hidden("name"):`` a module that is not loaded yet cannot be imported (``sys.modules``
holds None for it, so ``import`` raises ImportError, as for a module that is not installed),
and the library takes its "not installed" path; after the block the module can be imported
again. A module that is loaded already is left alone: nothing is hidden then. The blocks
run one at a time (one lock), so two libraries imported at once by two threads (the local
runtime can run the functions in threads) never meet a module the other one hides:
ReportLab, which needs Pillow, waits while openpyxl is imported without it. Nothing else of
the package imports Pillow or HarfBuzz before ReportLab is imported in the same process.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_one_at_a_time = threading.RLock()


@contextmanager
def hidden(*names: str) -> Iterator[list[str]]:
    """Hide each of ``names`` not loaded yet while the block runs; yields those hidden."""
    with _one_at_a_time:
        hide = [name for name in names if name not in sys.modules]
        for name in hide:
            sys.modules[name] = None  # type: ignore[assignment] # import raises ImportError
        try:
            yield hide
        finally:
            for name in hide:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
