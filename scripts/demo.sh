#!/usr/bin/env bash
# Install into .venv, then run the whole product once on the embedded defaults: start the
# local runtime, create a demo user, log in, upload a sample invoice, wait, download the PDF
# and XLSX into ./out/, print the email, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/invoiceflow demo --out out "$@"
