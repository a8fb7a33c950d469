"""Bandwidths per example: which are allowed, drawn, switched over time, and how many codebooks each frame keeps.

Each example is coded at one of the model's target bandwidths (those it was trained at), chosen from a
range (`min_bandwidth`, `max_bandwidth`: every target bandwidth within it, as audiomentations'
`Mp3Compression` draws among standard bit rates) or a list. Residual quantisation makes the first k
codebooks of a larger encoding exactly the codes of encoding with k, so a batch is encoded once with the
most codebooks any example needs and each example keeps its own first k (`codebooks_per_frame`); a
bandwidth that switches over time keeps a different k from each breakpoint on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from entropy.number_checks import is_finite_number

from ..config import EncodecConfig


def check_bandwidth(name: str, kbps: object, config: EncodecConfig) -> float:
    targets = tuple(config.target_bandwidths)
    if not is_finite_number(kbps) or float(kbps) not in targets:
        raise ValueError(f"{name} must be one of the model's target bandwidths {targets} kbps, got {kbps!r}")
    return float(kbps)


def bandwidth_choices(owner: str, config: EncodecConfig, min_bandwidth: object, max_bandwidth: object,
                      bandwidths: Sequence[float] | None) -> tuple[float, ...]:
    """The kbps an example may be coded at: `bandwidths` if given, else the target bandwidths from
    `min_bandwidth` to `max_bandwidth`; refused (naming `owner`) when outside the model's."""
    targets = tuple(config.target_bandwidths)
    if bandwidths is not None:
        if isinstance(bandwidths, (str, bytes)) or not isinstance(bandwidths, Sequence) or not bandwidths:
            raise ValueError(f"{owner}.bandwidths must be a non-empty list of the model's target bandwidths "
                             f"{targets} kbps, got {bandwidths!r}")
        return tuple(check_bandwidth(f"{owner}.bandwidths[{index}]", kbps, config)
                     for index, kbps in enumerate(bandwidths))
    low, high = targets[0], targets[-1]
    for name, kbps in (("min_bandwidth", min_bandwidth), ("max_bandwidth", max_bandwidth)):
        if not is_finite_number(kbps) or not low <= kbps <= high:
            raise ValueError(f"{owner}.{name} must be from {low} to {high} kbps (the model's target bandwidths "
                             f"{targets}), got {kbps!r}")
    if min_bandwidth > max_bandwidth:  # type: ignore[operator]
        raise ValueError(f"{owner}.min_bandwidth ({min_bandwidth}) must not exceed max_bandwidth ({max_bandwidth})")
    chosen = tuple(kbps for kbps in targets if min_bandwidth <= kbps <= max_bandwidth)  # type: ignore[operator]
    if not chosen:
        raise ValueError(f"{owner}: no target bandwidth of the model {targets} lies from min_bandwidth "
                         f"{min_bandwidth} to max_bandwidth {max_bandwidth} kbps; widen the range")
    return chosen


def draw_schedule(rng: np.random.Generator, choices: Sequence[float], segment_seconds: tuple[float, float],
                  duration_s: float, first: float) -> tuple[tuple[float, float], ...]:
    """Breakpoints [(time_s, kbps), ...] from 0 to `duration_s`: `first` kbps, then a new draw among
    `choices` after each segment of uniform length in `segment_seconds` (as a link adapting its rate)."""
    schedule, time = [(0.0, float(first))], 0.0
    low, high = segment_seconds
    while True:
        time += low if low == high else float(rng.uniform(low, high))
        if time >= duration_s:
            return tuple(schedule)
        schedule.append((time, float(choices[int(rng.integers(len(choices)))])))


def codebooks_per_frame(config: EncodecConfig, bandwidth: float, schedule: Sequence[tuple[float, float]],
                        frame_times: np.ndarray) -> np.ndarray:
    """How many codebooks each frame keeps (frames starting at `frame_times` seconds)."""
    if not schedule:
        return np.full(frame_times.shape, config.num_quantizers_for_bandwidth(bandwidth))
    times = np.array([time for time, _ in schedule])
    kept = np.array([config.num_quantizers_for_bandwidth(kbps) for _, kbps in schedule])
    return kept[np.maximum(np.searchsorted(times, frame_times, side="right") - 1, 0)]
