"""ReportLab's platypus, imported for :mod:`.pdf` (which imports this module before any
ReportLab module) with two kinds of start-up cost deferred to first use.

**Patterns.** ReportLab compiles, at import, a few regular expressions that rendering an
invoice never or rarely uses (:data:`DEFERRED_PATTERNS`): the pattern of
``reportlab.platypus.paragraph`` that recognises URIs (``uri_pat``: case-insensitive, with
character ranges up to U+FFFF, so ``re`` builds large case-folded character sets; ~28 ms, a
tenth of render-pdf's cold start, for a pattern ReportLab uses only to choose where a
hyphenated paragraph may break a URI, ``uriWasteReduce``), and three more, 4-5 ms together
(bench/analysis.md, seventh round): ``reportlab.lib.textsplit.rx`` (used only by
``cjkwrap``, which cannot run in this release: it calls ``reduce`` without importing it),
``reportlab.lib.PyFontify.matchRE`` (by ``PythonPreformatted`` only) and
``reportlab.lib.rl_safe_eval.__rl_unsafe_re__`` (not used by ReportLab at all). While
platypus is imported, each of them becomes a :class:`LazyPattern`, compiled the first time
anything uses it (ReportLab uses each through its methods: ``match``, ``sub``, ``search``);
every other pattern compiles as it would. If a ReportLab release changes one of them, it is
no longer deferred and nothing else changes (a test says so:
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
from collections.abc import Callable
from typing import Any

from invoiceflow.render.hidden_imports import hidden

#: how ReportLab's URI pattern (``reportlab.platypus.paragraph.uri_pat``) begins
URI_PATTERN_START = "(^(?:[a-z0-9\\.\\-\\+]*)://)"

#: the patterns compiled on first use: module.name -> a test of the pattern's source
DEFERRED_PATTERNS: dict[str, Callable[[str], bool]] = {
    "reportlab.platypus.paragraph.uri_pat": lambda p: p.startswith(URI_PATTERN_START),
    "reportlab.lib.textsplit.rx": lambda p: p == "([\u2e80-\uffff])",
    # a comment, or a keyword after a character that may precede one, or...
    "reportlab.lib.PyFontify.matchRE": lambda p: p.startswith(
        r"""#[^\n]*|(^|[^a-zA-Z0-9_.\"'])("""
    ),
    # a word boundary, then the names safe_eval refuses (from a set: in no fixed order)
    "reportlab.lib.rl_safe_eval.__rl_unsafe_re__": lambda p: (
        p.startswith(r"\b(?:") and "__rl_safe_eval__" in p and "__import__" in p
    ),
}


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
        if name.startswith("_"):  # not set yet (a copy being made): not the pattern's
            raise AttributeError(name)
        return getattr(self.compiled(), name)

    def __reduce__(self) -> tuple[Any, ...]:  # copied or pickled: the compiled pattern
        return (_COMPILE, self._source)


_COMPILE = re.compile


def _deferring_compile(pattern: Any, flags: int = 0) -> Any:
    if isinstance(pattern, str) and any(test(pattern) for test in DEFERRED_PATTERNS.values()):
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
