"""Email: SendGrid when ``SENDGRID_API_KEY`` is set, else ``.eml`` files in an outbox folder.

Errors follow the retry table: SendGrid's 429 -> RateLimited, 5xx and connection problems ->
Unavailable (both retried), any other 4xx -> MailRejected (permanent). The API key is never
logged; nor are message bodies.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from invoiceflow.errors import PermanentError, RateLimited, Unavailable
from invoiceflow.settings import Settings

log = logging.getLogger(__name__)

#: seconds a SendGrid call may take before it counts as failed (and is retried)
SEND_TIMEOUT = 10.0


def _one_line(text: str) -> str:
    """Header values never carry line breaks (no header injection, whatever the input)."""
    return " ".join(text.split())


class MailRejected(PermanentError):
    status = 422
    title = "The mail provider rejected the message"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Message:
    to: str
    sender: str
    subject: str
    text: str
    html: str
    #: a stable id (e.g. "<invoice>-ready") so a resend can be recognised
    key: str
    attachments: tuple[Attachment, ...] = ()


class Mailer(Protocol):
    def send(self, message: Message) -> str | None:
        """Send; returns the provider's message id when it gives one."""
        ...


class OutboxMailer:
    """Writes each message as ``<key>.eml`` into a folder (the default with no SendGrid key)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: Message) -> str | None:
        mail = EmailMessage()
        mail["From"] = message.sender
        mail["To"] = message.to
        mail["Subject"] = _one_line(message.subject)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.key, domain="invoiceflow.local")
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        for att in message.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            mail.add_attachment(att.data, maintype=maintype, subtype=subtype,
                                filename=att.filename)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{message.key}.eml"
        tmp = target.with_suffix(".eml.tmp")
        tmp.write_bytes(bytes(mail))
        tmp.replace(target)
        log.info("email to the owner written to %s (no SENDGRID_API_KEY set)", target)
        return str(target)


class SendGridMailer:
    """The real ``sendgrid`` client; ``host`` lets tests point it at a local server."""

    def __init__(self, api_key: str, host: str) -> None:
        self._api_key = api_key
        self.host = host

    def send(self, message: Message) -> str | None:
        import python_http_client.exceptions as http_errors
        from sendgrid import SendGridAPIClient
        from sendgrid.helpers.mail import (
            Attachment as SGAttachment,
        )
        from sendgrid.helpers.mail import (
            Disposition,
            FileContent,
            FileName,
            FileType,
            Mail,
        )

        mail = Mail(from_email=message.sender, to_emails=message.to,
                    subject=_one_line(message.subject),
                    plain_text_content=message.text, html_content=message.html)
        for att in message.attachments:
            mail.add_attachment(SGAttachment(
                FileContent(base64.b64encode(att.data).decode()), FileName(att.filename),
                FileType(att.content_type), Disposition("attachment")))
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
            raise MailRejected(f"SendGrid rejected the message ({status})") from None
        except OSError as exc:  # URLError, timeouts, refused connections
            raise Unavailable(f"SendGrid is unreachable: {exc.__class__.__name__}") from None
        headers = getattr(response, "headers", None) or {}
        return headers.get("X-Message-Id") if hasattr(headers, "get") else None


def mailer_for(settings: Settings) -> Mailer:
    if settings.sendgrid_api_key:
        return SendGridMailer(settings.sendgrid_api_key, settings.sendgrid_host)
    return OutboxMailer(settings.mail_outbox_dir)
