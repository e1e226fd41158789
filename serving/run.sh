#!/usr/bin/env bash
# Serve the exported captcha model on one host with the official TensorFlow Serving image.
#
# Every input is checked before anything starts, because TF Serving itself reports a bad layout
# or config only in its container log, after the container is already up. Then the container
# runs detached and this script waits until a model version is AVAILABLE (or says why not).
# The image pin, the default ports, the start timeout and the models folder come from
# serving/.env, the file docker compose reads too; the flags follow docs/tf-serving-compat.md
# §3 and §4.
#
# The config folder is mounted whole, not file by file: a file replaced by a rename (an
# editor's save, serving/move_label.py's atomic edit) then reaches the running server at its
# next config poll, where a single-file bind mount would keep showing the old file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
# Where the image expects models (its MODEL_BASE_PATH, §4) and where we put the config files.
readonly container_models=/models
readonly container_config=/config
# The files the config folder must hold; TF Serving reads each through its own flag.
readonly config_files=(models.config batching.config monitoring.config)

usage() {
    cat <<EOF
Usage: serving/run.sh [options]

Start tensorflow/serving in Docker on an exported model, then wait until it serves.

Options:
  --models DIR              export base path holding <name>/<int version>/saved_model.pb
                            (default: SHIXIN_MODELS_DIR from serving/.env, relative to serving/)
  --config-dir DIR          folder holding models.config (ModelServerConfig), batching.config
                            (BatchingParameters) and monitoring.config (MonitoringConfig),
                            mounted read-only at /config (default: serving/)
  --grpc-port N             gRPC port, host and container (default: SHIXIN_GRPC_PORT)
  --rest-port N             REST port, host and container (default: SHIXIN_REST_PORT)
  --rest-timeout-ms N       per-request REST deadline (default: SHIXIN_REST_TIMEOUT_MS)
  --name NAME               container name (default: shixin-serving)
  --wait-timeout SECONDS    how long to wait for an AVAILABLE version
                            (default: SHIXIN_START_TIMEOUT_S)
  --no-wait                 start the container and return without waiting
  -h, --help                show this help

Environment:
  SHIXIN_IMAGE, SHIXIN_GRPC_PORT, SHIXIN_REST_PORT, SHIXIN_REST_TIMEOUT_MS, SHIXIN_MODELS_DIR,
  SHIXIN_START_TIMEOUT_S    override serving/.env, as they do for docker compose
  DOCKER                    the container CLI to call (default: docker; podman works too)
EOF
}

die() {
    printf 'serving/run.sh: error: %s\n' "$*" >&2
    exit 1
}

# The value of KEY: from the environment if set there, else from serving/.env.
setting() {
    local key=$1 line
    if [[ -n ${!key:-} ]]; then
        printf '%s\n' "${!key}"
        return
    fi
    line=$(grep -E "^${key}=" "$here/.env" | tail -n 1) || die "serving/.env does not set $key"
    printf '%s\n' "${line#*=}"
}

is_port() {
    [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535))
}

# True when something on this host already accepts connections on the port.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

absolute() {
    local path=$1
    [[ $path == /* ]] || path="$PWD/$path"
    printf '%s\n' "$path"
}

image=$(setting SHIXIN_IMAGE)
grpc_port=$(setting SHIXIN_GRPC_PORT)
rest_port=$(setting SHIXIN_REST_PORT)
rest_timeout_ms=$(setting SHIXIN_REST_TIMEOUT_MS)
models_dir=$(setting SHIXIN_MODELS_DIR)
[[ $models_dir == /* ]] || models_dir="$here/$models_dir"
config_dir=$here
container_name=shixin-serving
wait_timeout=$(setting SHIXIN_START_TIMEOUT_S)
wait_for_model=true
docker=${DOCKER:-docker}

while (($# > 0)); do
    case $1 in
        -h | --help)
            usage
            exit 0
            ;;
        --no-wait)
            wait_for_model=false
            shift
            continue
            ;;
        --models | --config-dir | --grpc-port | --rest-port | --rest-timeout-ms | --name | \
            --wait-timeout)
            (($# >= 2)) || die "$1 needs a value (see --help)"
            ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    case $1 in
        --models) models_dir=$(absolute "$2") ;;
        --config-dir) config_dir=$(absolute "$2") ;;
        --grpc-port) grpc_port=$2 ;;
        --rest-port) rest_port=$2 ;;
        --rest-timeout-ms) rest_timeout_ms=$2 ;;
        --name) container_name=$2 ;;
        --wait-timeout) wait_timeout=$2 ;;
    esac
    shift 2
done

# --- Options --------------------------------------------------------------------------------
is_port "$grpc_port" || die "gRPC port '$grpc_port' is not a port number (1-65535)"
is_port "$rest_port" || die "REST port '$rest_port' is not a port number (1-65535)"
((10#$grpc_port != 10#$rest_port)) ||
    die "gRPC and REST ports are both $grpc_port; TF Serving needs two different ports (§1.1)"
[[ $rest_timeout_ms =~ ^[1-9][0-9]*$ ]] ||
    die "REST timeout '$rest_timeout_ms' is not a positive number of milliseconds"
[[ $wait_timeout =~ ^[1-9][0-9]*$ ]] ||
    die "wait timeout '$wait_timeout' is not a positive number of seconds"
[[ -n $container_name ]] || die "the container name must not be empty"

# --- Config files ---------------------------------------------------------------------------
[[ -d $config_dir ]] || die "config folder $config_dir does not exist"
config_dir=$(cd "$config_dir" && pwd -P)
for file in "${config_files[@]}"; do
    [[ -f $config_dir/$file && -r $config_dir/$file ]] ||
        die "config file $config_dir/$file does not exist or is not readable"
done
model_config="$config_dir/models.config"
monitoring_config="$config_dir/monitoring.config"

# The config names the model and where it lives in the container; the host layout must match.
# (Plain read loops rather than mapfile: macOS still ships bash 3.2.)
names=""
while IFS= read -r name; do
    names+="${names:+ }$name"
done < <(sed -nE 's/^[[:space:]]*name:[[:space:]]*"([^"]+)".*/\1/p' "$model_config")
[[ -n $names && $names != *" "* ]] ||
    die "$model_config must configure exactly one model with a name (found: ${names:-none})"
model_name=$names
base_path=$(sed -nE 's/^[[:space:]]*base_path:[[:space:]]*"([^"]+)".*/\1/p' "$model_config")
[[ $base_path == "$container_models/$model_name" ]] ||
    die "$model_config: base_path is '$base_path' but must be '$container_models/$model_name'," \
        "because run.sh mounts the models folder at $container_models"

metrics_path=$(sed -nE 's/^[[:space:]]*path:[[:space:]]*"([^"]+)".*/\1/p' "$monitoring_config")

# --- Model layout: <models>/<name>/<int version>/saved_model.pb -----------------------------
[[ -d $models_dir ]] || die "models folder $models_dir does not exist (export a model, or pass --models)"
models_dir=$(cd "$models_dir" && pwd -P)
model_dir="$models_dir/$model_name"
[[ -d $model_dir ]] ||
    die "$model_dir does not exist; expected <models>/$model_name/<int version>/saved_model.pb"
on_disk=""
for dir in "$model_dir"/*/; do
    version=$(basename "$dir")
    [[ $version =~ ^[0-9]+$ ]] || continue
    [[ -f $dir/saved_model.pb ]] ||
        die "$model_dir/$version has no saved_model.pb; remove it or finish the export"
    on_disk+="${on_disk:+ }$((10#$version))"
done
[[ -n $on_disk ]] ||
    die "$model_dir has no version folders; expected $model_dir/<int version>/saved_model.pb"
# Versions the config names (policy `versions:` and label `value:` lines) must be on disk:
# a listed version that is not there never loads, and a label on it never serves.
while IFS= read -r version; do
    [[ " $on_disk " == *" $((10#$version)) "* ]] ||
        die "$model_config names version $version of $model_name, but $model_dir/$version/saved_model.pb" \
            "does not exist (on disk: $on_disk)"
done < <(sed -nE 's/^[[:space:]]*(versions|value):[[:space:]]*([0-9]+).*/\2/p' "$model_config")
# With --allow_version_labels_for_unavailable_models (below), TF Serving accepts a startup label
# on any version, even one the policy does not load; clients asking for that label would then
# get "not found". So a specific policy must list every labelled version.
policy=""
while IFS= read -r version; do
    policy+=" $((10#$version)) "
done < <(sed -nE 's/^[[:space:]]*versions:[[:space:]]*([0-9]+).*/\1/p' "$model_config")
if [[ -n $policy ]]; then
    while IFS= read -r version; do
        [[ $policy == *" $((10#$version)) "* ]] ||
            die "$model_config labels version $version of $model_name, which its policy does not list" \
                "(versions:$policy); add it to the policy or move the label"
    done < <(sed -nE 's/^[[:space:]]*value:[[:space:]]*([0-9]+).*/\1/p' "$model_config")
fi

# --- Ports and Docker -----------------------------------------------------------------------
for port in "$grpc_port" "$rest_port"; do
    if port_in_use "$port"; then
        die "port $port is already in use on this host; stop what listens there or pick another port"
    fi
done
command -v "$docker" >/dev/null ||
    die "'$docker' not found on PATH; install Docker Engine (or set DOCKER=podman)"
if ! engine_error=$("$docker" info 2>&1 >/dev/null); then
    die "the Docker engine is not reachable ('$docker info' failed): ${engine_error:-no output};" \
        "start it, or check DOCKER_HOST and your permission to use it"
fi
if "$docker" container inspect "$container_name" >/dev/null 2>&1; then
    die "a container named $container_name already exists; remove it with" \
        "'$docker rm -f $container_name' or pass --name"
fi

# --- Run ------------------------------------------------------------------------------------
# Our --port/--rest_api_port come after the entrypoint's and win (§4: the last occurrence wins).
# models.config declares version labels, which TF Serving applies before it loads anything: without
# --allow_version_labels_for_unavailable_models it refuses them and exits (§3.3). The flag lets a
# label be set on a version still loading; moving an existing label still needs its new version
# AVAILABLE (serving/move_label.py waits for that).
"$docker" run --detach --name "$container_name" --restart unless-stopped \
    --publish "$grpc_port:$grpc_port" --publish "$rest_port:$rest_port" \
    --volume "$models_dir:$container_models:ro" \
    --volume "$config_dir:$container_config:ro" \
    "$image" \
    --port="$grpc_port" \
    --rest_api_port="$rest_port" \
    --model_config_file="$container_config/models.config" \
    --model_config_file_poll_wait_seconds=60 \
    --allow_version_labels_for_unavailable_models=true \
    --enable_batching=true \
    --batching_parameters_file="$container_config/batching.config" \
    --monitoring_config_file="$container_config/monitoring.config" \
    --rest_api_timeout_in_ms="$rest_timeout_ms" >/dev/null

echo "started $container_name ($image): gRPC on port $grpc_port, REST on port $rest_port"
if [[ $wait_for_model == false ]]; then
    exit 0
fi

# --- Health wait: GET /v1/models/<name> until a version is AVAILABLE (§1.7) -----------------
# TF Serving opens its REST port only once the first load (with warm-up) is over (§3.3), so
# until then curl is refused; a load that fails is retried, 60 s apart, before the server exits.
command -v curl >/dev/null || die "curl is needed to wait for the model; install it or pass --no-wait"
status_url="http://127.0.0.1:$rest_port/v1/models/$model_name"
deadline=$((SECONDS + wait_timeout))
body=""
while true; do
    body=$(curl --silent --fail --max-time 2 "$status_url" 2>/dev/null) || body=""
    if grep -Eq '"state"[[:space:]]*:[[:space:]]*"AVAILABLE"' <<<"$body"; then
        break
    fi
    state=$("$docker" inspect --format '{{.State.Status}}' "$container_name" 2>/dev/null) || state=missing
    if [[ $state != running ]]; then
        logs=$("$docker" logs --tail 30 "$container_name" 2>&1) || true
        die "container $container_name is $state before $model_name became AVAILABLE;" \
            "its last log lines:"$'\n'"$logs"$'\n'"remove it with '$docker rm -f $container_name'"
    fi
    if ((SECONDS >= deadline)); then
        die "no version of $model_name became AVAILABLE within ${wait_timeout}s" \
            "(last answer from $status_url: ${body:-none, the REST port opens only after the first load});" \
            "see '$docker logs $container_name'"
    fi
    sleep 1
done

cat <<EOF
$model_name is AVAILABLE.
  REST:    ShixinClient("http://127.0.0.1:$rest_port")   status: $status_url
  gRPC:    ShixinClient("grpc://127.0.0.1:$grpc_port")
  metrics: http://127.0.0.1:$rest_port${metrics_path}
  stop:    $docker rm -f $container_name
EOF
