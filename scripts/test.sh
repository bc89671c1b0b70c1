#!/usr/bin/env bash
# Lint, format and layering checks, then the whole suite. pytest's exit code 5 ("no tests collected") is a failure here.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check . || { echo "test.sh: ruff check found problems (.venv/bin/ruff check --fix . mends some)" >&2; exit 1; }
.venv/bin/ruff format --check . || { echo "test.sh: files need formatting (.venv/bin/ruff format .)" >&2; exit 1; }
.venv/bin/lint-imports || { echo "test.sh: the layering contracts in pyproject.toml ([tool.importlinter]) are broken (see docs/architecture.md)" >&2; exit 1; }
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" = 5 ]; then
  echo "test.sh: pytest collected no tests — treating that as a failure" >&2
  exit 1
fi
exit "$status"
