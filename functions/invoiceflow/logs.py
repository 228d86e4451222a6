"""Logging: one line per record, key=value context (function, invoice, event) attached from a
context variable, never a secret (settings hide them; tokens and passwords are never logged)."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "invoiceflow_log_context", default=None
)
_configured = False


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        record.context = " ".join(f"{k}={v}" for k, v in ctx.items())
        return True


def configure(level: str = "INFO") -> None:
    """Idempotent: install one stderr handler on the ``invoiceflow`` logger."""
    global _configured
    logger = logging.getLogger("invoiceflow")
    logger.setLevel(level)
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(context)s")
    )
    logger.addHandler(handler)
    logger.propagate = False
    _configured = True


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach ``values`` to every log line inside the block (nested blocks add to it)."""
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: Any) -> None:
    """Add ``values`` to the current block's context."""
    _context.set({**(_context.get() or {}), **values})
