"""Email: SendGrid when ``SENDGRID_API_KEY`` is set, else ``.eml`` files in an outbox folder.

Errors follow the retry table: SendGrid's 429 -> RateLimited, 5xx and connection problems ->
Unavailable (both retried), 401 and 403 -> Unavailable as well (SENDER_REFUSED: a revoked key or
an unverified sender is the operator's to fix, and every email waiting meanwhile would
otherwise be lost; logged at ERROR), any other 4xx -> MailRejected (permanent). A request
that may have reached SendGrid but got no answer (read timeout, connection reset) is
MailOutcomeUnknown: also retried, but the caller keeps its claim (see steps.send_once). The
API key is never logged; nor are message bodies. A message that would exceed SendGrid's size
limit is sent without its attachments (SENDGRID_MAX_BYTES).

Headers: user text (the invoice number in the subject, the owner's address, attachment file
names) only ever reaches a header value through :func:`header_text`, which turns every line
breaking character into a space, and a value that is not plain ASCII or holds ``=?`` is written
as RFC 2047 encoded words of its literal characters (so an encoded word typed by a user is never
decoded into header structure by a mail reader). Addresses must be plain ``local@domain``.

The outbox writes a message's bytes directly (:func:`direct_bytes`: some 0.6 ms for the ready
email with its PDF and XLSX, against some 3-4 ms to build the ``EmailMessage`` tree and serialize
it) when it holds nothing that the email package would quote, fold or encode differently; those
bytes are the email package's, byte for byte (tests/test_mail.py), and anything else goes through
the email package (:meth:`OutboxMailer.build`) as before.

Idempotency: every message has a deterministic id (:func:`message_id`, from ``Message.key``).
The outbox writes ``<key>.eml`` create-exclusive, so a second send of the same message is a
no-op. SendGrid's v3 API has no idempotency key: a resend carries the same ``Message-ID`` header
and ``custom_args.invoiceflow_key``, so receivers and the event webhook can tell it is the same
message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import field
from email import policy, quoprimime
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from html import escape
from io import BytesIO
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from invoiceflow.errors import PermanentError, RateLimited, Unavailable
from invoiceflow.records import record
from invoiceflow.settings import Settings

log = logging.getLogger(__name__)

#: SendGrid's answers about our account rather than the message (401: the API key is unknown
#: or revoked; 403: the key lacks the Mail Send permission or MAIL_FROM is not a verified
#: sender): retried (Unavailable) until the operator fixes the setting
SENDER_REFUSED = frozenset({401, 403})

#: seconds a SendGrid call may take before it counts as failed (and is retried)
SEND_TIMEOUT = 10.0
#: SendGrid's limit on a message's total size (its texts, headers and attachments, these
#: base64 encoded): a larger one is refused (413, permanent)
SENDGRID_MAX_BYTES = 30_000_000
#: room kept under that limit for the addresses, headers and JSON around texts and files
SENDGRID_OVERHEAD_BYTES = 64 * 1024


#: control characters (CR, LF, NEL U+0085, VT, FF, NUL, ...), line and paragraph separators
#: (U+2028, U+2029) and lone surrogates: none of them may reach a header
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: a plain address: no white space, quotes, brackets, commas or encoded words
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)
_NAMED_ADDRESS = re.compile(r"^(.*)<([^<>]*)>$")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def header_text(text: str) -> str:
    """User text made safe for one header value: every character that breaks or folds a line
    becomes a space and runs of white space collapse to one (no header injection, whatever
    the input)."""
    cleaned = "".join(" " if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)
    return " ".join(cleaned.split())


def needs_encoding(text: str) -> bool:
    """Whether a (neutralised) value must be sent as encoded words of its literal text."""
    return not text.isascii() or "=?" in text


def encoded_words(name: str, text: str, linesep: str = "\r\n") -> str:
    """``text`` as RFC 2047 encoded words (UTF-8), folded for header ``name``. Decoding gives
    back exactly ``text``, encoded words included, as literal characters."""
    return Header(text, "utf-8", header_name=name).encode(linesep=linesep)


class MailRejected(PermanentError):
    status = 422
    title = "The mail provider rejected the message"


class MailOutcomeUnknown(Unavailable):
    """The provider may have accepted the message but gave no answer: retried, and the
    claim on the email is kept (a takeover resends it with the same message id)."""


def checked_address(text: str, role: str) -> tuple[str, str]:
    """(display name, address) of a sender or recipient; the address must be plain
    ``local@domain`` (anything else could add recipients or headers): else MailRejected."""
    text = header_text(text)
    named = _NAMED_ADDRESS.match(text)
    name, address = (
        (named.group(1).strip().strip('"').strip(), named.group(2)) if named else ("", text)
    )
    if not _ADDRESS.match(address) or "=?" in address or len(address) > 254:
        raise MailRejected(f"the {role} address cannot be used in an email")
    return header_text(name), address


def rfc2231_disposition(filename: str) -> str:
    """``attachment`` with the file name as RFC 2231 continuations, short lines."""
    quoted = quote(filename, safe="")
    chunks: list[str] = []
    while quoted:
        cut = min(40, len(quoted))  # lines stay short: the policy would refold a long one
        while cut < len(quoted) and "%" in quoted[max(cut - 2, 0) : cut]:
            cut -= 1  # never split a %XX escape
        chunks.append(quoted[:cut])
        quoted = quoted[cut:]
    prefix = "utf-8''"
    return "attachment;" + ";".join(
        f"\r\n filename*{i}*={prefix if i == 0 else ''}{chunk}" for i, chunk in enumerate(chunks)
    )


def message_id(message: Message) -> str:
    """The deterministic ``Message-ID`` of a message: the same for every resend."""
    _, sender = checked_address(message.sender, "sender")
    return f"<{safe_key(message.key)}@{sender.rsplit('@', 1)[1]}>"


def safe_key(key: str) -> str:
    """A message key as a file name and Message-ID left part (no path, no spaces)."""
    return _KEY_UNSAFE.sub("-", key).strip(".-")[:200] or "message"


@record
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@record
class Message:
    to: str
    sender: str
    subject: str
    text: str
    html: str
    #: a stable id (e.g. "<invoice>-ready") so a resend can be recognised
    key: str
    attachments: tuple[Attachment, ...] = ()
    #: the line added to the text and HTML parts when the attachments must be left out (too
    #: large for SendGrid), in the email's language: the reader learns why they are missing
    without_attachments: str = ""


class Mailer(Protocol):
    def send(self, message: Message) -> str | None:
        """Send; returns the provider's message id when it gives one."""
        ...


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, whose header classes are made once per header name:
    ``HeaderRegistry`` builds a new class (``type(...)``) for every header it parses, some 30
    per email, each costing more than parsing the value."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


#: a line ending in a body, as email.generator splits bodies into lines (its NLCRE)
_LINE_END = re.compile(r"\r\n|\r|\n")


class _Generator(BytesGenerator):
    """``bytes(message)`` (a BytesGenerator, the message's policy), writing a body's lines in
    one write instead of two writes per line (a 50 kB attachment is some 900 base64 lines):
    the same bytes."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            # what split + write(line) + write(NL) per line writes, the last line as it is
            self.write(_LINE_END.sub(self._NL, lines))  # type: ignore[attr-defined]


def as_bytes(mail: EmailMessage) -> bytes:
    """The message's bytes, exactly as ``bytes(mail)`` writes them."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=mail.policy).flatten(mail, unixfrom=False)
    return out.getvalue()


#: CRLF lines; values set raw (encoded words, RFC 2231 names) are written exactly as built:
#: refolding one would parse it and write the decoded text back unencoded
_POLICY = policy.SMTP.clone(refold_source="none", header_factory=_HeaderClasses())


#: the longest header line the policy writes without folding it
_MAX_LINE = 78
assert policy.SMTP.max_line_length == _MAX_LINE
#: a display name formataddr and the address header write exactly as they are
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_ -]*\Z")
#: a Message-ID the policy writes exactly as it is (dot-atoms on both sides)
_PLAIN_ID = re.compile(r"<[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z")
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\Z")
_PLAIN_TYPE = re.compile(r"[a-z]+/[a-z0-9][a-z0-9.+-]*\Z")
_CRLF = b"\r\n"


def _new_boundary() -> str:
    """A boundary as email.generator makes one (``=`` * 15, 19 digits, ``==``; the same
    random source)."""
    return "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="  # noqa: S311 (as the stdlib)


def _unused_boundary(made: str, parts: list[bytes]) -> str:
    """``made``, or ``made.N`` when a part holds it as a delimiter line: what
    ``Generator._make_boundary`` answers for the parts joined (the regex runs only when the
    text holds the boundary at all, which base64 and the headers written here cannot)."""
    text = _CRLF.join(parts)
    if f"--{made}".encode("ascii") not in text:
        return made
    candidate, counter = made, 0
    while re.search(
        b"^--" + re.escape(candidate.encode("ascii")) + b"(--)?$", text, flags=re.MULTILINE
    ):
        candidate = f"{made}.{counter}"
        counter += 1
    return candidate


def _text_part(text: str, subtype: str, mime_version: bool) -> bytes:
    """A text part as ``set_content``/``add_alternative`` and the generator write it: the
    same choice of transfer encoding (email.contentmanager's: 7bit or 8bit when every line
    fits, else the shorter of quoted-printable and base64 for the first ten lines)."""
    lines = text.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) <= _MAX_LINE:
        body = _CRLF.join(lines) + _CRLF
        cte = "7bit" if body.isascii() else "8bit"
    else:
        sniff = _CRLF.join(lines[:10]) + _CRLF
        sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), _MAX_LINE)
        if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
            cte, data = "base64", base64.encodebytes(_CRLF.join(lines) + _CRLF).decode("ascii")
        else:
            cte = "quoted-printable"
            data = (
                sniff_qp
                if len(lines) <= 10
                else quoprimime.body_encode(
                    (b"\n".join(lines) + b"\n").decode("latin-1"), _MAX_LINE
                )
            )
        body = _LINE_END.sub("\r\n", data).encode("ascii")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    if mime_version:
        head += "MIME-Version: 1.0\r\n"
    return head.encode("ascii") + _CRLF + body


def _attachment_part(att: Attachment) -> bytes | None:
    """An attachment as ``add_attachment`` (and build's RFC 2231 file name) and the generator
    write it, for a plain content type and a plain or RFC 2231 file name; None otherwise."""
    if not _PLAIN_TYPE.match(att.content_type) or not att.data:
        return None
    filename = header_text(att.filename)
    head = f"Content-Type: {att.content_type}\r\nContent-Transfer-Encoding: base64\r\n"
    if needs_encoding(filename):
        head += f"MIME-Version: 1.0\r\nContent-Disposition: {rfc2231_disposition(filename)}\r\n"
    else:
        disposition = f'Content-Disposition: attachment; filename="{filename}"'
        if not _PLAIN_FILENAME.match(filename) or len(disposition) > _MAX_LINE:
            return None
        head += f"{disposition}\r\nMIME-Version: 1.0\r\n"
    body = base64.encodebytes(att.data).replace(b"\n", _CRLF)
    return head.encode("ascii") + _CRLF + body


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    """A multipart body as the generator writes it (after its Content-Type header)."""
    dash = f"--{boundary}".encode("ascii")
    return dash + _CRLF + (_CRLF + dash + _CRLF).join(parts) + _CRLF + dash + b"--" + _CRLF


def _content_type(subtype: str, boundary: str) -> str:
    line = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    if len(line) > _MAX_LINE:  # the policy folds it before the boundary parameter
        line = f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"'
    return line


def direct_bytes(message: Message, boundaries: Callable[[], str] = _new_boundary) -> bytes | None:
    """The bytes :meth:`OutboxMailer.build` + :func:`as_bytes` write for the message, written
    directly (no header parsing and refolding, no MIME tree), or None when the message holds
    anything outside the cases this writes exactly as the email package does (a display
    name, subject, file name or content type that the policy would quote or fold, a text line
    longer than 78 bytes...): the caller then uses the email package. Same headers, same
    order, same encodings; tests compare the two byte for byte. Header safety is the same
    code: :func:`checked_address`, :func:`header_text`, :func:`encoded_words`,
    :func:`rfc2231_disposition`."""
    from_name, sender = checked_address(message.sender, "sender")
    _, to = checked_address(message.to, "recipient")
    if from_name and needs_encoding(from_name):
        from_line = f"From: {encoded_words('From', from_name)}\r\n <{sender}>"
    elif _PLAIN_NAME.match(from_name):
        from_line = f"From: {formataddr((from_name, sender))}"
    else:
        return None
    subject = header_text(message.subject)
    if needs_encoding(subject):
        subject_line = f"Subject: {encoded_words('Subject', subject)}"
    else:
        subject_line = f"Subject: {subject}"
        if not subject or len(subject_line) > _MAX_LINE:
            return None
    to_line = f"To: {to}"
    mid = message_id(message)
    id_line = f"Message-ID: {mid}"
    single_lines = [to_line, id_line] + ([] if "\r\n" in from_line else [from_line])
    if not _PLAIN_ID.match(mid) or any(len(x) > _MAX_LINE for x in single_lines):
        return None
    text = _text_part(message.text, "plain", False)
    html = _text_part(message.html, "html", True)
    attachments = [_attachment_part(att) for att in message.attachments]
    if None in attachments:
        return None

    # the generator makes the inner boundary first, then the outer one
    inner = _unused_boundary(boundaries(), [text, html])
    alternative = _multipart(inner, [text, html])
    head = (
        f"{from_line}\r\n{to_line}\r\n{subject_line}\r\nDate: {formatdate(localtime=False)}\r\n"
        f"{id_line}\r\nMIME-Version: 1.0\r\n"
    )
    if not message.attachments:
        top = _content_type("alternative", inner)
        return (head + top + "\r\n\r\n").encode("ascii") + alternative
    inner_head = (_content_type("alternative", inner) + "\r\n\r\n").encode("ascii")
    parts = [inner_head + alternative, *(a for a in attachments if a is not None)]
    outer = _unused_boundary(boundaries(), parts)
    top = _content_type("mixed", outer)
    return (head + top + "\r\n\r\n").encode("ascii") + _multipart(outer, parts)


class OutboxMailer:
    """Writes each message as ``<key>.eml`` into a folder (the default with no SendGrid key).

    The file is created exclusively (written to a temporary name, then hard-linked to its
    final name, which fails if it exists): sending the same message again writes nothing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, message: Message) -> EmailMessage:
        from_name, sender = checked_address(message.sender, "sender")
        _, to = checked_address(message.to, "recipient")
        mail = EmailMessage(policy=_POLICY)
        if from_name and needs_encoding(from_name):
            mail.set_raw("From", f"{encoded_words('From', from_name)}\r\n <{sender}>")
        else:
            mail["From"] = formataddr((from_name, sender))
        mail["To"] = to
        subject = header_text(message.subject)
        if needs_encoding(subject):
            # set as is: the policy would decode encoded words typed by the user
            mail.set_raw("Subject", encoded_words("Subject", subject))
        else:
            mail["Subject"] = subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(message)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        for att in message.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            filename = header_text(att.filename)
            mail.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=filename)
            if needs_encoding(filename):
                # RFC 2231 (filename*0*=utf-8''...), never a quoted string a reader could
                # decode as an encoded word
                part = list(mail.iter_attachments())[-1]
                del part["Content-Disposition"]
                part.set_raw("Content-Disposition", rfc2231_disposition(filename))
        return mail

    def render(self, message: Message) -> bytes:
        """The message's bytes: :func:`direct_bytes`, else the email package's."""
        direct = direct_bytes(message)
        return direct if direct is not None else as_bytes(self.build(message))

    def send(self, message: Message) -> str | None:
        data = self.render(message)
        target = self.folder / f"{safe_key(message.key)}.eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".sending-", suffix=".tmp")
        except OSError as exc:  # a volume gone or full, a folder not writable: retried
            raise Unavailable(
                f"cannot write to the mail outbox: {exc.__class__.__name__}"
            ) from None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                log.info(
                    "email %s was already written to %s; not written again",
                    message_id(message),
                    target,
                )
                return str(target)
        except OSError as exc:
            raise Unavailable(
                f"cannot write to the mail outbox: {exc.__class__.__name__}"
            ) from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.info("email to the owner written to %s (no SENDGRID_API_KEY set)", target)
        return str(target)


def _sendgrid_attachments(message: Message) -> tuple[Attachment, ...]:
    """The message's attachments when the whole message fits SendGrid's size limit; else
    none (logged): the email still goes out, and its links reach every file."""
    size = SENDGRID_OVERHEAD_BYTES + len(message.text.encode()) + len(message.html.encode())
    size += sum(4 * -(-len(att.data) // 3) for att in message.attachments)  # base64
    if size <= SENDGRID_MAX_BYTES:
        return message.attachments
    log.warning(
        "email %s is %d bytes with its attachments, over SendGrid's limit of %d: sent without them",
        safe_key(message.key),
        size,
        SENDGRID_MAX_BYTES,
    )
    return ()


class SendGridMailer:
    """The real ``sendgrid`` client; ``host`` lets tests point it at a local server."""

    def __init__(self, api_key: str, host: str) -> None:
        self._api_key = api_key
        self.host = host

    @staticmethod
    def _text(text: str) -> str:
        """A header text for SendGrid, which builds the MIME itself: one line, and encoded
        words of the literal text when it holds ``=?`` (SendGrid passes ASCII through)."""
        text = header_text(text)
        return encoded_words("Subject", text, linesep="") if "=?" in text else text

    def build(self, message: Message) -> object:
        from sendgrid.helpers.mail import (
            Attachment as SGAttachment,
        )
        from sendgrid.helpers.mail import (
            CustomArg,
            Disposition,
            FileContent,
            FileName,
            FileType,
            From,
            Header,
            Mail,
            To,
        )

        from_name, sender = checked_address(message.sender, "sender")
        _, to = checked_address(message.to, "recipient")
        attachments = _sendgrid_attachments(message)
        text, html = message.text, message.html
        if message.attachments and not attachments and message.without_attachments:
            text += f"\n{message.without_attachments}\n"
            html += f"<p>{escape(message.without_attachments, quote=True)}</p>"
        mail = Mail(
            from_email=From(sender, self._text(from_name) or None),
            to_emails=To(to),
            subject=self._text(message.subject),
            plain_text_content=text,
            html_content=html,
        )
        # the same for every resend: receivers and the event webhook can tell it apart
        mail.header = Header("Message-ID", message_id(message))
        mail.custom_arg = CustomArg("invoiceflow_key", safe_key(message.key))
        for att in attachments:
            mail.add_attachment(
                SGAttachment(
                    FileContent(base64.b64encode(att.data).decode()),
                    FileName(header_text(att.filename)),
                    FileType(header_text(att.content_type)),
                    Disposition("attachment"),
                )
            )
        return mail

    def send(self, message: Message) -> str | None:
        import http.client
        import urllib.error

        import python_http_client.exceptions as http_errors
        from sendgrid import SendGridAPIClient

        mail = self.build(message)
        client = SendGridAPIClient(api_key=self._api_key, host=self.host)
        client.client.timeout = SEND_TIMEOUT
        try:
            response = client.send(mail)
        except http_errors.HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            if status == 429:
                raise RateLimited("SendGrid asked us to slow down (429)") from None
            if status >= 500:
                raise Unavailable(f"SendGrid answered {status}") from None
            if status in SENDER_REFUSED:  # ours to fix, not the message's: retried meanwhile
                log.error(
                    "SendGrid refused the sender (%s): check SENDGRID_API_KEY (revoked, or "
                    "without the Mail Send permission) and that MAIL_FROM is a verified sender",
                    status,
                )
                raise Unavailable(f"SendGrid refused the sender ({status})") from None
            raise MailRejected(f"SendGrid rejected the message ({status})") from None
        except urllib.error.URLError as exc:  # refused, DNS: the request was not sent whole
            raise Unavailable(f"SendGrid is unreachable: {exc.__class__.__name__}") from None
        except (OSError, http.client.HTTPException) as exc:  # sent, but no answer read
            raise MailOutcomeUnknown(f"SendGrid did not answer: {exc.__class__.__name__}") from None
        headers = getattr(response, "headers", None) or {}
        return headers.get("X-Message-Id") if hasattr(headers, "get") else None


def mailer_for(settings: Settings) -> Mailer:
    if settings.sendgrid_api_key:
        return SendGridMailer(settings.sendgrid_api_key, settings.sendgrid_host)
    return OutboxMailer(settings.mail_outbox_dir)
