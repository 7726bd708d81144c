"""Two processes that take turns, step by step, so that the machine's drift lands on both alike.

The scale item compares the cost of a trial in a 50-trial study with one in a 1000-trial study.
Measured in processes minutes apart, the same `fit` ran 11-15% faster or slower from one to the
next on these shared 2-core machines (2026-12-01 08:21 and 2026-12-02 10:21 runs), and that
drift passed for growth with the study. Run side by side, each process does one step (a trial)
and hands the turn to the other, so the two sizes are measured seconds apart, never minutes,
and only one of them runs its main thread at a time. What a process does in the background
after handing over (MLflow's writer thread finishing the trial it just ended) runs beside the
other's step, as it would run beside its own next trial.

The turn is one byte on a pipe each way: `t` (your turn), `r` (ready), `d` (done, go on
alone). An end of file counts as `d`, so a partner that died never leaves the other waiting.
A pipe is the smallest thing that blocks without spinning; multiprocessing would have to start
both sides from Python, and the scale item starts each size with `python -m bench.scale --one`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence


class Baton:
    """One process's end of a lockstep pair; `Baton.alone()` is a process with no partner."""

    def __init__(self, read_fd: int | None, write_fd: int | None, first: bool) -> None:
        self._read, self._write, self._first = read_fd, write_fd, first
        self._alone = read_fd is None

    @classmethod
    def alone(cls) -> Baton:
        return cls(None, None, first=True)

    @classmethod
    def from_arg(cls, text: str) -> Baton:
        """`READ,WRITE,first|second` as `pair` passes it, or `-` for a process on its own."""
        if text == "-":
            return cls.alone()
        read, write, order = text.split(",")
        return cls(int(read), int(write), first=order == "first")

    def begin(self) -> None:
        """Wait until both sides are ready (each has filled its study), then let the first go."""
        if self._alone:
            return
        self._send(b"r")
        self._receive()
        if not self._first and not self._alone:
            self._receive()

    def turn(self) -> float:
        """Hand the turn over and wait for it back; the seconds waited, for the caller to take
        out of what it times."""
        if self._alone:
            return 0.0
        started = time.perf_counter()
        self._send(b"t")
        self._receive()
        return time.perf_counter() - started

    def end(self) -> None:
        """Let the partner go on alone, and close this side."""
        if not self._alone:
            self._send(b"d")
            self._alone = True
        for fd in (self._read, self._write):
            if fd is not None:
                os.close(fd)
        self._read = self._write = None

    def _send(self, byte: bytes) -> None:
        assert self._write is not None
        try:
            os.write(self._write, byte)
        except BrokenPipeError:  # the partner is gone: nobody to wait for any more
            self._alone = True

    def _receive(self) -> None:
        assert self._read is not None
        if os.read(self._read, 1) in (b"d", b""):
            self._alone = True


def pair(first: Sequence[str], second: Sequence[str], placeholder: str = "{baton}") -> None:
    """Run two commands in lockstep: each gets `READ,WRITE,first|second` in place of
    `placeholder` for `Baton.from_arg`; raises CalledProcessError if either fails."""
    to_second, to_first = os.pipe(), os.pipe()  # (read, write) each
    ends = [(to_first[0], to_second[1], "first"), (to_second[0], to_first[1], "second")]
    processes = []
    try:
        for command, (read, write, order) in zip((first, second), ends, strict=True):
            argv = [arg.replace(placeholder, f"{read},{write},{order}") for arg in command]
            processes.append(subprocess.Popen(argv, pass_fds=(read, write)))
    finally:
        for fd in (*to_second, *to_first):  # only the children hold them now, so a child's
            os.close(fd)  # exit reaches the other as an end of file
    failed = None
    for process in processes:
        if process.wait() != 0 and failed is None:
            failed = subprocess.CalledProcessError(process.returncode, process.args)
    if failed is not None:
        raise failed
