"""How precisely audio is decoded: `precision=` on `model.decode`, `model.stream_decoder` and the codec effects.

Only the encoder owes bit-exactness (its codes feed archives and must equal the references'). What
outputs audio owes only audio indistinguishable from the exact path, so it may run faster:

* "exact": float32, the reference's audio within float rounding (about 1e-6); the default of `decode`.
* "bfloat16": the decoder's weights and activations in bfloat16 (8-bit mantissa), accumulated in
  float32 by oneDNN; the audio comes back as float32. On a CPU with AVX-512-BF16 (or AMX) the
  convolutions run about twice as fast, and the LSTM's recurrent weights stream half the bytes per
  frame. Measured distance to "exact" on the recording in tests/data (speech, 4 s, 6 kbps): 44.5 dB
  SNR with the shipped 24 kHz model, 36.9 dB with the 48 kHz layout at half width (random weights);
  on benchmarks/speed.py's noise input with official-size random weights, 42.1 dB (24 kHz) and
  38.4 dB (48 kHz). tests/test_precision.py holds every mode to `MIN_SNR_DB`.

Measured and not offered: int8 dynamic quantisation of the LSTMs (`torch.ao`, deprecated in torch
2.10+) decoded the official-size model only 1.14x faster than "exact" (the LSTM is a fifth of the
decoder's time; its 1 MB int8 recurrent weight fits L2, but fbgemm's per-step quantisation of the
state eats most of the gain), against 1.9x for bfloat16.

The effects decode at `effect_precision(device)` unless given `precision=`: the fastest mode within
35 dB SNR of "exact" on real audio where the hardware runs it natively, else "exact" (bfloat16
emulated in software is slower than float32). `EFFECT_DEFAULT`, when set, replaces that choice for
every effect of the process (the tests of the effects' machinery set "exact").
"""

from __future__ import annotations

import functools

import torch

PRECISIONS = ("exact", "bfloat16")
DTYPES = {"exact": torch.float32, "bfloat16": torch.bfloat16}

MIN_SNR_DB = {"exact": 80.0, "bfloat16": 35.0}
"""The audio distance to "exact" each mode is held to (SNR dB on a real recording, both presets)."""


def check_precision(precision: str) -> str:
    """One of `PRECISIONS`, or a one-line error naming the argument."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


def dtype_of(precision: str) -> torch.dtype:
    """The dtype the decoder computes in at `precision`."""
    return DTYPES[check_precision(precision)]


@functools.lru_cache(maxsize=None)
def native_bfloat16(device_type: str = "cpu") -> bool:
    """Whether bfloat16 matrix products run in hardware here (a CUDA GPU, or a CPU with AVX-512-BF16/AMX)."""
    if device_type == "cuda":
        return True
    return device_type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


EFFECT_DEFAULT: str | None = None


def effect_precision(device: torch.device) -> str:
    """The effects' default: `EFFECT_DEFAULT` if set, else "bfloat16" where it runs natively, else "exact"."""
    if EFFECT_DEFAULT is not None:
        return check_precision(EFFECT_DEFAULT)
    return "bfloat16" if native_bfloat16(device.type) else "exact"
