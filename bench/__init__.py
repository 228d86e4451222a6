"""The invoiceflow benchmark harness: ``python -m bench`` (see ``bench/README.md``).

Every figure is measured on the machine it runs on and reported next to a baseline measured
in the same run (a ratio), so results from different machines can still be compared.

Sections (each a module): :mod:`bench.render` (PDF/XLSX against bare ReportLab/openpyxl and
WeasyPrint), :mod:`bench.callgrind` (instruction counts of the renderers),
:mod:`bench.pipeline` (uploads through the local runtime), :mod:`bench.coldstart` (fresh
function processes), :mod:`bench.memory` (resident memory over many invoices).
:mod:`bench.report` writes ``docs/performance.md`` and the plots in ``docs/perf/``.
"""

#: Bumped whenever a key of the JSON report changes meaning or disappears (adding keys is not
#: a change: readers must ignore keys they do not know).
SCHEMA_VERSION = 2
