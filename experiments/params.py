"""How a spec writes one hyperparameter: a scalar fixes it, a list is a choice, a mapping a range.

```yaml
units: 64                                   # Fixed
activation: [relu, tanh]                    # Choice
learning_rate: {low: 1.0e-4, high: 0.1, log: true}   # Range
```
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
