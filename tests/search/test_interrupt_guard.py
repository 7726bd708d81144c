"""The Ctrl-C guard: a Ctrl-C that a library swallowed still stops the study at the next epoch."""

from __future__ import annotations

import os
import signal
import time

import pytest

from search.interrupts import InterruptGuard, raise_if_interrupted


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary


def test_a_swallowed_ctrl_c_is_raised_again_at_the_next_checkpoint() -> None:
    guard = InterruptGuard()
    with guard:
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
        # as if a library had caught that KeyboardInterrupt: further Ctrl-C are only noted...
        _ctrl_c()
        # ...but training's per-epoch checkpoint raises again
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()


def test_ctrl_c_during_cleanup_is_held_not_raised(capfd: pytest.CaptureFixture[str]) -> None:
    guard = InterruptGuard()
    with guard:
        guard.hold()
        _ctrl_c()
        raise_if_interrupted()  # cleanup must finish: nothing raised
    assert guard.interrupted
    assert "Ctrl-C is held" in capfd.readouterr().err


def test_no_guard_no_raise() -> None:
    raise_if_interrupted()
