"""The local supervisor's trial budget: N workers add exactly `--trials` trials together.

Optuna's own counters do not fit: `n_trials` counts per process, and `MaxTrialsCallback` is
checked only after a trial ends, so W workers overshoot by up to W-1 trials. Here each worker
asks its supervisor before every trial ("next") over a pair of pipes and gets "go" or "stop";
the supervisor alone counts, so the total is exact and a fast worker simply takes more trials.
The protocol is one line each way; a closed pipe means "stop" (the supervisor is gone).

Example:
    >>> budget = TrialBudget(2)
    >>> [budget.grant(), budget.grant(), budget.grant()]
    [True, True, False]
    >>> budget.give_back(1)  # a dead worker's trial is retried: it takes a new grant
    >>> budget.grant()
    True
"""

from __future__ import annotations

import os

ASK, GO, STOP = b"next\n", b"go\n", b"stop\n"


class TrialBudget:
    """How many trials may still start (supervisor side)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.granted = 0

    @property
    def left(self) -> int:
        return self.total - self.granted

    def grant(self) -> bool:
        if self.granted >= self.total:
            return False
        self.granted += 1
        return True

    def give_back(self, count: int) -> None:
        """Return grants that produced no counted trial (a retried or never-started one)."""
        self.granted = max(0, self.granted - max(0, count))


class SupervisorGate:
    """Worker side: `gate()` asks the supervisor whether to start another trial.

    Used as `run_study(..., gate=SupervisorGate.from_arg("5,8"))`; the two numbers are the
    pipe ends the supervisor handed to this process (`--supervisor-fds`).
    """

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    @classmethod
    def from_arg(cls, text: str) -> SupervisorGate:
        read_fd, write_fd = (int(part) for part in text.split(","))
        return cls(read_fd, write_fd)

    def __call__(self) -> bool:
        try:
            os.write(self.write_fd, ASK)
            reply = _read_line(self.read_fd)
        except (BrokenPipeError, OSError):  # the supervisor died: finish quietly
            return False
        return reply == GO


def _read_line(fd: int) -> bytes:
    # replies are a few bytes written at once (< PIPE_BUF, so never split), but read to the
    # newline anyway rather than trust that
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 16)
        if not chunk:
            return b""
        data += chunk
    return data
