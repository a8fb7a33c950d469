"""Packet loss per example: independent (uniform) or in bursts (Gilbert–Elliott), with the effects' concealment.

Real networks lose packets in bursts (a congested queue drops several in a row), which uniform loss at
the same rate does not model. The Gilbert–Elliott chain has a good state (packets arrive) and a bad one
(packets are lost); it is parametrised here by what one measures on a link, the loss rate and the mean
burst length b (packets): leaving the bad state has probability 1/b, entering it rate / (b · (1 − rate)),
so that the chain spends `rate` of the time in it. A rate above b / (1 + b) cannot be reached with bursts
that short (the chain would have to enter the bad state with probability above 1) and is refused.
Lost frames are concealed as `encodec_fx.effects.PacketLoss` does: "zeros" (they add nothing) or
"repeat" (the last received frame again).
"""

from __future__ import annotations

import numpy as np

from ..effects.tokens import PacketLoss, last_received_frames, repeat_frames

CONCEALMENTS = PacketLoss.CONCEALMENTS


def check_loss(owner: str, rate_low: float, rate_high: float, burst_low: float | None,
               burst_high: float | None) -> None:
    """Rates the chosen model can produce: at most 1 for independent loss, at most b / (1 + b) for bursts of mean b."""
    for name, value, low in (("loss_rate", rate_low, 0.0), ("loss_rate", rate_high, 0.0),
                             ("burst_length", burst_low, 1.0), ("burst_length", burst_high, 1.0)):
        if value is not None and not (low <= value and (name == "burst_length" or value <= 1.0)):
            raise ValueError(f"{owner}.{name} must be {'from 0 to 1' if name == 'loss_rate' else 'at least 1'}, "
                             f"got {value!r}")
    if burst_low is not None and rate_high > burst_low / (1 + burst_low):
        raise ValueError(f"{owner}.loss_rate up to {rate_high} cannot be reached with bursts of mean length "
                         f"{burst_low}: the most is burst_length / (1 + burst_length) = "
                         f"{burst_low / (1 + burst_low):.4g}; lower loss_rate or lengthen burst_length")


def lost_packets(rng: np.random.Generator, num_packets: int, rate: float, burst_length: float | None) -> np.ndarray:
    """(num_packets,) bool: which packets are lost."""
    if rate <= 0 or num_packets == 0:
        return np.zeros(num_packets, dtype=bool)
    if burst_length is None:
        return rng.random(num_packets) < rate
    to_good = 1.0 / burst_length
    to_bad = min(1.0, rate * to_good / (1.0 - rate))
    # The chain's stays are geometric: draw them whole instead of stepping packet by packet. Starting in
    # the bad state with probability `rate` starts the chain in its stationary distribution.
    lost, state, total, runs = [], bool(rng.random() < rate), 0, []
    while total < num_packets:
        length = int(rng.geometric(to_good if state else to_bad))
        runs.append(length)
        lost.append(state)
        total += length
        state = not state
    return np.repeat(np.array(lost, dtype=bool), runs)[:num_packets]


def conceal(tokens: np.ndarray, received: np.ndarray, lost: np.ndarray, concealment: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, received) [..., frames] with the frames `lost` ((frames,) bool) concealed."""
    if concealment == "zeros":
        return tokens, received & ~lost
    return repeat_frames(tokens, received, last_received_frames(lost))
