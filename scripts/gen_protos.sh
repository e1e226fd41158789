#!/usr/bin/env bash
# Regenerates the committed message code in shixin_client/_proto from its .proto subset.
# Needs grpcio-tools (the [dev] extra). Run it after editing any .proto, then commit both.
# Imports between the generated modules are made package-relative so that they load as
# shixin_client._proto.* wherever the package is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
proto_dir=shixin_client/_proto
well_known=$(python3 -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
rm -f "$proto_dir"/*_pb2.py "$proto_dir"/*_pb2.pyi
python3 -m grpc_tools.protoc -I . -I "$well_known" --python_out=. --pyi_out=. "$proto_dir"/*.proto
sed -i -E 's/^from shixin_client\._proto import ([a-z_]+_pb2)/from . import \1/' "$proto_dir"/*_pb2.py "$proto_dir"/*_pb2.pyi
