"""Headers built from user text, on both mail back ends (the ``.eml`` outbox and SendGrid
through the real client against tests/support/sendgrid.py): whatever the text holds (RFC 2047
encoded words, CR/LF, U+2028, U+0085, ...), the message carries exactly the expected headers
and each value decodes to the literal text, line breaks turned into spaces."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.errors import Unavailable
from invoiceflow.mail import (
    Attachment,
    MailRejected,
    Message,
    OutboxMailer,
    SendGridMailer,
    as_bytes,
    direct_bytes,
    header_text,
)
from support.sendgrid import MAX_REQUEST_BYTES, FakeSendGrid, fake_sendgrid

#: the issue's invoice number: an encoded word of "INV\r\nBcc: victim@evil.example"
ENCODED_WORD = "=?utf-8?b?SU5WDQpCY2M6IHZpY3RpbUBldmlsLmV4YW1wbGU=?="
ATTACKS = {
    "encoded-word": ENCODED_WORD,
    "encoded-word-q": "=?utf-8?q?INV=0D=0ABcc:_victim@evil.example?=",
    "crlf": "INV\r\nBcc: victim@evil.example",
    "lf": "INV\nBcc: victim@evil.example",
    "cr": "INV\rBcc: victim@evil.example",
    "u2028": "INV\u2028Bcc: victim@evil.example",
    "u2029": "INV\u2029Bcc: victim@evil.example",
    "u0085": "INV\x85Bcc: victim@evil.example",
    "vt-ff-nul": "INV\x0b\x0c\x00Bcc: victim@evil.example",
    "folded": "INV\r\n Bcc: victim@evil.example",
    "non-ascii-and-encoded-word": f"Rechnung Nr. é {ENCODED_WORD}",
}
#: what each attack must read as: the literal text, every line break a space
LITERAL = {
    name: " ".join(
        text.replace("\x00", " ")
        .replace("\x0b", " ")
        .replace("\x0c", " ")
        .replace("\x85", " ")
        .replace("\u2028", " ")
        .replace("\u2029", " ")
        .split()
    )
    for name, text in ATTACKS.items()
}

TOP_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}
PDF = b"%PDF-1.4 test"


def message(
    text: str, *, to: str = "owner@example.com", sender: str = "billing@invoiceflow.test"
) -> Message:
    return Message(
        to=to,
        sender=sender,
        subject=f"Invoice {text} is ready",
        text="body",
        html="<p>body</p>",
        key="0b0e8a52-7d1c-4a38-9a0c-4bb0d3c9d0f1-ready",
        attachments=(Attachment(f"{text}.pdf", "application/pdf", PDF),),
    )


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def test_header_text_turns_every_line_break_into_a_space() -> None:
    for name, text in ATTACKS.items():
        assert header_text(text) == LITERAL[name], name
        assert "\n" not in LITERAL[name] and "\r" not in LITERAL[name]
    assert "=?" in LITERAL["encoded-word"]  # kept: it is encoded, not removed


# ----------------------------------------------------------------------------- the outbox


def written(folder: Path, msg: Message) -> EmailMessage:
    path = OutboxMailer(folder).send(msg)
    assert path is not None
    raw = Path(path).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    # every header line is a header or a folded continuation: nothing else got in
    assert all(
        line[:1] in (b" ", b"\t") or line.split(b":", 1)[0].decode() in TOP_HEADERS
        for line in head.split(b"\r\n")
    ), head
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(mail, EmailMessage)
    return mail


def all_headers(mail: EmailMessage) -> list[str]:
    return [name.lower() for part in mail.walk() for name in part.keys()]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_outbox_subject_and_attachment_name_are_the_literal_text(
    tmp_path: Path, attack: str
) -> None:
    mail = written(tmp_path, message(ATTACKS[attack]))
    assert set(mail.keys()) == TOP_HEADERS
    assert "bcc" not in all_headers(mail) and "cc" not in all_headers(mail)
    assert str(mail["Subject"]) == f"Invoice {LITERAL[attack]} is ready"
    assert mail["To"].addresses[0].addr_spec == "owner@example.com"
    assert len(mail["To"].addresses) == 1
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == f"{LITERAL[attack]}.pdf"
    assert attachment.get_content() == PDF
    assert set(attachment.keys()) == {
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "MIME-Version",
    }


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_outbox_sender_display_name_is_the_literal_text(tmp_path: Path, attack: str) -> None:
    mail = written(tmp_path, message("X", sender=f"{ATTACKS[attack]} <billing@invoiceflow.test>"))
    assert set(mail.keys()) == TOP_HEADERS
    (sender,) = mail["From"].addresses
    assert sender.addr_spec == "billing@invoiceflow.test"
    if "=?" not in LITERAL[attack] and LITERAL[attack].isascii():
        assert sender.display_name == LITERAL[attack]
    else:
        # RFC 2047 decoding of the raw header (the stdlib's address parser keeps the folding
        # space between two encoded words of a display name, which RFC 2047 says to drop)
        raw = BytesParser(policy=policy.compat32).parsebytes(bytes(mail))["From"]
        assert decoded(raw) == f"{LITERAL[attack]} <billing@invoiceflow.test>"


#: recipients that would add a recipient or a header: refused (permanent), nothing written
BAD_ADDRESSES = [
    "owner@example.com\r\nBcc: victim@evil.example",
    "owner@example.com\u2028Bcc: victim@evil.example",
    "owner@example.com\x85Bcc: victim@evil.example",
    "=?utf-8?q?victim=40evil.example=0D=0A?=@example.com",
    "owner@example.com, victim@evil.example",
    "Owner <owner@example.com>, victim@evil.example",
    '"victim@evil.example" owner@example.com',
]


@pytest.mark.parametrize("to", BAD_ADDRESSES)
def test_outbox_refuses_a_recipient_that_is_not_one_plain_address(tmp_path: Path, to: str) -> None:
    with pytest.raises(MailRejected):
        OutboxMailer(tmp_path).send(message("X", to=to))
    assert list(tmp_path.glob("*.eml")) == []


# ------------------------------------------------------------------------------- SendGrid


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with fake_sendgrid() as fake:
        yield fake


def sent(fake: FakeSendGrid, msg: Message) -> dict[str, Any]:
    SendGridMailer("SG.test-key-not-a-secret", fake.url).send(msg)
    body: dict[str, Any] = fake.requests[-1]["json"]
    return body


def _no_line_breaks(value: Any) -> None:
    """Every string in the request is one line of text."""
    if isinstance(value, str):
        assert header_text(value) == value, value
    for v in (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    ):
        _no_line_breaks(v)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_sendgrid_subject_from_name_and_filename_are_the_literal_text(
    sendgrid: FakeSendGrid, attack: str
) -> None:
    msg = message(ATTACKS[attack], sender=f"{ATTACKS[attack]} <billing@invoiceflow.test>")
    body = sent(sendgrid, msg)
    assert set(body) == {
        "from",
        "subject",
        "personalizations",
        "content",
        "attachments",
        "headers",
        "custom_args",
    }
    assert body["personalizations"] == [{"to": [{"email": "owner@example.com"}]}]
    _no_line_breaks({k: v for k, v in body.items() if k != "content"})
    assert body["content"] == [
        {"type": "text/plain", "value": "body"},
        {"type": "text/html", "value": "<p>body</p>"},
    ]
    # SendGrid builds the MIME: what it is given decodes to the literal text, and holds no
    # encoded word a reader could decode into something else
    assert decoded(body["subject"]) == f"Invoice {LITERAL[attack]} is ready"
    assert body["from"]["email"] == "billing@invoiceflow.test"
    assert decoded(body["from"]["name"]) == LITERAL[attack]
    (attachment,) = body["attachments"]
    assert attachment["filename"] == f"{LITERAL[attack]}.pdf"
    assert base64.b64decode(attachment["content"]) == PDF
    assert body["headers"] == {
        "Message-ID": "<0b0e8a52-7d1c-4a38-9a0c-4bb0d3c9d0f1-ready@invoiceflow.test>"
    }
    assert body["custom_args"] == {"invoiceflow_key": "0b0e8a52-7d1c-4a38-9a0c-4bb0d3c9d0f1-ready"}


def test_sendgrid_sends_an_email_over_its_size_limit_without_the_attachments(
    sendgrid: FakeSendGrid,
) -> None:
    # two files of 12 MB: 32 MB base64 encoded, over SendGrid's 30 MB (answered 413, which
    # is permanent: the owner got no email at all); the email's links reach every file
    big = b"%PDF-1.4 " + b"x" * 12_000_000
    msg = Message(
        to="owner@example.com",
        sender="billing@invoiceflow.test",
        subject="Invoice 1 is ready",
        text="PDF: http://invoices.test/invoices/1/pdf",
        html="<p>body</p>",
        key="1-ready",
        attachments=(
            Attachment("1.pdf", "application/pdf", big),
            Attachment("1.xlsx", "application/octet-stream", big),
        ),
    )
    body = sent(sendgrid, msg)
    (request,) = sendgrid.requests
    assert request["answered"] == 202 and request["size"] < MAX_REQUEST_BYTES
    assert "attachments" not in body
    assert body["content"][0]["value"] == msg.text
    # the message's line saying why (the ready email's, in its language) ends both parts
    why = "Too large to attach: use the <links> above."
    body = sent(sendgrid, dataclasses.replace(msg, without_attachments=why))
    assert "attachments" not in body
    assert body["content"][0]["value"] == f"{msg.text}\n{why}\n"
    assert body["content"][1]["value"] == (
        f"{msg.html}<p>Too large to attach: use the &lt;links&gt; above.</p>"
    )
    # what fits is still attached
    small = Attachment("1.pdf", "application/pdf", b"x" * 20_000_000)  # 26.7 MB encoded
    fits = Message(
        to=msg.to,
        sender=msg.sender,
        subject=msg.subject,
        text=msg.text,
        html=msg.html,
        key=msg.key,
        attachments=(small,),
    )
    body = sent(sendgrid, fits)
    assert [a["filename"] for a in body["attachments"]] == ["1.pdf"]


def test_an_outbox_folder_that_cannot_be_made_is_unavailable_not_an_os_error(
    tmp_path: Path,
) -> None:
    """A volume gone or a path taken by a file is the outbox's fault for now: notify answers
    503 (retried), not a 500 with a traceback in the log."""
    taken = tmp_path / "outbox"
    taken.write_bytes(b"not a folder")
    with pytest.raises(Unavailable, match="cannot write to the mail outbox"):
        OutboxMailer(taken / "mail").send(message("X"))


@pytest.mark.parametrize("status", [401, 403])
def test_sendgrid_refusing_our_key_or_sender_is_retried_and_logged_without_the_key(
    sendgrid: FakeSendGrid, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A revoked key or an unverified sender is ours to fix: every email waiting meanwhile is
    retried (Unavailable, not MailRejected) and the operator is told which settings to check;
    the key itself never reaches the log."""
    key = "SG.test-key-not-a-secret"
    sendgrid.script = [status]
    with pytest.raises(Unavailable) as refused:
        SendGridMailer(key, sendgrid.url).send(message("X"))
    assert not isinstance(refused.value, MailRejected)
    (record,) = [r for r in caplog.records if r.name == "invoiceflow.mail"]
    assert record.levelname == "ERROR"
    assert "SENDGRID_API_KEY" in record.getMessage() and "MAIL_FROM" in record.getMessage()
    assert key not in caplog.text
    SendGridMailer(key, sendgrid.url).send(message("X"))  # the key fixed: the retry sends it
    assert len(sendgrid.delivered) == 1


@pytest.mark.parametrize("to", BAD_ADDRESSES)
def test_sendgrid_refuses_a_recipient_that_is_not_one_plain_address(
    sendgrid: FakeSendGrid, to: str
) -> None:
    with pytest.raises(MailRejected):
        SendGridMailer("SG.test-key-not-a-secret", sendgrid.url).send(message("X", to=to))
    assert sendgrid.requests == []


# ------------------------------------------------------------ the outbox's faster serializer


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_outbox_writes_the_bytes_the_stdlib_policy_and_generator_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str
) -> None:
    """The outbox's header classes made once per name and its one-write body lines change no
    byte: the same message built with the plain SMTP policy and written by ``bytes()`` (the
    same random MIME boundaries, the same Date) is the file the outbox writes."""
    import random

    import invoiceflow.mail as mail

    monkeypatch.setattr(
        mail, "formatdate", lambda localtime=False: "Mon, 30 Nov 2026 12:00:00 -0000"
    )
    msg = Message(
        to="owner@example.com",
        sender=f"{ATTACKS[attack]} <billing@invoiceflow.test>",
        subject=f"Invoice {ATTACKS[attack]} is ready",
        text="Your invoice is ready.\r\nTotal: 12.00 EUR\nline\rend\n" * 20,
        html="<p>body é</p>\n" * 30,
        key="0b0e8a52-7d1c-4a38-9a0c-4bb0d3c9d0f1-ready",
        attachments=(
            Attachment(f"{ATTACKS[attack]}.pdf", "application/pdf", bytes(range(256)) * 400),
            Attachment("sheet.xlsx", "application/vnd.ms-excel", b"PK\x03\x04" * 3000),
        ),
    )
    random.seed(12)
    path = OutboxMailer(tmp_path).send(msg)
    assert path is not None
    monkeypatch.setattr(mail, "_POLICY", policy.SMTP.clone(refold_source="none"))
    reference = OutboxMailer(tmp_path).build(msg)
    assert isinstance(reference.policy, policy.EmailPolicy)
    assert type(reference.policy.header_factory) is not mail._HeaderClasses
    random.seed(12)
    assert Path(path).read_bytes() == bytes(reference)


def _sample(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "to": "owner@example.com",
        "sender": "Invoiceflow <billing@invoiceflow.test>",
        "subject": "Rechnung RE-2026-0042 ist fertig",
        "text": "Hallo,\n\nGesamt: 1.234,56 €\n\nPDF: http://invoices.test/i/1/pdf\n",
        "html": '<p>Rechnung <strong style="color:#0a5">RE</strong></p><ul>'
        + '<li><a href="http://invoices.test/i/1/pdf">PDF</a></li>' * 6
        + "</ul>",
        "key": "0b0e8a52-7d1c-4a38-9a0c-4bb0d3c9d0f1-ready",
        "attachments": (
            Attachment("RE-2026-0042.pdf", "application/pdf", bytes(range(256)) * 200),
            Attachment(
                "RE-2026-0042.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                b"PK\x03\x04" * 2000,
            ),
        ),
    }
    fields.update(changes)
    return Message(**fields)


#: the first boundary random.seed(7) gives (the inner one: the generator makes it first)
SEED_7_BOUNDARY = "=" * 15 + "8742514861359412280=="
_LONG = "<p>" + "a<b>&amp;" * 40 + "</p>"
DIRECT_CASES: dict[str, dict[str, Any]] = {
    "the ready email": {},
    "no attachments": {"attachments": ()},
    "no display name": {"sender": "billing@invoiceflow.test"},
    "a non-ASCII display name": {"sender": "Rëchnungen GmbH <billing@invoiceflow.test>"},
    "non-ASCII subject": {"subject": "Facture n° 12 prête"},
    "an encoded word in the subject": {"subject": f"Invoice {ENCODED_WORD} is ready"},
    "a long non-ASCII subject": {"subject": "Ünïcödé " * 20},
    "a subject that just fits": {"subject": "x" * 69},
    "a subject with specials": {"subject": 'a (b) [c] "d" e;f, g<h>@i =? ?= \\'},
    "an empty text": {"text": "", "html": ""},
    "CR, LF and CRLF line ends": {"text": "a\r\nb\rc\nd", "html": "<p>\n</p>\r"},
    "a 78-byte line": {"text": "x" * 78, "html": "é" * 39},
    "a long line: quoted-printable": {"html": _LONG},
    "a long non-ASCII line: base64": {"html": "<p>" + "é" * 90 + "</p>"},
    "more than ten long lines": {"text": ("z" * 90 + "\n") * 12, "html": ("zé" * 50 + "\n") * 12},
    "QP escapes and trailing blanks": {"text": "x" * 79 + "\n=3D=\n" + " trailing \n" * 3},
    "a text holding the boundary": {"text": f"--{SEED_7_BOUNDARY}\nand --{SEED_7_BOUNDARY}.0\n"},
    "a text holding the boundary mid-line": {"text": f"x --{SEED_7_BOUNDARY}\n"},
    "a non-ASCII file name": {
        "attachments": (Attachment("Rechnung Ä.xlsx", "application/pdf", b"x" * 100),)
    },
    "an encoded word as the file name": {
        "attachments": (Attachment(f"{ENCODED_WORD}.pdf", "application/pdf", b"x"),)
    },
    "a long non-ASCII file name": {
        "attachments": (Attachment("Ä" * 100 + ".pdf", "application/pdf", b"y" * 58),)
    },
    **{
        f"attack {name} in the subject": {"subject": f"Invoice {text} is ready"}
        for name, text in ATTACKS.items()
    },
}
FALLBACK_CASES: dict[str, dict[str, Any]] = {
    "a display name the address header quotes": {"sender": "A. B. <b@x.de>"},
    "a subject the policy folds": {"subject": "x" * 70},
    "an empty subject": {"subject": ""},
    "a file name with a space (attack text)": {
        "attachments": (Attachment(f"{ATTACKS['crlf']}.pdf", "application/pdf", PDF),)
    },
    "a file name with a space": {"attachments": (Attachment("a b.pdf", "application/pdf", b"x"),)},
    "a long file name": {"attachments": (Attachment("x" * 80 + ".pdf", "application/pdf", b"y"),)},
    "an empty attachment": {"attachments": (Attachment("e.pdf", "application/pdf", b""),)},
    "a long recipient": {"to": "a" * 75 + "@x.io"},
}


def _reference_and_direct(
    monkeypatch: pytest.MonkeyPatch, msg: Message
) -> tuple[bytes, bytes | None]:
    import random

    import invoiceflow.mail as mail

    monkeypatch.setattr(
        mail, "formatdate", lambda localtime=False: "Mon, 30 Nov 2026 12:00:00 -0000"
    )
    random.seed(7)
    reference = as_bytes(OutboxMailer(Path("unused")).build(msg))
    random.seed(7)
    return reference, direct_bytes(msg)


@pytest.mark.parametrize("case", sorted(DIRECT_CASES))
def test_the_direct_writer_writes_the_email_packages_bytes(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Byte for byte what build + as_bytes write, with the same random boundaries and Date:
    headers (encoded words, RFC 2231 names, folding), transfer encodings, boundaries (one
    that a text holds as a delimiter line is changed as the generator changes it)."""
    reference, direct = _reference_and_direct(monkeypatch, _sample(**DIRECT_CASES[case]))
    assert direct is not None
    assert direct == reference


@pytest.mark.parametrize("case", sorted(FALLBACK_CASES))
def test_what_the_direct_writer_would_not_write_exactly_goes_to_the_email_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    msg = _sample(**FALLBACK_CASES[case])
    reference, direct = _reference_and_direct(monkeypatch, msg)
    assert direct is None
    import random

    random.seed(7)
    path = OutboxMailer(tmp_path).send(msg)
    assert path is not None and Path(path).read_bytes() == reference


def test_the_direct_writer_keeps_the_checks_on_addresses() -> None:
    with pytest.raises(MailRejected):
        direct_bytes(_sample(to="a@x.io, b@y.io"))
    with pytest.raises(MailRejected):
        direct_bytes(_sample(sender="Billing <billing@x.io>\r\nBcc: victim@evil.example"))
