"""The hyperparameters of one candidate network, as a frozen, typed object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrialParams:
    """One point of the search space.

    Example:
        >>> p = TrialParams(2, (32, 16), "relu", "adam", 1e-3, 32, 0.1)
        >>> TrialParams.from_flat(p.flat()) == p
        True
    """

    n_layers: int
    units: tuple[int, ...]  # one entry per hidden layer
    activation: str
    optimizer: str
    learning_rate: float
    batch_size: int
    dropout: float
    momentum: float | None = None  # only for optimizer "momentum"

    def __post_init__(self) -> None:
        if len(self.units) != self.n_layers:
            raise ValueError(f"{self.n_layers} layers need {self.n_layers} units, got {self.units}")

    def flat(self) -> dict[str, Any]:
        """Flat names as MLflow and Optuna show them: units_0, units_1, ..."""
        out: dict[str, Any] = {"n_layers": self.n_layers}
        out.update({f"units_{i}": u for i, u in enumerate(self.units)})
        out.update(
            activation=self.activation,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            dropout=self.dropout,
        )
        if self.momentum is not None:
            out["momentum"] = self.momentum
        return out

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> TrialParams:
        """Rebuild from flat names (values may be strings, as MLflow stores params).

        Raises:
            KeyError: a required parameter is missing.
            ValueError: a value has the wrong type.
        """
        n_layers = int(flat["n_layers"])
        momentum = flat.get("momentum")
        return cls(
            n_layers=n_layers,
            units=tuple(int(flat[f"units_{i}"]) for i in range(n_layers)),
            activation=str(flat["activation"]),
            optimizer=str(flat["optimizer"]),
            learning_rate=float(flat["learning_rate"]),
            batch_size=int(flat["batch_size"]),
            dropout=float(flat["dropout"]),
            momentum=None if momentum in (None, "None", "") else float(momentum),
        )

    def short(self) -> str:
        """A compact one-line description for the terminal."""
        layers = "-".join(str(u) for u in self.units)
        mom = f" m={self.momentum:.2f}" if self.momentum is not None else ""
        return (
            f"[{layers}] {self.activation} {self.optimizer}{mom} lr={self.learning_rate:.2g} "
            f"bs={self.batch_size} do={self.dropout:.2f}"
        )
