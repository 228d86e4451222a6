"""The ``invoiceflow`` command line: render invoices, administer the database, the outbox,
events, users and their branding settings, redrive stalled invoices; ``dev`` and ``demo`` come
from the invoiceflow-local package. Each command's ``--help`` says what it does, its arguments,
the settings it reads and an example."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any, NoReturn

from invoiceflow.errors import BadRequest, EventRefused, InvoiceflowError, NotFound, RenderError

#: The entry-point group of the subcommands other packages add: each entry point is a callable
#: that takes the subparsers and adds its command (invoiceflow-local adds dev and demo).
COMMANDS_GROUP = "invoiceflow.commands"
#: The commands of the local runtime, which is not part of this package (nor of the image).
LOCAL_COMMANDS = ("dev", "demo")

DESCRIPTION = """\
invoiceflow turns invoice JSON documents into PDF and XLSX files and EN 16931
e-invoices (CII, UBL, Factur-X), and administers the invoice service: its
database, outbox, events and user accounts."""

EPILOG = """\
examples:
  invoiceflow render invoice.json --out out      # a PDF and an XLSX into out/
  invoiceflow users add you@example.com          # asks for the password
  invoiceflow dev                                # the whole service on this machine

Every setting is an environment variable (README.md lists them all); each
command's --help names the ones it reads: invoiceflow COMMAND --help."""

#: the width of the help texts written here (argparse wraps its own lists)
HELP_WIDTH = 79
#: the settings the database commands read (their help text comes from settings.ENV_VARS)
DATABASE_ENV = ("DATA_DIR", "DATABASE_URL")


class UsageError(Exception):
    """A mistake of the user's (a file that is missing, a folder that is a file...): one line
    on stderr, exit status 2, no traceback."""


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that names what the user typed (never
    the parser's internal names) and points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {self.plain(message)} (see: {self.prog} --help)\n")

    def plain(self, message: str) -> str:
        """argparse's ``message`` in the user's terms."""
        commands = next(
            (a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None
        )
        names = ", ".join(commands.choices) if commands is not None else ""
        if m := re.fullmatch(r"the following arguments are required: (.*)", message):
            missing = m[1]
            if commands is not None and missing == commands.metavar:
                return f"missing {missing}: one of {names}"
            return f"missing: {missing}"
        if m := re.fullmatch(
            r"argument (.+?): invalid choice: (.+?) \(choose from (.*)\)", message
        ):
            choices = m[3].replace("'", "")
            if commands is not None and m[1] == commands.metavar:
                return f"{m[2]} is not a command; the commands: {choices}"
            return f"{m[1]}: {m[2]} is not one of {choices}"
        if m := re.fullmatch(r"argument (.+?): invalid int value: (.*)", message):
            return f"{m[1]} takes a whole number, not {m[2]}"
        if m := re.fullmatch(r"argument (.+?): expected one argument", message):
            return f"{m[1]} needs a value"
        if m := re.fullmatch(r"unrecognized arguments: (.*)", message):
            return f"unknown argument(s): {m[1]}"
        if m := re.fullmatch(r"argument (.+?): ((?:takes|must be) .*)", message):
            return f"{m[1]} {m[2]}"  # whole_number's errors read as a sentence
        return re.sub(r"^argument (.+?): ", r"\1: ", message)


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument type: a whole number from ``low`` (to ``high``), else a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"takes a whole number, not {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    return parse


def package_version() -> str:
    try:
        return version("invoiceflow")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def environment_help(names: Iterable[str]) -> str:
    """The "environment:" part of a command's help: each variable with its help in
    settings.ENV_VARS."""
    from invoiceflow.settings import ENV_VARS

    helps = {
        var.name: var.help if var.default is None else f"{var.help} (default: {var.default})"
        for var in ENV_VARS
    }
    names = list(names)
    if not names:
        return "environment: none read"
    width = max(len(n) for n in names) + 2
    lines = ["environment:"]
    for name in names:
        lines.append(
            textwrap.fill(
                helps[name],
                HELP_WIDTH,
                initial_indent=f"  {name:<{width}}",
                subsequent_indent=" " * (width + 2),
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def add_command(
    sub: Any,
    name: str,
    summary: str,
    *,
    details: str = "",
    env: Iterable[str] = (),
    examples: Iterable[str] = (),
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand whose help is plain text: ``summary`` (also its line in the parent's list),
    ``details``, the settings it reads (``env``, described by settings.ENV_VARS) and
    ``examples``."""
    paragraphs = [f"{summary[0].upper()}{summary[1:]}.", *([details] if details else [])]
    description = "\n\n".join(textwrap.fill(p, HELP_WIDTH) for p in paragraphs)
    epilog = environment_help(env)
    if examples:
        epilog += "\n\nexamples:\n" + "\n".join(f"  {line}" for line in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.set_defaults(command=parser.prog)  # the innermost command's: its errors name it
    return parser


def _formats(value: str) -> list[str]:
    from invoiceflow.outputs import OUTPUT_FORMATS, check_formats, ordered_formats, split_formats

    names = split_formats(value)
    problems = check_formats(names)
    if problems:
        unknown = [n for n in names if n not in OUTPUT_FORMATS]
        raise argparse.ArgumentTypeError(
            f"formats are a comma-separated subset of {','.join(OUTPUT_FORMATS)}; got {value!r}"
            if unknown or not names
            else "pdf or facturx, not both (facturx is the PDF with the e-invoice inside)"
        )
    return list(ordered_formats(names))


def _problem_text(exc: InvoiceflowError) -> str:
    """An error for the terminal: broken e-invoicing rules one a line, each with its rule id
    (``BR-S-02 /seller: ...``); any other error as it reads."""
    if not any(p.rule for p in exc.problems):
        return str(exc)
    lines = [f"  {p.rule or '-'} {p.pointer or '/'}: {p.message}" for p in exc.problems]
    rules = ", ".join(dict.fromkeys(p.rule for p in exc.problems if p.rule))
    return f"{exc.detail} (rules {rules})\n" + "\n".join(lines)


def _invoice_files(names: Sequence[str]) -> tuple[list[str], list[tuple[str, InvoiceflowError]]]:
    """The files to render: each name, a folder expanded to its ``*.json`` files; and the
    folders that hold none."""
    files: list[str] = []
    empty: list[tuple[str, InvoiceflowError]] = []
    for name in names:
        if Path(name).is_dir():
            found = sorted(str(p) for p in Path(name).glob("*.json") if p.is_file())
            files.extend(found)
            if not found:
                empty.append((name, BadRequest("a folder without .json files")))
        else:
            files.append(name)
    return files, empty


def _output_folder(name: str) -> Path:
    out = Path(name)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {name} is a file; give a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {name}: cannot create the folder: {exc.strerror}") from None
    return out


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from invoiceflow.acceptance import check_business_rules
    from invoiceflow.domain import parse_invoice
    from invoiceflow.outputs import OUTPUT_FORMATS, file_name

    out = _output_folder(args.out)
    files, failed = _invoice_files(args.files)
    written: list[Path] = []
    total = len(files) + len(failed)
    bar = tqdm(files, unit="invoice", disable=len(files) < 2 or args.quiet, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(Path(name).name, refresh=False)
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            failed.append((name, BadRequest(f"cannot read: {exc.strerror}")))
            continue
        try:
            document = parse_invoice(data, max_bytes=args.max_bytes)
            invoice = document.invoice
            check_business_rules(document, args.format)  # before any file of it is written
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
        print(f"{name}: {_problem_text(problem)}", file=sys.stderr)
    if failed:
        print(
            f"{len(failed)} of {total} file(s) had problems; "
            + ("none was rendered" if len(failed) == total else "the others were rendered"),
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
        no_terminal = UsageError(
            "no terminal to ask for the password: give it on standard input with "
            "--password-stdin, e.g. printf '%s\\n' \"$PASSWORD\" | invoiceflow users add "
            f"{args.email} --password-stdin"
        )
        if not sys.stdin.isatty():
            raise no_terminal
        try:
            with warnings.catch_warnings():  # getpass would echo the password
                warnings.simplefilter("error", getpass.GetPassWarning)
                password = getpass.getpass("Password: ")
                repeat = getpass.getpass("Repeat: ")
        except (EOFError, getpass.GetPassWarning):
            raise no_terminal from None
        if repeat != password:
            raise UsageError("the passwords differ")
    if len(password) < 8:
        raise UsageError("the password must be at least 8 characters")
    return password


def _database_name(database_url: str) -> str:
    """Where the users are, never the URL itself (it may hold a password)."""
    if database_url.startswith("sqlite:///"):
        return database_url.removeprefix("sqlite:///")
    return "the database of DATABASE_URL"


def cmd_users(args: argparse.Namespace) -> int:
    from invoiceflow import accounts
    from invoiceflow.settings import Settings

    settings = Settings.from_env()
    if args.users_cmd == "add":  # the password first: no database is touched without one
        password = _read_password(args)
    repo = accounts.repository(settings)
    if args.users_cmd == "add":
        user = accounts.add_user(repo, args.email, password)
        print(f"added {user.email} ({user.id}) to {_database_name(settings.database_url)}")
        print(f"data folder: {settings.data_dir} (DATA_DIR; invoiceflow dev uses the same)")
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


def cmd_branding(args: argparse.Namespace) -> int:
    from invoiceflow import accounts, branding
    from invoiceflow.settings import Settings

    settings = Settings.from_env()
    data = b""
    if args.branding_cmd == "set":  # the file first: no database is touched without it
        try:
            data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f"{args.file}: {exc.strerror}") from None
        settings_doc = branding.parse_settings(data)
    repo = accounts.repository(settings)
    user = repo.get_user_by_email(args.email)
    if user is None:
        raise NotFound(f"no user with the email {args.email}")
    if args.branding_cmd == "set":
        branding.store_settings(repo, user.id, settings_doc)
        print(f"stored the branding settings of {user.email} ({len(settings_doc)} fields)")
    else:
        print(json.dumps(branding.load_settings(repo, user.id), ensure_ascii=False, indent=2))
    return 0


#: the error of a command that publishes events when the broker's address is not set
_NO_SINK = "K_SINK is not set: the broker's address is needed to publish events"


def cmd_outbox_relay(args: argparse.Namespace) -> int:
    from invoiceflow.context import get_context
    from invoiceflow.outbox import relay

    ctx = get_context()
    if not ctx.settings.k_sink:
        raise UsageError(_NO_SINK)
    total = 0
    while True:
        oldest = [e.id for e in ctx.repo.pending_outbox_events(limit=1)]
        sent = relay(ctx, limit=100)
        total += sent
        # no progress (nothing sent, nothing set aside): the broker is down, or another
        # relay holds the rest
        if not sent and [e.id for e in ctx.repo.pending_outbox_events(limit=1)] == oldest:
            break
    pending = bool(ctx.repo.pending_outbox_events(limit=1))
    aside = bool(ctx.repo.set_aside_outbox_events(limit=1))
    print(
        f"relayed {total} event(s)"
        + ("; some are still pending" if pending else "")
        + ("; some are set aside (invoiceflow outbox set-aside lists them)" if aside else "")
    )
    return 1 if pending or aside else 0


def cmd_outbox_set_aside(args: argparse.Namespace) -> int:
    from invoiceflow.context import get_context

    rows = get_context().repo.set_aside_outbox_events(limit=args.limit)
    for row in rows:
        when = row.set_aside_at.isoformat(timespec="seconds") if row.set_aside_at else ""
        error = " ".join((row.last_error or "").split())  # one line per row
        print(
            f"{row.id}\t{row.event_id}\t{row.type}\t{row.subject or ''}\t{when}\t"
            f"{row.attempts} attempt(s)\t{error}",
            flush=True,
        )
    print(f"{len(rows)} event(s) set aside", file=sys.stderr)
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from invoiceflow.context import get_context

    if bool(args.ids) == args.all:
        raise UsageError("name the rows' ids or --all (not both)")
    count = get_context().repo.retry_outbox_events(None if args.all else args.ids)
    print(f"{count} event(s) back in the outbox; the next relay sends them")
    missed = 0 if args.all else len(set(args.ids)) - count
    if missed:  # a mistyped id, or a row sent or pending: say so rather than exit 0
        print(
            f"{missed} of the ids named are not set-aside events (`invoiceflow outbox "
            "set-aside` lists those)",
            file=sys.stderr,
        )
        return 1
    return 0


#: ``outbox prune``'s default --older-than (days): a sent event is kept a month for the
#: operator's questions (what was announced, when), then deleted with its data (invoice and
#: owner ids)
PRUNE_OLDER_THAN = 30


def cmd_outbox_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from invoiceflow.context import get_context
    from invoiceflow.steps import PROCESSED_KEPT

    repo = get_context().repo
    now = datetime.now(UTC)
    kept = max(timedelta(days=args.older_than), PROCESSED_KEPT)
    sent = repo.prune_outbox(now - timedelta(days=args.older_than), dry_run=args.dry_run)
    processed = repo.prune_processed_events(now - kept, dry_run=args.dry_run)
    print(
        f"{'would delete' if args.dry_run else 'deleted'} {sent} sent outbox event(s) older "
        f"than {args.older_than} day(s) and {processed} processed event record(s) older than "
        f"{kept.days} day(s)" + (" (--dry-run: nothing was deleted)" if args.dry_run else "")
    )
    return 0


#: ``invoices redrive``'s default --older-than (minutes): far beyond the longest a Trigger
#: retries one event (about 13 minutes, docs/operations.md), so nothing it finds is in flight
#: (its least, 1, is longer than notify's takeover of a claim, steps.RECLAIM_AFTER)
REDRIVE_OLDER_THAN = 30


def cmd_invoices_redrive(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from invoiceflow.context import get_context
    from invoiceflow.redrive import describe, redrive_event, stalled

    ctx = get_context()
    if not args.dry_run and not ctx.settings.k_sink:
        raise UsageError(_NO_SINK)
    now = datetime.now(UTC)
    found = failed = refused = 0
    for invoice in stalled(ctx, now - timedelta(minutes=args.older_than)):
        found += 1
        minutes = int((now - invoice.last_change).total_seconds() // 60)
        line = f"{invoice.invoice.id}\t{invoice.invoice.number}\tunchanged for {minutes} min\t"
        if args.dry_run:
            print(f"{line}would publish {describe(invoice)}", flush=True)
            continue
        try:
            ctx.emitter.send(redrive_event(invoice))
        except InvoiceflowError as exc:
            print(f"{line}NOT published ({exc.detail}): {describe(invoice)}", flush=True)
            if isinstance(exc, EventRefused):
                # an answer about this event, which comes again at every run: the oldest
                # invoice is tried first each time, so stopping here would never redrive the
                # later ones
                refused += 1
                continue
            failed += 1
            break  # the broker is likely down: the rest waits for the next run
        print(f"{line}published {describe(invoice)}", flush=True)
    redriven = found - failed - refused
    if args.dry_run:
        print(f"{found} stalled invoice(s); nothing was published (--dry-run)", file=sys.stderr)
    elif failed:
        also = f", {refused} refused for good (the lines NOT published)" if refused else ""
        print(
            f"the broker refused an event: {redriven} invoice(s) redriven{also}, the rest "
            "not tried; run the command again",
            file=sys.stderr,
        )
    elif refused:
        print(
            f"{redriven} stalled invoice(s) redriven; the broker refused {refused} event(s) "
            "for good (the lines NOT published): find why before running the command again",
            file=sys.stderr,
        )
    else:
        print(f"{found} stalled invoice(s) redriven", file=sys.stderr)
    return 1 if failed or refused else 0


def cmd_numbering(args: argparse.Namespace) -> int:
    import json

    from invoiceflow import accounts, numbering
    from invoiceflow.errors import NotFound
    from invoiceflow.settings import Settings

    repo = accounts.repository(Settings.from_env())
    user = repo.get_user_by_email(args.email)
    if user is None:
        raise NotFound(f"no user with the email {args.email}")
    if args.numbering_cmd == "set":
        series = numbering.check_series(
            {"pattern": args.pattern, "yearly_reset": args.yearly_reset}
        )
        repo.set_number_series(user.id, series.pattern, series.yearly_reset)
    print(json.dumps(numbering.settings_view(repo, user.id), indent=2))
    return 0


def cmd_events_sign(args: argparse.Namespace) -> int:
    """Sign a structured-mode event (a file or stdin) with a producer key from
    EVENT_PRODUCER_KEYS; print it signed, ready for the broker (events/README.md)."""
    from invoiceflow.events import from_request, to_structured_json
    from invoiceflow.settings import Settings
    from invoiceflow.signing import sign_event

    keys = Settings.from_env().event_producer_keys
    if args.key_id not in keys:
        raise BadRequest(f"EVENT_PRODUCER_KEYS has no key {args.key_id!r}")
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from None
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
    from invoiceflow.outputs import DEFAULT_FORMATS, OUTPUT_FORMATS

    parser = CommandParser(
        prog="invoiceflow",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"invoiceflow {package_version()}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = add_command(
        sub,
        "render",
        "render invoice JSON files to PDF, XLSX and EN 16931 e-invoice files",
        details="Renders each file on this machine; no server, database or account is needed. "
        "A file with problems is reported and the others are still rendered (exit status 1). "
        "The e-invoices (cii: NUMBER.xml, ubl: NUMBER-ubl.xml, facturx: the PDF with the CII "
        "inside, NUMBER.pdf, in place of pdf) are written only for documents that keep the "
        "EN 16931 business rules; a broken rule is reported with its id (BR-S-02).",
        examples=(
            "invoiceflow render invoice.json --out out",
            "invoiceflow render invoices/ --out out --format pdf   # every invoices/*.json",
            "invoiceflow render invoice.json --out out --format facturx,xlsx,ubl",
        ),
    )
    formats = ",".join(OUTPUT_FORMATS)
    default_formats = ",".join(DEFAULT_FORMATS)
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="an invoice JSON document, or a folder: its *.json files",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the folder the files are written to (created if missing)",
    )
    p.add_argument(
        "--format",
        type=_formats,
        default=list(DEFAULT_FORMATS),
        metavar="FORMATS",
        help=f"comma-separated subset of {formats}; pdf or facturx, not both "
        f"(default: {default_formats})",
    )
    p.add_argument(
        "--max-bytes",
        type=whole_number(1),
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"largest accepted file in bytes (default: {DEFAULT_MAX_BYTES})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_render)

    p = add_command(
        sub, "db", "database administration", examples=("invoiceflow db migrate --help",)
    )
    dbsub = p.add_subparsers(dest="db_cmd", metavar="ACTION", required=True)
    add_command(
        dbsub,
        "migrate",
        "apply the SQL migrations the database lacks (safe to run twice)",
        env=DATABASE_ENV,
        examples=("DATABASE_URL=postgresql://user:pass@host/db invoiceflow db migrate",),
    ).set_defaults(func=cmd_db_migrate)

    p = add_command(
        sub, "outbox", "the transactional outbox", examples=("invoiceflow outbox relay --help",)
    )
    osub = p.add_subparsers(dest="outbox_cmd", metavar="ACTION", required=True)
    add_command(
        osub,
        "relay",
        "send every pending event to K_SINK (a CronJob runs this)",
        details="An event the broker refuses for good (HTTP 400, 413, 415, 422 or 431: about "
        "the event itself) is set aside and the relay goes on; any other failure (the broker "
        "down) stops it. Exit status 1 when some events are still pending or set aside "
        "(docs/operations.md, Delivery guarantees).",
        env=(*DATABASE_ENV, "K_SINK", "OUTBOX_CLAIM_SECONDS"),
        examples=("K_SINK=http://broker-ingress.example/ns/default invoiceflow outbox relay",),
    ).set_defaults(func=cmd_outbox_relay)
    aside = add_command(
        osub,
        "set-aside",
        "list the events the broker refused for good, oldest first",
        details="One line per event, tab-separated: the row's id (for retry), the event's id, "
        "type and subject (the invoice), when it was set aside, its attempts and the last "
        "error; the count on stderr.",
        env=DATABASE_ENV,
        examples=("invoiceflow outbox set-aside",),
    )
    aside.add_argument(
        "--limit",
        type=whole_number(1),
        default=100,
        metavar="N",
        help="at most N events (default: 100)",
    )
    aside.set_defaults(func=cmd_outbox_set_aside)
    retry = add_command(
        osub,
        "retry",
        "put set-aside events back in the outbox, for the next relay to send",
        details="Run it once the cause is fixed (the broker takes such an event now); an "
        "event the broker still refuses is set aside again. Exit status 1 when an id named is "
        "not a set-aside event.",
        env=DATABASE_ENV,
        examples=("invoiceflow outbox retry 42 57", "invoiceflow outbox retry --all"),
    )
    retry.add_argument("ids", nargs="*", type=whole_number(1), metavar="ID", help="row ids")
    retry.add_argument("--all", action="store_true", help="every set-aside event")
    retry.set_defaults(func=cmd_outbox_retry)
    prune = add_command(
        osub,
        "prune",
        "delete the sent events and the steps' dedupe records older than --older-than days",
        details="Retention (docs/operations.md, Retention): deletes the outbox rows sent "
        "before then, never a pending or set-aside one, and the records of the events the "
        "steps processed (processed_events) before then, but never one younger than 7 days, "
        "far beyond any redelivery. Both tables are walked in windows of 1000 rows, one "
        "short transaction each, so it can run while the service works; prints how many it "
        "deleted. Run it daily or weekly (a CronJob, or cron).",
        env=DATABASE_ENV,
        examples=("invoiceflow outbox prune --dry-run", "invoiceflow outbox prune --older-than 90"),
    )
    prune.add_argument(
        "--older-than",
        type=whole_number(1),
        default=PRUNE_OLDER_THAN,
        metavar="DAYS",
        help=f"only what is older than this (default: {PRUNE_OLDER_THAN})",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.set_defaults(func=cmd_outbox_prune)

    p = add_command(
        sub, "events", "CloudEvents for integrators", examples=("invoiceflow events sign --help",)
    )
    esub = p.add_subparsers(dest="events_cmd", metavar="ACTION", required=True)
    sign = add_command(
        esub,
        "sign",
        "sign an invoice.requested event with a key of EVENT_PRODUCER_KEYS",
        details="Prints the signed event (structured JSON), ready for the broker; "
        "events/README.md describes the event.",
        env=("EVENT_PRODUCER_KEYS",),
        examples=("invoiceflow events sign --key-id erp event.json > signed.json",),
    )
    sign.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="the event as structured JSON ('-' or none: standard input)",
    )
    sign.add_argument(
        "--key-id", required=True, metavar="ID", help="the key of EVENT_PRODUCER_KEYS to sign with"
    )
    sign.set_defaults(func=cmd_events_sign)

    p = add_command(
        sub,
        "users",
        "manage the user accounts that log in",
        examples=("invoiceflow users add --help",),
    )
    usub = p.add_subparsers(dest="users_cmd", metavar="ACTION", required=True)
    add = add_command(
        usub,
        "add",
        "add a user account; asks for its password (twice) on the terminal",
        details="Prints where the account is stored: `invoiceflow dev` must read the same "
        "database (the same DATA_DIR or DATABASE_URL).",
        env=DATABASE_ENV,
        examples=(
            "invoiceflow users add you@example.com",
            "printf '%s\\n' \"$PASSWORD\" | invoiceflow users add you@example.com --password-stdin",
        ),
    )
    add.add_argument("email", metavar="EMAIL", help="the email address the user logs in with")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (scripts, no terminal)",
    )
    email_help = "the user's email address"
    for name, summary in (
        ("disable", "disable a user account: it can no longer log in"),
        ("enable", "enable a disabled user account again"),
        ("unlock", "forget the account's failed logins (ends a login lockout)"),
    ):
        add_command(
            usub,
            name,
            summary,
            env=DATABASE_ENV,
            examples=(f"invoiceflow users {name} you@example.com",),
        ).add_argument("email", metavar="EMAIL", help=email_help)
    add_command(
        usub,
        "list",
        "list the user accounts: email, state and id, one a line",
        env=DATABASE_ENV,
        examples=("invoiceflow users list",),
    )
    p.set_defaults(func=cmd_users)

    p = add_command(
        sub,
        "numbering",
        "show or set a user's invoice number series",
        details="Documents uploaded without a number get the next number of their owner's "
        "series, fixed when the invoice is accepted: no gap, no repeat.",
        examples=("invoiceflow numbering set --help",),
    )
    nsub = p.add_subparsers(dest="numbering_cmd", metavar="ACTION", required=True)
    add_command(
        nsub,
        "show",
        "print the user's series (JSON) and the last number of each period",
        env=DATABASE_ENV,
        examples=("invoiceflow numbering show you@example.com",),
    ).add_argument("email", metavar="EMAIL", help="the user's email address")
    nset = add_command(
        nsub,
        "set",
        "set the user's series; the sequence runs on from its last number",
        details="PATTERN is literal text with {seq} exactly once ({seq:05} zero-pads it to 5 "
        "digits) and optionally {yyyy}, {yy} and {mm} of the issue date. With "
        "--yearly-reset (the default) the sequence restarts at 1 each issue year, and the "
        "pattern must show the year.",
        env=DATABASE_ENV,
        examples=(
            "invoiceflow numbering set you@example.com 'RE-{yyyy}-{seq:05}'",
            "invoiceflow numbering set you@example.com 'INV-{seq}' --no-yearly-reset",
        ),
    )
    nset.add_argument("email", metavar="EMAIL", help="the user's email address")
    nset.add_argument("pattern", metavar="PATTERN", help="the numbers' pattern")
    nset.add_argument(
        "--yearly-reset",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart the sequence each issue year (default: yes)",
    )
    p.set_defaults(func=cmd_numbering)

    p = add_command(
        sub,
        "branding",
        "show or set a user's branding settings (logo, colour, font, layout, defaults)",
        examples=("invoiceflow branding set --help",),
    )
    bsub = p.add_subparsers(dest="branding_cmd", metavar="ACTION", required=True)
    add_command(
        bsub,
        "show",
        "print a user's branding settings as JSON ({} when none)",
        env=DATABASE_ENV,
        examples=("invoiceflow branding show you@example.com",),
    ).add_argument("email", metavar="EMAIL", help="the user's email address")
    bset = add_command(
        bsub,
        "set",
        "replace a user's branding settings with a JSON file (as PUT /settings/branding)",
        details="The file is checked first (every problem is listed, nothing is stored); "
        "docs/branding.md describes the fields. Documents accepted afterwards get the "
        "settings for the fields they leave out; {} clears them.",
        env=DATABASE_ENV,
        examples=(
            "invoiceflow branding set you@example.com branding.json",
            'echo \'{"layout": "compact"}\' | invoiceflow branding set you@example.com -',
        ),
    )
    bset.add_argument("email", metavar="EMAIL", help="the user's email address")
    bset.add_argument(
        "file", metavar="FILE", help="the settings as a JSON object ('-': standard input)"
    )
    p.set_defaults(func=cmd_branding)

    p = add_command(
        sub,
        "invoices",
        "operate on invoices",
        examples=("invoiceflow invoices redrive --help",),
    )
    isub = p.add_subparsers(dest="invoices_cmd", metavar="ACTION", required=True)
    redrive = add_command(
        isub,
        "redrive",
        "publish again the event that moves each stalled invoice on, or sends its lost email",
        details="Lists the invoices that have not changed for --older-than minutes and are "
        "still received, their events lost for good, or ready or failed without the email of "
        "that status sent, its event dead-lettered (docs/operations.md, Stalled invoices), and "
        "publishes to the broker, for each, an invoice.uploaded to the render steps of the "
        "files it lacks; when every file is stored, an invoice.rendered that makes it ready; "
        "for an email not sent, the invoice.rendered (ready) or invoice.failed (failed) that "
        "makes notify send it. The steps render only what is missing and send each email at "
        "most once; running it again is harmless. Exit status 1 when the broker refused an "
        "event: an outage stops it (the rest are not tried); an event refused for good (HTTP "
        "400, 413, 415, 422 or 431) is listed and the rest are tried.",
        env=(*DATABASE_ENV, "K_SINK"),
        examples=(
            "invoiceflow invoices redrive --dry-run",
            "K_SINK=http://broker-ingress.example/ns/default invoiceflow invoices redrive",
        ),
    )
    redrive.add_argument(
        "--older-than",
        type=whole_number(1),
        default=REDRIVE_OLDER_THAN,
        metavar="MINUTES",
        help=f"only invoices unchanged for this long (default: {REDRIVE_OLDER_THAN})",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="only list the invoices and what would be sent"
    )
    redrive.set_defaults(func=cmd_invoices_redrive)

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command = getattr(args, "command", parser.prog)
    if unknown and args.func is not cmd_local_missing:  # which takes any arguments
        print(
            f"{command}: unknown argument(s): {' '.join(unknown)} (see: {command} --help)",
            file=sys.stderr,
        )
        return 2
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe fails here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # the reader of the output has gone (`| head`): stop quietly, as other tools do, and
        # let nothing more reach the closed pipe when the interpreter flushes at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UsageError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    except InvoiceflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
