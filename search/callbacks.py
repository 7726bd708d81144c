"""Keras callbacks that report what happens during fitting, so fit code stays free of tracking."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

from search.interrupts import raise_if_interrupted

EpochListener = Callable[[int, dict[str, list[float]]], None]


class EpochRecorder(keras.callbacks.Callback):
    """Keeps every epoch's logs by name and tells a listener after each epoch.

    Unlike `keras.callbacks.History`, it survives an exception raised inside `fit` (a pruned
    trial keeps its partial curves) and the listener can persist them as training goes.
    """

    def __init__(self, listener: EpochListener | None = None) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self._listener = listener

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            if name == "learning_rate":  # constant here; not a curve
                continue
            self.history.setdefault(name, []).append(float(value))
        if self._listener is not None:
            self._listener(epoch, self.history)
        raise_if_interrupted()  # a Ctrl-C swallowed inside a library call still stops training


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the end of an epoch whose loss or val_loss is NaN or infinite.

    `keras.callbacks.TerminateOnNaN` watches the training loss per batch only; a validation
    loss that overflows would otherwise let the trial run on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bad_epoch: int | None = None
        self.bad_metric: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name in ("loss", "val_loss"):
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                self.bad_epoch, self.bad_metric = epoch, name
                self.model.stop_training = True
                return
