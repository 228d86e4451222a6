"""Contract tests of the document store: GridFS (mongomock, and a real MongoDB when
MONGODB_URL is set) and the files directory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.errors import BadRequest, Conflict, Unavailable
from invoiceflow.stores import DocumentStore, open_document_store
from invoiceflow.stores.files_store import FilesDocumentStore

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
MALFORMED_IDS = [
    "",
    "../x",
    "..",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    ".hidden",
    "x" * 129,
    "a\x00b",
    "ünïcode",
    "with space",
    "-leading-dash",
]


#: A real MongoDB exists on no machine of ours (no server in any reachable registry): the GridFS
#: adapter runs on mongomock, and also on a real server when MONGODB_URL=mongodb://... is set.
REAL_MONGODB = os.environ.get("MONGODB_URL", "").startswith(("mongodb://", "mongodb+srv://"))
#: mongomock is not thread-safe: the concurrency contract runs on the others.
THREAD_SAFE_STORES = ["files", *(["gridfs-mongodb"] if REAL_MONGODB else [])]
STORES = ["gridfs-mongomock", *THREAD_SAFE_STORES]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "gridfs-mongomock":
        from invoiceflow.stores.gridfs_store import GridFSDocumentStore

        docs: DocumentStore = GridFSDocumentStore(request.getfixturevalue("mongomock_db"))
        yield docs
        docs.close()
    elif request.param == "files":
        docs = open_document_store(request.getfixturevalue("files_dir"))
        yield docs
        docs.close()
    else:
        url = os.environ["MONGODB_URL"]
        database = f"invoiceflow_test_{uuid.uuid4().hex[:12]}"
        docs = open_document_store(url, database)
        yield docs
        import pymongo

        client: pymongo.MongoClient[dict[str, Any]]
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(database)
        docs.close()


def put(store: DocumentStore, data: bytes, file_id: str = "inv-1-pdf", **meta: Any) -> Any:
    fields = {
        "filename": "INV-1.pdf",
        "content_type": "application/pdf",
        "owner": "user-1",
        "invoice_id": "inv-1",
        "kind": "pdf",
    }
    fields.update(meta)
    return store.put(data, file_id=file_id, **fields)


def test_round_trip_with_metadata(store: DocumentStore) -> None:
    stored = put(store, PDF)
    assert stored.file_id == "inv-1-pdf"
    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert stored.size == len(PDF)
    assert (stored.filename, stored.content_type, stored.owner, stored.invoice_id, stored.kind) == (
        "INV-1.pdf",
        "application/pdf",
        "user-1",
        "inv-1",
        "pdf",
    )
    assert stored.created_at.tzinfo is not None
    assert store.get("inv-1-pdf") == stored
    assert store.read("inv-1-pdf") == PDF
    assert store.get("inv-2-pdf") is None
    assert store.read("inv-2-pdf") is None
    assert store.open("inv-2-pdf") is None


def test_streaming_read_in_chunks(store: DocumentStore) -> None:
    big = os.urandom(700 * 1024)  # several GridFS chunks (255 KiB each)
    put(store, big, "inv-1-xlsx", kind="xlsx", content_type="application/vnd.ms-excel")
    opened = store.open("inv-1-xlsx", chunk_size=100 * 1024)
    assert opened is not None
    with opened:
        assert opened.info.size == len(big)
        chunks = list(opened)
    assert all(len(c) <= 100 * 1024 for c in chunks) and len(chunks) >= 7
    assert b"".join(chunks) == big
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == opened.info.sha256


def test_put_same_bytes_again_returns_the_stored_file(store: DocumentStore) -> None:
    first = put(store, PDF)
    again = put(store, PDF, filename="other-name.pdf", owner="someone-else")
    assert again == first  # nothing new stored: the original metadata, same created_at
    assert store.read("inv-1-pdf") == PDF


def test_put_other_bytes_under_the_same_id_conflicts(store: DocumentStore) -> None:
    first = put(store, PDF)
    with pytest.raises(Conflict):
        put(store, PDF + b"changed")
    with pytest.raises(Conflict):
        put(store, b"")
    assert store.get("inv-1-pdf") == first
    assert store.read("inv-1-pdf") == PDF


def test_empty_file(store: DocumentStore) -> None:
    stored = put(store, b"", "inv-1-raw", kind="raw", content_type="application/json")
    assert stored.size == 0 and stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.read("inv-1-raw") == b""


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_malformed_ids_are_not_found(store: DocumentStore, bad_id: str) -> None:
    assert store.get(bad_id) is None
    assert store.open(bad_id) is None
    assert store.read(bad_id) is None
    assert store.delete(bad_id) is False
    with pytest.raises(BadRequest):
        put(store, b"data", bad_id)


def test_non_string_ids_are_not_found(store: DocumentStore) -> None:
    for bad in (None, 42, b"bytes-id"):
        assert store.get(bad) is None  # type: ignore[arg-type]
        assert store.read(bad) is None  # type: ignore[arg-type]


def test_delete(store: DocumentStore) -> None:
    put(store, PDF)
    assert store.delete("inv-1-pdf") is True
    assert store.get("inv-1-pdf") is None and store.read("inv-1-pdf") is None
    assert store.delete("inv-1-pdf") is False
    # the id is free again, for any bytes
    assert put(store, b"new bytes").size == len(b"new bytes")


@pytest.mark.parametrize("store", THREAD_SAFE_STORES, indirect=True)
def test_concurrent_puts_of_one_file(store: DocumentStore) -> None:
    barrier = threading.Barrier(6)

    def attempt(_: int) -> str:
        barrier.wait(timeout=10)
        try:
            return str(put(store, PDF).sha256)
        except Conflict:  # "being written elsewhere": a retry (409) would succeed
            return "retry"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6), timeout=30))
    assert hashlib.sha256(PDF).hexdigest() in results
    assert set(results) <= {hashlib.sha256(PDF).hexdigest(), "retry"}
    assert store.read("inv-1-pdf") == PDF


# -- adapter specifics ------------------------------------------------------------------------


def test_files_store_layout_and_no_leftovers(files_dir: Path) -> None:
    docs = FilesDocumentStore(f"file://{files_dir}")
    put(docs, PDF)
    put(docs, PDF)
    with pytest.raises(Conflict):
        put(docs, b"other")
    names = sorted(p.name for p in files_dir.iterdir() if p.is_file())
    assert names == ["inv-1-pdf.stored"]  # one file, no temp files left behind
    meta, sep, data = (files_dir / "inv-1-pdf.stored").read_bytes().partition(b"\n")
    assert sep and data == PDF
    assert json.loads(meta)["sha256"] == hashlib.sha256(PDF).hexdigest()
    # a temp file left by a crash is not a file, and the next put is whole
    (files_dir / ".tmp-crashed").write_bytes(b"half")
    assert docs.get("crashed") is None
    assert put(docs, b"whole", "crashed").size == 5
    assert docs.read("crashed") == b"whole"
    # nothing escaped the root
    assert not (files_dir.parent / "x.stored").exists()


def test_a_stored_file_without_a_metadata_line_is_unavailable(files_dir: Path) -> None:
    docs = FilesDocumentStore(files_dir)
    (files_dir / "broken.stored").write_bytes(b"x" * 70_000)
    (files_dir / "garbled.stored").write_bytes(b"{not json\nbytes")
    for file_id in ("broken", "garbled"):
        with pytest.raises(Unavailable):
            docs.get(file_id)
        with pytest.raises(Unavailable):
            docs.open(file_id)
        with pytest.raises(Unavailable):  # never overwritten: someone must look at it
            put(docs, b"new", file_id)


def test_files_written_as_two_files_by_earlier_versions_are_still_served(
    files_dir: Path,
) -> None:
    """Before one ``.stored`` file per file, the bytes and the metadata were two files: a data
    directory from then keeps its files (read, put again, deleted)."""
    docs = FilesDocumentStore(files_dir)
    info = put(docs, PDF, "old-1")
    meta, _, _ = (files_dir / "old-1.stored").read_bytes().partition(b"\n")
    (files_dir / "old-1.stored").unlink()
    (files_dir / "old-1.data").write_bytes(PDF)
    (files_dir / "old-1.meta.json").write_text(json.dumps(json.loads(meta), indent=1))
    assert docs.get("old-1") == info
    assert docs.read("old-1") == PDF
    opened = docs.open("old-1", chunk_size=1000)
    assert opened is not None
    with opened:
        assert b"".join(opened) == PDF
    assert put(docs, PDF, "old-1") == info  # the same bytes again: the stored file
    with pytest.raises(Conflict):
        put(docs, b"other", "old-1")
    # a data file without its metadata (a crash before the commit point) was never a file
    (files_dir / "half.data").write_bytes(b"half")
    assert docs.get("half") is None and docs.open("half") is None
    assert docs.delete("old-1") is True
    assert sorted(p.name for p in files_dir.iterdir() if p.is_file()) == ["half.data"]
    assert docs.get("old-1") is None


def test_gridfs_stores_one_files_document_and_string_ids(mongomock_db: Any) -> None:
    from invoiceflow.stores.gridfs_store import GridFSDocumentStore

    docs = GridFSDocumentStore(mongomock_db)
    put(docs, PDF)
    put(docs, PDF)
    files = list(mongomock_db["fs.files"].find())
    assert [f["_id"] for f in files] == ["inv-1-pdf"]
    assert files[0]["metadata"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert mongomock_db["fs.chunks"].count_documents({"files_id": "inv-1-pdf"}) == 1


def test_gridfs_clears_chunks_of_a_crashed_upload(mongomock_db: Any) -> None:
    from bson import ObjectId

    from invoiceflow.stores.gridfs_store import GridFSDocumentStore

    docs = GridFSDocumentStore(mongomock_db)
    old = ObjectId.from_datetime(__import__("datetime").datetime(2020, 1, 1))
    mongomock_db["fs.chunks"].create_index([("files_id", 1), ("n", 1)], unique=True)
    mongomock_db["fs.chunks"].insert_one(
        {"_id": old, "files_id": "inv-9-pdf", "n": 0, "data": b"partial"}
    )
    assert docs.get("inv-9-pdf") is None
    assert put(docs, PDF, "inv-9-pdf").size == len(PDF)
    assert docs.read("inv-9-pdf") == PDF


def test_gridfs_in_progress_upload_elsewhere_is_a_conflict(mongomock_db: Any) -> None:
    from bson import ObjectId

    from invoiceflow.stores.gridfs_store import GridFSDocumentStore

    docs = GridFSDocumentStore(mongomock_db)
    mongomock_db["fs.chunks"].create_index([("files_id", 1), ("n", 1)], unique=True)
    mongomock_db["fs.chunks"].insert_one(
        {"_id": ObjectId(), "files_id": "inv-8-pdf", "n": 0, "data": b"being written"}
    )
    with pytest.raises(Conflict):
        put(docs, PDF, "inv-8-pdf")


def test_unreachable_mongodb_is_unavailable() -> None:
    from invoiceflow.stores.gridfs_store import GridFSDocumentStore

    docs = GridFSDocumentStore.from_url("mongodb://127.0.0.1:1", "x", serverSelectionTimeoutMS=200)
    with pytest.raises(Unavailable):
        docs.get("inv-1-pdf")
    with pytest.raises(Unavailable):
        put(docs, PDF)
    docs.close()


def test_factory_picks_the_adapter(tmp_path: Path) -> None:
    from invoiceflow.stores.gridfs_store import GridFSDocumentStore

    gridfs_store = open_document_store(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200", "invoiceflow"
    )
    assert isinstance(gridfs_store, GridFSDocumentStore)  # connects lazily: no error yet
    gridfs_store.close()
    with pytest.raises(ValueError, match="database"):  # MONGODB_DATABASE is given, never guessed
        open_document_store("mongodb://127.0.0.1:1/")
    assert isinstance(open_document_store(tmp_path / "a"), FilesDocumentStore)
    assert isinstance(open_document_store(str(tmp_path / "b")), FilesDocumentStore)
    via_url = open_document_store(f"file://{tmp_path / 'c'}")
    assert isinstance(via_url, FilesDocumentStore) and via_url.root == tmp_path / "c"


def test_drivers_are_imported_only_by_their_adapters() -> None:
    code = (
        "import sys, invoiceflow.stores, invoiceflow.stores.files_store, "
        "invoiceflow.stores.sqlite; "
        "print(sorted(m for m in ('pymongo', 'gridfs', 'psycopg2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_ping_answers_for_a_working_store(store: DocumentStore) -> None:
    store.ping(0.5)  # the readiness check (invoiceflow.health): no exception


def test_ping_and_requests_fail_fast_with_no_driver_text_when_mongodb_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from invoiceflow.stores import gridfs_store

    monkeypatch.setattr(gridfs_store, "SERVER_SELECTION_TIMEOUT_MS", 300)
    docs = open_document_store("mongodb://127.0.0.1:1/?connectTimeoutMS=300", "invoiceflow")
    try:
        with pytest.raises(Unavailable) as raised:
            docs.ping(0.3)
        with pytest.raises(Unavailable) as raised_get:
            docs.get("inv-1-pdf")
    finally:
        docs.close()
    for exc in (raised.value, raised_get.value):
        assert "127.0.0.1:1" not in exc.detail and "Topology" not in exc.detail
        assert exc.to_dict()["detail"] == Unavailable.public_detail


def test_ping_fails_when_the_files_directory_is_gone(files_dir: Path) -> None:
    import shutil

    docs = FilesDocumentStore(files_dir)
    docs.ping()
    shutil.rmtree(files_dir)
    with pytest.raises(Unavailable):
        docs.ping()
