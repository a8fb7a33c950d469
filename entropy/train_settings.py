"""The LM training recipe's settings, apart from the training code: the command line offers them
as options (with their defaults) without importing torch."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

POSITIVE = ("steps", "batch_size", "crop_frames", "learning_rate", "eval_every")
NON_NEGATIVE = ("weight_decay", "warmup_steps", "seed")
PERCENTS = ("held_out_percent",)


@dataclass
class LMTrainingConfig:
    steps: int = 2000
    batch_size: int = 16
    crop_frames: int = 300
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    held_out_percent: int = 10
    eval_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse a setting that cannot train (an infinite learning rate trains to NaN, no steps to
        nothing), naming it and what is accepted."""
        rules = [(POSITIVE, lambda v: v > 0, "positive"), (NON_NEGATIVE, lambda v: v >= 0, "at least 0"),
                 (PERCENTS, lambda v: 0 <= v <= 100, "from 0 to 100")]
        settings = asdict(self)
        for names, valid, accepted in rules:
            for name in names:
                value = settings[name]
                if not _is_finite_number(value):
                    raise ValueError(f"{name} must be a finite number, got {value!r}")
                if not valid(value):
                    raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _is_finite_number(value: object) -> bool:
    """A finite real number of any kind, but not a bool (math.isfinite overflows on a huge int)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        isinstance(value, numbers.Integral) or math.isfinite(value))
