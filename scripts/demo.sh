#!/usr/bin/env bash
# Install the locked versions into .venv, then run the whole product once on the embedded
# defaults: start the local runtime, create a demo user, log in, upload a sample invoice, wait,
# download the PDF and XLSX into ./out/, print the email, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/invoiceflow demo --out out "$@"
