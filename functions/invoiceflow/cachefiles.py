"""Files a process writes beside the package to skip work at the next start, as Python writes
its bytecode: the records' compiled code (:mod:`invoiceflow.records`) and the fonts' parsed
metrics (:mod:`invoiceflow.render.fontcache`).

Each is written whole or not at all (a temporary file in the same directory, then a rename),
readable by every user (the image writes them as root when it is built and its functions run
as another user), and silently not at all where the directory is read-only (an image's
package directory at run time): the work is then done at every start, as without the file.
Standard library only: :mod:`invoiceflow.records` is at the bottom of the package too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (its directories made if missing), mode 0644; False where
    that is not possible. Nothing is left behind when it fails or is interrupted."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        return False
    except BaseException:  # interrupted (a worker's timeout, ^C): no temporary file stays
        _remove(tmp)
        raise
    return True


def print_entries(paths: Iterable[Path]) -> None:
    """What a ``python -m`` of a cache prints once it has written its files: each path there,
    one a line, on stdout; each one missing (a read-only directory) on stderr."""
    for path in paths:
        if path.exists():
            print(path)
        else:
            print(f"{path}: not written (read-only?)", file=sys.stderr)


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        Path(tmp).unlink(missing_ok=True)
