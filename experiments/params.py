"""How a spec writes one hyperparameter: a scalar fixes it, a list is a choice, a mapping a range.

```yaml
units: 64                                   # Fixed
activation: [relu, tanh]                    # Choice
learning_rate: {low: 1.0e-4, high: 0.1, log: true}   # Range
learning_rate:                              # PerChoice: one of the above per optimizer
  sgd: {low: 1.0e-2, high: 3.0e-1, log: true}
  default: {low: 1.0e-4, high: 3.0e-3, log: true}
```
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator


class Fixed(BaseModel):
    """A hyperparameter that is not searched."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    value: Any

    def values(self) -> tuple[Any, ...]:
        return (self.value,)


class Choice(BaseModel):
    """A categorical hyperparameter: one of the listed values."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    choices: tuple[Any, ...] = Field(min_length=1)

    def values(self) -> tuple[Any, ...]:
        return self.choices


class Range(BaseModel):
    """A numeric interval, sampled uniformly or on a log scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite numbers, got {self.low:g}, "
                             f"{self.high:g}")
        if self.step is not None and not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be a number > 0, got {self.step:g}")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must not exceed high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("a range cannot have both log: true and a step")
        return self

    def values(self) -> tuple[Any, ...]:
        return (self.low, self.high)


Param = Fixed | Choice | Range


def as_param(raw: Any) -> Any:
    """Turn the YAML shorthand into a Fixed, Choice or Range (a pydantic before-validator)."""
    if isinstance(raw, (Fixed, Choice, Range)):
        return raw
    if isinstance(raw, dict):
        # the dumped forms too, so a resolved spec (spec.json, `fitscope show`) loads back
        if set(raw) == {"value"}:
            return Fixed(**raw)
        if set(raw) == {"choices"}:
            return Choice(choices=tuple(raw["choices"]))
        if "low" in raw or "high" in raw:
            return Range(**raw)
        raise ValueError("a range needs the keys low and high (and optionally log, step)")
    if isinstance(raw, (list, tuple)):
        return Choice(choices=tuple(raw))
    return Fixed(value=raw)


DEFAULT = "default"  # the PerChoice key that covers every value not named
# the keys of a Fixed, Choice or Range mapping: a mapping with none of them is a PerChoice
PARAM_KEYS = frozenset({"value", "choices", "low", "high", "log", "step"})


class PerChoice(RootModel[dict[str, Param]]):
    """One Fixed, Choice or Range per value of another parameter (the learning rate per
    optimizer: SGD wants 1e-2..3e-1, Adam 1e-4..3e-3), `default` for the values not named.

    Its dumped form is the YAML form, `{sgd: {low: ..}, default: {low: ..}}`, so a resolved
    spec loads back.

    Example:
        >>> rates = as_per_choice({"sgd": {"low": 0.01, "high": 0.3, "log": True},
        ...                        "default": {"low": 1e-4, "high": 3e-3, "log": True}}, "lr")
        >>> rates.param_for("sgd").high, rates.param_for("adam").high
        (0.3, 0.003)
    """

    model_config = ConfigDict(frozen=True)

    def param_for(self, value: str) -> Param:
        """The parameter that applies when the other parameter takes `value`.

        Raises:
            KeyError: `value` is neither named nor covered by `default`.
        """
        return self.root[value] if value in self.root else self.root[DEFAULT]

    def values(self) -> tuple[Any, ...]:
        return tuple(v for param in self.root.values() for v in param.values())


def is_per_choice(raw: Any) -> bool:
    """Whether a YAML mapping is a PerChoice (named by values) rather than one parameter."""
    return isinstance(raw, PerChoice) or (isinstance(raw, dict) and not (set(raw) & PARAM_KEYS))


def as_per_choice(raw: Any, field: str, per: str = "value") -> PerChoice:
    """Validate a PerChoice mapping; a bad entry fails with `<field>.<key>: <why>`.

    Raises:
        ValueError: the mapping is empty, or one of its entries is no valid parameter.
    """
    if isinstance(raw, PerChoice):
        return raw
    if not raw:
        raise ValueError(f"{field}: empty; give {{low, high, log}} or a range per {per} "
                         f"(and optionally {DEFAULT})")
    entries: dict[str, Param] = {}
    for key, value in raw.items():
        try:
            entries[str(key)] = as_param(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            why = str(error["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{field}.{key}: {where + ': ' if where else ''}{why}") from None
        except ValueError as exc:
            raise ValueError(f"{field}.{key}: {exc}") from None
    return PerChoice(entries)
