"""The per-process context of a function: settings, stores and the event emitter, built once
(lazily, on the first request, so a cold start pays only for what the function uses)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from invoiceflow.events import Emitter
from invoiceflow.logs import configure
from invoiceflow.settings import Settings
from invoiceflow.stores.protocols import DocumentStore, Repository


@dataclass
class Context:
    settings: Settings

    @cached_property
    def repo(self) -> Repository:
        from invoiceflow.stores import open_repository

        return open_repository(self.settings.database_url)

    @cached_property
    def docs(self) -> DocumentStore:
        from invoiceflow.stores import open_document_store

        return open_document_store(self.settings.document_store_url, self.settings.mongodb_database)

    @cached_property
    def emitter(self) -> Emitter:
        return Emitter(self.settings.k_sink)

    def close(self) -> None:
        for name in ("repo", "docs"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()


_lock = threading.Lock()
_current: Context | None = None


def get_context() -> Context:
    """The context: the one :func:`use_settings` installed, else one built from the
    environment on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                settings = Settings.from_env()
                configure(settings.log_level)
                _current = Context(settings)
    return _current


def use_settings(settings: Settings) -> Context:
    """Make a context of ``settings`` the process's own (closing the previous one): for a host
    that decides some settings itself, such as the local runtime, instead of writing them into
    the environment. :func:`reset_context` forgets it."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
        configure(settings.log_level)
        _current = Context(settings)
        return _current


def reset_context() -> None:
    """Forget the context (tests, and the local runtime when it stops)."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
        _current = None
