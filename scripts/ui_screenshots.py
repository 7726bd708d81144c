#!/usr/bin/env python3
"""Screenshots of the MLflow UI as a user first sees it: the experiment page and one trial run.

Starts `mlflow server` on 127.0.0.1 over a tracking store, opens the pages in headless Chromium
(Debian's `chromium` package: `apt-get install chromium`) with a fresh profile, like a first
visit, and writes PNGs. Look at them: the experiment should open on its training runs (not the
GenAI overview) and the run names should say what each trial trained.

    .venv/bin/python scripts/ui_screenshots.py titanic [--tracking-uri sqlite:///mlflow.db]
        [--out screenshots/] [--wait 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--hide-scrollbars", "--window-size=1500,950"]
# MLflow 3.17's sidebar toggle (GenAI / Model training) is kept per browser and starts on GenAI,
# whatever the experiment's kind; this query parameter selects Model training for the page
MODEL_TRAINING = "workflowType=machine_learning"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI",
                                                                 "sqlite:///mlflow.db"))
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--wait", type=int, default=20, help="seconds each page may render")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        print(f"no MLflow experiment {args.experiment!r} in {args.tracking_uri}", file=sys.stderr)
        return 2
    trials = client.search_runs([experiment.experiment_id],
                                filter_string="tags.`fitscope.role` = 'trial'",
                                order_by=["metrics.best_val_loss ASC"], max_results=1)
    page = f"#/experiments/{experiment.experiment_id}"
    pages = {
        "experiment": page,  # a plain link: what the UI chooses on a first visit
        "training_runs": f"{page}/runs?{MODEL_TRAINING}",  # the link fitscope prints
    }
    if trials:
        pages["trial_run"] = f"{page}/runs/{trials[0].info.run_id}?{MODEL_TRAINING}"
    args.out.mkdir(parents=True, exist_ok=True)
    with _server(args.tracking_uri) as base:
        for name, fragment in pages.items():
            target = args.out / f"{args.experiment}_{name}.png"
            _shoot(browser, f"{base}/{fragment}", target, args.wait)
            print(f"{target}: {base}/{fragment}")
    return 0


@contextlib.contextmanager
def _server(tracking_uri: str):  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts uvicorn/gunicorn from PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = Path(tempfile.mkdtemp(prefix="mlflow-ui-")) / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=out, stderr=out, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"mlflow server exited: see {log}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/health",
                                                                       timeout=2) as response:
                if response.status == 200:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit(f"mlflow server did not start: see {log}")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _shoot(browser: str, url: str, target: Path, wait: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:  # a first visit
        subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--virtual-time-budget={wait * 1000}", f"--screenshot={target.resolve()}", url],
            check=True, capture_output=True, timeout=wait + 120)


if __name__ == "__main__":
    sys.exit(main())
