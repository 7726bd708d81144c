"""Child processes that die with the process that started them.

A `kill -9` of fitscope runs no clean-up code, so a child started with `start_new_session`
(its own process group, out of reach of the terminal's Ctrl-C) would live on: a local MLflow
server answering for hours, workers training trials nobody waits for. On Linux the kernel sends
the child a signal when its parent dies (`prctl(PR_SET_PDEATHSIG)`); the child's own handler
then stops it as `kill -TERM` would.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when this process dies.

    None where the kernel offers no such thing (not Linux); there a child outlives a parent
    killed with -9, as before. The function runs in the forked child before it executes its
    program, so it only makes one system call (libc is looked up here, in the parent).

    Example:
        >>> import subprocess
        >>> subprocess.run(["true"], preexec_fn=die_with_parent()).returncode  # doctest: +SKIP
        0
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), sig)

    return preexec
