"""Document store on a local directory: the embedded default for ``dev`` and single hosts.

Layout under the root directory::

    <file_id>.data        the bytes
    <file_id>.meta.json   the metadata (the commit point: a file exists iff this exists)
    .locks/NN.lock        flock() stripes serializing writers of the same id

Writes go to a temp file in the same directory, are fsync'ed and then ``os.replace``'d into
place, data first and metadata last, so a reader never sees a half-written file and a crash
leaves at most an uncommitted ``.data`` that the next put overwrites.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from invoiceflow.errors import BadRequest, Unavailable
from invoiceflow.stores.protocols import (
    CHUNK_SIZE,
    OpenedFile,
    StoredFile,
    same_or_conflict,
    valid_file_id,
)

_LOCK_STRIPES = 64


def path_from_url(url: str | os.PathLike[str]) -> Path:
    """A directory from a plain path or a ``file://`` URL."""
    text = os.fspath(url)
    if text.startswith("file:"):
        parsed = urlparse(text)
        return Path(
            unquote(parsed.netloc + parsed.path)
            if parsed.netloc not in ("", "localhost")
            else unquote(parsed.path)
        )
    return Path(text)


class FilesDocumentStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = path_from_url(root)
        try:
            (self.root / ".locks").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the files store at {self.root}: {exc}") from exc

    # -- paths ---------------------------------------------------------------------------------

    def _data(self, file_id: str) -> Path:
        return self.root / f"{file_id}.data"

    def _meta(self, file_id: str) -> Path:
        return self.root / f"{file_id}.meta.json"

    @contextlib.contextmanager
    def _locked(self, file_id: str) -> Iterator[None]:
        stripe = int.from_bytes(hashlib.sha256(file_id.encode()).digest()[:2]) % _LOCK_STRIPES
        with open(self.root / ".locks" / f"{stripe:02d}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

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
        try:
            with self._locked(file_id):
                existing = self._load_meta(file_id)
                if existing is not None:
                    return same_or_conflict(existing, digest, len(data))
                info = StoredFile(
                    file_id=file_id,
                    filename=filename,
                    content_type=content_type,
                    size=len(data),
                    sha256=digest,
                    owner=owner,
                    invoice_id=invoice_id,
                    kind=kind,
                    created_at=datetime.now(UTC),
                )
                self._write_atomically(self._data(file_id), data)
                self._write_atomically(self._meta(file_id), _encode_meta(info))
                return info
        except OSError as exc:
            raise Unavailable(f"files store write failed: {exc}") from exc

    def get(self, file_id: str) -> StoredFile | None:
        if not valid_file_id(file_id):
            return None
        try:
            return self._load_meta(file_id)
        except OSError as exc:
            raise Unavailable(f"files store read failed: {exc}") from exc

    def open(self, file_id: str, chunk_size: int = CHUNK_SIZE) -> OpenedFile | None:
        info = self.get(file_id)
        if info is None:
            return None
        try:
            # an open handle keeps reading the same bytes even if the file is deleted meanwhile
            raw = open(self._data(file_id), "rb")  # OpenedFile closes it
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"files store read failed: {exc}") from exc
        return OpenedFile(info, raw, chunk_size)

    def read(self, file_id: str) -> bytes | None:
        opened = self.open(file_id)
        return None if opened is None else opened.read()

    def delete(self, file_id: str) -> bool:
        if not valid_file_id(file_id):
            return False
        try:
            with self._locked(file_id):
                existed = self._meta(file_id).exists()
                # metadata first: from here on the file no longer exists for readers
                self._meta(file_id).unlink(missing_ok=True)
                self._data(file_id).unlink(missing_ok=True)
                return existed
        except OSError as exc:
            raise Unavailable(f"files store delete failed: {exc}") from exc

    def ping(self, timeout: float = 2.0) -> None:
        """Raise Unavailable unless the directory exists and is writable (readiness)."""
        if not (self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)):
            raise Unavailable(f"the files store {self.root} is missing or not writable")

    def close(self) -> None:
        pass

    # -- helpers -------------------------------------------------------------------------------

    def _load_meta(self, file_id: str) -> StoredFile | None:
        try:
            raw = self._meta(file_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _decode_meta(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise Unavailable(f"corrupt metadata for document {file_id!r}") from exc

    def _write_atomically(self, target: Path, data: bytes) -> None:
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _encode_meta(info: StoredFile) -> bytes:
    body: dict[str, Any] = {
        "file_id": info.file_id,
        "filename": info.filename,
        "content_type": info.content_type,
        "size": info.size,
        "sha256": info.sha256,
        "owner": info.owner,
        "invoice_id": info.invoice_id,
        "kind": info.kind,
        "created_at": info.created_at.isoformat(timespec="microseconds"),
    }
    return json.dumps(body, sort_keys=True, indent=1).encode()


def _decode_meta(body: dict[str, Any]) -> StoredFile:
    return StoredFile(
        file_id=body["file_id"],
        filename=body["filename"],
        content_type=body["content_type"],
        size=int(body["size"]),
        sha256=body["sha256"],
        owner=body["owner"],
        invoice_id=body["invoice_id"],
        kind=body["kind"],
        created_at=datetime.fromisoformat(body["created_at"]),
    )
