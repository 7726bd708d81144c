"""Ctrl-C during a study: the first one stops the running trial at once; later ones wait until
every observer has closed what it opened, so no MLflow run is left RUNNING by an impatient
second Ctrl-C.

Closing is bounded (the tracker caps MLflow's HTTP retries), so holding the signal costs seconds.
`kill -TERM` / `kill -9` still end the process if it ever hangs.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType

ACTIVE: InterruptGuard | None = None  # the guard of the study running in this process
HELD_NOTE = b"\nfitscope: closing the study's runs; Ctrl-C is held until that is done\n"


class InterruptGuard:
    """Context manager turning SIGINT into "first raises, then held while cleaning up".

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
        self._previous: object = None
        self._cleaning_up = False
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        global ACTIVE
        ACTIVE = self
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
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
            raise KeyboardInterrupt

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global ACTIVE
        ACTIVE = None
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        first = not self.interrupted
        self.interrupted = True
        if first and not self._holding:
            self._holding = True
            raise KeyboardInterrupt
        # os.write, not print: a handler that runs while print() holds stdout's lock would raise
        os.write(2, HELD_NOTE)


def raise_if_interrupted() -> None:
    """`InterruptGuard.raise_if_interrupted` of the running study, if there is one."""
    if ACTIVE is not None:
        ACTIVE.raise_if_interrupted()
