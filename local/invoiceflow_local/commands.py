"""``invoiceflow dev`` and ``invoiceflow demo``: the subcommands this package adds to the core
CLI through the entry-point group ``invoiceflow.commands`` (local/pyproject.toml). Each entry
point takes the CLI's subparsers and adds its command; the runtime is imported only when the
command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from invoiceflow.cli import add_command, whole_number

#: a TCP port (0: any free one)
PORT = whole_number(0, 65535)

#: the settings that shape the local runtime (every other one of README.md's table applies too)
RUNTIME_ENV = (
    "DATA_DIR",
    "DATABASE_URL",
    "MONGODB_URL",
    "RABBITMQ_URL",
    "JWT_SECRET",
    "PUBLIC_BASE_URL",
    "SENDGRID_API_KEY",
    "MAIL_OUTBOX_DIR",
    "KNATIVE_DIR",
    "ACCESS_LOG",
    "LOG_LEVEL",
    "LOCAL_WORKERS",
)


def add_dev(sub: Any) -> None:
    p = add_command(
        sub,
        "dev",
        "run the whole product on this machine",
        details="Every function in processes of its own (LOCAL_WORKERS per function, one per "
        "core by default; 0: all in this process), the broker and the outbox relay, until "
        "Ctrl-C. "
        "It prints its address, its data folder and the curl commands to try it. Add a user "
        "first (invoiceflow users add) with the same DATA_DIR or DATABASE_URL. Every other "
        "setting of README.md's table applies too.",
        env=RUNTIME_ENV,
        examples=(
            "invoiceflow dev",
            "invoiceflow dev --port 9000",
            "DATABASE_URL=postgresql://user:pass@localhost/invoiceflow invoiceflow dev",
        ),
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only; "
        "0.0.0.0: every network)",
    )
    p.add_argument("--port", type=PORT, default=8080, help="the public port (default: 8080)")
    p.set_defaults(func=cmd_dev)


def add_demo(sub: Any) -> None:
    p = add_command(
        sub,
        "demo",
        "start the local runtime, send a sample invoice, fetch its files and stop",
        details="Creates a demo user, logs in, uploads a sample invoice, downloads its PDF "
        "and XLSX and the owner's email into --out, then stops. Unless DATA_DIR is set its "
        "data goes to a fresh temporary folder; unless LOG_LEVEL is set only warnings are "
        "logged.",
        env=RUNTIME_ENV,
        examples=("invoiceflow demo", "invoiceflow demo --out demo-files"),
    )
    p.add_argument(
        "--out",
        default="out",
        metavar="DIR",
        help="the folder the files are written to (default: out)",
    )
    p.add_argument(
        "--port", type=PORT, default=0, help="the port to listen on (default: 0, any free port)"
    )
    p.set_defaults(func=cmd_demo)


def cmd_dev(args: argparse.Namespace) -> int:
    from invoiceflow_local.dev import serve

    return serve(host=args.host, port=args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from invoiceflow_local.demo import run_demo

    return run_demo(out=Path(args.out), port=args.port)
