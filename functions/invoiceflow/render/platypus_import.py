"""ReportLab's platypus, imported for :mod:`.pdf` (which imports this module before any
ReportLab module) with two start-up costs deferred to first use.

**A pattern.** ``reportlab.platypus.paragraph`` compiles, at import, a pattern that
recognises URIs (``uri_pat``: case-insensitive, with character ranges up to U+FFFF, so
``re`` builds large case-folded character sets): about 28 ms, a tenth of render-pdf's cold
start (docs/performance.md), for a pattern that ReportLab uses only to choose where a
hyphenated paragraph may break a URI (``uriWasteReduce``). While platypus is imported, that
one pattern becomes a :class:`LazyPattern`, compiled the first time anything uses it; every
other pattern compiles as it would. If a ReportLab release changes the pattern, nothing is
deferred and nothing else changes (a test says so:
``tests/render/test_platypus_import.py``).

**HarfBuzz.** ``reportlab.pdfbase.ttfonts`` imports ``uharfbuzz`` when it can (~11 ms of the
cold start, its shared library included) for ReportLab's own shaping, which only a paragraph
style with ``shaping`` set uses: no style of ours sets it (ReportLab's default is off), and
complex scripts are shaped by :mod:`.scripts`, which imports ``uharfbuzz`` itself when a
document first needs it. While platypus is imported, ``uharfbuzz`` is therefore not
importable (:func:`.hidden_imports.hidden`), so ReportLab takes its "not installed" path:
its fonts report ``shapable`` False, as they do for every style of ours anyway. If
``uharfbuzz`` is loaded already, nothing is deferred.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

from invoiceflow.render.hidden_imports import hidden

#: how ReportLab's URI pattern (``reportlab.platypus.paragraph.uri_pat``) begins
URI_PATTERN_START = "(^(?:[a-z0-9\\.\\-\\+]*)://)"


class LazyPattern:
    """A regular expression compiled on its first use; otherwise an ``re.Pattern``."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._source = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def compiled(self) -> re.Pattern[str]:
        with self._lock:
            if self._compiled is None:
                self._compiled = _COMPILE(*self._source)
            return self._compiled

    def __getattr__(self, name: str) -> Any:  # match, search, pattern, flags...
        return getattr(self.compiled(), name)


_COMPILE = re.compile


def _deferring_compile(pattern: Any, flags: int = 0) -> Any:
    if isinstance(pattern, str) and pattern.startswith(URI_PATTERN_START):
        return LazyPattern(pattern, flags)
    return _COMPILE(pattern, flags)


def _import_platypus() -> None:
    if "reportlab.platypus.paragraph" in sys.modules:  # imported already: nothing to defer
        return
    re.compile = _deferring_compile
    try:
        with hidden("uharfbuzz"):
            import reportlab.platypus  # noqa: F401
    finally:
        re.compile = _COMPILE


_import_platypus()
