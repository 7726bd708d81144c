"""One background thread that writes finished trials' MLflow runs while the next trial trains.

Written here rather than taken from MLflow: `log_batch(..., synchronous=False)` makes only the
metric/param/tag calls asynchronous, while most of a trial's tracking cost is rendering its
plots and uploading them as artifacts (about a second on two cores, see docs/performance.md),
which no MLflow option moves off the training loop.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundWriter:
    """Runs submitted jobs one at a time, in order, on a single daemon thread.

    `submit` blocks once `max_pending` jobs wait, so a study of tiny trials (XOR trains in
    milliseconds) cannot run ahead of its tracking and pile up records in memory. `drain`
    returns when every submitted job has run: the study calls it before it closes its runs.
    A job must handle its own errors; one that raises anyway is logged and the thread goes on.
    """

    def __init__(self, max_pending: int = 4, name: str = "fitscope-tracking") -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=max_pending)
        self._name = name
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is None or not self._thread.is_alive():
            # daemon: a process that dies mid-study must not hang on a pending write; what it
            # did not write stays in the Optuna storage for `fitscope sync`
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted job has run."""
        self._jobs.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except BaseException:  # noqa: BLE001 - the thread must outlive a buggy job
                log.exception("background tracking job failed")
            finally:
                self._jobs.task_done()
