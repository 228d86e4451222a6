#!/usr/bin/env python3
"""Regenerate the two character tables read from the fonts (render/scripts.py): ``printable.txt``
(``PRINTABLE_FILE``, every character some shipped font has: what intake accepts for a PDF) and
``faces.txt`` (``FACES_FILE``, each face's characters: how a word's font is chosen without
parsing the fonts). Run it after adding or changing a font:

    PYTHONPATH=functions .venv/bin/python scripts/printable_chars.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from invoiceflow.render import scripts  # noqa: E402


def main() -> None:
    chars = scripts.fonts_printable_chars()
    scripts.PRINTABLE_FILE.write_text(scripts.printable_ranges(chars), encoding="ascii")
    print(f"{scripts.PRINTABLE_FILE.relative_to(ROOT)}: {len(chars):,} characters")
    scripts.write_faces_file()
    print(f"{scripts.FACES_FILE.relative_to(ROOT)}: regenerated")


if __name__ == "__main__":
    main()
