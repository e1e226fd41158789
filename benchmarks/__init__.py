"""Speed and size claims of shixin-client, each measured against its baseline in the same run.

``python -m benchmarks [--quick]`` prints the table, writes ``benchmarks/results.json`` and
regenerates ``docs/benchmarks.md`` with its chart. Not run in CI (a smoke test of the
harness is); see docs/benchmarks.md for what every row compares.
"""
