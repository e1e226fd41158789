#!/usr/bin/env bash
# The project's test command (README quick start, .ci/run): installs the dev extras into the
# active Python (a virtual environment; PEP 668 systems refuse a bare pip install), then runs
# the suite. Arguments go to pytest: scripts/test.sh -x tests/test_cli.py
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
exec python3 -m pytest -q "$@"
