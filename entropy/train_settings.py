"""The LM training recipe's settings, apart from the training code: the command line offers them
as options (with their defaults) without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from .number_checks import check_settings


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
        check_settings(self, positive=("steps", "batch_size", "crop_frames", "learning_rate", "eval_every"),
                       non_negative=("weight_decay", "warmup_steps", "seed"), percents=("held_out_percent",))
