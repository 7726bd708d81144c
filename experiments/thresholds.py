"""The fit-diagnosis thresholds: a spec's `diagnosis:` block, validated like every other field.

Every threshold is relative (a ratio, or a fraction of the loss level per epoch), so the same
defaults work for a cross-entropy around 0.3 and for an MSE in the hundreds. They judge trials,
they do not change them: the study's identity ignores them, and new ones re-judge a study.

Example:
    >>> FitThresholds(gap_ratio=0.5, tail_window=7.0).tail_window  # YAML may write 7 as 7.0
    7
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FitThresholds(BaseModel):
    """Limits used by `analysis.diagnosis.diagnose`; each default is justified where it is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Train loss above 10x its first epoch: healthy steps never undo an order of magnitude.
    explode_factor: float = Field(10.0, gt=1)
    # Course rule of thumb: val - train > ~0.1 is suspicious at the ~0.3-0.4 cross-entropy where
    # converged classifiers sit; 0.1 / 0.35 ~ 0.3, and as a ratio it holds for MSE too.
    gap_ratio: float = Field(0.3, gt=0)
    # ...but a large ratio of two tiny losses is no overfit (iris: val 0.14 vs train 0.06). The
    # gap must also reach 10% of the trivial predictor's loss: ~0.1 on a cross-entropy of ~1,
    # the course's own number, and it scales with the target's variance for MSE.
    gap_vs_baseline: float = Field(0.1, gt=0)
    # Epoch-to-epoch val noise is a few percent; ending 10% above the minimum is a real turn...
    val_rise: float = Field(0.1, gt=0)
    # ...when the minimum is at least 3 epochs back (a usual EarlyStopping patience).
    min_epochs_after_best: int = Field(3, gt=0)
    # Train loss above 80% of a trivial predictor's: R^2 < 0.2 for MSE, and for cross-entropy
    # less than a fifth of the prior's entropy explained. The model barely learned anything.
    underfit_ratio: float = Field(0.8, gt=0)
    # Five epochs are enough to fit a slope through noise (a slope needs at least two), few
    # enough to describe the end.
    tail_window: int = Field(5, gt=1)
    # Still losing > 2% of its level per epoch means ~18% more in 10 epochs: training stopped
    # on a slope, not a plateau. Slower creep is normal late in training.
    tail_slope: float = Field(0.02, gt=0)
    # Reversals of 5% of the level on every epoch (or 10% on every other one); mini-batch noise
    # on a sane run moves val loss by ~1-2%, which scores about 0.01.
    roughness: float = Field(0.05, gt=0)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any) -> Any:
        # pydantic's lax mode would read "0.5" or true as a number; a threshold is written as one
        if isinstance(value, (bool, str)):
            raise ValueError(f"expected a number, got {value!r}")
        return value

    def changed(self) -> dict[str, int | float]:
        """The thresholds that differ from the defaults (what a report marks as the spec's)."""
        defaults = FitThresholds()
        return {
            name: value
            for name, value in self.model_dump().items()
            if value != getattr(defaults, name)
        }
