#!/usr/bin/env bash
# Create .venv (when missing) and install exactly the locked versions into it:
#   bash scripts/install.sh            the package and the local runtime (local/: invoiceflow
#                                      dev/demo, with pika), both editable, and their dependencies
#   bash scripts/install.sh test,bench the same with the package's extras
# Every install reads both lock files as constraints (requirements.lock: the runtime, as in the
# image; requirements-dev.lock: pip, setuptools and the extras), so a fresh machine gets the
# versions the suite was written against, never the newest release. To refresh the locks after
# changing pyproject.toml: bash scripts/lock.sh (see CONTRIBUTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
locks=(-c requirements.lock -c requirements-dev.lock)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip and setuptools first, at their locked versions; the package is then built with them
# (--no-build-isolation), so the build does not fetch an unpinned setuptools either.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "${locks[@]}" pip setuptools
target="."
[ -n "${1:-}" ] && target=".[$1]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  "${locks[@]}" -e "$target" -e ./local
