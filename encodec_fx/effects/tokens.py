"""Token-domain effects: what a channel or a bit-rate controller does to EnCodec codes.

Each takes `Codes` and gives `Codes`, so they sit between an `EncodecEncoder` and an
`EncodecDecoder`. Parameters are plain attributes that may change between the blocks of a stream:
they are checked when the effect is made, and again on every call (or block), against the codes
where they depend on them. Time runs along the transmission timeline
(`Codes.on_timeline`: chunk after chunk, frame after frame), counted from the start of the stream.

Random effects draw one number per position on the timeline from the seed (`frame_random`), so a
stream gets exactly the damage of a batch call whatever its blocks, and the same seed gives the same
damage every time; `seed=None` gives new damage for each batch call or stream. Repeat concealment
carries the last received frame from block to block.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from entropy.number_checks import is_finite_number, is_integer

from .codes import Codes
from .frame_random import fresh_seed, uniform
from .protocol import CODES, Effect


class _TokenEffect(Effect):
    input_kind = CODES
    output_kind = CODES

    def _process(self, signal: Codes, sample_rate: int, buffer_size: int) -> Codes:
        if not isinstance(signal, Codes):
            raise TypeError(f"{type(self).__name__} takes Codes from an EncodecEncoder, got {type(signal).__name__}")
        return self.apply(signal)

    def _stream(self, signal: Codes, sample_rate: int, buffer_size: int) -> Codes:
        return self._process(signal, sample_rate, buffer_size)

    @abstractmethod
    def apply(self, codes: Codes) -> Codes:
        """The effect on one signal's codes, or on the next block of a stream's."""


def _check_integer(effect: Effect, name: str, value: int, low: int, high: int | None = None, why: str = "") -> int:
    if not is_integer(value) or value < low or (high is not None and value > high):
        accepted = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{type(effect).__name__}.{name} must be an integer {accepted}{why}, got {value!r}")
    return int(value)


def _check_probability(effect: Effect, name: str, value: object) -> float:
    if not is_finite_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{type(effect).__name__}.{name} must be a probability from 0.0 to 1.0, got {value!r}")
    return float(value)


class _RandomTokenEffect(_TokenEffect):
    """A token effect drawing from `seed`; with seed=None, from a seed drawn once per call or stream."""

    seed: int | None  # each subclass's dataclass field
    _drawn_seed: int | None = None

    def _clear_stream(self) -> None:
        self._drawn_seed = None

    def _checked_seed(self) -> int | None:
        seed = self.seed
        if seed is not None and (not is_integer(seed) or not 0 <= seed < 2 ** 64):
            raise ValueError(f"{type(self).__name__}.seed must be None or an integer from 0 to 2**64 - 1, got {seed!r}")
        return None if seed is None else int(seed)

    def _seed(self) -> int:
        seed = self._checked_seed()
        if seed is None:
            if self._drawn_seed is None:
                self._drawn_seed = fresh_seed()
            return self._drawn_seed
        return seed


@dataclass(eq=False)
class CodebookTruncation(_TokenEffect):
    """Keep the first `num_codebooks` codebooks: a lower bandwidth, as if encoded at it (residual VQ
    is greedy, so the first codebooks do not depend on how many follow)."""

    num_codebooks: int

    def __post_init__(self) -> None:
        _check_integer(self, "num_codebooks", self.num_codebooks, 1)  # the most it may be depends on the codes

    def apply(self, codes: Codes) -> Codes:
        kept = _check_integer(self, "num_codebooks", self.num_codebooks, 1, codes.num_codebooks,
                              f" (the codes hold {codes.num_codebooks} codebooks)")
        return dataclasses.replace(codes, audio_codes=codes.audio_codes[:, :, :kept].copy(),
                                   received=codes.received[:, :, :kept].copy())


@dataclass(eq=False)
class BandwidthSchedule(_TokenEffect):
    """A bandwidth that changes over time: `schedule` lists (time in seconds, kbps) breakpoints in
    increasing time; each bandwidth holds from its time to the next (the first one also before it).
    Codebooks above a frame's bandwidth are not received, so they add nothing when decoded."""

    schedule: Sequence[tuple[float, float]]

    def __post_init__(self) -> None:
        self._parsed()

    def apply(self, codes: Codes) -> Codes:
        times, active = self._breakpoints(codes)
        which = np.maximum(np.searchsorted(times, codes.frame_times(), side="right") - 1, 0)
        kept = np.arange(codes.num_codebooks)[:, None] < active[which][None, :]
        return codes.with_timeline(codes.on_timeline(codes.audio_codes), codes.on_timeline(codes.received) & kept)

    def _parsed(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Breakpoint times and kbps, checked as far as they can be without the codes."""
        usage = ("BandwidthSchedule.schedule must be a non-empty list of (time_s, kbps) pairs with "
                 "non-negative times in increasing order and kbps among the model's target bandwidths")
        try:
            times, kbps = zip(*[(float(time), float(rate)) for time, rate in self.schedule])
        except (TypeError, ValueError):
            raise ValueError(f"{usage}, got {self.schedule!r}") from None
        if not all(map(math.isfinite, times)) or times[0] < 0 or any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"{usage}, got {self.schedule!r}")
        return times, kbps

    def _breakpoints(self, codes: Codes) -> tuple[np.ndarray, np.ndarray]:
        """Breakpoint times and the number of codebooks kept from each, checked against the codes."""
        times, kbps = self._parsed()
        bandwidths = codes.config.target_bandwidths
        unknown = [rate for rate in kbps if rate not in bandwidths]
        if unknown:
            raise ValueError(f"BandwidthSchedule.schedule has {unknown[0]} kbps, but the codes' model takes "
                             f"kbps in {bandwidths}")
        if max(kbps) > codes.bandwidth:
            raise ValueError(f"BandwidthSchedule.schedule asks for {max(kbps)} kbps, but the codes hold "
                             f"{codes.bandwidth} kbps: encode at {max(kbps)} kbps or more")
        return np.array(times), np.array([codes.config.num_quantizers_for_bandwidth(b) for b in kbps])


@dataclass(eq=False)
class TokenSubstitution(_RandomTokenEffect):
    """Replace each token, with probability `rate`, by another code drawn uniformly: the effect of
    bit errors on an unprotected token stream. About rate · (number of tokens) tokens change."""

    rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_probability(self, "rate", self.rate)
        self._checked_seed()

    def apply(self, codes: Codes) -> Codes:
        rate = _check_probability(self, "rate", self.rate)
        seed, size = self._seed(), codes.config.codebook_size
        tokens = codes.on_timeline(codes.audio_codes)
        streams, codebooks, _ = tokens.shape
        position = (np.arange(streams)[:, None, None], np.arange(codebooks)[None, :, None],
                    codes.frame_indices()[None, None, :])
        substituted = uniform(seed, 0, *position) < rate
        offsets = 1 + (uniform(seed, 1, *position) * (size - 1)).astype(np.int64)
        tokens = np.where(substituted, (tokens + offsets) % codes.config.codebook_size, tokens)
        return codes.with_timeline(tokens, codes.on_timeline(codes.received))


@dataclass(eq=False)
class PacketLoss(_RandomTokenEffect):
    """Lose packets of `packet_frames` frames (all codebooks and channels) with probability `rate`.

    `concealment` says what the decoder puts in their place: "zeros" (lost tokens add nothing: a
    zero latent) or "repeat" (the last received frame again; zeros before any was received).
    """

    rate: float = 0.0
    packet_frames: int = 1
    concealment: str = "zeros"
    seed: int | None = None

    CONCEALMENTS = ("zeros", "repeat")

    def __post_init__(self) -> None:
        self._checked()
        self._checked_seed()

    def _checked(self) -> tuple[float, int]:
        """`rate` and `packet_frames`, checked; `concealment` checked too."""
        rate = _check_probability(self, "rate", self.rate)
        packet_frames = _check_integer(self, "packet_frames", self.packet_frames, 1, 2 ** 31 - 1)
        if self.concealment not in self.CONCEALMENTS:
            raise ValueError(f"PacketLoss.concealment must be one of {self.CONCEALMENTS}, got {self.concealment!r}")
        return rate, packet_frames

    def apply(self, codes: Codes) -> Codes:
        rate, packet_frames = self._checked()
        frames = codes.frame_indices()
        lost = uniform(self._seed(), 2, frames // packet_frames) < rate
        tokens, received = codes.on_timeline(codes.audio_codes), codes.on_timeline(codes.received)
        if self.concealment == "zeros":
            return codes.with_timeline(tokens, received & ~lost)
        return codes.with_timeline(*self._repeat_last_received(tokens, received, lost))

    # (tokens, received) of the stream's last received frame; typed by a cast, as an annotation would make it a field
    _last_received = cast("tuple[np.ndarray, np.ndarray] | None", None)

    def _clear_stream(self) -> None:
        super()._clear_stream()
        self._last_received = None

    def _repeat_last_received(self, tokens: np.ndarray, received: np.ndarray,
                              lost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each lost frame replaced by the last received one, carried over from earlier blocks."""
        carried = self._last_received is not None
        if self._last_received is not None:  # the previous block's last received frame goes first, as not lost
            last_tokens, last_received = (_fit_codebooks(array, tokens.shape[1]) for array in self._last_received)
            tokens = np.concatenate([last_tokens[..., None], tokens], axis=-1)
            received = np.concatenate([last_received[..., None], received], axis=-1)
            lost = np.concatenate([[False], lost])
        last = last_received_frames(lost)
        if lost.size and last[-1] >= 0:
            self._last_received = (tokens[..., last[-1]], received[..., last[-1]])
        tokens, received = repeat_frames(tokens, received, last)
        return (tokens[..., 1:], received[..., 1:]) if carried else (tokens, received)


def last_received_frames(lost: np.ndarray) -> np.ndarray:
    """For each frame (lost: (frames,) bool), the index of the last frame up to it that was not lost; -1 before any."""
    return np.maximum.accumulate(np.where(lost, -1, np.arange(lost.size)))


def repeat_frames(tokens: np.ndarray, received: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeat concealment: frame t of (tokens, received) [..., frames] becomes frame `last[t]`; frames with no
    received frame before them (last -1) are not received."""
    source = np.maximum(last, 0)
    return tokens[..., source], received[..., source] & (last >= 0)


def _fit_codebooks(frame: np.ndarray, codebooks: int) -> np.ndarray:
    """A carried frame [streams, n_q] cut or padded (not received, code 0) to `codebooks` codebooks,
    should the number of codebooks change between blocks."""
    if frame.shape[1] >= codebooks:
        return frame[:, :codebooks]
    return np.pad(frame, [(0, 0), (0, codebooks - frame.shape[1])])
