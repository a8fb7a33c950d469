"""audiomentations-style transforms: numpy `(samples,)` or `(channels, samples)` in, the same shape out, called
as `transform(samples, sample_rate)`, so they run inside `audiomentations.Compose`.

They follow audiomentations' protocol without importing it (it is an optional extra): `p`, `parameters`
(the last call's draw, readable after it: `should_apply` and the `Draw` fields), `randomize_parameters`,
`freeze_parameters()` / `unfreeze_parameters()`. Randomness comes from `seed`, or without one from
Python's `random`, as audiomentations' own transforms (see `generators`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..effects.model_source import ModelSource
from .core import CodecAugmentation, check_p, compression_spec, packet_loss_spec
from .draws import Draw
from .generators import Seed


class _NumpyCodecTransform:
    supports_mono = True
    supports_multichannel = True

    def __init__(self, model: ModelSource | None, device: str | torch.device | None, p: float, seed: Seed):
        owner = type(self).__name__
        self.p = check_p(owner, p)
        self.codec = CodecAugmentation(owner, model, device, seed, fallback="python")
        self.parameters: dict[str, Any] = {"should_apply": None}
        self.are_parameters_frozen = False

    @property
    def model(self) -> Any:
        return self.codec.model

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        """Draw whether to apply and, if so, this call's `Draw` (into `parameters`)."""
        rng = self.codec.random.generator()
        self.parameters = {"should_apply": bool(rng.random() < self.p)}
        if self.parameters["should_apply"]:
            self.parameters.update(self.codec.spec.draw(rng, samples.shape[-1] / sample_rate).as_dict())

    def freeze_parameters(self) -> None:
        """Reuse the last draw on every call (the same damage for several sounds, or to replay a logged one:
        set `parameters` to a logged `Draw.as_dict()` plus `should_apply=True`, then freeze)."""
        self.are_parameters_frozen = True

    def unfreeze_parameters(self) -> None:
        self.are_parameters_frozen = False

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        if not isinstance(samples, np.ndarray) or samples.ndim not in (1, 2) or samples.dtype.kind != "f":
            what = f"a {samples.ndim}-D {samples.dtype} array" if isinstance(samples, np.ndarray) else \
                type(samples).__name__
            raise ValueError(f"samples must be a float numpy array (samples,) or (channels, samples), got {what}")
        if samples.dtype == np.float64:
            warnings.warn("Warning: input samples dtype is np.float64. Converting to np.float32", stacklevel=2)
            samples = samples.astype(np.float32)
        if not self.are_parameters_frozen or self.parameters["should_apply"] is None:
            self.randomize_parameters(samples, sample_rate)
        if not self.parameters["should_apply"] or samples.size == 0:
            return samples
        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).reshape(1, -1, samples.shape[-1])
        out = self.codec.code(audio, sample_rate, [Draw.from_dict(self.parameters)])
        return out.numpy().reshape(samples.shape)

    def to_dict_private(self) -> dict[str, Any]:
        """What audiomentations' `Compose` prints and serialises of its transforms."""
        return {"__class_fullname__": type(self).__name__, "p": self.p, **self._settings()}

    def _settings(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self._settings().items())
        return f"{type(self).__name__}({settings}, p={self.p!r})"


class EncodecCompression(_NumpyCodecTransform):
    """EnCodec at a bandwidth drawn per call among the model's target bandwidths from `min_bandwidth` to
    `max_bandwidth` kbps (or from `bandwidths`), optionally switching every `switch_seconds` (a number or a
    (min, max) range) to a new draw: the neural counterpart of audiomentations' `Mp3Compression`."""

    def __init__(self, min_bandwidth: float = 1.5, max_bandwidth: float = 24.0, *,
                 bandwidths: Sequence[float] | None = None, switch_seconds: float | tuple[float, float] | None = None,
                 model: ModelSource | None = None, device: str | torch.device | None = None, p: float = 0.5,
                 seed: Seed = None):
        super().__init__(model, device, p, seed)
        self.codec.spec = compression_spec(type(self).__name__, self.model, min_bandwidth, max_bandwidth, bandwidths,
                                           switch_seconds)

    def _settings(self) -> dict[str, Any]:
        spec = self.codec.spec
        return {"bandwidths": spec.bandwidths, "switch_seconds": spec.switch_seconds}


class EncodecPacketLoss(_NumpyCodecTransform):
    """EnCodec at a drawn bandwidth (default 6 kbps) through a lossy channel: packets of `packet_frames` frames
    lost at a rate drawn from `min_loss_rate` to `max_loss_rate`, independently or, with `burst_length`
    (mean packets per burst, a number or a range), in Gilbert–Elliott bursts; concealed with "zeros" or
    "repeat"; optionally bit errors (`bit_error_rate`) and codebook dropout, each a number or a range."""

    def __init__(self, min_loss_rate: float = 0.0, max_loss_rate: float = 0.1, *,
                 burst_length: float | tuple[float, float] | None = None, packet_frames: int = 1,
                 concealment: str = "zeros", bit_error_rate: float | tuple[float, float] = 0.0,
                 codebook_dropout: float | tuple[float, float] = 0.0, min_bandwidth: float = 6.0,
                 max_bandwidth: float = 6.0, bandwidths: Sequence[float] | None = None,
                 model: ModelSource | None = None, device: str | torch.device | None = None, p: float = 0.5,
                 seed: Seed = None):
        super().__init__(model, device, p, seed)
        self.codec.spec = packet_loss_spec(
            type(self).__name__, self.model, min_loss_rate, max_loss_rate, burst_length=burst_length,
            packet_frames=packet_frames, concealment=concealment, bit_error_rate=bit_error_rate,
            codebook_dropout=codebook_dropout, min_bandwidth=min_bandwidth, max_bandwidth=max_bandwidth,
            bandwidths=bandwidths)

    def _settings(self) -> dict[str, Any]:
        spec = self.codec.spec
        return {"loss_rate": spec.loss_rate, "burst_length": spec.burst_length, "packet_frames": spec.packet_frames,
                "concealment": spec.concealment, "bit_error_rate": spec.bit_error_rate,
                "codebook_dropout": spec.codebook_dropout, "bandwidths": spec.bandwidths}
