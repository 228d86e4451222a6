"""Storage: the SQL repository (PostgreSQL or SQLite) and the document store (GridFS or a
files directory). Call the factories; depend on the protocols::

    from invoiceflow.stores import open_repository, open_document_store

    repo = open_repository(settings.database_url)        # Repository
    docs = open_document_store(settings.document_store_url, settings.mongodb_database)

Driver modules (psycopg2, pymongo) are imported only by the adapter that needs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from invoiceflow.stores.protocols import (
    Accepted,
    Artifact,
    DocumentStore,
    InvoicePage,
    InvoiceRecord,
    NewInvoiceRecord,
    NewOutboxEvent,
    Notification,
    OpenedFile,
    OutboxEvent,
    QueuedDelivery,
    Repository,
    StoredFile,
    User,
    valid_file_id,
)

__all__ = [
    "Accepted",
    "Artifact",
    "DocumentStore",
    "InvoicePage",
    "InvoiceRecord",
    "NewInvoiceRecord",
    "NewOutboxEvent",
    "Notification",
    "OpenedFile",
    "OutboxEvent",
    "QueuedDelivery",
    "Repository",
    "StoredFile",
    "User",
    "migrate",
    "open_document_store",
    "open_repository",
    "sqlite_path",
    "valid_file_id",
]


def sqlite_path(database_url: str) -> Path:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL."""
    if not database_url.startswith("sqlite:///"):
        raise ValueError("a SQLite URL looks like sqlite:///path/to/file.db")
    path = unquote(urlparse(database_url).path)
    # urlparse keeps one leading slash of "sqlite:///x": strip exactly that one
    return Path(path[1:] if path.startswith("/") else path)


def open_repository(database_url: str, **options: Any) -> Repository:
    """The SQL repository for ``database_url``: ``postgresql://``/``postgres://`` (psycopg2
    pool) or ``sqlite:///path``. Does not connect yet. ``options`` go to the adapter
    (e.g. ``clock=``, ``max_connections=`` for Postgres, ``busy_timeout=`` for SQLite)."""
    scheme = urlparse(database_url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        from invoiceflow.stores.postgres import PostgresRepository

        return PostgresRepository(database_url, **options)
    if scheme == "sqlite":
        from invoiceflow.stores.sqlite import SQLiteRepository

        return SQLiteRepository(sqlite_path(database_url), **options)
    raise ValueError("DATABASE_URL must start with postgresql://, postgres:// or sqlite:///")


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations (``invoiceflow db migrate``); returns the versions applied now.
    Safe to run twice, and on PostgreSQL safe to run from several processes at once."""
    repo = open_repository(database_url)
    try:
        return repo.migrate()
    finally:
        repo.close()


def open_document_store(
    url: str | os.PathLike[str], database: str | None = None, **options: Any
) -> DocumentStore:
    """``mongodb://``/``mongodb+srv://`` -> GridFS in ``database`` (required there:
    MONGODB_DATABASE); anything else (a directory path or a ``file://`` URL) -> the files
    directory. ``options`` go to the adapter."""
    text = os.fspath(url)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        from invoiceflow.stores.gridfs_store import GridFSDocumentStore

        if database is None:
            raise ValueError("a GridFS document store needs a database name")

        return GridFSDocumentStore.from_url(text, database, **options)
    from invoiceflow.stores.files_store import FilesDocumentStore

    return FilesDocumentStore(text, **options)
