"""``docs/performance.md`` and the plots in ``docs/perf/`` from a report (the JSON document).

The page is generated whole; the hand-written analysis (what bounds each missed target, with
profile evidence) lives in ``bench/analysis.md`` and is copied in at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, log

ANALYSIS = BENCH_DIR / "analysis.md"


def _f(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _x(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pairing(cold: dict[str, Any]) -> str:
    """How the cold-start baseline was interleaved (reports before pairs were introduced had
    one baseline per round)."""
    if cold.get("interleaved") == "pairs":
        return (
            "each function right after a fresh empty function of its own, and its ratio is the "
            "median over the rounds of (function / that empty function)."
        )
    return (
        "each round starts the empty function, then every function, so the baseline is "
        "interleaved with what it is compared to."
    )


def _load(load: dict[str, Any] | None) -> str:
    """A figure's load: the 1-minute load average at its start, the cores other work used,
    and a warning when that was a lot."""
    if not load:
        return "-"
    avg = (load.get("loadavg_start") or [None])[0]
    text = f"{_f(avg, 2)}; other work {_f(load.get('other_cores'), 2)} cores"
    return f"**busy**: {text}" if load.get("busy") else text


def busy_while(report: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether the machine was busy with other work while ``target``'s figure was measured."""
    sec = report["sections"].get(target["section"]) or {}
    loads: list[dict[str, Any] | None] = []
    if target["section"] == "render":
        lines = target["id"].rsplit(".", 1)[-1]
        loads = [r.get("load") for r in sec.get("results", []) if str(r["lines"]) == lines]
    elif target["section"] == "pipeline":
        backend = target["id"].rsplit(".", 1)[-1]
        loads = [b.get("load") for b in sec.get("backends", []) if b["backend"] == backend]
    else:
        loads = [sec.get("load")]
    return any(bool(load and load.get("busy")) for load in loads)


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


# ----------------------------------------------------------------------------- plots


def plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Write the PNGs; returns name -> file name (empty without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("report: matplotlib is not installed: no plots (pip install matplotlib)")
        return {}
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    sections = report["sections"]

    render = sections.get("render") or {}
    if render.get("results"):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        rows = render["results"]
        lines = [r["lines"] for r in rows]
        for key, label, style in (
            ("pdf_ms", "invoiceflow PDF", "o-"),
            ("bare_reportlab_ms", "bare ReportLab table", "o--"),
            ("xlsx_ms", "invoiceflow XLSX", "s-"),
            ("bare_openpyxl_ms", "bare openpyxl sheet", "s--"),
            ("weasyprint_ms", "WeasyPrint (HTML invoice)", "^:"),
        ):
            pts = [(n, r[key]) for n, r in zip(lines, rows, strict=True) if r.get(key)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("line items")
        ax.set_ylabel("ms per invoice (median)")
        ax.set_title("Rendering time against line items (log-log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "render-time.png", dpi=110)
        plt.close(fig)
        made["render"] = "render-time.png"

    pipeline = sections.get("pipeline") or {}
    backends = [b for b in pipeline.get("backends", []) if b.get("status") == "ok"]
    if backends:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        for b in backends:
            for ax, phase, title in (
                (axes[0], "unloaded", "one invoice in flight"),
                (axes[1], "loaded", f"{b.get('in_flight', '?')} in flight"),
            ):
                samples = b[phase]["samples_ms"]
                if samples:
                    ys = [(i + 1) / len(samples) for i in range(len(samples))]
                    ax.plot(samples, ys, label=f"{b['backend']} (p50 {b[phase]['p50_ms']:.0f} ms)")
                ax.set_title(f"Upload to ready: {title}")
        from matplotlib.ticker import FuncFormatter

        axes[0].set_xlabel("ms")
        axes[0].set_xlim(left=0)
        axes[1].set_xscale("log")  # queued: seconds to minutes
        axes[1].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axes[1].set_xlabel("ms (log scale)")
        for ax in axes:
            ax.set_ylabel("fraction of invoices")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(out / "pipeline-latency.png", dpi=110)
        plt.close(fig)
        made["pipeline"] = "pipeline-latency.png"

    cold = sections.get("coldstart") or {}
    if cold.get("functions"):
        rows = [cold["baseline"], *cold["functions"]] if cold.get("baseline") else cold["functions"]
        names = [r["function"] for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        axes[0].bar(names, [r["ms"] or 0 for r in rows], color="#1F3A5F")
        base_ms = (cold.get("baseline") or {}).get("ms")
        if base_ms:
            axes[0].axhline(
                1.5 * base_ms, color="#C0392B", ls="--", label="target 1.5x the empty function"
            )
        axes[0].set_ylabel("ms, process start to first 2xx (median)")
        axes[1].bar(names, [r["pss_mb"] or 0 for r in rows], color="#5B7DB1")
        axes[1].axhline(80, color="#C0392B", ls="--", label="target 80 MB")
        axes[1].set_ylabel("MB after the first request (PSS, master + worker)")
        for ax in axes:
            ax.tick_params(axis="x", rotation=35)
            ax.legend()
            ax.grid(True, axis="y", alpha=0.3)
        axes[0].set_title("Cold start")
        axes[1].set_title("Memory after the first request")
        fig.tight_layout()
        fig.savefig(out / "coldstart.png", dpi=110)
        plt.close(fig)
        made["coldstart"] = "coldstart.png"

    memory = sections.get("memory") or {}
    series = [m for m in memory.get("functions", []) if m.get("samples")]
    if series:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for m in series:
            ax.plot(
                [s[0] for s in m["samples"]],
                [s[1] for s in m["samples"]],
                label=f"{m['function']} (growth {m['growth_pct']} %)",
            )
            ax.axvline(m["warmup"], color="grey", ls=":", lw=1)
        ax.set_xlabel("invoices rendered")
        ax.set_ylabel("worker RSS (MB)")
        ax.set_ylim(bottom=0)
        ax.set_title("Resident memory of the render functions (dotted: end of warm-up)")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=110)
        plt.close(fig)
        made["memory"] = "memory.png"
    return made


# ----------------------------------------------------------------------------- markdown


def _cpu_by_process(pipe: dict[str, Any]) -> list[str]:
    """Where the CPU per invoice goes: one row per process group (the runtime's own process,
    each function's master and workers), a column per backend and phase, sorted by the
    embedded backend's 16-in-flight figure. Nothing for a report without the figures."""
    backends = [
        r
        for r in pipe["backends"]
        if r.get("status") == "ok" and r.get("cpu_ms_per_invoice_by_process")
    ]
    if not backends:
        return []
    phases = (("unloaded", "1"), ("loaded", str(pipe.get("in_flight", 16))))
    columns = [(r, phase) for r in backends for phase, _ in phases]
    groups: list[str] = []
    for r, phase in columns:
        for group in r["cpu_ms_per_invoice_by_process"].get(phase) or {}:
            if group not in groups:
                groups.append(group)
    first = next((r for r in backends if r["backend"] == "embedded"), backends[0])
    key = first["cpu_ms_per_invoice_by_process"].get("loaded") or {}
    groups.sort(key=lambda g: -(key.get(g) or 0.0))

    def cell(r: dict[str, Any], phase: str, group: str) -> str:
        return _f((r["cpu_ms_per_invoice_by_process"].get(phase) or {}).get(group))

    def ratio(r: dict[str, Any], phase: str) -> str:
        ratios = r.get("cpu_outside_render_functions_vs_render_functions") or {}
        return _f(ratios.get(phase), 2)

    rows = [[f"`{g}`", *(cell(r, phase, g) for r, phase in columns)] for g in groups]
    rows.append(
        ["all (`cpu_ms_per_invoice`)", *(_f(r["cpu_ms_per_invoice"][p]) for r, p in columns)]
    )
    rows.append(
        [
            "outside render-pdf + render-xlsx / those two",
            *(ratio(r, phase) for r, phase in columns),
        ]
    )
    names = dict(phases)
    return [
        f"Where the CPU per invoice goes (ms per invoice; sorted by the {first['backend']} "
        f"backend at {names['loaded']} in flight): `runtime` is the runtime's own process "
        "(proxy, broker, outbox relay), every other row a function's gunicorn master and its "
        "workers. The target's ratio (outside rendering / rendering, above) counts only the "
        "renderers' own CPU as rendering; the last row counts the render-pdf and render-xlsx "
        "functions' whole processes (HTTP, events, storage and all) as rendering, so it "
        "shows how much of the CPU goes to the other functions and the runtime (informative, "
        "no target).",
        "",
        *_table(
            [
                "process",
                *(f"{r['backend']}, {names[phase]} in flight" for r, phase in columns),
            ],
            rows,
        ),
    ]


def _stages(pipe: dict[str, Any]) -> list[str]:
    """Where an invoice's time goes at one in flight (``unloaded_stages_ms``), a row per
    backend; nothing for a report without the figures."""
    backends = [r for r in pipe["backends"] if r.get("unloaded_stages_ms")]
    if not backends:
        return []
    rows = []
    for r in backends:
        st = r["unloaded_stages_ms"]
        rows.append(
            [
                r["backend"],
                _f(st.get("upload_to_accepted")),
                _f(st.get("accepted_to_pdf")),
                _f(st.get("accepted_to_xlsx")),
                _f(st.get("last_file_to_ready")),
                _f(r["unloaded"].get("p50_ms")),
                f"{_f(r['render_bound'].get('pdf_ms'))} / {_f(r['render_bound'].get('xlsx_ms'))}",
            ]
        )
    return [
        "Where an invoice's time goes with one in flight (medians, ms, from the database's "
        "timestamps): the upload sent to the invoice recorded; recorded to each file recorded "
        "(the rest of the upload: the completed document, the commit, handing `uploaded` to "
        "the broker; its delivery; the render step: reading, rendering, storing the file); "
        "the last file to `ready` (the `rendered` event through the broker to notify, which "
        "marks the invoice ready before it sends the email). The two renders run at once.",
        "",
        *_table(
            [
                "backend",
                "upload to recorded",
                "recorded to PDF",
                "recorded to XLSX",
                "last file to ready",
                "p50 upload to ready",
                "render PDF / XLSX (pool)",
            ],
            rows,
        ),
    ]


def markdown(report: dict[str, Any], images: dict[str, str], image_dir: str) -> str:
    m = report["machine"]
    s = report["sections"]
    out = [
        "# Performance",
        "",
        "<!-- Generated by `python -m bench` (bench/report.py); edit bench/analysis.md for the "
        "analysis, not this file. -->",
        "",
        "Every figure below was measured on one machine in one run of the harness, and each "
        "is shown next to a baseline measured in the same run, so the ratios carry over to "
        "other machines better than the milliseconds do. Regenerate with "
        "`.venv/bin/python -m bench` (see `bench/README.md`); compare runs with the JSON it "
        "prints (`--json PATH`).",
        "",
        f"- Run: {report['generated_at']}, mode `{report['mode']}`, commit "
        f"`{(report['git']['commit'] or '?')[:12]}`"
        + (" (uncommitted changes)" if report["git"]["dirty"] else "")
        + (
            f" — **the code changed during the run** (commit at the end: "
            f"`{report['git']['commit_at_end'][:12]}`)"
            if report["git"].get("code_changed_during_run")
            else ""
        ),
        f"- Machine: {m['cores']} cores ({m['cpu_model'] or 'unknown CPU'}), "
        f"{m['memory_gb']} GB, {m['platform']}",
        f"- Load average (1/5/15 min) at start {m.get('loadavg_at_start')}, at end "
        f"{m.get('loadavg_at_end')}"
        + (
            " — **the machine was busy with other work: the absolute figures are inflated**"
            if (m.get("loadavg_at_start") or [0])[0] > 0.5 * m["cores"]
            else ""
        ),
        f"- Python {m['python']}; "
        + ", ".join(
            f"{k} {v}"
            for k, v in m["versions"].items()
            if v and k in ("reportlab", "openpyxl", "weasyprint", "functions-framework", "gunicorn")
        ),
        "",
        "## Targets",
        "",
    ]
    rows = [
        [
            t["description"],
            t["target"],
            _f(t["measured"], 2),
            _met(t["met"]),
            "**busy**" if busy_while(report, t) else "",
            t.get("note") or "",
        ]
        for t in report["targets"]
    ]
    out += _table(["target", "aim", "measured", "verdict", "machine", "note"], rows)
    out += [
        "_machine_: **busy** when other work used more than a quarter of the cores while "
        "the figure was measured (`load.other_cores`: the machine's CPU minus the harness's "
        "own process tree, per second): its absolute figures are inflated, and ratios between "
        "figures measured at different moments may be too.",
        "",
    ]

    render = s.get("render")
    if render and render.get("results"):
        out += [
            "## Rendering",
            "",
            f"Document: {render['document']}. Median of the repetitions shown, all variants "
            "interleaved. The bare ReportLab baseline draws the items table in tables of "
            f"{render.get('chunk', '?')} rows (linear splitting); one table of every row "
            "(ReportLab's default splitting) is shown for reference. The same-content openpyxl "
            "workbook writes the product's blocks, styles, formulas, totals and Tax sheet with "
            "openpyxl's public API. Parse = parsing and "
            "validating the document's JSON, as a fraction of the PDF's time.",
            "",
        ]
        rows = []
        for r in render["results"]:
            reps = r["repetitions"]
            rows.append(
                [
                    f"{r['lines']:,}",
                    _f(r["pdf_ms"]),
                    _f(r["bare_reportlab_ms"]),
                    _x(r["pdf_vs_bare_reportlab"]),
                    _f(r.get("bare_reportlab_single_ms")),
                    _f(r["xlsx_ms"]),
                    _f(r["bare_openpyxl_ms"]),
                    _x(r["xlsx_vs_bare_openpyxl"]),
                    f"{_f(r.get('openpyxl_same_content_ms'))} "
                    f"({_x(r.get('xlsx_vs_openpyxl_same_content'))})",
                    _f(r["weasyprint_ms"]),
                    _x(r["weasyprint_vs_pdf"]),
                    f"{_f(r.get('parse_ms'))} ({_f(r.get('parse_vs_pdf'), 3)})",
                    f"{reps['pdf']}",
                    _load(r.get("load")),
                ]
            )
        out += _table(
            [
                "lines",
                "PDF ms",
                "bare ReportLab ms",
                "PDF / bare",
                "one-table ReportLab ms",
                "XLSX ms",
                "bare openpyxl ms",
                "XLSX / bare",
                "openpyxl same content ms (XLSX / it)",
                "WeasyPrint ms",
                "WeasyPrint / PDF",
                "parse ms (of PDF)",
                "runs",
                "load",
            ],
            rows,
        )
        leaves = render.get("leaves_out") or {}
        if leaves:
            out += ["What the baselines leave out (they are not the same work):", ""]
            out += [f"- `{k}`: {v}" for k, v in leaves.items()] + [""]
        w = render["weasyprint"]
        if not w["available"]:
            out += [f"WeasyPrint baseline unavailable: {w['reason']}", ""]
        cg = s.get("callgrind") or {}
        if cg.get("results"):
            timings = {r["lines"]: r for r in render["results"]}
            out += [
                "Instructions executed by one render (`valgrind --tool=callgrind`, only the "
                "render call collected; stable on a busy machine, unlike the milliseconds):",
                "",
            ]
            rows = []
            for r in cg["results"]:
                timed = timings.get(r["lines"], {}).get(f"{r['renderer']}_ms")
                count = r["instructions"]
                rows.append(
                    [
                        r["renderer"].upper(),
                        f"{r['lines']:,}",
                        f"{count / 1e6:,.1f} M" if count else (r.get("error") or "-"),
                        _f(timed),
                    ]
                )
            out += _table(["renderer", "lines", "instructions", "median ms (above)"], rows)
        if "render" in images:
            out += [f"![Rendering time against line items]({image_dir}/{images['render']})", ""]

    pipe = s.get("pipeline")
    if pipe and pipe.get("backends"):

        def _bound_text(b: dict[str, Any]) -> str:
            if b.get("bound_method") == "parallel":
                return (
                    "The render-only bound is measured in rounds interleaved with each "
                    f"backend's runs (same documents): {b['cores']} processes render every "
                    "document (PDF and XLSX) at the same time, "
                    f"**{b['invoices_per_second']} invoices/s** over all rounds (for "
                    f"reference, {b['cores']} cores / one render alone, PDF {b['pdf_ms']} ms + "
                    f"XLSX {b['xlsx_ms']} ms: {b.get('cores_over_one_render_per_second')} "
                    "invoices/s; the cores slow each other down)."
                )
            return (
                "The render-only bound is measured in rounds interleaved with each backend's "
                f"runs (same documents): {b['cores']} cores / (PDF {b['pdf_ms']} ms + XLSX "
                f"{b['xlsx_ms']} ms, mean over the documents) = "
                f"**{b['invoices_per_second']} invoices/s** over all rounds."
            )

        def _new_file_text(backends: list[dict[str, Any]]) -> str:
            figures = [
                f"{_f(r['new_file_cpu_ms'], 3)} ms ({r['backend']})"
                for r in backends
                if r.get("new_file_cpu_ms") is not None
            ]
            if not figures:  # a report from before the probe
                return ""
            return (
                " Making one new 20 kB file, fsync'ed, in the data directory (about five an "
                "invoice: its documents, its renders, its email) cost "
                + ", ".join(figures)
                + " of CPU: a figure of the machine's filesystem, not of the code."
            )

        def _workers_text(workers: int | None) -> str:
            if workers is None:  # a report from before the runtime ran functions apart
                return "every function inside it"
            if workers == 0:
                return "every function inside it: LOCAL_WORKERS=0"
            return f"each function in its own gunicorn master with {workers} worker(s)"

        b = pipe["render_bound"]
        out += [
            "## Pipeline",
            "",
            "Uploads over HTTP through the local runtime (its own process, "
            + _workers_text(pipe.get("workers_per_function"))
            + f"), cycling the {pipe['documents']}. "
            f"One in flight: {pipe['sequential']} invoices one at a time. "
            f"{pipe['in_flight']} in flight: N invoices from a closed loop of "
            f"{pipe['in_flight']} clients. " + _bound_text(b) + " Each backend's ratio "
            "uses the rounds next to its own runs. CPU per invoice is the runtime's process "
            "tree; outside rendering = (CPU per invoice - renderers' CPU) / renderers' CPU, "
            "with the renderers' CPU of one render alone for one in flight and of renders on "
            "every core at once for 16 in flight." + _new_file_text(pipe["backends"]),
            "",
        ]
        rows = []
        for r in pipe["backends"]:
            if r["status"] != "ok":
                rows.append(
                    [
                        r["backend"],
                        str(r["n"]),
                        r["status"] + ": " + (r["reason"] or ""),
                        *(["-"] * 8),
                    ]
                )
                continue
            cpu = r["cpu_ms_per_invoice"]
            outside = r["cpu_outside_render_vs_render"]
            rows.append(
                [
                    r["backend"],
                    str(r["n"]),
                    _f(r["invoices_per_second"], 2),
                    f"{_f(r['fraction_of_render_bound'], 3)} of "
                    f"{_f(r['render_bound']['invoices_per_second'], 1)}",
                    f"{_f(r['runtime_cpu_cores_used'], 2)} (harness "
                    f"{_f(r.get('client_cpu_cores_used'), 2)})",
                    f"{_f(r['unloaded']['p50_ms'])} ({_x(r['p50_vs_render'])} render)",
                    f"{_f(r['loaded']['p50_ms'])} / {_f(r['loaded']['p95_ms'])}",
                    f"{_f(cpu['unloaded'])} / {_f(cpu['loaded'])} (render "
                    f"{_f(r['render_cpu_ms_per_invoice'])})",
                    f"{_f(outside['unloaded'], 2)} / {_f(outside['loaded'], 2)}",
                    str(r["failed"]),
                    _load(r.get("load")),
                ]
            )
        out += _table(
            [
                "backend",
                "N",
                "invoices/s",
                "of bound (inv/s)",
                "runtime cores used (harness)",
                "p50 ms, 1 in flight",
                f"p50 / p95 ms, {pipe['in_flight']} in flight",
                "CPU ms/invoice, 1 / 16 in flight",
                "outside rendering / rendering, 1 / 16",
                "failed",
                "load",
            ],
            rows,
        )
        out += _cpu_by_process(pipe)
        out += _stages(pipe)
        if "pipeline" in images:
            out += [f"![Upload-to-ready latency]({image_dir}/{images['pipeline']})", ""]

    cold = s.get("coldstart")
    if cold and cold.get("functions"):
        base = cold["baseline"]
        out += [
            "## Cold start",
            "",
            f"`{cold['command']}` (gunicorn master + 1 worker), embedded backends; median of "
            f"{cold['functions'][0]['processes']} fresh processes per function, started in "
            f"rounds; {_pairing(cold)} "
            f"Baseline: an empty functions-framework function, **{_f(base['ms'])} ms** (median "
            f"of its {base['processes']} processes), PSS "
            f"{_f(base['pss_mb'])} MB. Load over the section: {_load(cold.get('load'))}.",
            "",
        ]
        rows = []
        for r in [base, *cold["functions"]]:
            mods = r.get("modules") or {}
            absolute = _f(r["ms"])
            if r.get("argon2_ms") is not None:
                absolute += (
                    f" ({_f(r['ms_excluding_hash'])} without the {_f(r['argon2_ms'])} ms hash)"
                )
            rows.append(
                [
                    r["function"],
                    absolute,
                    _x(r.get("vs_baseline")),
                    _f(r["worker_rss_mb"]),
                    _f(r["pss_mb"]),
                    _f(mods.get("count")),
                    ", ".join(mods.get("watched", [])) or ("-" if not mods else "none"),
                ]
            )
        out += _table(
            [
                "function",
                "start to first 2xx ms",
                "vs empty function",
                "worker RSS MB",
                "PSS MB (master+worker)",
                "modules",
                "notable packages imported",
            ],
            rows,
        )
        if "coldstart" in images:
            out += [f"![Cold start and memory]({image_dir}/{images['coldstart']})", ""]

    mem = s.get("memory")
    if mem and mem.get("functions"):
        out += ["## Memory stability", ""]
        rows = []
        for r in mem["functions"]:
            if "error" in r:
                rows.append([r["function"], r["error"], *(["-"] * 5)])
                continue
            rows.append(
                [
                    r["function"],
                    f"{r['invoices']:,}",
                    _f(r["rss_start_mb"]),
                    _f(r["rss_after_warmup_mb"]),
                    _f(r["rss_end_mb"]),
                    _f(r["rss_max_mb"]),
                    _f(r["growth_pct"], 1, " %"),
                ]
            )
        out += _table(
            [
                "function",
                "invoices",
                "RSS start MB",
                "after warm-up MB",
                "end MB",
                "max MB",
                "growth after warm-up",
            ],
            rows,
        )
        if "memory" in images:
            out += [f"![Resident memory over the run]({image_dir}/{images['memory']})", ""]

    errors = report.get("errors") or []
    if errors:
        out += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
    if ANALYSIS.exists():
        out += [ANALYSIS.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def write(report: dict[str, Any], docs_dir: Path) -> Path:
    docs_dir.mkdir(parents=True, exist_ok=True)
    images = plots(report, docs_dir / "perf")
    page = docs_dir / "performance.md"
    page.write_text(markdown(report, images, "perf"), encoding="utf-8")
    log(f"report: wrote {page} and {len(images)} plot(s) in {docs_dir / 'perf'}")
    return page
