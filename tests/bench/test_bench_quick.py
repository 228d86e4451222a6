"""The benchmark harness in quick mode, so it cannot rot (``python -m bench --quick``).

Runs every section once at small size on the embedded backends only (no Postgres or RabbitMQ
needed, WeasyPrint optional) and checks the JSON report's stable shape. No timing is asserted:
targets are reported, never tested.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.settings import FUNCTIONS

#: one worker runs the whole module, so the report (a 20 s subprocess) is made once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench-quick")]

ROOT = Path(__file__).resolve().parents[2]
TARGET_KEYS = {
    "id",
    "section",
    "description",
    "target",
    "op",
    "limit",
    "unit",
    "measured",
    "met",
    "note",
}


def assert_load(load: dict[str, Any]) -> None:
    assert set(load) == {"loadavg_start", "loadavg_end", "other_cores", "busy"}
    assert isinstance(load["busy"], bool)
    assert load["other_cores"] is None or load["other_cores"] >= 0


@contextlib.contextmanager
def bench_module(name: str) -> Iterator[Any]:
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module(f"bench.{name}")
    finally:
        sys.path.remove(str(ROOT))


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--backends",
            "embedded",
            "--n",
            "8",
            "--json",
            str(out / "report.json"),
            "--no-docs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    printed = json.loads(proc.stdout)
    written: dict[str, Any] = json.loads((out / "report.json").read_text())
    assert printed == written
    return written


def test_report_has_the_stable_top_level_shape(quick_report: dict[str, Any]) -> None:
    r = quick_report
    assert r["schema_version"] == 2
    assert r["mode"] == "quick"
    assert set(r) >= {
        "schema_version",
        "generated_at",
        "mode",
        "options",
        "machine",
        "git",
        "sections",
        "targets",
        "summary",
        "errors",
    }
    assert r["errors"] == []
    assert r["machine"]["cores"] >= 1
    assert r["machine"]["python"].startswith("3.")
    assert set(r["sections"]) == {"render", "callgrind", "pipeline", "coldstart", "memory"}
    assert r["sections"]["callgrind"]["status"] == "skipped"  # minutes: full runs only
    for target in r["targets"]:
        assert set(target) == TARGET_KEYS, target
        assert target["met"] in (True, False, None)
    assert r["summary"]["targets"] == len(r["targets"])


def test_render_section_has_ratios_against_the_baselines(quick_report: dict[str, Any]) -> None:
    render = quick_report["sections"]["render"]
    assert render["status"] == "ok"
    assert [row["lines"] for row in render["results"]] == [10, 100]
    for row in render["results"]:
        for key in (
            "pdf_ms",
            "xlsx_ms",
            "bare_reportlab_ms",
            "bare_openpyxl_ms",
            "pdf_vs_bare_reportlab",
            "xlsx_vs_bare_openpyxl",
            "bare_reportlab_single_ms",
            "openpyxl_same_content_ms",
            "xlsx_vs_openpyxl_same_content",
            "parse_ms",
            "parse_vs_pdf",
        ):
            assert row[key] > 0, (key, row)
        assert_load(row["load"])
        assert row["repetitions"]["parse"] == row["repetitions"]["pdf"]  # interleaved
        assert row["pdf_bytes"] > 1000 and row["xlsx_bytes"] > 1000
    weasy = render["weasyprint"]
    assert weasy["available"] or weasy["reason"]
    ids = {t["id"] for t in render["targets"]}
    assert "render.pdf_vs_bare_reportlab.1000" in ids  # reported as not measured when quick
    assert "render.parse_vs_pdf.1000" in ids
    assert set(render["leaves_out"]) >= {
        "bare_reportlab",
        "bare_openpyxl",
        "openpyxl_same_content",
    }
    assert all(render["leaves_out"].values())


def test_pipeline_finishes_every_invoice_on_the_embedded_backend(
    quick_report: dict[str, Any],
) -> None:
    pipeline = quick_report["sections"]["pipeline"]
    (embedded,) = pipeline["backends"]
    assert embedded["backend"] == "embedded"
    assert embedded["status"] == "ok", embedded["reason"]
    assert embedded["completed"] == 8 and embedded["failed"] == 0
    assert embedded["all_finished"] is True
    assert embedded["in_flight"] == pipeline["in_flight"] == 16
    assert embedded["loaded"]["count"] == 8
    assert embedded["unloaded"]["count"] == pipeline["sequential"]
    assert embedded["invoices_per_second"] > 0
    assert embedded["p50_vs_render"] > 0
    assert embedded["cpu_ms_per_invoice"]["unloaded"] > 0
    assert embedded["cpu_ms_per_invoice"]["loaded"] > 0
    assert embedded["render_cpu_ms_per_invoice"] > 0
    assert set(embedded["cpu_outside_render_vs_render"]) == {"unloaded", "loaded"}
    # the renderers' CPU is CPU time of the bound's own render calls, not their wall time
    assert embedded["render_cpu_ms_per_invoice"] == embedded["render_bound"]["render_cpu_ms"]
    assert 0 < embedded["new_file_cpu_ms"] < 50  # the data directory's filesystem, measured
    assert_load(embedded["load"])


def test_pipeline_reports_cpu_per_invoice_of_each_function_and_the_runtime(
    quick_report: dict[str, Any],
) -> None:
    pipeline = quick_report["sections"]["pipeline"]
    (embedded,) = pipeline["backends"]
    by = embedded["cpu_ms_per_invoice_by_process"]
    assert set(by) == {"unloaded", "loaded"}
    if pipeline["workers_per_function"] == 0:
        pytest.skip("LOCAL_WORKERS=0: every function runs inside the runtime's process")
    for phase in ("unloaded", "loaded"):
        # the runtime named every function's master (bench/_runtime.py's first line)
        assert list(by[phase]) == ["runtime", *FUNCTIONS], by[phase]
        assert by[phase]["runtime"] > 0
        assert by[phase]["render-pdf"] > 0 and by[phase]["render-xlsx"] > 0
        # the groups split the total (no process exits in so short a run)
        total = embedded["cpu_ms_per_invoice"][phase]
        assert sum(by[phase].values()) == pytest.approx(total, rel=0.01, abs=0.1)
        ratio = embedded["cpu_outside_render_functions_vs_render_functions"][phase]
        render = by[phase]["render-pdf"] + by[phase]["render-xlsx"]
        assert ratio == pytest.approx((sum(by[phase].values()) - render) / render, abs=0.01)
    ids = {t["id"] for t in quick_report["targets"]}
    assert not any("render_functions" in i for i in ids)  # informative: no target


def test_the_render_bound_covers_every_example_in_rounds_next_to_the_runs(
    quick_report: dict[str, Any],
) -> None:
    pipeline = quick_report["sections"]["pipeline"]
    (embedded,) = pipeline["backends"]
    examples = {p.name for p in (ROOT / "events/examples/invoices").glob("*.json")}
    for bound in (pipeline["render_bound"], embedded["render_bound"]):
        assert bound["invoices_per_second"] > 0
        assert set(bound["per_document_ms"]) == examples
        assert all(d["pdf"] > 0 and d["xlsx"] > 0 for d in bound["per_document_ms"].values())
    # before the warm-up, between the phases and after the last one
    assert embedded["render_bound"]["rounds"] == 4
    ids = {t["id"] for t in pipeline["targets"]}
    assert ids == {
        f"pipeline.{name}.embedded"
        for name in (
            "throughput_vs_bound",
            "p50_vs_render",
            "cpu_outside_render_vs_render",
            "cpu_per_invoice_growth",
        )
    }


def test_pipeline_uploads_cycle_the_examples() -> None:
    with bench_module("pipeline") as pipeline:
        client = object.__new__(pipeline._Client)
        names = sorted(p.name for p in (ROOT / "events/examples/invoices").glob("*.json"))
        client.templates = [pipeline.example(n) for n in names]
        bodies = [json.loads(client.body(f"N-{i}", i)) for i in range(len(names) + 1)]
    assert len({json.dumps({**b, "number": 0, "invoice_no": 0}) for b in bodies}) == len(names)
    assert bodies[0] == {**bodies[-1], "number": bodies[0]["number"]}
    legacy = bodies[names.index("legacy-flat.json")]
    assert legacy["invoice_no"] == f"N-{names.index('legacy-flat.json')}"
    assert "number" not in legacy  # the legacy dialect keeps its own key


def test_cold_start_reaches_a_2xx_for_every_function_and_lists_imports(
    quick_report: dict[str, Any],
) -> None:
    cold = quick_report["sections"]["coldstart"]
    names = {row["function"] for row in cold["functions"]}
    assert names == {name.replace("-", "_") for name in FUNCTIONS}
    for row in [cold["baseline"], *cold["functions"]]:
        assert all(200 <= s < 300 for s in row["statuses"]), row
        assert row["ms"] > 0
    by = {row["function"]: row for row in cold["functions"]}
    assert "reportlab" in by["render_pdf"]["modules"]["watched"]
    assert "openpyxl" in by["render_xlsx"]["modules"]["watched"]
    import_rules = [t for t in cold["targets"] if t["id"].endswith(".render_libs")]
    assert {t["id"].split(".")[1] for t in import_rules} == {"notify", "login", "download"}


def test_cold_start_is_a_ratio_to_the_interleaved_empty_function(
    quick_report: dict[str, Any],
) -> None:
    cold = quick_report["sections"]["coldstart"]
    assert cold["interleaved"] is True
    assert_load(cold["load"])
    base = cold["baseline"]["runs_ms"]
    by = {row["function"]: row for row in cold["functions"]}
    for name, row in by.items():
        hashes = row["argon2_runs_ms"] if name == "login" else [0.0] * len(base)
        pairs = sorted((f - h) / b for f, b, h in zip(row["runs_ms"], base, hashes, strict=True))
        assert len(pairs) == row["processes"] == cold["baseline"]["processes"]
        assert row["vs_baseline"] == pytest.approx(pairs[len(pairs) // 2], abs=0.02)
    login = by["login"]
    assert 0 < login["argon2_ms"] and login["ms_excluding_hash"] == round(
        login["ms"] - login["argon2_ms"], 1
    )
    ratios = {t["id"] for t in cold["targets"] if t["id"].endswith(".vs_baseline")}
    assert ratios == {f"coldstart.{name}.vs_baseline" for name in by}
    assert not any(t["id"].endswith(".ms") for t in cold["targets"])  # no absolute target


def test_memory_section_samples_both_render_functions(quick_report: dict[str, Any]) -> None:
    memory = quick_report["sections"]["memory"]
    assert [row["function"] for row in memory["functions"]] == ["render_pdf", "render_xlsx"]
    for row in memory["functions"]:
        assert row["failures"] == 0
        assert row["rss_end_mb"] > 0 and row["growth_pct"] is not None
        assert row["samples"][-1][0] == row["invoices"]
    assert_load(memory["load"])


def test_docs_are_written_from_the_report(quick_report: dict[str, Any], tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench import report
    finally:
        sys.path.remove(str(ROOT))
    page = report.write(quick_report, tmp_path)
    text = page.read_text()
    assert "What the baselines leave out" in text
    assert "outside rendering" in text
    (embedded,) = quick_report["sections"]["pipeline"]["backends"]
    new_file = f"{embedded['new_file_cpu_ms']:.3f} ms (embedded) of CPU"
    assert "Making one new 20 kB file, fsync'ed, in the data directory" in text
    assert new_file in text
    for heading in (
        "# Performance",
        "## Targets",
        "## Rendering",
        "## Pipeline",
        "## Cold start",
        "## Memory stability",
    ):
        assert heading in text


def test_the_report_flags_targets_measured_on_a_busy_machine(
    quick_report: dict[str, Any],
) -> None:
    with bench_module("report") as report:
        busy = json.loads(json.dumps(quick_report))
        quiet = json.loads(json.dumps(quick_report))
        for r in (busy, quiet):
            (embedded,) = r["sections"]["pipeline"]["backends"]
            embedded["load"]["busy"] = r is busy
        target = next(t for t in quick_report["targets"] if t["section"] == "pipeline")
        assert report.busy_while(busy, target) is True
        assert report.busy_while(quiet, target) is False


def test_callgrind_counts_instructions_of_the_toggled_call_only() -> None:
    with bench_module("callgrind") as callgrind:
        assert callgrind.collected("==1== Events    : Ir\n==1== Collected : 1,234,567\n") == (
            1234567
        )
        assert callgrind.collected("no summary") is None
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            pytest.skip("valgrind is not installed")
        row = callgrind.measure("none", 0, valgrind, timeout=120)
    # an empty call through sys.call_tracing: a few hundred instructions, not the interpreter
    assert row.get("error") is None, row
    assert 0 < row["instructions"] < 100_000


def test_callgrind_without_valgrind_is_reported_not_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with bench_module("callgrind") as callgrind:
        monkeypatch.setattr(callgrind.shutil, "which", lambda name: None)
        result = callgrind.run(quick=False)
        assert callgrind.run(quick=True)["status"] == "skipped"
    assert result["status"] == "unavailable"
    assert result["reason"] == "not measured: valgrind missing"
    assert {(r["renderer"], r["lines"]) for r in result["results"]} == {
        ("pdf", 10),
        ("pdf", 1000),
        ("xlsx", 10),
        ("xlsx", 1000),
    }
    assert all(r["instructions"] is None for r in result["results"])


def test_the_page_shows_instruction_counts_next_to_the_timings(
    quick_report: dict[str, Any], tmp_path: Path
) -> None:
    with bench_module("report") as report:
        r = json.loads(json.dumps(quick_report))
        r["sections"]["callgrind"] = {
            "status": "ok",
            "results": [
                {"renderer": "pdf", "lines": 10, "instructions": 69_500_000},
                {"renderer": "xlsx", "lines": 1000, "instructions": None, "error": "boom"},
            ],
        }
        text = report.markdown(r, {}, "perf")
    assert "| PDF | 10 | 69.5 M |" in text
    assert "| XLSX | 1,000 | boom |" in text


def test_the_same_content_openpyxl_baseline_writes_both_sheets_with_formulas() -> None:
    import io

    from openpyxl import load_workbook

    with bench_module("render") as render:
        from bench.common import invoice_document, parse

        data = render.openpyxl_same_content(parse(invoice_document(3)))
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Invoice", "Tax"]
    amounts = [row[7] for row in wb["Invoice"].iter_rows(min_row=12, max_row=14, values_only=True)]
    assert amounts == ["=ROUND(D12*F12,2)", "=ROUND(D13*F13,2)", "=ROUND(D14*F14,2)"]
    labels = [row[6] for row in wb["Invoice"].iter_rows(min_row=16, values_only=True)]
    assert labels == ["Subtotal", "Tax", "Total", "Balance due"]
    assert str(wb["Tax"]["B3"].value).startswith("=SUMIF(Invoice!G12:G14,A3,")


def test_full_cold_start_pairs_each_function_with_its_own_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full run (one round here) starts a fresh empty function right before each function
    and divides by that one: the baseline's runs are the round's own, then one per function,
    in order."""
    with bench_module("coldstart") as coldstart:
        monkeypatch.setattr(coldstart, "ROUNDS", 1)
        cold = coldstart.run(quick=False)
    assert cold["interleaved"] == "pairs"
    base = cold["baseline"]
    assert base["processes"] == 1 + len(cold["functions"]) == len(base["runs_ms"])
    for i, row in enumerate(cold["functions"]):
        assert row["processes"] == 1
        hash_ms = row["argon2_runs_ms"][0] if row["function"] == "login" else 0.0
        paired = base["runs_ms"][1 + i]
        assert row["vs_baseline"] == pytest.approx((row["runs_ms"][0] - hash_ms) / paired, abs=0.01)


def _by_process_backend(backend: str, loaded: dict[str, float]) -> dict[str, Any]:
    return {
        "backend": backend,
        "status": "ok",
        "cpu_ms_per_invoice": {"unloaded": 100.0, "loaded": sum(loaded.values())},
        "cpu_ms_per_invoice_by_process": {
            "unloaded": {"runtime": 10.0, "upload": 20.0, "render-pdf": 50.0, "render-xlsx": 20.0},
            "loaded": loaded,
        },
        "cpu_outside_render_functions_vs_render_functions": {"unloaded": 0.43, "loaded": 0.5},
    }


def test_the_page_shows_cpu_per_invoice_by_process_sorted_by_the_loaded_embedded_figure() -> None:
    pipe = {
        "in_flight": 16,
        "backends": [
            _by_process_backend(
                "postgres+rabbitmq",
                {"runtime": 1.0, "upload": 30.0, "render-pdf": 40.0, "render-xlsx": 9.0},
            ),
            _by_process_backend(
                "embedded",
                {"runtime": 25.0, "upload": 5.0, "render-pdf": 60.0, "render-xlsx": 15.0},
            ),
            {"backend": "other", "status": "unavailable", "reason": "not reachable"},
        ],
    }
    with bench_module("report") as report:
        lines = report._cpu_by_process(pipe)
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == (
        "| process | postgres+rabbitmq, 1 in flight | postgres+rabbitmq, 16 in flight "
        "| embedded, 1 in flight | embedded, 16 in flight |"
    )
    rows = [row.split(" | ")[0].lstrip("| ") for row in table[1:]]
    assert rows[:4] == ["`render-pdf`", "`runtime`", "`render-xlsx`", "`upload`"]
    assert table[1] == "| `render-pdf` | 50.0 | 40.0 | 50.0 | 60.0 |"
    assert table[-2] == "| all (`cpu_ms_per_invoice`) | 100.0 | 80.0 | 100.0 | 105.0 |"
    assert table[-1].endswith("| 0.43 | 0.50 | 0.43 | 0.50 |")
    assert "outside rendering / rendering" in lines[0] and "no target" in lines[0]


def test_a_report_without_cpu_by_process_renders_without_the_table() -> None:
    """Reports from before the figures existed (schema 2 all the same) still render."""
    pipe = {"in_flight": 16, "backends": [{"backend": "embedded", "status": "ok"}]}
    with bench_module("report") as report:
        assert report._cpu_by_process(pipe) == []
        assert report._cpu_by_process({"backends": []}) == []


def test_the_cpu_of_each_group_is_the_growth_of_its_processes() -> None:
    with bench_module("pipeline") as pipeline:
        before = {"runtime": {1: 1.0}, "upload": {2: 2.0, 3: 1.0}, "render-pdf": {4: 5.0}}
        # 3 exited; 5 is a new worker of upload; render-pdf's master was replaced by 6
        after = {"runtime": {1: 1.5}, "upload": {2: 2.5, 5: 0.25}, "render-pdf": {6: 3.0}}
        cpu = pipeline._cpu_by_group(before, after)
        assert cpu == {"runtime": 0.5, "upload": 0.75, "render-pdf": 3.0}
        assert pipeline._by_process_ms({"upload": 0.75, "runtime": 0.5, "x": 0.1}, 10) == {
            "runtime": 50.0,
            "upload": 75.0,
            "x": 10.0,
        }
        assert list(pipeline._by_process_ms(cpu, 1)) == ["runtime", "upload", "render-pdf"]
        assert pipeline._outside_render_functions(cpu) == round(1.25 / 3.0, 3)
        assert pipeline._outside_render_functions({"runtime": 1.0}) is None  # LOCAL_WORKERS=0


def test_a_function_master_is_known_by_its_listener_descriptor(tmp_path: Path) -> None:
    """The harness finds a master the runtime restarted (a new pid) by the listening socket's
    descriptor number on its command line, which the runtime keeps across restarts."""
    code = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)"
    with bench_module("pipeline") as pipeline:
        fake = tmp_path / "invoiceflow_local"
        fake.mkdir()
        (fake / "__init__.py").write_text("")
        (fake / "workers.py").write_text(code)
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoiceflow_local.workers", "7", "9"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "up\n"
            assert pipeline._master_listener_fd(proc.pid) == "7"
            assert pipeline._master_listener_fd(os.getpid()) is None
        finally:
            proc.kill()
            proc.wait()
