"""The runtime's header parser (invoiceflow_local.headers) reads every header block into the
same message as the standard library's, leaves the stream at the same place, and fails the
same way: plain blocks by itself, any other by the standard parser."""

from __future__ import annotations

import email.parser
import http.client
import io
from typing import Any

import pytest

from invoiceflow_local import headers


def stdlib_parse_headers(fp: Any) -> Any:
    """http.client.parse_headers as Python 3.11 writes it (whatever is installed now)."""
    lines = []
    while True:
        line = fp.readline(http.client._MAXLINE + 1)  # type: ignore[attr-defined]
        if len(line) > http.client._MAXLINE:  # type: ignore[attr-defined]
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > http.client._MAXHEADERS:  # type: ignore[attr-defined]
            raise http.client.HTTPException(
                f"got more than {http.client._MAXHEADERS} headers"  # type: ignore[attr-defined]
            )
        if line in (b"\r\n", b"\n", b""):
            break
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


BLOCKS = {
    "request": b"Host: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
    b"Content-Length: 12\r\nce-id: 1\r\nce-source: /upload\r\n\r\n",
    "answer": b"Server: gunicorn\r\nDate: Tue, 01 Dec 2026 02:00:00 GMT\r\n"
    b"Connection: keep-alive\r\nContent-Length: 2\r\n\r\n",
    "LF only": b"A: 1\nB: 2\n\n",
    "duplicates": b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c\r\n\r\n",
    "empty value": b"X-Empty:\r\nX-Blank:   \r\n\r\n",
    "trailing blanks kept": b"X: value  \t\r\n\r\n",
    "tab after colon": b"X:\tv\r\n\r\n",
    "latin-1 bytes": b"X-Name: Fran\xe7ois\r\n\r\n",
    "utf-8 bytes": "X-Name: Ünïcödé ✓\r\n\r\n".encode(),
    "no blank line (end of stream)": b"A: 1\r\nB: 2\r\n",
    "nothing": b"",
    "only the blank line": b"\r\n",
    "folded": b"X-Long: first\r\n second\r\n\tthird\r\nY: 2\r\n\r\n",
    "space before the colon": b"Bad : value\r\nGood: 1\r\n\r\n",
    "no colon": b"Good: 1\r\nnot a header\r\nAfter: 2\r\n\r\n",
    "starts folded": b" leading: space\r\nA: 1\r\n\r\n",
    "unix from": b"From someone\r\nA: 1\r\n\r\n",
    "lone CR in a value": b"A: x\ry\r\nB: 2\r\n\r\n",
    "NUL in a value": b"A: x\x00y\r\n\r\n",
    "colon in the value": b"Location: http://h:1/p?q=a:b\r\n\r\n",
    "CR CR LF": b"A: 1\r\r\n\r\n",
    "name with odd characters": b"X-Odd!#$%&'*+.^_`|~: v\r\n\r\n",
    "empty name": b": value\r\n\r\n",
    "body after": b"A: 1\r\n\r\nB: not a header but the body\r\n",
}


def _state(message: Any) -> dict[str, Any]:
    """The message's attributes; its defects by kind and text (they compare by identity)."""
    state = dict(vars(message))
    state["defects"] = [(type(d), str(d)) for d in message.defects]
    return state | {"type": type(message)}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_block_reads_as_the_standard_library_reads_it(name: str) -> None:
    ours, theirs = io.BytesIO(BLOCKS[name]), io.BytesIO(BLOCKS[name])
    mine, stdlib = headers.parse_headers(ours), stdlib_parse_headers(theirs)
    assert _state(mine) == _state(stdlib)
    assert str(mine) == str(stdlib)
    assert ours.tell() == theirs.tell()  # the body is left where it was


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (b"A: " + b"x" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
        (b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n", http.client.HTTPException),
    ],
)
def test_the_limits_fail_as_the_standard_librarys(block: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as mine:
        headers.parse_headers(io.BytesIO(block))
    with pytest.raises(error) as stdlib:
        stdlib_parse_headers(io.BytesIO(block))
    assert str(mine.value) == str(stdlib.value)


def test_a_hundred_headers_are_still_read() -> None:
    block = b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n"
    assert len(headers.parse_headers(io.BytesIO(block)).items()) == 99


def test_install_makes_it_http_clients() -> None:
    before = http.client.parse_headers
    try:
        headers.install()
        assert http.client.parse_headers is headers.parse_headers
    finally:
        http.client.parse_headers = before
