"""What every command that runs a study shares: the command line it records and how much the
libraries under it may print."""

from __future__ import annotations

import logging
import shlex
import sys

from common.masking import mask_text


def command_line() -> str:
    """This invocation as a `fitscope ...` line: recorded as a tag and printed as the resume
    hint, so never with a password in it."""
    return mask_text(" ".join(shlex.quote(a) for a in ["fitscope", *sys.argv[1:]]))


def quiet_libraries(verbose: bool = False) -> None:
    """Optuna and MLflow at the level fitscope's own one-line messages need."""
    import warnings

    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after that)
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Optuna logs each failed trial with a traceback; our console prints one line with the reason.
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING if verbose else logging.ERROR)
