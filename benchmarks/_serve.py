"""``python -m benchmarks._serve BASE NAME [--batching-parameters-file F]``: shixin_client.server in a child.

The server runs in its own process, as TF Serving would, so its work never shares the
benchmarking client's interpreter lock or CPU-time count. Its Prometheus endpoint is on
(TF Serving's default path), so the rows can read the time spent inside it. It prints one
JSON line with its addresses, serves until its standard input closes, then stops.
"""

from __future__ import annotations

import argparse
import json
import sys

from shixin_client.server._config_files import DEFAULT_PROMETHEUS_PATH, read_batching_parameters
from shixin_client.server.testing import running_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._serve")
    parser.add_argument("base_path")
    parser.add_argument("name")
    parser.add_argument(
        "--batching-parameters-file", help="enable batching with this BatchingParameters file"
    )
    args = parser.parse_args(argv)
    batching = (
        read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file else None
    )
    with running_server(
        args.base_path, args.name, batching=batching, prometheus_path=DEFAULT_PROMETHEUS_PATH
    ) as server:
        print(json.dumps({"rest": server.rest_url, "grpc": server.grpc_target}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
