"""``python -m bench``: run the benchmark sections, print the JSON report, write the docs.

    .venv/bin/python -m bench                      # everything, full size (minutes)
    .venv/bin/python -m bench --quick --no-docs    # what CI runs: small N, one repetition
    .venv/bin/python -m bench --only render,coldstart --json out.json

Progress goes to stderr; the JSON report to stdout (and to ``--json PATH``). A full run
writes ``docs/performance.md`` and ``docs/perf/*.png``; a quick run writes them only to an
explicit ``--docs-dir``. The exit status is 0 when every section ran (missed targets are
reported, not failures), 1 when a section raised.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import SCHEMA_VERSION
from bench.common import ROOT, git_changes, git_info, loadavg, log, machine_info

SECTIONS = ("render", "callgrind", "pipeline", "coldstart", "memory")


def _sections(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"sections are a comma-separated subset of {','.join(SECTIONS)}; got {value!r}"
        )
    return names


def _backends(value: str) -> list[str]:
    from bench.pipeline import BACKENDS

    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names or any(n not in BACKENDS for n in names):
        raise argparse.ArgumentTypeError(
            f"backends are a comma-separated subset of {','.join(BACKENDS)}; got {value!r}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, one repetition (CI); docs only with --docs-dir",
    )
    p.add_argument(
        "--only",
        type=_sections,
        default=list(SECTIONS),
        metavar="SECTIONS",
        help=f"comma-separated subset of {','.join(SECTIONS)} (callgrind: not in --quick)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="pipeline uploads per backend (default 1000; 20 with --quick)",
    )
    p.add_argument(
        "--backends",
        type=_backends,
        default=None,
        metavar="BACKENDS",
        help="pipeline backends: embedded,postgres+rabbitmq (default both)",
    )
    p.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the JSON report to PATH"
    )
    p.add_argument(
        "--no-docs",
        action="store_true",
        help="do not write docs/performance.md and docs/perf/*.png",
    )
    p.add_argument(
        "--docs-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where performance.md and perf/*.png go (default: docs/)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="measure nothing: rewrite the docs from a saved JSON report",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write pyinstrument profiles of the renderers at 1,000 lines",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json is not None:
        from bench import report as page

        page.write(
            json.loads(args.from_json.read_text(encoding="utf-8")), args.docs_dir or ROOT / "docs"
        )
        return 0
    n = args.n if args.n is not None else (20 if args.quick else 1000)
    if n < 1:
        build_parser().error("--n must be at least 1")
    machine = machine_info()
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "options": {
            "sections": args.only,
            "n": n,
            "backends": args.backends or ["embedded", "postgres+rabbitmq"],
        },
        "machine": machine,
        "git": git_info(),
        "sections": {name: None for name in SECTIONS},
        "targets": [],
        "errors": [],
    }
    for name in SECTIONS:
        if name not in args.only:
            report["sections"][name] = {"status": "skipped"}
            continue
        log(f"section {name}")
        try:
            if name == "render":
                from bench import render

                result = render.run(args.quick, args.profile)
            elif name == "callgrind":
                from bench import callgrind

                result = callgrind.run(args.quick, machine["cores"])
            elif name == "pipeline":
                from bench import pipeline

                result = pipeline.run(
                    args.quick, n, report["options"]["backends"], machine["cores"]
                )
            elif name == "coldstart":
                from bench import coldstart

                result = coldstart.run(args.quick)
            else:
                from bench import memory

                result = memory.run(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            traceback.print_exc()
            result = {"status": "error", "reason": f"{exc.__class__.__name__}: {exc}"}
            report["errors"].append(f"{name}: {result['reason']}")
        report["targets"] += result.get("targets", [])
        report["sections"][name] = result
    machine["loadavg_at_end"] = loadavg()
    report["git"].update(git_changes(report["git"]["commit"]))
    summary = report["summary"] = {
        "targets": len(report["targets"]),
        "met": sum(1 for t in report["targets"] if t["met"] is True),
        "missed": [t["id"] for t in report["targets"] if t["met"] is False],
        "not_measured": [t["id"] for t in report["targets"] if t["met"] is None],
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    docs_dir = args.docs_dir or (None if args.quick else ROOT / "docs")
    if docs_dir is not None and not args.no_docs:
        from bench import report as page

        page.write(report, docs_dir)
    log(
        f"targets: {summary['met']} of {summary['targets']} met; missed: "
        f"{', '.join(summary['missed']) or 'none'}"
    )
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
