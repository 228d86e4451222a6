"""A local stand-in for the SendGrid v3 API: records every request the real ``sendgrid``
client sends and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from support.api import serve_wsgi

#: SendGrid's documented limit on a message's total size (attachments base64 encoded): a
#: larger request is answered 413, as the real API does
MAX_REQUEST_BYTES = 30_000_000


@dataclass
class FakeSendGrid:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: statuses to answer with, in order; then 202 forever
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: in ``script``: take the message (202) but answer only after ``no_answer_for`` seconds,
    #: longer than the client waits (set mail.SEND_TIMEOUT below it)
    NO_ANSWER = -1
    no_answer_for: float = 1.0
    #: called with each request once it is recorded, before the answer (fault injection)
    on_request: Callable[[dict[str, Any]], None] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        data = request.get_data()
        with self.lock:
            status = self.script.pop(0) if self.script else 202
            if len(data) > MAX_REQUEST_BYTES:
                status = 413
            record = {
                "path": request.path,
                "method": request.method,
                "headers": dict(request.headers),
                "size": len(data),
                "json": json.loads(data or b"{}"),
                "answered": 202 if status == self.NO_ANSWER else status,
            }
            self.requests.append(record)
        if self.on_request is not None:
            self.on_request(record)
        if status == self.NO_ANSWER:
            time.sleep(self.no_answer_for)
            status = 202
        if status == 202:
            response = Response("", 202, headers={"X-Message-Id": f"msg-{len(self.requests)}"})
        else:
            response = Response(
                json.dumps({"errors": [{"message": "scripted"}]}),
                status,
                mimetype="application/json",
            )
        return response(environ, start_response)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["answered"] == 202]


@contextmanager
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    with serve_wsgi(fake) as url:
        fake.url = url
        yield fake
