"""A script run in fresh interpreters, once per mode: what a module does at its first import
(which libraries it loads, what it renders) can only be seen in a process that has not
imported it yet."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable

from support.api import ROOT


def words_per_mode(script: str, modes: Iterable[str]) -> dict[str, list[str]]:
    """``python -c script MODE`` in the checkout for each mode: its output's words, by mode."""
    runs = {}
    for mode in modes:
        done = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=120,
        )
        runs[mode] = done.stdout.split()
    return runs
