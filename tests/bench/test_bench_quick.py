"""The benchmark harness in quick mode, so it cannot rot (``python -m bench --quick``).

Runs every section once at small size on the embedded backends only (no Postgres or RabbitMQ
needed, WeasyPrint optional) and checks the JSON report's stable shape. No timing is asserted:
targets are reported, never tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    assert r["schema_version"] == 1
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
    assert set(r["sections"]) == {"render", "pipeline", "coldstart", "memory"}
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
        ):
            assert row[key] > 0, (key, row)
        assert row["pdf_bytes"] > 1000 and row["xlsx_bytes"] > 1000
    weasy = render["weasyprint"]
    assert weasy["available"] or weasy["reason"]
    ids = {t["id"] for t in render["targets"]}
    assert "render.pdf_vs_bare_reportlab.1000" in ids  # reported as not measured when quick


def test_pipeline_finishes_every_invoice_on_the_embedded_backend(
    quick_report: dict[str, Any],
) -> None:
    pipeline = quick_report["sections"]["pipeline"]
    (embedded,) = pipeline["backends"]
    assert embedded["backend"] == "embedded"
    assert embedded["status"] == "ok", embedded["reason"]
    assert embedded["completed"] == 8 and embedded["failed"] == 0
    assert embedded["all_finished"] is True
    assert embedded["loaded"]["count"] == 8
    assert embedded["unloaded"]["count"] == pipeline["sequential"]
    assert embedded["invoices_per_second"] > 0
    assert pipeline["render_bound"]["invoices_per_second"] > 0


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


def test_memory_section_samples_both_render_functions(quick_report: dict[str, Any]) -> None:
    memory = quick_report["sections"]["memory"]
    assert [row["function"] for row in memory["functions"]] == ["render_pdf", "render_xlsx"]
    for row in memory["functions"]:
        assert row["failures"] == 0
        assert row["rss_end_mb"] > 0 and row["growth_pct"] is not None
        assert row["samples"][-1][0] == row["invoices"]


def test_docs_are_written_from_the_report(quick_report: dict[str, Any], tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench import report
    finally:
        sys.path.remove(str(ROOT))
    page = report.write(quick_report, tmp_path)
    text = page.read_text()
    for heading in (
        "# Performance",
        "## Targets",
        "## Rendering",
        "## Pipeline",
        "## Cold start",
        "## Memory stability",
    ):
        assert heading in text
