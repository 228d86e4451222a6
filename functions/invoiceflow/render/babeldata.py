"""Babel's CLDR data, the part the documents read, kept on disk as Python keeps bytecode.

The first time a process formats for a locale, Babel unpickles and merges that locale's
whole data (``root``, the language, the locale: for ``nl_BE`` 200 kB of language names, time
zones, units...), and the first time it looks anything up, the whole of its global table
(``global.dat``, 460 kB, two thirds of it likely subtags): ~20 ms of a render function's
first request on this project's 2-core VM, where the documents read a dozen of the locale's
tables and a few small global ones (bench/analysis.md).

* :func:`install` (idempotent; the render modules call it when they are imported) gives
  Babel, in place of a table it has not loaded yet, a :class:`Partial` one made from an entry
  under ``__babeldata__/`` beside this module: the merged tables the documents read
  (:data:`LOCALE_KEYS`, :data:`GLOBAL_KEYS`), pickled. Anything else asked of such a table
  (another key, its length, a walk over it) first completes it from Babel's own files, as
  Babel would have loaded it, so every answer is Babel's own.
* An entry is used only when it was written by the same Babel and :data:`FORMAT`; otherwise
  Babel loads its own data as if there were no entry, and a new entry is written (whole or
  not at all; silently not where the directory is read-only, an image's package at run time).
* The image writes the entries of every locale of the languages the documents are
  translated into when it is built (``python -m invoiceflow.render.babeldata``); so does the
  benchmark before timing cold starts. A locale without an entry costs what it always did,
  once, and gets its entry where the directory is writable.

tests/render/test_babeldata.py holds the partial tables to Babel's own: the same values for
every key, the same documents byte for byte.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import babel
import babel.core
from babel import localedata

from invoiceflow.cachefiles import write_atomically

log = logging.getLogger(__name__)

#: bump when what an entry holds changes (2: entries are written from a fresh load; those of
#: 1 could hold values of a parent locale this process had formatted for)
FORMAT = 2
#: the directory, beside this module, that holds the entries
CACHE_DIR = Path(__file__).with_name("__babeldata__")
#: the locale tables the documents read (Babel's names); the rest are loaded when asked for
LOCALE_KEYS = (
    "character_order",
    "currency_formats",
    "currency_names",
    "currency_names_plural",
    "currency_symbols",
    "date_formats",
    "decimal_formats",
    "number_symbols",
    "percent_formats",
    "plural_form",
    "territories",
)
#: the global tables :class:`babel.Locale` and the formatting functions read for them
GLOBAL_KEYS = (
    "all_currencies",
    "currency_fractions",
    "language_aliases",
    "parent_exceptions",
    "script_aliases",
    "territory_aliases",
    "territory_currencies",
    "variant_aliases",
)
_GLOBAL = "global"

#: Babel's own lock of its locale cache (re-entrant): one lock, so completing a table inside
#: Babel's load of another cannot deadlock against a thread completing one outside it
_lock = localedata._cache_lock
_installed = False


class Partial(dict):  # type: ignore[type-arg]
    """Some of a Babel table's keys; the first question about any other (or about all of them)
    completes it from ``complete`` (Babel's own load of the whole table), once."""

    def __init__(self, part: dict[str, Any], complete: Callable[[], dict[str, Any]]) -> None:
        super().__init__(part)
        self._complete: Callable[[], dict[str, Any]] | None = complete

    def _fill(self) -> None:
        with _lock:
            complete, self._complete = self._complete, None
            if complete is not None:
                try:
                    whole = complete()
                except BaseException:  # not completed: the next question tries again
                    self._complete = complete
                    raise
                for key, value in whole.items():
                    dict.setdefault(self, key, value)

    def __bool__(self) -> bool:  # never empty (``if not data`` in Babel must not complete it)
        return True

    def __missing__(self, key: str) -> Any:
        self._fill()
        if not dict.__contains__(self, key):
            raise KeyError(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            self._fill()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        if not dict.__contains__(self, key):
            self._fill()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._fill()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._fill()
        return dict.__eq__(self, other)

    __hash__ = None

    def __reduce__(self) -> Any:
        self._fill()
        return (dict, (dict(dict.items(self)),))


def entry_path(name: str) -> Path:
    """The entry of a locale (Babel's identifier, ``nl_BE``) or of the global table."""
    return CACHE_DIR / f"{name}.pickle"


def _key() -> list[Any]:
    return [FORMAT, babel.__version__]


def _read(name: str) -> dict[str, Any] | None:
    try:
        # S301: an entry in the package's own directory, trusted as its .pyc files are
        key, part = pickle.loads(entry_path(name).read_bytes())  # noqa: S301
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError):
        return None
    if key != _key() or not isinstance(part, dict):
        return None
    return part


def _write(name: str, table: Any, keys: tuple[str, ...]) -> None:
    part = {k: table[k] for k in keys if k in table}
    try:
        data = pickle.dumps([_key(), part], protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    if not write_atomically(entry_path(name), data):
        log.debug("babel data: %s not written", entry_path(name))


class _Locales(dict):  # type: ignore[type-arg]
    """Babel's cache of loaded locales (``babel.localedata._cache``), which also answers, for
    a locale it does not hold, its :class:`Partial` from the entry; and writes the entry of a
    locale Babel then loads whole because it had no current one."""

    def __init__(self, loaded: dict[str, Any]) -> None:
        super().__init__(loaded)
        #: locales being completed: Babel's load of them must not get their partial table
        self._completing: set[str] = set()
        #: locales Babel asked for that had no current entry: written once loaded
        self._unwritten: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        found = dict.get(self, name)
        if found is not None or name in self._completing or _unmerged_load():
            return found if found is not None else default
        part = _read(name)
        if part is None:
            self._unwritten.add(name)
            return default
        table = Partial(part, lambda: self._whole(name))
        dict.__setitem__(self, name, table)
        return table

    def _whole(self, name: str) -> dict[str, Any]:
        with _lock:
            self._completing.add(name)
            dict.pop(self, name, None)
            try:
                return localedata.load(name)
            finally:
                self._completing.discard(name)

    def __setitem__(self, name: str, table: Any) -> None:
        dict.__setitem__(self, name, table)
        if name in self._unwritten:
            self._unwritten.discard(name)
            if not _unmerged_load() and _writable():
                _write(name, _fresh(name), LOCALE_KEYS)


def _writable() -> bool:
    """Whether entries can be written (else a locale's first load is not done twice for an
    entry that would not be written: an image's read-only package at run time)."""
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(CACHE_DIR, os.W_OK)


def _fresh(name: str) -> dict[str, Any]:
    """Babel's own load of a locale as a fresh process makes it, for its entry: a table this
    process loaded can hold what resolving its parent's aliases wrote back into the parent
    (``LocaleDataDict``), which Babel shares with the child, resolved against the parent."""
    with _lock:
        cache = localedata._cache
        localedata._cache = {}
        try:
            return localedata.load(name)
        finally:
            localedata._cache = cache


def _unmerged_load() -> bool:
    """Whether the caller's caller is Babel's ``load(name, merge_inherited=False)``: the
    locale's own data, without what it inherits, which an entry (merged) must not answer nor
    be written from (Babel caches it under the same name)."""
    frame = sys._getframe(2)
    return frame.f_code is localedata.load.__code__ and not frame.f_locals["merge_inherited"]


def _whole_global() -> dict[str, Any]:
    """Babel's own load of ``global.dat`` (which then replaces the partial table)."""
    with _lock:
        babel.core._global_data = None
        babel.core.get_global("all_currencies")
        whole = babel.core._global_data
        assert whole is not None
        return dict(whole)


def install() -> None:
    """Give Babel the entries in place of what it has not loaded yet (once per process).
    Without a global entry, Babel's global table is loaded now and its entry written."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        if not isinstance(localedata._cache, _Locales):
            localedata._cache = _Locales(localedata._cache)
        part = _read(_GLOBAL)
        if part is None:  # none (or another Babel's): Babel's own load, and the entry
            babel.core.get_global("all_currencies")
            _write(_GLOBAL, babel.core._global_data, GLOBAL_KEYS)
        elif babel.core._global_data is None:
            babel.core._global_data = Partial(part, _whole_global)


def warm(locales: list[str] | None = None) -> list[Path]:
    """Write the global entry and each locale's (every locale of the languages the documents
    are translated into, by default) that has no current one, and so those of the locales
    they inherit from (``root``, ``de`` for ``de_AT``); the entries asked for, in order."""
    from invoiceflow.render.i18n import LANGUAGES

    install()  # writes the global entry when there is none
    names = locales
    if names is None:
        names = sorted(
            name for name in localedata.locale_identifiers() if name.split("_")[0] in LANGUAGES
        )
    written = [entry_path(_GLOBAL)]
    for name in names:
        if _read(name) is None:
            localedata.load(name)  # writes its entry, and its parents', where Babel loads them
        if _read(name) is None:  # already loaded in this process
            _write(name, _fresh(name), LOCALE_KEYS)
        written.append(entry_path(name))
    return written


if __name__ == "__main__":
    from invoiceflow.cachefiles import print_entries

    print_entries(warm())
