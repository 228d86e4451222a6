"""The upload's multipart reading (api._multipart_file): werkzeug's decoder with its delimiter
found by bytes.find instead of two patterns compiled per request (per boundary). The matches
are held to werkzeug's own patterns, and the file read to what request.files gives."""

from __future__ import annotations

import io
import random
import re
import uuid
from typing import Any

import pytest
from werkzeug.sansio.multipart import LINE_BREAK
from werkzeug.test import EnvironBuilder

from invoiceflow import api
from invoiceflow.errors import BadRequest, PayloadTooLarge


def werkzeug_patterns(boundary: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """The decoder's two patterns, as werkzeug's MultipartDecoder.__init__ builds them."""
    tail = rb"(--[^\S\n\r]*%s?|[^\S\n\r]*%s)" % (LINE_BREAK, LINE_BREAK)
    escaped = re.escape(boundary)
    return (
        re.compile(rb"%s?--%s" % (LINE_BREAK, escaped) + tail, re.MULTILINE),
        re.compile(rb"%s--%s" % (LINE_BREAK, escaped) + tail, re.MULTILINE),
    )


def test_the_decoder_uses_werkzeugs_patterns_as_this_test_rebuilds_them() -> None:
    from werkzeug.sansio.multipart import MultipartDecoder

    decoder = MultipartDecoder(b"b0undary")
    preamble, boundary = werkzeug_patterns(b"b0undary")
    assert decoder.preamble_re.pattern == preamble.pattern
    assert decoder.boundary_re.pattern == boundary.pattern


def _found(match: Any) -> tuple[int, int, bytes] | None:
    return None if match is None else (match.start(), match.end(), bytes(match.group(1)))


@pytest.mark.parametrize("boundary", [b"b", b"abc", b"----x-", b"a.b+c(d)"])
def test_the_delimiter_search_finds_what_werkzeugs_patterns_find(boundary: bytes) -> None:
    pieces = [b"--" + boundary, b"--", b"-", b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x0b", b"x"]
    preamble, delimiter = werkzeug_patterns(boundary)
    fast_preamble = api._DelimiterSearch(boundary, leading_optional=True)
    fast = api._DelimiterSearch(boundary, leading_optional=False)
    rng = random.Random(12)  # noqa: S311 (test data, reproducible)
    for _ in range(6000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for buffer in (data, bytearray(data)):
            for pos in {0, rng.randint(0, len(data)), min(2, len(data))}:
                assert _found(fast_preamble.search(buffer, pos)) == _found(
                    preamble.search(buffer, pos)
                ), (data, pos)
                assert _found(fast.search(buffer, pos)) == _found(delimiter.search(buffer, pos)), (
                    data,
                    pos,
                )


def test_no_pattern_is_compiled_for_a_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    original = re.compile

    def spy(pattern: Any, flags: int = 0) -> Any:
        compiled.append(pattern)
        return original(pattern, flags)

    monkeypatch.setattr(re, "compile", spy)
    boundary = uuid.uuid4().hex.encode()
    api._Decoder(boundary, None, None)
    assert not [p for p in compiled if boundary in (p if isinstance(p, bytes) else b"")]


def _request(body: bytes, content_type: str) -> Any:
    from flask import Request

    return Request(
        EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    )


def _werkzeug_file(body: bytes, content_type: str) -> bytes | None:
    upload = _request(body, content_type).files.get("file")
    return None if upload is None else bytes(upload.stream.read())


def _ours(body: bytes, content_type: str, limit: int = 10_000) -> bytes | None:
    try:
        return api._multipart_file(_request(body, content_type), limit)
    except BadRequest:
        return None


def part(name: str, content: bytes, filename: str | None = "f.json", nl: bytes = b"\r\n") -> bytes:
    disposition = f'form-data; name="{name}"' + (
        f'; filename="{filename}"' if filename is not None else ""
    )
    return b"Content-Disposition: " + disposition.encode() + nl + nl + content


def body(*parts: bytes, boundary: bytes = b"XyZ", nl: bytes = b"\r\n", end: bytes = b"--") -> bytes:
    out = b""
    for p in parts:
        out += b"--" + boundary + nl + p + nl
    return out + b"--" + boundary + end + nl


DOC = b'{"number": "A-1",\r\n "notes": "--XyZ is not a delimiter\n--XyZx"}'
CASES = {
    "plain": body(part("file", DOC)),
    "lf only": body(part("file", DOC, nl=b"\n"), nl=b"\n"),
    "preamble and epilogue": b"preamble\r\n" + body(part("file", DOC)) + b"epilogue --XyZ--\r\n",
    "padding after a delimiter": body(part("file", DOC)).replace(b"--XyZ\r\n", b"--XyZ \t\r\n"),
    "field first": body(part("note", b"hi", filename=None), part("file", DOC)),
    "two files": body(part("file", DOC), part("file", b"second")),
    "a field named file": body(part("file", DOC, filename=None)),
    "other name": body(part("other", DOC)),
    "no final delimiter": b"--XyZ\r\n" + part("file", DOC) + b"\r\n",
    "truncated": body(part("file", DOC))[:40],
    "no disposition later": body(part("file", DOC), b"X-Other: 1\r\n\r\nzzz"),
    "empty file": body(part("file", b"")),
    "empty": b"",
    "large": body(part("file", b"[" + b"1," * 60_000 + b"1]")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_file_read_is_the_one_request_files_gives(name: str) -> None:
    content_type = "multipart/form-data; boundary=XyZ"
    expected = _werkzeug_file(CASES[name], content_type)
    assert _ours(CASES[name], content_type, limit=200_000) == expected


def test_a_missing_or_bad_boundary_is_a_400_naming_the_field() -> None:
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=\u00e9"):
        with pytest.raises(BadRequest, match="'file'"):
            api._multipart_file(_request(CASES["plain"], content_type), 10_000)


def test_the_body_is_read_up_to_the_limit_and_the_framing_slack() -> None:
    huge = body(part("file", b"x" * 10_000), part("other", b"y" * (api._MULTIPART_SLACK + 1)))
    request = _request(huge, "multipart/form-data; boundary=XyZ")
    with pytest.raises(PayloadTooLarge):
        api._multipart_file(request, 10_000)
    # the file itself over the limit: limit + 1 bytes, the caller's 413
    request = _request(body(part("file", b"x" * 10_001)), "multipart/form-data; boundary=XyZ")
    assert len(api._multipart_file(request, 10_000)) == 10_001


def test_an_upload_through_the_function_reads_the_same_file(upload_client: Any, alice: Any) -> None:
    from support.api import example

    r = upload_client.post(
        "/upload",
        headers=alice.auth,
        content_type="multipart/form-data",
        data={"note": "x", "file": (io.BytesIO(example("minimal.json")), "invoice.json")},
    )
    assert r.status_code == 202, r.get_data(as_text=True)
