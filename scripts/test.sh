#!/usr/bin/env bash
# The whole test suite: static checks, then pytest on SQLite and PostgreSQL with real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -f .venv/.installed ] || bash scripts/setup.sh
export TCP_NODELAY=1
echo "== ruff";          .venv/bin/ruff check yunying tests bench
echo "== mypy (strict)"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"
.venv/bin/pytest --durations=25 "$@"
