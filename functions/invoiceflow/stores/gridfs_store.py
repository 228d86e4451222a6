"""Document store on MongoDB GridFS (pymongo's ``GridFSBucket``). pymongo is imported here
and nowhere else.

A file is one ``<bucket>.files`` document (``_id`` = the caller's string id, ``filename``,
``length``, ``uploadDate``, ``metadata`` = content_type/sha256/owner/invoice_id/kind) plus its
``<bucket>.chunks``. GridFS writes the chunks first and the files document last, and its
unique ``(files_id, n)`` chunk index makes a second concurrent upload of the same id fail
(``FileExists``) instead of mixing chunks, so the files document is the commit point.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import gridfs
import gridfs.errors
import pymongo
import pymongo.errors

from invoiceflow.errors import BadRequest, Conflict, Unavailable
from invoiceflow.stores.protocols import (
    CHUNK_SIZE,
    OpenedFile,
    StoredFile,
    same_or_conflict,
    valid_file_id,
)

log = logging.getLogger(__name__)

#: what a caller is told when MongoDB cannot be reached (pymongo's topology text goes to the
#: log only)
UNAVAILABLE = "the document store (MongoDB) is unavailable"
#: how long a request waits for MongoDB before its 503
SERVER_SELECTION_TIMEOUT_MS = 5000
#: seconds the readiness check (:meth:`GridFSDocumentStore.ping`) waits for MongoDB
PING_TIMEOUT = 2.0

#: chunks without a files document older than this are left over from a crashed upload
STALE_UPLOAD_AFTER = timedelta(minutes=10)

_T = TypeVar("_T")


@contextmanager
def _mongo_errors(action: str) -> Iterator[None]:
    try:
        yield
    except gridfs.errors.GridFSError:
        raise
    except pymongo.errors.PyMongoError as exc:
        raise _unavailable(action, exc) from exc


def _unavailable(action: str, exc: BaseException) -> Unavailable:
    log.warning("MongoDB error while %s: %s", action, exc)
    return Unavailable(f"{UNAVAILABLE} while {action} ({exc.__class__.__name__})")


class GridFSDocumentStore:
    """Build it from a Database object (pymongo or mongomock), or with :meth:`from_url`."""

    def __init__(
        self, database: Any, *, bucket: str = "fs", client_to_close: Any | None = None
    ) -> None:
        self._db = database
        self._files = database[f"{bucket}.files"]
        self._chunks = database[f"{bucket}.chunks"]
        self._bucket = gridfs.GridFSBucket(database, bucket_name=bucket)
        self._client_to_close = client_to_close

    @classmethod
    def from_url(
        cls, url: str, database: str, *, bucket: str = "fs", **client_options: Any
    ) -> GridFSDocumentStore:
        """Connects lazily: a down server shows up as Unavailable on the first operation.
        ``client_options`` go to ``pymongo.MongoClient`` (e.g. serverSelectionTimeoutMS)."""
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
            "connectTimeoutMS": 5000,
            "tz_aware": True,
            "appname": "invoiceflow",
        }
        options.update(client_options)
        client: Any = pymongo.MongoClient(url, **options)
        return cls(client[database], bucket=bucket, client_to_close=client)

    # -- the interface -------------------------------------------------------------------------

    def put(
        self,
        data: bytes,
        *,
        file_id: str,
        filename: str,
        content_type: str,
        owner: str,
        invoice_id: str,
        kind: str,
    ) -> StoredFile:
        if not valid_file_id(file_id):
            raise BadRequest(f"invalid document id {file_id!r}")
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        metadata = {
            "content_type": content_type,
            "sha256": digest,
            "owner": owner,
            "invoice_id": invoice_id,
            "kind": kind,
        }
        with _mongo_errors("storing a document"):
            for attempt in range(2):
                existing = self._load(file_id)
                if existing is not None:
                    return same_or_conflict(existing, digest, len(data))
                try:
                    self._bucket.upload_from_stream_with_id(
                        file_id, filename, data, metadata=metadata
                    )
                except gridfs.errors.FileExists:
                    existing = self._load(file_id)
                    if existing is not None:
                        return same_or_conflict(existing, digest, len(data))
                    # chunks but no files document: an upload in progress elsewhere, or one
                    # that crashed; clear the latter once and try again
                    if attempt == 0 and self._clear_stale_chunks(file_id):
                        continue
                    raise Conflict(f"document {file_id!r} is being written elsewhere") from None
                stored = self._load(file_id)
                if stored is None:  # pragma: no cover - deleted right after the upload
                    raise Conflict(f"document {file_id!r} vanished while being written")
                return same_or_conflict(stored, digest, len(data))
        raise Conflict(f"document {file_id!r} is being written elsewhere")  # pragma: no cover

    def get(self, file_id: str) -> StoredFile | None:
        if not valid_file_id(file_id):
            return None
        with _mongo_errors("reading document metadata"):
            return self._load(file_id)

    def open(self, file_id: str, chunk_size: int = CHUNK_SIZE) -> OpenedFile | None:
        if not valid_file_id(file_id):
            return None
        with _mongo_errors("opening a document"):
            try:
                grid_out = self._bucket.open_download_stream(file_id)
            except gridfs.errors.NoFile:
                return None
            info = _stored_file(
                {
                    "_id": grid_out._id,
                    "filename": grid_out.filename,
                    "length": grid_out.length,
                    "uploadDate": grid_out.upload_date,
                    "metadata": grid_out.metadata,
                }
            )
        return OpenedFile(info, _GridReader(grid_out), chunk_size)

    def read(self, file_id: str) -> bytes | None:
        opened = self.open(file_id)
        return None if opened is None else opened.read()

    def delete(self, file_id: str) -> bool:
        if not valid_file_id(file_id):
            return False
        with _mongo_errors("deleting a document"):
            try:
                self._bucket.delete(file_id)
            except gridfs.errors.NoFile:
                return False
        return True

    def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """Raise Unavailable unless MongoDB answers a ping within ``timeout`` seconds (the
        readiness check: much shorter than a request's server selection timeout)."""
        with _mongo_errors("checking readiness"), pymongo.timeout(timeout):
            self._db.command("ping")

    def close(self) -> None:
        if self._client_to_close is not None:
            self._client_to_close.close()
            self._client_to_close = None

    # -- helpers -------------------------------------------------------------------------------

    def _load(self, file_id: str) -> StoredFile | None:
        doc = self._files.find_one({"_id": file_id})
        return None if doc is None else _stored_file(doc)

    def _clear_stale_chunks(self, file_id: str) -> bool:
        """Delete the chunks of ``file_id`` if it has no files document and every chunk is
        older than :data:`STALE_UPLOAD_AFTER`; whether it did."""
        cutoff = datetime.now(UTC) - STALE_UPLOAD_AFTER
        chunk_ids = [c["_id"] for c in self._chunks.find({"files_id": file_id}, {"_id": 1})]
        if not chunk_ids:
            return True  # the other upload gave up meanwhile
        if any(_created(cid) > cutoff for cid in chunk_ids):
            return False
        if self._files.find_one({"_id": file_id}) is not None:
            return False
        self._chunks.delete_many({"files_id": file_id, "_id": {"$in": chunk_ids}})
        return True


class _GridReader:
    """A GridOut whose driver errors come out as Unavailable."""

    def __init__(self, grid_out: Any) -> None:
        self._grid_out = grid_out

    def read(self, size: int = -1) -> bytes:
        data: bytes = _call(lambda: self._grid_out.read(size), "reading a document")
        return data

    def close(self) -> None:
        self._grid_out.close()


def _call(fn: Callable[[], _T], action: str) -> _T:
    try:
        return fn()
    except gridfs.errors.CorruptGridFile as exc:
        raise Unavailable(f"document changed or is incomplete while {action}") from exc
    except pymongo.errors.PyMongoError as exc:
        raise _unavailable(action, exc) from exc


def _created(object_id: Any) -> datetime:
    when = getattr(object_id, "generation_time", None)
    # a chunk id that is not an ObjectId (someone else's writer): treat it as fresh
    return when if isinstance(when, datetime) else datetime.now(UTC)


def _stored_file(doc: dict[str, Any]) -> StoredFile:
    meta = doc.get("metadata") or {}
    created = doc.get("uploadDate")
    if isinstance(created, datetime):
        created = (
            created.replace(tzinfo=UTC) if created.tzinfo is None else (created.astimezone(UTC))
        )
    else:
        created = datetime.fromtimestamp(0, UTC)
    return StoredFile(
        file_id=str(doc["_id"]),
        filename=doc.get("filename") or "",
        content_type=meta.get("content_type", "application/octet-stream"),
        size=int(doc.get("length", 0)),
        sha256=meta.get("sha256", ""),
        owner=meta.get("owner", ""),
        invoice_id=meta.get("invoice_id", ""),
        kind=meta.get("kind", ""),
        created_at=created,
    )
