#!/usr/bin/env bash
# Check every exported version with the TensorFlow inside the pinned tensorflow/serving image,
# not only with the TensorFlow the project trains with. TF Serving X.Y is built on TensorFlow X.Y,
# so a virtual environment with tensorflow-cpu==X.Y.* loads each version with that release's
# session loader and runs every signature and warm-up record (python -m export check --python).
#
# Usage: export/check_serving_tensorflow.sh   (checks models/shixin/<every version> against models/shixin.keras)
# Needs the project's [export] extra in the current python3, and the package registry once, to
# build the environment (about 250 MB; kept in SHIXIN_SERVING_TF_VENV, by default
# ~/.cache/shixin-client/serving-tf-X.Y, and reused). Exit status: 0 when every version passes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
readonly here repo
cd "$repo"

image=$(sed -n 's/^SHIXIN_IMAGE=//p' serving/.env)
tag=${image##*:}
if [[ ! $tag =~ ^([0-9]+)\.([0-9]+)\. ]]; then
    echo "serving/.env pins ${image}; expected a tag like 2.19.0" >&2
    exit 2
fi
tf_minor="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
venv=${SHIXIN_SERVING_TF_VENV:-$HOME/.cache/shixin-client/serving-tf-${tf_minor}}
readonly base=models/shixin

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import tensorflow_serving.apis" 2>/dev/null; then
    echo "building ${venv} with tensorflow-cpu==${tf_minor}.* (the TensorFlow of ${image})"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q "tensorflow-cpu==${tf_minor}.*"
    # The serving API protos only: their tensorflow requirement is met by tensorflow-cpu.
    "$venv/bin/python" -m pip install -q --no-deps "tensorflow-serving-api==${tf_minor}.*"
fi

status=0
found=0
for version_dir in "$base"/*/; do
    version_dir=${version_dir%/}
    [[ $(basename "$version_dir") =~ ^[0-9]+$ ]] || continue
    found=1
    if ! report=$(TF_CPP_MIN_LOG_LEVEL=2 python3 -m export check "$version_dir" --model models/shixin.keras \
        --python "$venv/bin/python" 2>&1); then
        status=1
    fi
    printf '%s\n' "$report" | grep -E 'loaded with|max abs diff|export check' || true
done
if [[ $found -eq 0 ]]; then
    echo "no <int version> directory under ${base}" >&2
    exit 2
fi
exit "$status"
