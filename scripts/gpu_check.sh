#!/usr/bin/env bash
# GPU check: a short Fashion-MNIST study with 1 and 2 workers on the GPU and the same on the CPU;
# prints the median epoch time and trials per minute of each, as a Markdown table for
# docs/benchmarks.md. One command, about 6-8 minutes on a 16-core machine with one GPU.
#
#   scripts/gpu_check.sh [DATA_DIR]      # DATA_DIR holds the Fashion-MNIST IDX .gz files
#
# Made for GPU machines with JAX but no TensorFlow and no package index: Keras runs on JAX
# (KERAS_BACKEND=jax) and what the machine lacks comes from the wheels scripts/gpu_wheels.sh
# fetched into .gpu-wheels/, installed into a private folder (never over the image's packages).
# On this workplace's device machines (nothing to fetch there; ~50 MB travel, under 64 MiB):
#   here:   scripts/gpu_wheels.sh && mkdir -p .gpu-data && cp ../shared/data/fashion-mnist/*.gz .gpu-data/
#   there:  scripts/gpu_check.sh .gpu-data      (carry .gpu-wheels and .gpu-data; both git-ignored)
# Knobs (environment): TRIALS=6 per run, EPOCHS=3 per trial, RUN_TIMEOUT=60 s (no trial starts
# after it), RUNS="gpu:1 gpu:2 cpu:1 cpu:2". Logs and the table also go to $OUT when it is set.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DATA=$(realpath "${1:-${FITSCOPE_DATA_DIR:-.gpu-data}}")
WHEELS=${WHEELS:-.gpu-wheels}
TRIALS=${TRIALS:-6}
EPOCHS=${EPOCHS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
LOGS=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d /tmp/fitscope-gpu-check-XXXX)
started=$(date +%s)

echo "== $(python3 --version), $(nproc) cores; data $DATA"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo "no nvidia-smi: CPU runs only"

if ! python3 -c "import keras, optuna, optuna_integration, mlflow, pydantic" 2>/dev/null; then
  echo "== installing $(wc -l <"$WHEELS/requirements.txt") carried packages from $WHEELS"
  python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
    --target "$WORK/site" --find-links "$WHEELS" -r "$WHEELS/requirements.txt" || {
      echo "wheel install failed: does $WHEELS hold wheels for $(python3 --version)?" \
           "(PYTHONS=... scripts/gpu_wheels.sh)"; exit 1; }
  export PYTHONPATH="$WORK/site"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
export PYTHONUNBUFFERED=1 FITSCOPE_CACHE_DIR="$WORK/cache"
python3 -c "import jax, keras; print('== keras', keras.__version__, 'on jax', jax.__version__,
  [d.platform for d in jax.devices()])" || exit 1

gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | head -1)
RUNS=${RUNS:-$([ -n "$gpus" ] && echo "gpu:1 gpu:2 cpu:1 cpu:2" || echo "cpu:1 cpu:2")}

# the shipped fashion spec, trials cut to a fixed number of epochs (no early stop, no pruning)
python3 - "$WORK/fashion.yaml" "$EPOCHS" <<'EOF'
import sys, yaml
from experiments.registry import shipped_specs
raw = yaml.safe_load(shipped_specs()["fashion"].read_text())
epochs = int(sys.argv[2])
raw["train"] = {**raw.get("train", {}), "max_epochs": epochs, "patience": epochs}
raw["search"] = {**raw.get("search", {}), "pruner": "none", "timeout": None}
open(sys.argv[1], "w").write(yaml.safe_dump(raw))
EOF

for run in $RUNS; do
  device=${run%%:*} workers=${run##*:}
  dir="$WORK/$device-$workers"; mkdir -p "$dir"
  if [ "$device" = gpu ]; then gpuflag="--gpus $gpus"; platform=cuda; else gpuflag="--gpus none"; platform=cpu; fi
  echo "== $device x $workers workers: $TRIALS trials of $EPOCHS epochs ($(( $(date +%s) - started )) s so far)"
  t0=$(date +%s.%N)
  (cd "$dir" && JAX_PLATFORMS=$platform FITSCOPE_RUNS_DIR="$dir/runs" \
     FITSCOPE_REPORTS_DIR="$dir/reports" timeout -k 30 $((RUN_TIMEOUT + 120)) python3 -m fitscope search "$WORK/fashion.yaml" \
     --workers "$workers" $gpuflag --trials "$TRIALS" --timeout "$RUN_TIMEOUT" \
     --nondeterministic --study "check-$device-$workers" --data-dir "$DATA") \
     >"$LOGS/gpu_check-$device-$workers.log" 2>&1
  code=$?
  echo "$(python3 -c "import time; print(round(time.time() - $t0, 1))")" >"$dir/wall"
  grep -E "^\[|workers \(|mlflow server|died|error" "$LOGS/gpu_check-$device-$workers.log" | tail -20
  [ $code -eq 0 ] || echo "   exit code $code: see $LOGS/gpu_check-$device-$workers.log"
done

python3 - "$WORK" "$RUNS" >"$LOGS/gpu_check.md" <<'EOF'
import statistics, sys
from pathlib import Path
import optuna
from mlflow.tracking import MlflowClient
optuna.logging.set_verbosity(optuna.logging.ERROR)
work, runs = Path(sys.argv[1]), sys.argv[2].split()
print("| device | workers | trials | median s/epoch | trials/min (training) | trials/min (whole command) | wall s | device seen by the runs |")
print("|---|---|---|---|---|---|---|---|")
for run in runs:
    device, workers = run.split(":")
    folder = work / f"{device}-{workers}"
    try:
        study = optuna.load_study(study_name=f"check-{device}-{workers}",
                                  storage=f"sqlite:///{folder / 'optuna.db'}")
    except Exception as exc:
        print(f"| {device} | {workers} | failed: {str(exc)[:80]} | | | | | |"); continue
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    per_epoch = [t.user_attrs["train_seconds"] / len(t.user_attrs["history"]["loss"])
                 for t in done if t.user_attrs.get("train_seconds")]
    wall = float((folder / "wall").read_text())
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
            ).total_seconds() if done else float("nan")
    seen = "?"
    try:
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        exp = client.get_experiment_by_name("fashion")
        tags = client.search_runs([exp.experiment_id], "tags.`fitscope.role` = 'trial'",
                                  max_results=1)[0].data.tags
        seen = f"{tags.get('env.keras_backend', '?')}: {tags.get('env.gpu', '?')}"
    except Exception:
        pass
    med = f"{statistics.median(per_epoch):.2f}" if per_epoch else "-"
    print(f"| {device} | {workers} | {len(done)} | {med} | {60 * len(done) / span:.1f} | "
          f"{60 * len(done) / wall:.1f} | {wall:.0f} | {seen} |")
EOF
echo
echo "== Fashion-MNIST, $TRIALS trials x $EPOCHS epochs per run, Keras on JAX, --nondeterministic ($(( $(date +%s) - started )) s in all)"
cat "$LOGS/gpu_check.md"
