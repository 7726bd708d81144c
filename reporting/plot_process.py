"""Per-trial figures drawn in a child process, so that drawing never holds the trainer's GIL.

Why: a study draws each finished trial's figures on the tracker's writer thread while the next
trial trains. matplotlib holds the GIL while it lays out and draws (~0.3 s for the learning
curves on 2 cores), and Keras's training loop needs the GIL between every TensorFlow call, so
the figures slowed the trial beside them (docs/performance.md, issue 20). In a process of its
own the drawing only shares the cores.

Why hand-written and not multiprocessing: its spawn and forkserver start methods import the
parent's `__main__` again in the child, which re-runs a user's script that has no
`if __name__ == "__main__"` guard, and fork is unsafe once TensorFlow has started its threads.
`python -m reporting.plot_process` imports matplotlib and this module, nothing else. The
protocol is pickled `(name, args, kwargs)` requests and `(ok, result)` answers on the child's
stdin and stdout, one at a time.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from common.text import first_line
from reporting import plots

log = logging.getLogger(__name__)
FIGURES = ("learning_curves", "confusion_matrix")


class PlotProcess:
    """`learning_curves` and `confusion_matrix` of reporting.plots, drawn in a child process.

    The child starts at the first figure and ends at `close()`, or when this process ends (its
    stdin closes). If it cannot start or dies, the figures are drawn in the caller's thread from
    then on, with one warning: a study never loses a figure to its drawing process. A figure
    that fails to draw raises here as it would in-process.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._lock = threading.Lock()  # one request at a time on the pipes

    def learning_curves(self, *args: Any, **kwargs: Any) -> Path:
        return self._draw("learning_curves", args, kwargs)

    def confusion_matrix(self, *args: Any, **kwargs: Any) -> Path:
        return self._draw("confusion_matrix", args, kwargs)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _draw(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Path:
        with self._lock:
            if not self._failed:
                try:
                    ok, value = self._ask((name, args, kwargs))
                except (OSError, EOFError, pickle.PickleError) as exc:
                    self._failed = True
                    self._stop()
                    log.warning("the figures process failed (%s); figures are drawn in the "
                                "study's own process from now on", first_line(exc) or
                                type(exc).__name__)
                else:
                    if not ok:
                        raise RuntimeError(f"drawing {name} failed: {value}")
                    return Path(value)
        return getattr(plots, name)(*args, **kwargs)  # type: ignore[no-any-return]

    def _ask(self, request: tuple[str, tuple[Any, ...], dict[str, Any]]) -> tuple[bool, Any]:
        child = self._child or self._start()
        assert child.stdin is not None and child.stdout is not None
        pickle.dump(request, child.stdin)
        child.stdin.flush()
        answer: tuple[bool, Any] = pickle.load(child.stdout)
        return answer

    def _start(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[1])  # where `reporting` is, installed or not
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p), "MPLBACKEND": "Agg"}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "reporting.plot_process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        return self._child

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()  # the child's signal to end
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Draw each requested figure until `requests` ends."""
    while True:
        try:
            name, args, kwargs = pickle.load(requests)
        except EOFError:
            return
        try:
            if name not in FIGURES:
                raise ValueError(f"unknown figure {name!r}")
            answer: tuple[bool, Any] = (True, str(getattr(plots, name)(*args, **kwargs)))
        except Exception as exc:  # noqa: BLE001 - the parent raises it; the child goes on
            answer = (False, f"{type(exc).__name__}: {first_line(exc)}")
        pickle.dump(answer, answers)
        answers.flush()


def main() -> None:
    # Ctrl-C reaches the whole process group: the study decides what to stop, and closes the
    # pipe when it is done; the figures can wait for the trial beside them
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not break the pipe
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
