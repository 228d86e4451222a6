"""The first request a process serves, with the cyclic garbage collector paused.

A function imports its heavy libraries on its first request (ReportLab, openpyxl, Babel's
locale data, the e-invoice rules: :mod:`invoiceflow.render` keeps them lazy so that a cold
start pays only for what it uses), which creates some 30,000 container objects (render-pdf)
that live as long as the process. While they are being made, CPython's collector runs again
and again over them (generations 0 to 2), finding next to nothing to free: measured with
``gc.callbacks`` from process start to the first answer, 29-55 ms for render-pdf (one
collection of generation 2 alone 13-26 ms) and 32-46 ms for render-xlsx, most of it during
the first request (docs/performance.md).

So the first request of a process (the probes ``/healthz`` and ``/readyz`` do not count) runs
with the collector off. Once its answer has been sent (:meth:`Response.call_on_close`), one
full collection frees whatever cyclic garbage it left, everything still alive is frozen
(``gc.freeze``: moved to a generation the collector never scans again, which also makes each
later collection cheaper) and the collector is on again. Requests that run at the same time
as the first one (threaded workers) run with it off as well, which is harmless: the pause
ends with the first request (or, if its answer is never closed, when the next request
starts). What such a concurrent request holds at that moment is frozen with the rest: a
cycle among those objects is never collected, a one-time cost bounded by the requests in
flight then (none in the renderers, which take one request at a time).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

_lock = threading.Lock()
#: "new" (no request yet), "paused" (the first one runs), "answered" (its answer is being
#: sent), "done"
_state = "new"


def begin() -> Callable[[], None] | None:
    """Called when a request starts: for the process's first one, pause the collector and
    answer the callback that ends the pause (run it once the answer is sent; see
    :func:`answered`); else None. A request that starts after the first one was answered
    ends the pause itself if the answer's sender never did (a test client that does not
    close its responses)."""
    global _state
    with _lock:
        state = _state
        if state == "new":
            if not gc.isenabled():  # paused by someone else (a test, an embedding host)
                _state = "done"
                return None
            _state = "paused"
            gc.disable()
            return end
    if state == "answered":
        end()
    return None


def answered() -> None:
    """The first request's handler returned: its answer is being sent."""
    global _state
    with _lock:
        if _state == "paused":
            _state = "answered"


def end() -> None:
    """End the pause (once): collect, freeze what is alive, collect again from now on."""
    global _state
    with _lock:
        if _state not in ("paused", "answered"):
            return
        _state = "done"
    # outside the lock: a request starting meanwhile finds "done" and goes on at once
    gc.collect()
    gc.freeze()
    gc.enable()


def reset() -> None:
    """Forget that a first request was served (tests)."""
    global _state
    with _lock:
        _state = "new"
