#!/usr/bin/env bash
# Fetch, here, the wheels scripts/gpu_check.sh installs on a GPU machine that reaches no package
# index and has JAX and PyTorch but no TensorFlow, Keras, Optuna or MLflow.
#
#   scripts/gpu_wheels.sh            # -> .gpu-wheels/ (git-ignored): wheels + requirements.txt
#
# Which: fitscope's runtime dependencies, walked transitively from what .venv has installed
# (same versions as the tests use), minus TensorFlow (Keras runs on JAX there) and minus what
# the GPU image already holds (its package list, /work/.library/device/KINDS.md, 2026-11-17:
# IMAGE_HAS below). Pure-Python wheels are fetched once; compiled ones for every Python in
# PYTHONS, manylinux x86-64 (abi3 ones once). The image's python3 was 3.12.3, and the device
# tool carries at most 64 MiB with the repo and the 30 MB of Fashion-MNIST, so 3.12 only by
# default: PYTHONS="3.10 3.11 3.12" adds ~6 MB. gpu_check.sh prints the Python it finds.
# A missing distribution stops the script: better here than offline on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT_DIR:-.gpu-wheels}
PYTHONS=${PYTHONS:-"3.12"}
VENV_PY=${VENV_PY:-.venv/bin/python}
# Already on the GPU image (KINDS.md's list): carrying our own would shadow the image's builds.
IMAGE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cycler cython einops equinox etils execnet filelock flatbuffers flax fonttools frozenlist fsspec
grpcio h11 h5py httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig jax
jaxlib jinja2 joblib kiwisolver lazy-loader lightning markdown markdown-it-py markupsafe
matplotlib mdurl ml-dtypes mpmath msgpack multidict mypy-extensions networkx ninja numba numpy
onnx opt-einsum optax packaging pandas pathspec pillow pip pluggy portalocker prometheus-client
propcache protobuf psutil pyarrow pybind11 pygments pyparsing pytest python-dateutil pyyaml
regex requests rich safetensors scikit-learn scipy seaborn setuptools shellingham simplejson six
sympy tabulate tensorboard tensorboard-data-server threadpoolctl tifffile toolz torch tqdm
typer typing-extensions typing-inspect urllib3 werkzeug wheel wrapt xarray yarl zipp"
# Never needed there: TensorFlow is replaced by JAX; the rest are unused extras.
SKIP="tensorflow tensorflow-cpu tensorflow-io-gcs-filesystem keras-tuner kt-legacy psycopg
psycopg-binary optuna-dashboard tensorboard"
# Their dependencies are carried, not they: `mlflow` adds only the web UI's files (12 MB) to
# mlflow-skinny, which holds the client and the tracking server; plotly (10 MB) draws only the
# report's interactive plots, and a report that cannot be built is one warning line.
NOT_CARRIED="mlflow plotly narwhals"

mkdir -p "$OUT"
rm -f "$OUT"/*.whl "$OUT"/requirements.txt
# name==version of every runtime dependency of fitscope, from the installed metadata
IMAGE_HAS="$IMAGE_HAS" SKIP="$SKIP" NOT_CARRIED="$NOT_CARRIED" "$VENV_PY" - >"$OUT/requirements.txt" <<'EOF'
import os, re
from importlib import metadata

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

skip = {norm(n) for n in (os.environ["IMAGE_HAS"] + " " + os.environ["SKIP"]).split()}
wanted, todo = {}, ["fitscope"]
while todo:
    name = todo.pop()
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    for req in dist.requires or []:
        spec, _, marker = req.partition(";")
        if "extra ==" in marker:
            continue  # extras stay out (fitscope's own: tuner, postgres, dashboard, dev)
        if "optuna-integration" in spec:  # its [keras] extra is what fitscope installs
            spec = "optuna-integration"
        dep = norm(re.split(r"[\s\[<>=!~;(]", spec.strip())[0])
        if dep in skip or dep in wanted:
            continue
        try:
            wanted[dep] = metadata.version(dep)
        except metadata.PackageNotFoundError:
            continue  # an environment marker excluded it here (another Python or OS)
        todo.append(dep)
carry = set(wanted) - {norm(n) for n in os.environ["NOT_CARRIED"].split()}
for name in sorted(carry):
    print(f"{name}=={wanted[name]}")
EOF
echo "$(wc -l <"$OUT/requirements.txt") distributions to carry:" $(cut -d= -f1 "$OUT/requirements.txt")

while read -r req; do
  # a pure-Python wheel serves every Python: try that first, then one build per Python
  if "$VENV_PY" -m pip download -q --no-deps --only-binary=:all: --platform any \
       --python-version 3.12 --implementation py -d "$OUT" "$req" 2>/dev/null; then
    continue
  fi
  for py in $PYTHONS; do
    "$VENV_PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d "$OUT" "$req"
    # one abi3 wheel serves every later Python
    name=${req%%=*}
    ls "$OUT" | grep -qi "^${name//-/_}-.*-abi3-" && break
  done
done <"$OUT/requirements.txt"
echo "$(ls "$OUT"/*.whl | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT"
