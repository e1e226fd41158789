#!/usr/bin/env bash
# The SDK against the real TensorFlow Serving, in one command: start the pinned tensorflow/serving
# image on models/ with serving/run.sh (the same image, flags and config as production), run the
# SDK's end-to-end tests (tests/test_external_server.py) against it over REST and gRPC, then
# benchmark rows 5 and 6, and remove the container.
#
# Exit status: 0 when everything passed; 1 when something failed; 77 (the usual "skipped"
# status) when Docker cannot run here, after one line that says why. Nothing else needs Docker:
# the test suite checks this script's no-Docker path and runs the same tests on the local server.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
readonly here repo
readonly exit_skipped=77

usage() {
    cat <<EOF
Usage: serving/e2e.sh [options]

Start tensorflow/serving (the tag pinned in serving/.env) on an export with serving/run.sh,
run tests/test_external_server.py and benchmark rows 5 and 6 against it, then remove it.

Options:
  --models DIR        export base path holding shixin/<int version>/saved_model.pb
                      (default: models/ of this checkout)
  --grpc-port N       gRPC port (default: SHIXIN_GRPC_PORT from serving/.env)
  --rest-port N       REST port (default: SHIXIN_REST_PORT from serving/.env)
  --name NAME         container name (default: shixin-e2e)
  --out DIR           where the benchmark writes its results and report (default: a new
                      temporary folder; never benchmarks/results.json or docs/)
  --no-benchmarks     run the tests only
  --keep              leave the container running afterwards
  -h, --help          show this help

Environment:
  PYTHON              the Python with shixin-client[dev,bench] (default: .venv/bin/python of
                      this checkout if it exists, else python3)
  DOCKER              the container CLI (default: docker), as for run.sh
  SHIXIN_*            override serving/.env, as for run.sh

Exit status: 0 passed, 1 failed, $exit_skipped Docker cannot run here (one line says why).
EOF
}

die() {
    printf 'serving/e2e.sh: error: %s\n' "$*" >&2
    exit 1
}

skip() {
    printf 'serving/e2e.sh: skipped: %s\n' "$*" >&2
    exit "$exit_skipped"
}

# The value of KEY: from the environment if set there, else from serving/.env (as run.sh reads it).
setting() {
    local key=$1 line
    if [[ -n ${!key:-} ]]; then
        printf '%s\n' "${!key}"
        return
    fi
    line=$(grep -E "^${key}=" "$here/.env" | tail -n 1) || die "serving/.env does not set $key"
    printf '%s\n' "${line#*=}"
}

models_dir="$repo/models"
grpc_port=$(setting SHIXIN_GRPC_PORT)
rest_port=$(setting SHIXIN_REST_PORT)
container_name=shixin-e2e
out_dir=""
benchmarks=true
keep=false
docker=${DOCKER:-docker}
if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
elif [[ -x $repo/.venv/bin/python ]]; then
    python=$repo/.venv/bin/python
else
    python=python3
fi

while (($# > 0)); do
    case $1 in
        -h | --help)
            usage
            exit 0
            ;;
        --no-benchmarks) benchmarks=false ;;
        --keep) keep=true ;;
        --models | --grpc-port | --rest-port | --name | --out)
            (($# >= 2)) || die "$1 needs a value (see --help)"
            case $1 in
                --models) models_dir=$2 ;;
                --grpc-port) grpc_port=$2 ;;
                --rest-port) rest_port=$2 ;;
                --name) container_name=$2 ;;
                --out) out_dir=$2 ;;
            esac
            shift
            ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

# --- Docker first: without it there is nothing to run ------------------------------------------
command -v "$docker" >/dev/null || skip "'$docker' is not installed, so the real TF Serving cannot run here"
if ! engine_error=$("$docker" info 2>&1 >/dev/null); then
    skip "the Docker engine is not reachable ('$docker info': $(head -n 1 <<<"${engine_error:-no output}"))"
fi

"$python" -c "import pytest, shixin_client" 2>/dev/null ||
    die "$python cannot import pytest and shixin_client; pip install -e \".[dev,bench]\" or set PYTHON"
[[ -d $models_dir ]] || die "models folder $models_dir does not exist"
models_dir=$(cd "$models_dir" && pwd -P)
model_name=$(sed -nE 's/^[[:space:]]*name:[[:space:]]*"([^"]+)".*/\1/p' "$here/models.config")
labels=$(sed -nE 's/^[[:space:]]*key:[[:space:]]*"([^"]+)".*/\1/p' "$here/models.config" | paste -sd, -)
if "$docker" container inspect "$container_name" >/dev/null 2>&1; then
    die "a container named $container_name already exists; remove it or pass --name"
fi

cleanup() {
    if [[ $keep == false ]]; then
        "$docker" rm -f "$container_name" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# --- The real server: run.sh checks the inputs, starts the pinned image, waits for AVAILABLE --
"$here/run.sh" --models "$models_dir" --name "$container_name" \
    --grpc-port "$grpc_port" --rest-port "$rest_port"

rest_url="http://127.0.0.1:$rest_port"
grpc_target="127.0.0.1:$grpc_port"
cd "$repo"
status=0
echo "== SDK end-to-end tests against $rest_url and grpc://$grpc_target"
SHIXIN_E2E_REST=$rest_url SHIXIN_E2E_GRPC=$grpc_target \
    SHIXIN_E2E_MODEL_BASE_PATH="$models_dir/$model_name" SHIXIN_E2E_LABELS=$labels \
    "$python" -m pytest -q -p no:cacheprovider tests/test_external_server.py || status=1

if [[ $benchmarks == true ]]; then
    [[ -n $out_dir ]] || out_dir=$(mktemp -d "${TMPDIR:-/tmp}/shixin-e2e.XXXXXX")
    mkdir -p "$out_dir"
    echo "== benchmark rows 5 and 6 (results in $out_dir)"
    "$python" -m benchmarks --rows 5,6 --server-grpc "$grpc_target" --server-rest "$rest_url" \
        --results "$out_dir/results.json" --docs "$out_dir/benchmarks.md" || status=1
fi

if [[ $keep == true ]]; then
    echo "left running: $container_name ($docker rm -f $container_name to stop it)"
fi
if ((status != 0)); then
    die "something failed against TF Serving; see the output above"
fi
echo "TF Serving end-to-end: passed"
