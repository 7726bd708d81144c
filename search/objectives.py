"""What a study minimises: val_loss alone, or val_loss against size, speed or training time.

A multi-objective study (`search.objectives: [val_loss, n_params]`) has no single best trial
but a Pareto front: the trials no other trial beats on every objective. Everything that asks a
study for its best trial asks here, so both kinds read the same way: the best trial is the one
with the lowest val_loss (on the front, it is the front's lowest-val-loss trial), and
`pareto_numbers` names the front.

Example:
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(directions=["minimize", "minimize"])
    >>> for values in ([0.3, 500], [0.2, 900], [0.4, 900]):
    ...     study.add_trial(optuna.trial.create_trial(values=values))
    >>> sorted(pareto_numbers(study)), best_trial(study).number
    ([0, 1], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna

from common.errors import TrackingError

if TYPE_CHECKING:
    from experiments.spec import ExperimentSpec
    from search.training import FitResult

SELECTION = "val_loss"  # the first objective of every study: it chooses the best trial


def objective_values(names: Sequence[str], result: FitResult) -> tuple[float, ...]:
    """The fitted candidate's value of each objective, in the study's order."""
    measured = {
        "val_loss": result.best_val_loss,
        "n_params": float(result.n_params),  # the Keras model's parameter count
        "epochs_to_best": float(result.best_epoch + 1),  # epochs until its best val_loss
        "train_seconds": result.train_seconds,
    }
    return tuple(measured[name] for name in names)


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def study_objectives(study: optuna.Study) -> list[str]:
    """The study's objective names (its metric names; val_loss for a study that has none)."""
    names = study.metric_names
    return list(names) if names else [SELECTION] * len(study.directions)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the lowest val_loss (on a multi-objective study, the Pareto
    front's; ties go to the earlier trial), or None before any trial completed."""
    if not is_multi_objective(study):
        try:
            return study.best_trial
        except ValueError:  # no complete trial yet
            return None
    front = study.best_trials
    return min(front, key=lambda t: (t.values[0], t.number), default=None)


def best_value(study: optuna.Study) -> float | None:
    """The best trial's val_loss, or None before any trial completed."""
    best = best_trial(study)
    return None if best is None else float(best.values[0])


def pareto_numbers(study: optuna.Study) -> frozenset[int]:
    """The trial numbers on the Pareto front now; empty for a single-objective study.

    The front changes as trials finish: a new trial can push earlier ones off it.
    """
    if not is_multi_objective(study):
        return frozenset()
    return frozenset(t.number for t in study.best_trials)


def check_objectives(study: optuna.Study, spec: ExperimentSpec) -> None:
    """Refuse to add trials to a study created with other objectives or directions: its values
    would not compare with theirs.

    Raises:
        TrackingError: the study's objectives differ from the spec's.
    """
    wanted: list[tuple[str, str]] = list(zip(spec.search.objective_names,
                                             spec.search.directions, strict=True))
    stored = list(zip(study_objectives(study), [d.name.lower() for d in study.directions],
                      strict=True))
    if stored != wanted:
        def shown(objectives: list[tuple[str, str]]) -> str:
            return ", ".join(f"{name} ({direction})" for name, direction in objectives)

        raise TrackingError(
            f"study {study.study_name} was created with objectives {shown(stored)}; the spec "
            f"asks {shown(wanted)}: choose another --study"
        )
