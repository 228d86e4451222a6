"""The process's first request runs with the garbage collector paused, and the pause ends
once its answer is sent, with everything alive frozen (invoiceflow.first_request)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import flask
import pytest
from flask import Request, Response
from werkzeug.test import EnvironBuilder, run_wsgi_app

from invoiceflow import first_request
from invoiceflow.health import probed


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """As if no request had been served yet; the collector as it was afterwards."""
    first_request.reset()
    gc.enable()
    yield
    first_request.reset()
    gc.unfreeze()
    gc.enable()


def _app(during: list[bool], fail: bool = False, passthrough: bool = False) -> flask.Flask:
    @probed("test")
    def handler(request: Request) -> Response:
        during.append(gc.isenabled())
        if fail:
            raise RuntimeError("boom")
        # a download's answer: its body handed to the server as it is (direct_passthrough)
        return Response(iter([b"o", b"k"]), direct_passthrough=passthrough)

    app = flask.Flask(__name__)

    def view(path: str = "") -> Response:
        return handler(flask.request)

    app.add_url_rule("/", view_func=view, methods=["GET", "POST"])
    app.add_url_rule("/<path:path>", view_func=view, methods=["GET", "POST"])
    return app


def test_the_first_request_pauses_the_collector_until_its_answer_is_sent(
    fresh_process: None,
) -> None:
    during: list[bool] = []
    client = _app(during).test_client()
    assert client.get("/healthz").status_code == 200  # a probe is not the first request
    assert client.get("/readyz").status_code in (200, 503)
    frozen = gc.get_freeze_count()
    response = client.post("/")
    assert response.status_code == 200
    assert during == [False]  # paused while it ran
    assert not gc.isenabled()  # until the answer is sent: the server closes it then
    response.close()
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # what lives on is frozen
    assert client.post("/").status_code == 200
    assert during == [False, True]  # later requests: the collector as usual


def test_a_first_request_that_raises_ends_the_pause(fresh_process: None) -> None:
    during: list[bool] = []
    app = _app(during, fail=True)
    app.testing = False  # the exception becomes a 500, as in a server
    client = app.test_client()
    assert client.post("/").status_code == 500
    assert during == [False]
    assert gc.isenabled()


def test_a_collector_paused_by_the_host_stays_paused(fresh_process: None) -> None:
    during: list[bool] = []
    client = _app(during).test_client()
    gc.disable()
    assert client.post("/").status_code == 200
    assert during == [False] and not gc.isenabled()


def test_a_request_after_an_answer_nobody_closed_ends_the_pause(fresh_process: None) -> None:
    during: list[bool] = []
    client = _app(during).test_client()
    client.post("/")  # never closed
    assert not gc.isenabled()
    assert client.post("/").status_code == 200
    assert during == [False, True] and gc.isenabled()


@pytest.mark.parametrize("passthrough", [False, True], ids=["body", "passthrough"])
def test_the_pause_ends_when_the_server_closes_the_body(
    fresh_process: None, passthrough: bool
) -> None:
    """As a WSGI server does it (gunicorn, werkzeug): iterate the body, send it, close it;
    a direct_passthrough body (a download's file) is handed over unwrapped by werkzeug, so
    call_on_close alone would never run."""
    during: list[bool] = []
    app = _app(during, passthrough=passthrough)
    body, status, _headers = run_wsgi_app(app, EnvironBuilder("/", method="POST").get_environ())
    assert status.startswith("200")
    assert b"".join(body) == b"ok"
    assert not gc.isenabled()  # sent, not closed yet
    close = getattr(body, "close", None)  # what a server does with the iterable it got
    if close is not None:
        close()
    assert during == [False] and gc.isenabled()
