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


def test_sigterm_is_handled_like_ctrl_c() -> None:
    guard = InterruptGuard()
    with guard, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert guard.interrupted


def test_an_interrupt_inside_storage_code_waits_for_the_next_checkpoint() -> None:
    # An interrupt raised inside a SQL write, or in the driver's weakref callback that returns a
    # connection, can be swallowed or leave a transaction (and SQLite's lock) open: it is noted
    # there and raised at the next checkpoint instead.
    namespace: dict[str, object] = {"__name__": "sqlalchemy.pool.fake", "ctrl_c": _ctrl_c}
    exec("def write():\n    ctrl_c()\n    return 'committed'\n", namespace)
    guard = InterruptGuard()
    with guard:
        assert namespace["write"]() == "committed"  # type: ignore[operator]
        assert guard.interrupted
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
