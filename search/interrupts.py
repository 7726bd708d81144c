"""Ctrl-C (and SIGTERM, what `timeout`, `docker stop`, systemd, Slurm and Kubernetes send) during a
study: the first one stops the running trial at once; later ones wait until every observer has
closed what it opened, so no MLflow run is left RUNNING by an impatient second Ctrl-C.

One that lands inside the Optuna storage's own code (a SQL write, a commit, the database
driver's weakref callback returning a connection) is raised at the next checkpoint instead (the
end of the epoch, the end of the trial): raised there, it can be swallowed ("Exception ignored
in ...") or leave a write transaction open, whose SQLite lock then stalls the closing writes for
the whole busy timeout.

Closing is bounded (the tracker caps MLflow's HTTP retries), so holding the signal costs seconds.
`kill -TERM` / `kill -9` still end the process if it ever hangs.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType

ACTIVE: InterruptGuard | None = None  # the guard of the study running in this process
RECEIVED: int | None = None  # the first SIGINT/SIGTERM this process received (exit 128 + it)
SIGNALS = (signal.SIGINT, signal.SIGTERM)
# code an interrupt must not land in (see the module's docstring)
STORAGE_MODULES = ("sqlalchemy", "optuna.storages", "sqlite3", "psycopg")
HELD_NOTE = b"\nfitscope: closing the study's runs; Ctrl-C is held until that is done\n"


class InterruptGuard:
    """Context manager turning SIGINT and SIGTERM into "first raises, then held while cleaning
    up".

    Inside the block the first Ctrl-C raises KeyboardInterrupt as usual and switches to holding;
    after `hold()` every Ctrl-C is only noted. `interrupted` tells whether one arrived, so the
    caller can stop after cleaning up. Outside the main thread (where Python cannot install
    signal handlers) it does nothing.

    Example:
        >>> guard = InterruptGuard()
        >>> with guard:
        ...     guard.hold()  # from here on Ctrl-C is noted, not raised
        >>> guard.interrupted
        False
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._holding = False
        self._previous: dict[int, object] = {}
        self._cleaning_up = False

    def __enter__(self) -> InterruptGuard:
        global ACTIVE
        ACTIVE = self
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        return self

    def hold(self) -> None:
        """From now on Ctrl-C is noted, not raised."""
        self._holding = True
        self._cleaning_up = True

    def raise_if_interrupted(self) -> None:
        """Raise again if a Ctrl-C arrived before the clean-up began.

        The first Ctrl-C raises wherever Python happens to be; a library that swallows it there
        (a storage call retrying, say) would otherwise let the study run on with every further
        Ctrl-C held. Training checks this after every epoch and before every trial.
        """
        if self.interrupted and not self._cleaning_up:
            self._holding = True
            raise KeyboardInterrupt

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global ACTIVE
        ACTIVE = None
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        note_signal(signum)
        self.interrupted = True
        if not self._holding:
            if in_storage_code(frame):
                return  # raised by the next raise_if_interrupted (see the module's docstring)
            self._holding = True
            raise KeyboardInterrupt
        # os.write, not print: a handler that runs while print() holds stdout's lock would raise
        os.write(2, HELD_NOTE)


def note_signal(signum: int) -> None:
    """Remember the first interrupting signal (the exit code and the trial's reason say it)."""
    global RECEIVED
    RECEIVED = RECEIVED or signum


def interrupt_reason() -> str:
    """`interrupted (Ctrl-C)`, or `interrupted (SIGTERM)` when that stopped the process."""
    return "interrupted (SIGTERM)" if RECEIVED == signal.SIGTERM else "interrupted (Ctrl-C)"


def hides_interrupt(exc: BaseException, depth: int = 20) -> bool:
    """Whether `exc` was raised while a KeyboardInterrupt unwound: a library's clean-up that
    failed on the way out (TensorFlow's device scope raises "Exiting device scope without proper
    scope nesting" when a Ctrl-C lands inside it) replaces the interruption with its own error."""
    seen = exc.__context__
    while seen is not None and depth > 0:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen, depth = seen.__context__, depth - 1
    return False


def in_storage_code(frame: FrameType | None, depth: int = 60) -> bool:
    """Whether `frame` or one of its callers runs the storage's code (STORAGE_MODULES)."""
    while frame is not None and depth > 0:
        if str(frame.f_globals.get("__name__", "")).startswith(STORAGE_MODULES):
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def raise_if_interrupted() -> None:
    """`InterruptGuard.raise_if_interrupted` of the running study, if there is one."""
    if ACTIVE is not None:
        ACTIVE.raise_if_interrupted()
