"""Checks on user input, shared by the model and the feature extractor, so each bad input gets one
clear message naming what is wrong and what is accepted."""

from __future__ import annotations

import numpy as np
import torch


def check_samples(samples: np.ndarray | torch.Tensor, what: str = "audio") -> None:
    """Reject integer dtypes, empty arrays and non-finite samples."""
    is_tensor = isinstance(samples, torch.Tensor)
    floating = samples.is_floating_point() if is_tensor else np.issubdtype(samples.dtype, np.floating)
    if not floating:
        raise ValueError(f"{what} has dtype {samples.dtype}; expected floating-point samples in [-1, 1] "
                         "(convert integer PCM first, e.g. x / 32768)")
    if (samples.numel() if is_tensor else samples.size) == 0:
        raise ValueError(f"{what} is empty (shape {tuple(samples.shape)}); expected at least one sample")
    if not bool(torch.isfinite(samples).all() if is_tensor else np.isfinite(samples).all()):
        raise ValueError(f"{what} contains NaN or infinite samples; expected finite values")


def check_sampling_rate(sampling_rate: int | None, expected: int) -> None:
    if sampling_rate is not None and sampling_rate != expected:
        raise ValueError(f"audio sampled at {sampling_rate} Hz, but this model takes {expected} Hz: "
                         "resample it first")


def check_settings(settings: object, *, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                   fractions: tuple[str, ...] = (), percents: tuple[str, ...] = ()) -> None:
    """A training recipe's numbers where they make sense: positive (steps, sizes, rates), non-negative,
    fractions from 0 to 1, percents from 0 to 100."""
    rules = [(positive, lambda v: v > 0, "positive"), (non_negative, lambda v: v >= 0, "at least 0"),
             (fractions, lambda v: 0 <= v <= 1, "from 0 to 1"), (percents, lambda v: 0 <= v <= 100, "from 0 to 100")]
    for names, valid, accepted in rules:
        for name in names:
            value = getattr(settings, name)
            if not valid(value):
                raise ValueError(f"{name} must be {accepted}, got {value!r}")
