"""The ``invoiceflow`` command line.

invoiceflow render FILE... --out DIR [--format pdf,xlsx]
invoiceflow db migrate
invoiceflow outbox relay
invoiceflow events sign --key-id ID [FILE]   (EVENT_PRODUCER_KEYS)
invoiceflow users add EMAIL [--password-stdin] | users disable EMAIL | users list
invoiceflow users unlock EMAIL      (forget its failed logins: ends a login lockout)
invoiceflow dev [--port 8080]       (with the invoiceflow-local package: the local runtime)
invoiceflow demo [--out out]        (likewise)
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from invoiceflow.errors import BadRequest, InvoiceflowError, RenderError

#: The entry-point group of the subcommands other packages add: each entry point is a callable
#: that takes the subparsers and adds its command (invoiceflow-local adds dev and demo).
COMMANDS_GROUP = "invoiceflow.commands"
#: The commands of the local runtime, which is not part of this package (nor of the image).
LOCAL_COMMANDS = ("dev", "demo")


def _formats(value: str) -> list[str]:
    from invoiceflow.outputs import OUTPUT_FORMATS

    names = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [n for n in names if n not in OUTPUT_FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"formats are a comma-separated subset of {','.join(OUTPUT_FORMATS)}; got {value!r}"
        )
    return names


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from invoiceflow.domain import parse_invoice
    from invoiceflow.outputs import OUTPUT_FORMATS, file_name

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, InvoiceflowError]] = []
    written: list[Path] = []
    files = list(args.files)
    bar = tqdm(files, unit="invoice", disable=len(files) < 2 or args.quiet, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(Path(name).name, refresh=False)
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}", file=sys.stderr)
            failed.append((name, InvoiceflowError(str(exc))))
            continue
        try:
            invoice = parse_invoice(data, max_bytes=args.max_bytes).invoice
            targets = [out / file_name(invoice.number, fmt) for fmt in args.format]
            clash = next((t for t in targets if t in written), None)
            if clash is not None:
                raise BadRequest(
                    f"another file of this batch has the number "
                    f"{invoice.number!r}: {clash.name} was not overwritten"
                )
            for fmt, target in zip(args.format, targets, strict=True):
                target.write_bytes(OUTPUT_FORMATS[fmt].render(invoice))
                written.append(target)
        except InvoiceflowError as exc:
            failed.append((name, exc))
        except Exception as exc:  # noqa: BLE001 - one broken file must not stop the batch
            failed.append(
                (name, RenderError(f"cannot be rendered: {exc.__class__.__name__}: {exc}"))
            )
    for path in written:
        print(path)
    for name, problem in failed:
        print(f"{name}: {problem}", file=sys.stderr)
    if failed:
        print(
            f"{len(failed)} of {len(files)} file(s) had problems; the others were rendered",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from invoiceflow.settings import Settings
    from invoiceflow.stores import migrate

    settings = Settings.from_env()
    applied = migrate(settings.database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise SystemExit("passwords differ")
    if len(password) < 8:
        raise SystemExit("the password must be at least 8 characters")
    return password


def cmd_users(args: argparse.Namespace) -> int:
    from invoiceflow import accounts
    from invoiceflow.settings import Settings

    settings = Settings.from_env()
    repo = accounts.repository(settings)
    if args.users_cmd == "add":
        user = accounts.add_user(repo, args.email, _read_password(args))
        print(f"added {user.email} ({user.id})")
    elif args.users_cmd == "disable":
        accounts.set_disabled(repo, args.email, True)
        print(f"disabled {args.email}")
    elif args.users_cmd == "enable":
        accounts.set_disabled(repo, args.email, False)
        print(f"enabled {args.email}")
    elif args.users_cmd == "unlock":
        done = repo.reset_login_throttle(accounts.account_key(args.email))
        print(f"unlocked {args.email}" if done else f"{args.email} has no failed logins")
    else:
        for user in repo.list_users():
            state = "disabled" if user.disabled else "active"
            print(f"{user.email}\t{state}\t{user.id}")
    return 0


def cmd_outbox_relay(args: argparse.Namespace) -> int:
    from invoiceflow.context import get_context
    from invoiceflow.outbox import relay

    ctx = get_context()
    total = 0
    while sent := relay(ctx, limit=100):
        total += sent
    pending = len(ctx.repo.pending_outbox_events(limit=1))
    print(f"relayed {total} event(s){'; some are still pending' if pending else ''}")
    return 1 if pending else 0


def cmd_events_sign(args: argparse.Namespace) -> int:
    """Sign a structured-mode event (a file or stdin) with a producer key from
    EVENT_PRODUCER_KEYS; print it signed, ready for the broker (events/README.md)."""
    from invoiceflow.events import from_request, to_structured_json
    from invoiceflow.settings import Settings
    from invoiceflow.signing import sign_event

    keys = Settings.from_env().event_producer_keys
    if args.key_id not in keys:
        raise BadRequest(f"EVENT_PRODUCER_KEYS has no key {args.key_id!r}")
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    event = from_request({"content-type": "application/cloudevents+json"}, raw)
    sys.stdout.buffer.write(
        to_structured_json(sign_event(event, args.key_id, keys[args.key_id])) + b"\n"
    )
    return 0


def cmd_local_missing(args: argparse.Namespace) -> int:
    print(
        f"invoiceflow {args.cmd} is part of the local runtime, the invoiceflow-local package, "
        "which is not installed.\n"
        "In a checkout: bash scripts/install.sh (or: pip install -e . -e ./local)",
        file=sys.stderr,
    )
    return 2


def add_commands(sub: Any) -> None:
    """The subcommands of the installed packages (:data:`COMMANDS_GROUP`), loaded only now;
    each of :data:`LOCAL_COMMANDS` that none adds says how to install it."""
    added = set()
    for entry in entry_points(group=COMMANDS_GROUP):
        if entry.name not in added:
            entry.load()(sub)
            added.add(entry.name)
    for name in LOCAL_COMMANDS:
        if name not in added:
            p = sub.add_parser(name, help="(needs the invoiceflow-local package)", add_help=False)
            p.set_defaults(func=cmd_local_missing)


def build_parser() -> argparse.ArgumentParser:
    from invoiceflow.domain import DEFAULT_MAX_BYTES
    from invoiceflow.outputs import OUTPUT_FORMATS

    parser = argparse.ArgumentParser(prog="invoiceflow", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("render", help="render invoice JSON files to PDF/XLSX")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--format", type=_formats, default=list(OUTPUT_FORMATS))
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("db", help="database administration")
    dbsub = p.add_subparsers(dest="db_cmd", required=True)
    dbsub.add_parser("migrate", help="apply SQL migrations (safe to run twice)").set_defaults(
        func=cmd_db_migrate
    )

    p = sub.add_parser("outbox", help="the transactional outbox")
    osub = p.add_subparsers(dest="outbox_cmd", required=True)
    osub.add_parser(
        "relay", help="send every pending event to K_SINK (a CronJob runs this)"
    ).set_defaults(func=cmd_outbox_relay)

    p = sub.add_parser("events", help="CloudEvents for integrators")
    esub = p.add_subparsers(dest="events_cmd", required=True)
    sign = esub.add_parser(
        "sign",
        help="sign an invoice.requested event (structured JSON) "
        "with a key of EVENT_PRODUCER_KEYS; prints the signed event",
    )
    sign.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="the event as structured JSON ('-': standard input)",
    )
    sign.add_argument("--key-id", required=True)
    sign.set_defaults(func=cmd_events_sign)

    p = sub.add_parser("users", help="manage user accounts")
    usub = p.add_subparsers(dest="users_cmd", required=True)
    add = usub.add_parser("add")
    add.add_argument("email")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    usub.add_parser("disable").add_argument("email")
    usub.add_parser("enable").add_argument("email")
    usub.add_parser(
        "unlock", help="forget the email's failed logins (ends a lockout)"
    ).add_argument("email")
    usub.add_parser("list")
    p.set_defaults(func=cmd_users)

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.func is not cmd_local_missing:  # which takes any arguments
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except InvoiceflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
