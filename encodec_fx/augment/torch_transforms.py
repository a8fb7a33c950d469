"""torch-audiomentations-style transforms: `(batch, channels, samples)` tensors on any device in, the same out,
every selected example coded in one batched model call (`batch.code_batch`).

They follow torch-audiomentations' conventions: `torch.nn.Module`s called as `transform(samples,
sample_rate=None, targets=None, target_rate=None)`, `mode="per_example"` (a draw per example) or
`"per_batch"` (one draw for all), `p` with `p_mode`, `sample_rate` given when built or called,
`output_type="dict"` (an `ObjectDict` with `.samples`, `.sample_rate`, `.targets`, `.target_rate`) or
`"tensor"`, `transform_parameters` (readable after a call: `should_apply` and the selected examples'
`draws`), `freeze_parameters()`, and no change in `eval()` mode. They are not subclasses of
torch-audiomentations' base class: that package needs torchaudio, whose wheels are built against an older
torch than ours (torchaudio 2.11.1 fails to load its library under torch 2.13), so it is neither a
dependency nor tested against. The codec is not a submodule: its weights stay out of `parameters()` and
`state_dict()` of a model holding the transform. Beyond torch-audiomentations, `lengths=` gives each
example's true length in a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..effects.model_source import ModelSource
from .batch import check_audio
from .core import CodecAugmentation, check_p, compression_spec, packet_loss_spec
from .generators import Seed

MODES = ("per_example", "per_batch")
OUTPUT_TYPES = ("dict", "tensor")


class ObjectDict(dict):
    """A dict whose keys read as attributes, as torch-audiomentations returns (`out.samples`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class _TorchCodecTransform(torch.nn.Module):
    supported_modes = set(MODES)  # not per_channel: a codec codes all channels of an example together

    def __init__(self, model: ModelSource | None, device: str | torch.device | None, mode: str, p: float,
                 p_mode: str | None, sample_rate: int | None, target_rate: int | None, output_type: str, seed: Seed):
        super().__init__()
        owner = type(self).__name__
        if mode not in MODES:
            raise ValueError(f"{owner}.mode must be one of {MODES} (a codec codes an example's channels together), "
                             f"got {mode!r}")
        p_mode = mode if p_mode is None else p_mode
        if p_mode not in MODES or (p_mode == "per_example" and mode == "per_batch"):
            raise ValueError(f"{owner}.p_mode must be None, 'per_batch', or 'per_example' with mode='per_example', "
                             f"got {p_mode!r} with mode={mode!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"{owner}.output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        self.mode, self.p, self.p_mode = mode, check_p(owner, p), p_mode
        self.sample_rate, self.target_rate, self.output_type = sample_rate, target_rate, output_type
        self.codec = CodecAugmentation(owner, model, device, seed, fallback="torch")  # a plain object: no submodule
        self.transform_parameters: dict[str, Any] = {}
        self.are_parameters_frozen = False

    @property
    def model(self) -> Any:
        return self.codec.model

    def randomize_parameters(self, samples: torch.Tensor, sample_rate: int, targets: torch.Tensor | None = None,
                             target_rate: int | None = None) -> None:
        """Which examples are coded (`should_apply`, bool per example) and their draws (`draws`, one `Draw`
        per selected example, in batch order; `bandwidth`, their kbps as a tensor)."""
        rng = self.codec.random.generator()
        batch = samples.shape[0]
        if self.p_mode == "per_batch":
            apply = torch.full((batch,), bool(rng.random() < self.p))
        else:
            apply = torch.from_numpy(rng.random(batch) < self.p)
        draws = self.codec.draws(int(apply.sum()), samples.shape[-1] / sample_rate, rng,
                                 shared=self.mode == "per_batch")
        self.transform_parameters = {"should_apply": apply.to(samples.device), "draws": draws,
                                     "bandwidth": torch.tensor([draw.bandwidth for draw in draws])}

    def freeze_parameters(self) -> None:
        """Reuse the last draws on every call (batches of the same size)."""
        self.are_parameters_frozen = True

    def unfreeze_parameters(self) -> None:
        self.are_parameters_frozen = False

    def forward(self, samples: torch.Tensor | None = None, sample_rate: int | None = None,
                targets: torch.Tensor | None = None, target_rate: int | None = None,
                lengths: Sequence[int] | torch.Tensor | None = None) -> Any:
        if not self.training:
            return self._output(samples, sample_rate, targets, target_rate)
        audio, sizes = check_audio(samples, lengths)
        sample_rate = sample_rate or self.sample_rate
        if sample_rate is None:
            raise ValueError(f"{type(self).__name__}: sample_rate is required, when built or when called")
        if not self.are_parameters_frozen or "should_apply" not in self.transform_parameters:
            self.randomize_parameters(audio, sample_rate, targets, target_rate)
        apply = self.transform_parameters["should_apply"]
        if apply.shape[0] != audio.shape[0]:
            raise ValueError(f"{type(self).__name__}: the frozen parameters are for {apply.shape[0]} examples, got a "
                             f"batch of {audio.shape[0]}; unfreeze_parameters() or pass a batch of that size")
        out = audio
        if bool(apply.any()):
            out = audio.clone()
            chosen = None if sizes is None else [size for size, keep in zip(sizes, apply.tolist()) if keep]
            out[apply] = self.codec.code(audio[apply], sample_rate, self.transform_parameters["draws"], chosen)
        return self._output(out, sample_rate, targets, target_rate or self.target_rate)

    def _output(self, samples: Any, sample_rate: int | None, targets: Any, target_rate: int | None) -> Any:
        if self.output_type == "tensor":
            return samples
        return ObjectDict(samples=samples, sample_rate=sample_rate, targets=targets, target_rate=target_rate)


class TorchEncodecCompression(_TorchCodecTransform):
    """Batched `EncodecCompression`: each selected example (or the batch, `mode="per_batch"`) coded at a
    bandwidth drawn among the model's target bandwidths from `min_bandwidth` to `max_bandwidth` kbps (or
    from `bandwidths`), optionally switching every `switch_seconds`."""

    def __init__(self, min_bandwidth: float = 1.5, max_bandwidth: float = 24.0, *,
                 bandwidths: Sequence[float] | None = None, switch_seconds: float | tuple[float, float] | None = None,
                 model: ModelSource | None = None, device: str | torch.device | None = None,
                 mode: str = "per_example", p: float = 0.5, p_mode: str | None = None, sample_rate: int | None = None,
                 target_rate: int | None = None, output_type: str = "dict", seed: Seed = None):
        super().__init__(model, device, mode, p, p_mode, sample_rate, target_rate, output_type, seed)
        self.codec.spec = compression_spec(type(self).__name__, self.model, min_bandwidth, max_bandwidth, bandwidths,
                                           switch_seconds)


class TorchEncodecPacketLoss(_TorchCodecTransform):
    """Batched `EncodecPacketLoss`: the same parameters, drawn per example or per batch."""

    def __init__(self, min_loss_rate: float = 0.0, max_loss_rate: float = 0.1, *,
                 burst_length: float | tuple[float, float] | None = None, packet_frames: int = 1,
                 concealment: str = "zeros", bit_error_rate: float | tuple[float, float] = 0.0,
                 codebook_dropout: float | tuple[float, float] = 0.0, min_bandwidth: float = 6.0,
                 max_bandwidth: float = 6.0, bandwidths: Sequence[float] | None = None,
                 model: ModelSource | None = None, device: str | torch.device | None = None,
                 mode: str = "per_example", p: float = 0.5, p_mode: str | None = None, sample_rate: int | None = None,
                 target_rate: int | None = None, output_type: str = "dict", seed: Seed = None):
        super().__init__(model, device, mode, p, p_mode, sample_rate, target_rate, output_type, seed)
        self.codec.spec = packet_loss_spec(
            type(self).__name__, self.model, min_loss_rate, max_loss_rate, burst_length=burst_length,
            packet_frames=packet_frames, concealment=concealment, bit_error_rate=bit_error_rate,
            codebook_dropout=codebook_dropout, min_bandwidth=min_bandwidth, max_bandwidth=max_bandwidth,
            bandwidths=bandwidths)
