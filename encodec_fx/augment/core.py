"""What every transform holds: its model (loaded once; pickled as its source, so `DataLoader` workers load
it themselves), the ranges it draws from, and its random source; and the checks of their settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from entropy.number_checks import is_finite_number

from ..devices import resolve_device
from ..effects.model_source import ModelSource, load_effect_model, source_of
from ..model import EncodecModel
from .bandwidths import bandwidth_choices
from .batch import code_batch
from .draws import DamageSpec, Draw, damage_spec
from .generators import RandomSource, Seed, check_seed


def check_p(owner: str, p: object) -> float:
    if not is_finite_number(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}.p must be a probability from 0.0 to 1.0, got {p!r}")
    return float(p)


def compression_spec(owner: str, model: EncodecModel, min_bandwidth: float, max_bandwidth: float,
                     bandwidths: Sequence[float] | None, switch_seconds: object) -> DamageSpec:
    choices = bandwidth_choices(owner, model.config, min_bandwidth, max_bandwidth, bandwidths)
    return damage_spec(owner, model.config, choices, switch_seconds=switch_seconds)


def packet_loss_spec(owner: str, model: EncodecModel, min_loss_rate: float, max_loss_rate: float, *,
                     burst_length: object, packet_frames: object, concealment: object, bit_error_rate: object,
                     codebook_dropout: object, min_bandwidth: float, max_bandwidth: float,
                     bandwidths: Sequence[float] | None) -> DamageSpec:
    for name, value in (("min_loss_rate", min_loss_rate), ("max_loss_rate", max_loss_rate)):
        if not is_finite_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}.{name} must be a probability from 0.0 to 1.0, got {value!r}")
    if min_loss_rate > max_loss_rate:
        raise ValueError(f"{owner}.min_loss_rate ({min_loss_rate}) must not exceed max_loss_rate ({max_loss_rate})")
    choices = bandwidth_choices(owner, model.config, min_bandwidth, max_bandwidth, bandwidths)
    return damage_spec(owner, model.config, choices, loss_rate=(min_loss_rate, max_loss_rate),
                       burst_length=burst_length, packet_frames=packet_frames, concealment=concealment,
                       bit_error_rate=bit_error_rate, codebook_dropout=codebook_dropout)


class CodecAugmentation:
    """A transform's model, ranges (`spec`) and random source. The model runs where it is (`device=` loads
    a named or the default model there); audio is moved to it and the output back to the audio's device."""

    def __init__(self, owner: str, model: ModelSource | None, device: str | torch.device | None, seed: Seed,
                 fallback: str):
        check_seed(owner, seed)
        self.owner = owner
        self.device = None if device is None else resolve_device(device)
        self.model = load_effect_model(model, owner, self.device)
        self.random = RandomSource(seed, fallback)
        self.spec = DamageSpec(bandwidths=tuple(self.model.config.target_bandwidths))

    def draws(self, count: int, duration_s: float, rng: Any, shared: bool = False) -> list[Draw]:
        """`count` examples' parameters; `shared`: one draw for all (torch-audiomentations' per_batch)."""
        if shared:
            return [self.spec.draw(rng, duration_s)] * count if count else []
        return [self.spec.draw(rng, duration_s) for _ in range(count)]

    def code(self, audio: torch.Tensor, sample_rate: int, draws: list[Draw],
             lengths: list[int] | None = None) -> torch.Tensor:
        return code_batch(self.model, audio, sample_rate, draws, lengths)

    def __getstate__(self) -> dict[str, Any]:
        """The model travels as its source (a shipped name or path is loaded once on the other side)."""
        return {**self.__dict__, "model": source_of(self.model)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.model = load_effect_model(state["model"], self.owner, self.device)
