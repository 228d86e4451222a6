"""Babel's data from the entries (invoiceflow.render.babeldata): a partial table answers
every question as Babel's own table does (what it holds from the entry, anything else after
completing itself from Babel's files), the documents are the same bytes with and without the
entries, and an entry that is not current or cannot be written only means Babel loads its
own data. Babel's tables are process-wide, so each check that installs runs in a fresh
process, with the entries in a directory of its own."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.render import babeldata

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ["nl_BE", "de_CH", "fr_FR", "en_US", "ja_JP", "ar_EG", "he_IL", "zh_Hant_TW", "pt_BR"]

#: prints, as JSON, what Babel answers for the locales' tables (those of the entries and
#: two others), some global ones and the formatting the documents use; argv: mode, the
#: entries' directory, locales. "babel": nothing installed; "entries": installed.
_ANSWERS = """
import datetime, json, sys
from decimal import Decimal
from pathlib import Path
from invoiceflow.render import babeldata
mode, directory, *locales = sys.argv[1:]
babeldata.CACHE_DIR = Path(directory)
if mode == "entries":
    babeldata.install()
import babel.core
from babel import Locale, localedata
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

def plain(value):
    if isinstance(value, localedata.LocaleDataDict) or isinstance(value, dict):
        return {str(k): plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return [type(value).__name__, repr(value)]

answers = {"partial": {}}
for name in locales:
    table = localedata.load(name)
    answers["partial"][name] = type(table).__name__
    data = localedata.LocaleDataDict(table)
    locale = Locale.parse(name)
    answers[name] = {
        **{key: plain(data[key]) for key in (*babeldata.LOCALE_KEYS, "languages", "time_zones")},
        "money": format_currency(Decimal("-1234567.891"), "EUR", locale=locale),
        "decimal": format_decimal(Decimal("0.5"), locale=locale),
        "percent": format_percent(Decimal("0.075"), locale=locale),
        "date": format_date(datetime.date(2026, 12, 1), "long", locale=locale),
        "keys": sorted(table),
    }
answers["global"] = {
    key: plain(babel.core.get_global(key))
    for key in (*babeldata.GLOBAL_KEYS, "likely_subtags", "zone_aliases")
}
print(json.dumps(answers, sort_keys=True))
"""


def _run(code: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _warm(directory: Path, locales: list[str]) -> None:
    _run(
        "import sys; from pathlib import Path; from invoiceflow.render import babeldata\n"
        "babeldata.CACHE_DIR = Path(sys.argv[1]); babeldata.warm(sys.argv[2:])",
        str(directory),
        *locales,
    )


def test_partial_tables_answer_as_babels_own(tmp_path: Path) -> None:
    _warm(tmp_path, LOCALES)
    own = json.loads(_run(_ANSWERS, "babel", str(tmp_path), *LOCALES))
    entries = json.loads(_run(_ANSWERS, "entries", str(tmp_path), *LOCALES))
    assert set(entries["partial"].values()) == {"Partial"}  # the entries were used
    assert set(own["partial"].values()) == {"dict"}
    for key in ("global", *LOCALES):
        assert entries[key] == own[key], key


_RENDER = """
import hashlib, sys
from pathlib import Path
from invoiceflow.render import babeldata
mode, directory, *names = sys.argv[1:]
babeldata.CACHE_DIR = Path(directory)
if mode == "babel":
    babeldata.install = lambda: None
from invoiceflow.domain import parse_invoice
from invoiceflow.render.pdf import render_pdf
from invoiceflow.render.xlsx import render_xlsx
from babel import localedata
for name in names:
    invoice = parse_invoice(open(f"events/examples/invoices/{name}", "rb").read()).invoice
    for document in (render_pdf(invoice), render_xlsx(invoice)):
        print(hashlib.sha256(document).hexdigest())
print(sorted({type(t).__name__ for t in localedata._cache.values()}))
"""


def test_the_documents_are_the_same_bytes_with_the_entries(tmp_path: Path) -> None:
    examples = ["be-peppol-ubl.json", "ch-qr-bill.json", "non-latin.json", "jpy-no-decimals.json"]
    _warm(tmp_path, [])  # the global entry; each locale's is written by its first load
    _run(_RENDER, "entries", str(tmp_path), *examples)
    own = _run(_RENDER, "babel", str(tmp_path), *examples).splitlines()
    entries = _run(_RENDER, "entries", str(tmp_path), *examples).splitlines()
    assert "Partial" in entries[-1]  # the second process read the entries the first wrote
    assert "Partial" not in own[-1]
    assert entries[:-1] == own[:-1]
    assert len(entries) == 2 * len(examples) + 1


def test_a_partial_table_completes_itself_once_for_anything_it_lacks() -> None:
    calls: list[int] = []

    def complete() -> dict[str, Any]:
        calls.append(1)
        return {"a": "whole", "b": 2, "c": 3}

    table = babeldata.Partial({"a": 1}, complete)
    assert table and table["a"] == 1 and table.get("a") == 1 and "a" in table
    assert calls == []  # what it holds needs nothing more
    assert table.get("b") == 2 and calls == [1]
    assert table["c"] == 3 and len(table) == 3 and sorted(table) == ["a", "b", "c"]
    assert table["a"] == 1  # its own values stay (handed out already)
    assert table.copy() == {"a": 1, "b": 2, "c": 3} and type(table.copy()) is dict
    assert calls == [1]
    with pytest.raises(KeyError):
        table["d"]
    assert table.get("d", "none") == "none" and "d" not in table
    lazy = babeldata.Partial({}, complete)
    assert len(lazy) == 3 and calls == [1, 1]


_LOADED = """
import sys
from pathlib import Path
from invoiceflow.render import babeldata
babeldata.CACHE_DIR = Path(sys.argv[1])
babeldata.install()
import babel.core
from babel import localedata
print(type(localedata.load(sys.argv[2])).__name__, type(babel.core._global_data).__name__)
"""


def test_an_entry_of_another_babel_is_not_used_and_is_written_again(tmp_path: Path) -> None:
    _warm(tmp_path, ["nl_BE"])
    for name in ("global", "nl_BE"):
        path = tmp_path / f"{name}.pickle"
        key, part = pickle.loads(path.read_bytes())  # noqa: S301 - written just above
        path.write_bytes(pickle.dumps([[key[0], "0.0"], part]))
    assert _run(_LOADED, str(tmp_path), "nl_BE").split() == ["dict", "dict"]
    assert _run(_LOADED, str(tmp_path), "nl_BE").split() == ["Partial", "Partial"]


def test_no_entries_where_they_cannot_be_written(tmp_path: Path) -> None:
    """A directory that cannot be made (an image's read-only package) only means Babel loads
    its own data, every time."""
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    for _ in range(2):
        assert _run(_LOADED, str(blocked / "entries"), "de_DE").split() == ["dict", "dict"]


def test_warm_writes_entries_readable_by_every_user(tmp_path: Path) -> None:
    """The image writes them as root when it is built; its functions run as another user."""
    _warm(tmp_path, ["de", "de_AT"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["de.pickle", "de_AT.pickle", "global.pickle", "root.pickle"]
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in tmp_path.iterdir())


def test_warm_by_default_covers_every_locale_of_the_documents_languages(
    tmp_path: Path,
) -> None:
    from babel import localedata

    from invoiceflow.render.i18n import LANGUAGES

    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    out = _run(
        "import sys; from pathlib import Path; from invoiceflow.render import babeldata\n"
        "babeldata.CACHE_DIR = Path(sys.argv[1])\n"
        "print(len(babeldata.warm()))",
        str(blocked / "entries"),  # nothing is written: only the count of entries
    )
    expected = [n for n in localedata.locale_identifiers() if n.split("_")[0] in LANGUAGES]
    assert int(out) == len(expected) + 1
    assert {"nl_BE", "de_CH", "ja_JP", "ar_EG", "he_IL", "pt_BR"} <= set(expected)


_UNMERGED = """
import json, sys
from decimal import Decimal
from pathlib import Path
from invoiceflow.render import babeldata
mode, directory, name = sys.argv[1:]
babeldata.CACHE_DIR = Path(directory)
if mode == "entries":
    babeldata.install()
from babel import localedata
from babel.numbers import format_currency
if mode == "money":
    babeldata.install()
    print(format_currency(Decimal("-1234.5"), "EUR", locale=name))
else:
    own = localedata.load(name, merge_inherited=False)
    print(json.dumps([type(own).__name__, sorted(own), repr(own.get("currency_formats"))]))
"""


def test_a_load_without_inheritance_is_babels_own_and_writes_no_entry(tmp_path: Path) -> None:
    """``load(name, merge_inherited=False)`` is the locale's own data, not the merged table
    of an entry, and is never written as the entry every later process formats with."""
    own = json.loads(_run(_UNMERGED, "babel", str(tmp_path), "de_AT"))
    assert own[0] == "dict"
    assert json.loads(_run(_UNMERGED, "entries", str(tmp_path), "de_AT")) == own
    assert not (tmp_path / "de_AT.pickle").exists()
    assert _run(_UNMERGED, "money", str(tmp_path), "de_AT").strip() == "-€\xa01.234,50"
    _warm(tmp_path, ["de_AT"])  # a current entry is not the answer either
    assert json.loads(_run(_UNMERGED, "entries", str(tmp_path), "de_AT")) == own


_ACCOUNTING = """
import sys
from decimal import Decimal
from pathlib import Path
from invoiceflow.render import babeldata
mode, directory = sys.argv[1:]
babeldata.CACHE_DIR = Path(directory)
if mode != "babel":
    babeldata.install()
from babel.numbers import format_currency
if mode == "parent-first":  # Babel's tables of de hold what resolving them wrote back
    format_currency(Decimal("1"), "EUR", locale="de", format_type="accounting")
print(format_currency(Decimal("-1234.5"), "EUR", locale="de_AT", format_type="accounting"))
"""


def test_an_entry_is_written_from_babels_data_as_a_fresh_process_loads_it(
    tmp_path: Path,
) -> None:
    """A process that formatted for ``de`` before it loaded ``de_AT`` holds a ``de_AT`` table
    whose aliases resolve against ``de`` (Babel's, in that process only): the entry it writes
    is still the ``de_AT`` a fresh process gets from Babel."""
    own = _run(_ACCOUNTING, "babel", str(tmp_path))
    assert own.strip() == "-€\xa01.234,50"
    _run(_ACCOUNTING, "parent-first", str(tmp_path))
    assert (tmp_path / "de_AT.pickle").exists()
    assert _run(_ACCOUNTING, "entries", str(tmp_path)) == own


def test_a_partial_table_whose_completion_is_interrupted_completes_itself_next_time() -> None:
    """An exception out of Babel's load (a worker's timeout) leaves the table as it was, not
    answering as whole (the render modules keep their Locale, and so its table, for good)."""
    outcomes: list[BaseException | dict[str, Any]] = [KeyboardInterrupt(), {"a": 0, "b": 2}]

    def complete() -> dict[str, Any]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    table = babeldata.Partial({"a": 1}, complete)
    with pytest.raises(KeyboardInterrupt):
        table.get("b")
    assert table.get("b") == 2 and "b" in table and sorted(table) == ["a", "b"]


def test_a_locale_without_an_entry_is_loaded_once_where_none_can_be_written(
    tmp_path: Path,
) -> None:
    """Where the entries cannot be written, Babel's files are read once, as without them (no
    second load for an entry that would not be written)."""
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    code = _LOADED.replace(
        "print(",
        "reads = []\nresolve = localedata.resolve_locale_filename\n"
        "localedata.resolve_locale_filename = lambda n: reads.append(n) or resolve(n)\nprint(",
    ).replace(".__name__)", ".__name__, *reads)")
    out = _run(code, str(blocked / "entries"), "de_DE").split()
    assert out == ["dict", "dict", "root", "de", "de_DE"]
