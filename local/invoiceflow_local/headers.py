"""HTTP header blocks read without the email package, in the local runtime's process.

``http.server`` (the runtime's two servers, every request) and ``http.client`` (every answer
to a delivery or a proxied request) read a header block with ``http.client.parse_headers``,
which hands it to the email package's ``FeedParser``: a third of the runtime's CPU under load
(yappi, 16 invoices in flight; docs/performance.md). :func:`parse_headers` builds the same
``HTTPMessage`` directly for a plain block (every line ``Name: value``, no folded line, no
CR or NUL in a value) and hands any other block to the standard library's parser, so every
header block reads exactly as before (tests/runtime/test_headers.py compares the two on a
corpus of ordinary and malformed blocks).

:func:`install` puts it in ``http.client`` for the whole process; the runtime does so when it
starts (functions run in their own processes and keep the standard parser).
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, BinaryIO

#: http.client's own limits (a longer line is LineTooLong, more lines an HTTPException)
MAX_LINE = 65536
MAX_HEADERS = 100
#: a header line as FeedParser reads it, when nothing about it is unusual: a field name of
#: the characters it takes (``!``-``9``, ``;``-``~``: no space, no colon), the value after
#: the colon without its leading blanks, the line end CRLF or LF
_PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n\x00]*)\r?\n")


def _read_lines(fp: BinaryIO) -> list[bytes]:
    """The header block's lines, the blank one (or the end of the stream) included: what
    ``http.client._read_headers`` reads, with its limits and errors."""
    lines: list[bytes] = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def parse_headers(fp: BinaryIO, _class: Any = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: the same message for every block, faster for plain ones."""
    lines = _read_lines(fp)
    fields: list[tuple[str, str]] = []
    for raw in lines[:-1]:
        match = _PLAIN_LINE.fullmatch(raw.decode("iso-8859-1"))
        if match is None:  # folded, odd or broken: the standard parser decides what it is
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        fields.append((match[1], match[2]))
    message = _class()
    for name, value in fields:
        message.set_raw(name, value)
    message.set_payload("")
    return message


def install() -> None:
    """Make :func:`parse_headers` ``http.client``'s, for this process (idempotent)."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]  # same signature, untyped _class
