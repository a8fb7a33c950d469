"""What one example drew, and the ranges it was drawn from.

A `Draw` holds every parameter of one example's coding and damage, its own `seed` included (the numbers
its damage is made of come from a generator seeded with it), so it can be logged (`as_dict`, JSON-able)
and replayed exactly (`Draw.from_dict`, then `code_batch` or a frozen transform) whatever batch the
example was in. A `DamageSpec` holds the ranges a transform draws from, checked when it is built.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from entropy.number_checks import is_finite_number, is_integer

from ..config import EncodecConfig
from .bandwidths import check_bandwidth, draw_schedule
from .losses import CONCEALMENTS, check_loss

Span = tuple[float, float]


@dataclass(frozen=True)
class Draw:
    """One example's parameters. `bandwidth` is the kbps coded; `schedule`, when not empty, switches the
    bandwidth over time as `[(time_s, kbps), ...]` breakpoints (each kbps holds until the next time).
    `loss_rate` is the share of packets of `packet_frames` frames lost, independently when `burst_length`
    is None, else in Gilbert–Elliott bursts of that mean length (packets); `concealment` "zeros" or
    "repeat" as `PacketLoss`. `bit_error_rate` flips each bit of each token; `codebook_dropout` is the
    share of frames that arrive with only some of their codebooks."""

    bandwidth: float
    seed: int
    schedule: tuple[tuple[float, float], ...] = ()
    loss_rate: float = 0.0
    burst_length: float | None = None
    packet_frames: int = 1
    concealment: str = "zeros"
    bit_error_rate: float = 0.0
    codebook_dropout: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers, lists and strings: for a log line or a JSON file."""
        values = dataclasses.asdict(self)
        values["schedule"] = [list(point) for point in self.schedule]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Draw:
        """The `Draw` that `as_dict` gave (extra keys, such as audiomentations' `should_apply`, are ignored)."""
        names = {field.name for field in dataclasses.fields(cls)}
        known = {name: value for name, value in values.items() if name in names}
        known["schedule"] = tuple((float(time), float(kbps)) for time, kbps in known.get("schedule", ()))
        return cls(**known)

    @property
    def max_bandwidth(self) -> float:
        """The kbps the example must be encoded at: its bandwidth, or its schedule's highest."""
        return max(kbps for _, kbps in self.schedule) if self.schedule else self.bandwidth

    def check(self, config: EncodecConfig) -> None:
        """Every value in range for `config`'s model (a logged draw may have been edited, or be another model's)."""
        for kbps in [self.bandwidth, *(kbps for _, kbps in self.schedule)]:
            check_bandwidth("Draw.bandwidth", kbps, config)
        times = [time for time, _ in self.schedule]
        if times and (times[0] != 0 or any(b <= a for a, b in zip(times, times[1:]))):
            raise ValueError(f"Draw.schedule must start at time 0 and increase, got {list(self.schedule)}")
        if not is_integer(self.seed) or not 0 <= self.seed < 2 ** 64:
            raise ValueError(f"Draw.seed must be an integer from 0 to 2**64 - 1, got {self.seed!r}")
        check_loss("Draw", self.loss_rate, self.loss_rate, self.burst_length, self.burst_length)
        check_span("Draw", "bit_error_rate", self.bit_error_rate, 0.0, 0.5)
        check_span("Draw", "codebook_dropout", self.codebook_dropout, 0.0, 1.0)
        check_packet_frames("Draw", self.packet_frames)
        check_concealment("Draw", self.concealment)

    @property
    def damaged(self) -> bool:
        """Whether anything beyond the bandwidth touches the tokens."""
        return bool(self.schedule) or self.loss_rate > 0 or self.bit_error_rate > 0 or self.codebook_dropout > 0


def check_span(owner: str, name: str, value: object, low: float, high: float) -> Span:
    """A number or a (min, max) pair within [low, high] → (min, max)."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(is_finite_number(v) and low <= v <= high for v in pair) or pair[0] > pair[1]:
        raise ValueError(f"{owner}.{name} must be a number or a (min, max) pair of numbers from {low} to {high}, "
                         f"min <= max, got {value!r}")
    return float(pair[0]), float(pair[1])


def check_packet_frames(owner: str, value: object) -> int:
    if not is_integer(value) or not 1 <= value <= 2 ** 31 - 1:
        raise ValueError(f"{owner}.packet_frames must be an integer from 1 to 2**31 - 1, got {value!r}")
    return int(value)


def check_concealment(owner: str, value: object) -> str:
    if value not in CONCEALMENTS:
        raise ValueError(f"{owner}.concealment must be one of {CONCEALMENTS}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class DamageSpec:
    """The ranges a transform draws each example's `Draw` from: one of `bandwidths` (kbps, the model's
    target bandwidths), uniform numbers in the (min, max) spans, segments of `switch_seconds` when the
    bandwidth switches over time (None: it does not)."""

    bandwidths: tuple[float, ...]
    switch_seconds: Span | None = None
    loss_rate: Span = (0.0, 0.0)
    burst_length: Span | None = None
    packet_frames: int = 1
    concealment: str = "zeros"
    bit_error_rate: Span = (0.0, 0.0)
    codebook_dropout: Span = (0.0, 0.0)

    def draw(self, rng: np.random.Generator, duration_s: float) -> Draw:
        """One example's parameters for a signal of `duration_s` seconds."""
        bandwidth = float(self.bandwidths[int(rng.integers(len(self.bandwidths)))])
        schedule: tuple[tuple[float, float], ...] = ()
        if self.switch_seconds is not None:
            schedule = draw_schedule(rng, self.bandwidths, self.switch_seconds, duration_s, bandwidth)
        burst = None if self.burst_length is None else _uniform(rng, self.burst_length)
        return Draw(bandwidth=bandwidth, seed=int(rng.integers(2 ** 63)), schedule=schedule,
                    loss_rate=_uniform(rng, self.loss_rate), burst_length=burst, packet_frames=self.packet_frames,
                    concealment=self.concealment, bit_error_rate=_uniform(rng, self.bit_error_rate),
                    codebook_dropout=_uniform(rng, self.codebook_dropout))


def _uniform(rng: np.random.Generator, span: Span) -> float:
    low, high = span
    return low if low == high else float(rng.uniform(low, high))


def damage_spec(owner: str, config: EncodecConfig, bandwidths: Sequence[float], *,
                switch_seconds: object = None, loss_rate: object = 0.0, burst_length: object = None,
                packet_frames: object = 1, concealment: object = "zeros", bit_error_rate: object = 0.0,
                codebook_dropout: object = 0.0) -> DamageSpec:
    """A `DamageSpec` with every value checked, named after `owner` (the transform) in errors."""
    switch = None if switch_seconds is None else check_span(owner, "switch_seconds", switch_seconds, 0.0, math.inf)
    if switch is not None and switch[0] <= 0:
        raise ValueError(f"{owner}.switch_seconds must be positive seconds (a number or a (min, max) pair), "
                         f"got {switch_seconds!r}")
    loss = check_span(owner, "loss_rate", loss_rate, 0.0, 1.0)
    burst = None if burst_length is None else check_span(owner, "burst_length", burst_length, 1.0, 1e6)
    check_loss(owner, loss[0], loss[1], None if burst is None else burst[0], None if burst is None else burst[1])
    return DamageSpec(bandwidths=tuple(bandwidths), switch_seconds=switch, loss_rate=loss, burst_length=burst,
                      packet_frames=check_packet_frames(owner, packet_frames),
                      concealment=check_concealment(owner, concealment),
                      bit_error_rate=check_span(owner, "bit_error_rate", bit_error_rate, 0.0, 0.5),
                      codebook_dropout=check_span(owner, "codebook_dropout", codebook_dropout, 0.0, 1.0))
