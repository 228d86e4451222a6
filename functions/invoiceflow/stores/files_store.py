"""Document store on a local directory: the embedded default for ``dev`` and single hosts.

Layout under the root directory::

    <file_id>.stored      one stored file: its metadata (one line of JSON), then its bytes
    .locks/NN.lock        flock() stripes serializing writers of the same id

A write goes to a temp file in the same directory, is fsync'ed and then ``os.replace``'d into
place: a reader never sees a half-written file, and a crash leaves at most a ``.tmp-*`` file
(never a file without its metadata). One file per stored file: each new file costs an inode
allocation and an fsync, which on a busy disk cost more CPU than anything else a render step
does outside the renderer (docs/performance.md).

Earlier versions wrote each file as two, ``<file_id>.data`` (the bytes) and
``<file_id>.meta.json`` (the metadata, the commit point): those are still read, answered as
the same file and deleted with it, so a data directory from before keeps working.
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

    def _stored(self, file_id: str) -> Path:
        return self.root / f"{file_id}.stored"

    def _legacy_data(self, file_id: str) -> Path:
        return self.root / f"{file_id}.data"

    def _legacy_meta(self, file_id: str) -> Path:
        return self.root / f"{file_id}.meta.json"

    @contextlib.contextmanager
    def _locked(self, file_id: str) -> Iterator[None]:
        stripe = int.from_bytes(hashlib.sha256(file_id.encode()).digest()[:2]) % _LOCK_STRIPES
        fd = os.open(
            self.root / ".locks" / f"{stripe:02d}.lock",
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o644,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed
            yield
        finally:
            os.close(fd)

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
                self._write_atomically(self._stored(file_id), _encode_meta(info), data)
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
        if not valid_file_id(file_id):
            return None
        try:
            # an open handle keeps reading the same bytes even if the file is deleted meanwhile
            raw = open(self._stored(file_id), "rb")  # OpenedFile closes it
        except FileNotFoundError:
            return self._open_legacy(file_id, chunk_size)
        except OSError as exc:
            raise Unavailable(f"files store read failed: {exc}") from exc
        try:
            info = _read_meta(raw, file_id)  # leaves the handle at the first byte of the file
        except OSError as exc:
            raw.close()
            raise Unavailable(f"files store read failed: {exc}") from exc
        except BaseException:
            raw.close()
            raise
        return OpenedFile(info, raw, chunk_size)

    def _open_legacy(self, file_id: str, chunk_size: int) -> OpenedFile | None:
        info = self._load_legacy_meta(file_id)
        if info is None:
            return None
        try:
            raw = open(self._legacy_data(file_id), "rb")  # OpenedFile closes it
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
                existed = self._stored(file_id).exists() or self._legacy_meta(file_id).exists()
                self._stored(file_id).unlink(missing_ok=True)
                # a legacy file's metadata first: then it no longer exists for readers
                self._legacy_meta(file_id).unlink(missing_ok=True)
                self._legacy_data(file_id).unlink(missing_ok=True)
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
            with open(self._stored(file_id), "rb") as handle:
                return _read_meta(handle, file_id)
        except FileNotFoundError:
            return self._load_legacy_meta(file_id)

    def _load_legacy_meta(self, file_id: str) -> StoredFile | None:
        try:
            raw = self._legacy_meta(file_id).read_bytes()
        except FileNotFoundError:
            return None
        return _decode_meta_bytes(raw, file_id)

    def _write_atomically(self, target: Path, *parts: bytes) -> None:
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                for part in parts:
                    view = memoryview(part)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


#: a stored file's metadata line is far shorter (file names are bounded); a longer one is corrupt
_MAX_META_BYTES = 64 * 1024


def _read_meta(handle: Any, file_id: str) -> StoredFile:
    """The metadata line at the start of a ``.stored`` file; the handle is left after it."""
    line = handle.readline(_MAX_META_BYTES)
    if not line.endswith(b"\n"):
        raise Unavailable(f"corrupt metadata for document {file_id!r}")
    return _decode_meta_bytes(line, file_id)


def _decode_meta_bytes(raw: bytes, file_id: str) -> StoredFile:
    try:
        return _decode_meta(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable(f"corrupt metadata for document {file_id!r}") from exc


def _encode_meta(info: StoredFile) -> bytes:
    """The metadata line of a ``.stored`` file: compact JSON (no newline inside), then one."""
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
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


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
