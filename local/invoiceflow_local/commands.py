"""``invoiceflow dev`` and ``invoiceflow demo``: the subcommands this package adds to the core
CLI through the entry-point group ``invoiceflow.commands`` (local/pyproject.toml). Each entry
point takes the CLI's subparsers and adds its command; the runtime is imported only when the
command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_dev(sub: Any) -> None:
    p = sub.add_parser("dev", help="run the whole product on this machine")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_dev)


def add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="start the local runtime, send a sample invoice, fetch its files and stop"
    )
    p.add_argument("--out", default="out")
    p.add_argument("--port", type=int, default=0, help="0: any free port")
    p.set_defaults(func=cmd_demo)


def cmd_dev(args: argparse.Namespace) -> int:
    from invoiceflow_local.dev import serve

    return serve(host=args.host, port=args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from invoiceflow_local.demo import run_demo

    return run_demo(out=Path(args.out), port=args.port)
