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
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def hold(self) -> None:
        """From now on Ctrl-C is noted, not raised."""
        self._holding = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
