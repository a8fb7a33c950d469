"""The codec training recipe's settings, apart from the training code: the command line offers them
as options (with their defaults) without importing torch, and a checkpoint stores them (`asdict`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from entropy.number_checks import check_settings

PAPER_WEIGHTS = {"time": 0.1, "mel": 1.0, "adversarial": 3.0, "feature": 3.0}
SEED_LIMIT = 2**64
DEFAULT_NUM_FILTERS = 32  # the model width of a new run (`train-codec --num-filters`)
DISCRIMINATOR_PRECISIONS = ("float32", "bfloat16")
WARMUP_GENERATOR_MODES = ("reconstruct", "hold")  # what the generator does while the discriminator warms
TEXT_SETTINGS = {"discriminator_precision": DISCRIMINATOR_PRECISIONS, "warmup_generator": WARMUP_GENERATOR_MODES}


@dataclass
class TrainingConfig:
    steps: int = 300_000
    batch_size: int = 8
    segment_seconds: float = 1.0
    learning_rate: float = 3e-4
    learning_rate_decay_steps: int = 0  # the last N steps before `steps` anneal both rates linearly to 0; 0: constant
    discriminator_learning_rate_factor: float = 1.0  # the discriminator's rate over the generator's (TTUR if > 1)
    discriminator_filters: int = 32
    discriminator_update_probability: float = 2 / 3
    adversarial_start: int = 0  # steps of reconstruction-only warm-up (time + mel) before the GAN joins
    adversarial_every: int = 1  # the GAN's terms on every k-th step only: its cost spread on a CPU budget
    discriminator_warmup: int = 0  # steps from adversarial_start that train the discriminator alone
    warmup_generator: str = "reconstruct"  # meanwhile: train on the reconstruction losses, or "hold" (unchanged)
    discriminator_precision: str = "float32"  # bfloat16: autocast, ~2× faster on CPUs with AVX-512-BF16/AMX
    commitment_weight: float = 1.0
    synthetic_share: float = 0.0  # of each batch: tones, sweeps, noise bands (signals.py), round(share × batch)
    time_loss_cutoff: float = 0.0  # Hz; > 0: the time loss sees only the band below (losses.TimeLoss); 0 the paper's
    held_out_percent: int = 10
    eval_every: int = 1000
    checkpoint_every: int = 5000
    seed: int = 0
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(PAPER_WEIGHTS))

    def __post_init__(self) -> None:
        check_settings(self, positive=("steps", "batch_size", "segment_seconds", "learning_rate",
                                       "discriminator_learning_rate_factor", "discriminator_filters", "eval_every",
                                       "checkpoint_every", "adversarial_every"),
                       non_negative=("learning_rate_decay_steps", "adversarial_start", "discriminator_warmup",
                                     "commitment_weight", "seed", "time_loss_cutoff"),
                       fractions=("discriminator_update_probability", "synthetic_share"),
                       percents=("held_out_percent",))
        for name, accepted in TEXT_SETTINGS.items():
            if getattr(self, name) not in accepted:
                raise ValueError(f"{name} must be one of {', '.join(accepted)}, got {getattr(self, name)!r}")
        if self.seed >= SEED_LIMIT:  # numpy takes any size, torch's generators 64 bits
            raise ValueError(f"seed must be below 2**64 = {SEED_LIMIT}, got {self.seed}")

    @classmethod
    def from_settings(cls, settings: dict) -> TrainingConfig:
        """The config a checkpoint saved (`asdict`). A setting this version does not know (a newer
        version's, or a damaged file's) is refused by name, not left to fail as a TypeError."""
        known = [setting.name for setting in fields(cls)]
        unknown = [str(name) for name in settings if name not in known]
        if unknown:
            raise ValueError(f"settings unknown to this version: {', '.join(unknown)} (from a newer version of "
                             "encodec-fx, or a damaged file)")
        return cls(**settings)
