"""The edge runs a handler's calls one at a time until one has succeeded (and every handler's
first calls one at a time with each other's): concurrent first imports of a package with
circular imports fail in a fresh process with threads (seen with Babel in a fresh worker:
``ImportError: partially initialized module 'babel.core'``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask, Response, request

from invoiceflow import edge


class Probe:
    """A handler that answers ``status`` and records how many of its calls overlapped."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Response:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return edge.json_response({"status": self.status}, self.status)

    def burst(self, calls: int) -> int:
        """Start ``calls`` calls at once; the most that ran at the same time."""
        app = Flask(__name__)
        self.most = 0
        start = threading.Barrier(calls)

        def call() -> None:
            start.wait()
            with app.test_request_context("/"):
                edge.serve_http(self, request)

        threads = [threading.Thread(target=call) for _ in range(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.most


@pytest.fixture(autouse=True)
def fresh_first_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge, "first_calls", edge.FirstCalls())


def test_first_calls_run_alone_until_one_succeeds_then_concurrently() -> None:
    probe = Probe(200)
    assert probe.burst(6) < 6  # cold: the first call runs alone
    assert probe.burst(6) == 6  # warm: all at once


def test_refused_calls_do_not_warm_a_handler_but_cannot_keep_it_cold() -> None:
    probe = Probe(422)
    assert probe.burst(4) == 1  # every call alone: none succeeded
    assert probe.burst(4) == 1
    for _ in range(edge.FirstCalls.MAX_COLD_CALLS):
        probe.burst(1)
    assert probe.burst(4) == 4


def test_a_cold_handler_waits_for_another_handlers_first_call() -> None:
    """First calls of different handlers do not overlap either (they import the same
    packages); a warm handler does not wait."""
    cold, other = Probe(200), Probe(200)
    overlap: list[int] = []

    def both() -> None:
        app = Flask(__name__)
        with app.test_request_context("/"):
            edge.serve_http(cold, request)

    t = threading.Thread(target=both)
    t.start()
    time.sleep(0.01)
    started = time.monotonic()
    app = Flask(__name__)
    with app.test_request_context("/"):
        edge.serve_http(other, request)
    overlap.append(int((time.monotonic() - started) * 1000))
    t.join()
    assert overlap[0] >= 35  # waited for the other handler's first call (50 ms)
