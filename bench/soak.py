"""`make soak` (`python -m bench.soak`): a load test of parallel workers, not a unit test.

4 workers x 25 short trials (XOR, 2 epochs: the load is on the stores, not on training) run on a
throwaway PostgreSQL cluster (Optuna) and an `mlflow server` backed by PostgreSQL, started as
`fitscope search --workers 4 --trials 100` against that server (or, with `--standalone`, as 4
separate `fitscope worker --trials 25`, the many-machines setup). Then Optuna and MLflow are
compared trial by trial and the counts printed; all must be zero but the first two:

    trials 100, child runs 100, duplicates 0, RUNNING 0, lost 0, wall 123 s

The result is saved under bench/results/ and appended to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bench.common import append_markdown, results_path, save

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description="load test")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=25, help="trials per worker")
    parser.add_argument("--standalone", action="store_true",
                        help="separate `fitscope worker` processes instead of `search --workers`")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)

    from tests.postgres import throwaway_cluster
    from tracking.server import LocalMlflowServer

    with tempfile.TemporaryDirectory(prefix="fitscope-soak-") as tmp, throwaway_cluster() as pg:
        work = Path(tmp)
        storage = pg.create_database("optuna")
        backend = pg.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://")
        spec = _short_spec(work)
        with LocalMlflowServer(backend, artifact_root=work / "artifacts",
                               log_path=work / "mlflow-server.log") as server:
            started = time.monotonic()
            codes = _run(args, spec, storage, server.uri, work)
            wall = time.monotonic() - started
            counts = count(storage, "soak", server.uri, "xorsoak")
    counts.update(wall_s=round(wall, 1), exit_codes=codes, workers=args.workers,
                  trials_per_worker=args.trials, mode="standalone" if args.standalone else "search")
    expected = args.workers * args.trials
    ok = (counts["counted"] == expected and counts["child_runs"] == counts["trials"]
          and not counts["duplicates"] and not counts["running"] and not counts["lost"]
          and all(code == 0 for code in codes))
    line = (f"trials {counts['trials']} ({counts['counted']} complete/pruned, {counts['failed']} "
            f"failed), child runs {counts['child_runs']}, duplicates {counts['duplicates']}, "
            f"RUNNING {counts['running']}, lost {counts['lost']}, wall {wall:.0f} s")
    print(line)
    print("soak: OK" if ok else f"soak: FAILED (expected {expected} trials; exit codes {codes})")
    if not args.no_record:
        path = save({"soak": counts, "ok": ok}, results_path("-soak"))
        mode = (f"{args.workers} x `fitscope worker --trials {args.trials}`" if args.standalone
                else f"`fitscope search --workers {args.workers} --trials {expected}`")
        append_markdown("Soak: parallel workers on PostgreSQL and an MLflow server", [
            f"`make soak`: {mode}, XOR with 2 epochs per trial, Optuna on a throwaway "
            "PostgreSQL 15 cluster, MLflow server on PostgreSQL, all on this machine.", "",
            f"- {line}",
            f"- result: {'OK' if ok else 'FAILED'}; raw numbers in `{path.relative_to(REPO)}`",
        ])
    return 0 if ok else 1


def _short_spec(folder: Path) -> Path:
    from experiments.registry import shipped_specs

    raw = yaml.safe_load(shipped_specs()["xor"].read_text())
    raw["name"] = "xorsoak"
    raw["train"] = {**raw.get("train", {}), "max_epochs": 2, "patience": 2}
    path = folder / "xorsoak.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(args: argparse.Namespace, spec: Path, storage: str, uri: str, work: Path) -> list[int]:
    env = {**os.environ, "FITSCOPE_RUNS_DIR": str(work / "runs"), "TF_CPP_MIN_LOG_LEVEL": "3",
           "FITSCOPE_STORAGE": storage, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    fitscope = [sys.executable, "-m", "fitscope"]
    if args.standalone:
        command = [*fitscope, "worker", str(spec), "--study", "soak", "--trials", str(args.trials)]
        procs = [subprocess.Popen(command, cwd=work, env=env) for _ in range(args.workers)]
    else:
        command = [*fitscope, "search", str(spec), "--study", "soak",
                   "--workers", str(args.workers), "--trials", str(args.workers * args.trials)]
        procs = [subprocess.Popen(command, cwd=work, env=env)]
    return [proc.wait() for proc in procs]


def count(storage: str, study_name: str, tracking_uri: str, experiment: str) -> dict[str, Any]:
    """Optuna and MLflow, compared trial by trial."""
    import optuna
    from mlflow.tracking import MlflowClient

    from search.storage import sqlalchemy_url

    study = optuna.load_study(study_name=study_name, storage=sqlalchemy_url(storage))
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=50000) if exp else []
    children = [r for r in runs if r.data.tags.get("fitscope.role") == "trial"]
    per_trial = Counter(int(r.data.tags["trial_number"]) for r in children)
    finished = {t.number for t in trials if t.state.is_finished()}
    return {
        "trials": len(trials),
        "counted": states["COMPLETE"] + states["PRUNED"],
        "failed": states["FAIL"],
        "states": dict(states),
        "child_runs": len(children),
        "duplicates": sum(n - 1 for n in per_trial.values() if n > 1),
        # trials left RUNNING/WAITING in Optuna, and runs (children and parent) left RUNNING
        "running": states["RUNNING"] + states["WAITING"]
        + sum(r.info.status == "RUNNING" for r in runs),
        "lost": len(finished - set(per_trial)),  # finished trials without a child run
        "parents": sum(r.data.tags.get("fitscope.role") == "study" for r in runs),
    }


if __name__ == "__main__":
    sys.exit(main())
