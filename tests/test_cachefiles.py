"""invoiceflow.cachefiles.write_atomically: whole or nothing, 0644, False where it cannot."""

from __future__ import annotations

import stat
from pathlib import Path

from invoiceflow.cachefiles import write_atomically


def test_writes_the_file_whole_readable_by_every_user(tmp_path: Path) -> None:
    path = tmp_path / "made" / "entry.bin"  # the directory is made
    assert write_atomically(path, b"one")
    assert write_atomically(path, b"two")  # replaced
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["entry.bin"]  # no temporary left


def test_false_and_nothing_left_where_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert write_atomically(blocker / "entry.bin", b"x") is False
    target = tmp_path / "dir"
    target.mkdir()
    (target / "entry.bin").mkdir()  # a directory where the file would go: replace fails
    assert write_atomically(target / "entry.bin", b"x") is False
    assert sorted(p.name for p in target.iterdir()) == ["entry.bin"]
