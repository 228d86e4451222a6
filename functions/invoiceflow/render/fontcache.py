"""ReportLab fonts whose parsed metrics are kept on disk, as Python keeps a module's bytecode.

ReportLab reads a TrueType font's metrics (character map, widths, glyph positions) in pure
Python each time a process registers it: DejaVu Sans and its bold face, the base font of
every document, cost ~45 ms of render-pdf's first request, the CJK fonts 60-135 ms each
(docs/performance.md, bench/analysis.md). What that parse produces depends only on the
font's bytes and on ReportLab's version, so it is kept:

* :func:`load_font` returns ReportLab's ``TTFont`` for a font file. Its face reads the file as
  ReportLab does (the bytes are needed for embedding anyway) and then, instead of parsing the
  metrics, takes them from ``__fontcache__/<file>.marshal`` next to the font when that entry
  was made from the same bytes (SHA-256) by the same ReportLab and :data:`FORMAT`; otherwise
  it parses as ReportLab does and writes the entry (atomically; silently skipped where the
  directory is read-only, as Python skips writing bytecode).
* The entry holds every attribute ReportLab's ``extractInfo`` sets on the face, in
  ``marshal`` format (built-in types only, read as fast as a ``.pyc``, trusted as a ``.pyc``
  in the same package is); the one attribute that is code, the scale from font units to
  PDF units, is made again from ``unitsPerEm`` as ReportLab makes it.
* The image writes the entries of the shipped fonts when it is built (``python -m
  invoiceflow.render.fontcache``, after compiling the package), so a pod's first request
  reads them; so does the benchmark before timing cold starts.

tests/render/test_fontcache.py holds the loaded fonts to ReportLab's own: the same attributes
with the same types for every shipped font, and byte-identical PDFs.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reportlab import Version as REPORTLAB_VERSION
from reportlab import rl_config
from reportlab.pdfbase import ttfonts
from reportlab.pdfbase.ttfonts import TTEncoding, TTFNameBytes, TTFont, TTFontFace

from invoiceflow.cachefiles import write_atomically

log = logging.getLogger(__name__)

#: bump when what an entry holds changes
FORMAT = 1
#: the directory, next to a font, that holds its entries
CACHE_DIR = "__fontcache__"
_MISSING = object()


def load_font(name: str, path: Path) -> TTFont:
    """ReportLab's ``TTFont(name, str(path))``, its metrics read from the cache when there."""
    return _CachedTTFont(name, str(path))


def entry_path(font: Path) -> Path:
    """Where the cache entry of ``font`` is."""
    return font.parent / CACHE_DIR / f"{font.name}.marshal"


def _key(data: bytes) -> list[Any]:
    """What an entry is valid for: the format, ReportLab, the font's bytes, and the two
    settings ``extractInfo`` reads (which fonts may be subset; names made up when missing)."""
    return [
        FORMAT,
        REPORTLAB_VERSION,
        hashlib.sha256(data).hexdigest(),
        repr(getattr(rl_config, "allowTTFSubsetting", None)),
        repr(getattr(rl_config, "autoGenerateTTFMissingTTFName", None)),
    ]


def _scale(units_per_em: int) -> Callable[[float], float]:
    """ReportLab's ``_pdfScale`` (font units to 1/1000 em), made as ``extractInfo`` makes it."""
    if units_per_em == 1000:
        return lambda x: x
    mult = 1000 / units_per_em
    return lambda x: x * mult


class _CachedFace(TTFontFace):  # type: ignore[misc]
    """ReportLab's face of a TrueType font, its metrics read from the cache when there."""

    def extractInfo(self, charInfo: int = 1) -> None:
        if not charInfo or self.fileKind != "TTF":  # a collection: ReportLab's own parse
            super().extractInfo(charInfo)
            return
        entry = entry_path(Path(self.filename))
        key = _key(self._ttf_data)
        values = _read(entry, key)
        if values is not None:
            self.__dict__.update(values)
            self._pdfScale = _scale(self.unitsPerEm)
            return
        before = dict(self.__dict__)
        super().extractInfo(charInfo)
        made = {
            k: v
            for k, v in self.__dict__.items()
            if k != "_pdfScale" and before.get(k, _MISSING) is not v
        }
        _write(entry, key, made)


class _CachedTTFont(TTFont):  # type: ignore[misc]
    """ReportLab's ``TTFont`` (its ``__init__``, with the defaults the project registers
    fonts with) whose face is a :class:`_CachedFace`."""

    def __init__(self, name: str, filename: str) -> None:
        from fnmatch import fnmatch
        from weakref import WeakKeyDictionary

        self.fontName = name
        self.face = _CachedFace(filename)
        self.encoding = TTEncoding()
        self.state: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()
        self._asciiReadable = rl_config.ttfAsciiReadable
        self.shapable = not any(fnmatch(name, glob) for glob in ttfonts.unShapedFontGlob)


def _read(entry: Path, key: list[Any]) -> dict[str, Any] | None:
    try:
        # S302: an entry in the package's own directory, trusted as its .pyc files are
        stored_key, names, values = marshal.loads(entry.read_bytes())  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if stored_key != key or not isinstance(values, dict):
        return None
    try:
        for name in names:  # the font's name strings: ReportLab's bytes subclass
            values[name] = TTFNameBytes(values[name])
    except (KeyError, TypeError):
        return None
    return values


def _write(entry: Path, key: list[Any], values: dict[str, Any]) -> None:
    names = sorted(k for k, v in values.items() if isinstance(v, TTFNameBytes))
    plain = {k: bytes(v) if k in names else v for k, v in values.items()}
    try:
        data = marshal.dumps([key, names, plain])
    except ValueError:  # a value marshal cannot hold (a later ReportLab): nothing is kept
        log.debug("font cache: %s holds a value marshal cannot write", entry.name)
        return
    if not write_atomically(entry, data):  # read-only (an image's package directory)
        log.debug("font cache: %s not written", entry)


def warm(fonts_dir: Path | None = None) -> list[Path]:
    """Write the entry of every font in ``fonts_dir`` (the shipped fonts by default) that has
    no current one; the entries, in order."""
    from invoiceflow.render.scripts import FONTS_DIR

    fonts = sorted((fonts_dir or FONTS_DIR).glob("*.ttf"))
    for font in fonts:
        load_font(font.stem, font)
    return [entry_path(font) for font in fonts]


if __name__ == "__main__":
    from invoiceflow.cachefiles import print_entries

    print_entries(warm())
