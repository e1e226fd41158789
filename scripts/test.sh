#!/usr/bin/env bash
# The project's test command (README quick start, .ci/run): the fast suite, in parallel-safe order.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
exec python3 -m pytest -q "$@"
