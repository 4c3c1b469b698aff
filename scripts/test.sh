#!/usr/bin/env bash
# Installs what the tests need (PostgreSQL too) and runs every suite:
# lint, typecheck, unit, store contract on SQLite and PostgreSQL, API, CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-postgres
exec npm test
