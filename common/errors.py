"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class FitscopeError(Exception):
    """Base class of every error caused by the user's input or environment."""


class SpecError(FitscopeError):
    """An experiment spec is missing, unreadable or invalid."""


class DataError(FitscopeError):
    """A data file is missing, corrupt or does not match its spec."""


class TrackingError(FitscopeError):
    """The MLflow tracking store or the Optuna storage cannot be used."""


class RerunError(FitscopeError):
    """An MLflow run cannot be rerun: unknown, not a trial, incomplete, or its data changed."""


class OutputError(FitscopeError):
    """A directory fitscope must write to (runs, stores, reports) is missing or not writable."""


class InputError(FitscopeError):
    """Inputs given to a trained model (`fitscope predict`, a served model) do not fit it: a
    missing or unknown column, text in a numeric column, images of the wrong shape."""


class BackendError(FitscopeError):
    """The Keras backend asked for (KERAS_BACKEND, or the one a rerun's run recorded) cannot be
    used here: unknown to fitscope, or its package is not installed."""
