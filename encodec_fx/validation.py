"""Checks on user input: audio, codes and scales, shared by the model, the feature extractor, the
streaming and chunked coders and file compression, so each bad input gets one clear message naming what
is wrong and what is accepted. Checks on plain numbers and settings are in `entropy.number_checks`."""

from __future__ import annotations

import math
import sys
import warnings
from types import FrameType

import numpy as np
import torch


def as_number(value: object) -> object:
    """A 0-d tensor or array as the number it holds (transformers takes them where it takes numbers);
    anything else as it is, for the caller's check to judge."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        return value.item()
    return value


def tensor_of(audio: np.ndarray, what: str) -> torch.Tensor:
    """A numpy array of samples as a tensor, copied only when torch cannot share it: torch takes only
    the machine's byte order and positive strides (not a reversed view)."""
    if audio.dtype.kind not in "biufc":
        raise ValueError(f"{what} has dtype {audio.dtype}; expected floating-point samples")
    if not audio.flags.c_contiguous or not audio.dtype.isnative:
        audio = audio.astype(audio.dtype.newbyteorder("="), order="C")
    return torch.from_numpy(audio)


LOUDEST_PLAUSIBLE_PEAK = 100.0
"""40 dB above full scale: float audio louder than this is almost surely integer PCM converted
without scaling (x.astype(np.float32) on int16 peaks near 32768), which the 24 kHz model codes into
garbage without a word. Warned about, not refused: a normalising model (48 kHz) codes it fine."""


def check_samples(samples: np.ndarray | torch.Tensor, what: str = "audio") -> None:
    """Reject integer dtypes, empty arrays and non-finite samples; warn about PCM-scale floats."""
    if isinstance(samples, torch.Tensor):
        floating, size = samples.is_floating_point(), samples.numel()
    else:
        floating, size = bool(np.issubdtype(samples.dtype, np.floating)), samples.size
    if not floating:
        raise ValueError(f"{what} has dtype {samples.dtype}; expected floating-point samples in [-1, 1] "
                         "(convert integer PCM first, e.g. x / 32768)")
    if size == 0:
        raise ValueError(f"{what} is empty (shape {tuple(samples.shape)}); expected at least one sample")
    low, high = (float(samples.min()), float(samples.max()))  # NaN or inf if any sample is; no copy
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{what} contains NaN or infinite samples; expected finite values")
    if max(-low, high) > LOUDEST_PLAUSIBLE_PEAK:  # a fixed text, so that a stream warns once, not per block
        warnings.warn(f"{what} peaks more than 40 dB above full scale: expected floats in [-1, 1] (integer PCM "
                      "converted without scaling? divide int16 samples by 32768)", stacklevel=_callers_level())


def _callers_level() -> int:
    """The `stacklevel` of the first frame outside encodec_fx and torch: the line of the user's code
    that passed the audio, however deep inside the package it was checked."""
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in ("encodec_fx", "torch"):
        frame, level = frame.f_back, level + 1
    return level


def check_sampling_rate(sampling_rate: int | None, expected: int) -> None:
    if sampling_rate is not None and sampling_rate != expected:
        raise ValueError(f"audio sampled at {sampling_rate!r} Hz, but this model takes {expected} Hz: "
                         "resample it first")


def check_codes(codes: object, what: str, layout: str, num_codebooks: int, codebook_size: int,
                frames_needed: bool = True) -> torch.Tensor:
    """Codes as a long tensor: `layout` (e.g. "(batch, n_q, frames)") names the dimensions, the last
    two being codebooks and frames; 1 to `num_codebooks` codebooks, indices below `codebook_size`,
    no empty dimension (frames may be 0 unless `frames_needed`)."""
    dims = layout.count(",") + 1
    if not isinstance(codes, torch.Tensor) or codes.dim() != dims or codes.is_floating_point() \
            or codes.is_complex() or codes.dtype == torch.bool:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        dtype = f" {codes.dtype}" if isinstance(codes, torch.Tensor) else ""
        raise ValueError(f"{what} is {shape}{dtype}; expected an integer tensor {layout}")
    if 0 in codes.shape[:-1] or (frames_needed and codes.shape[-1] == 0):
        raise ValueError(f"{what} is empty (shape {tuple(codes.shape)}); expected {layout} with at least one "
                         f"{'entry' if frames_needed else 'batch item and codebook'} in each")
    if not 1 <= codes.shape[-2] <= num_codebooks:
        raise ValueError(f"{what} has {codes.shape[-2]} codebooks; this model has 1 to {num_codebooks}")
    codes = codes.long()  # before comparing: 1024 does not fit a small integer type
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"{what} holds indices from {int(codes.min())} to {int(codes.max())}; "
                         f"expected 0 to {codebook_size - 1}")
    return codes


def check_scale(scale: object, batch: int, what: str) -> torch.Tensor:
    """A chunk's loudness from `encode`: one finite, positive value per batch item (or one for all)."""
    if not isinstance(scale, torch.Tensor) or scale.numel() not in (1, batch) or not scale.is_floating_point() \
            or not bool(torch.isfinite(scale).all() and (scale > 0).all()):
        shape = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise ValueError(f"{what} is {shape}; expected the finite, positive float tensor (batch, 1) = ({batch}, 1) "
                         "that encode returned")
    return scale
