"""The package's resampler against scipy's `resample_poly` (default Kaiser β = 5) and pedalboard's
`StreamResampler`: how much of the passband they keep, how much of what cannot fit the output rate
folds back (aliasing), and how fast they are, whole-file and streamed, in one run.

    python benchmarks/resampling.py [--seconds 60] [--block 512]

Gains are output over input RMS of a 2 s tone (middle second), at fractions of the lower Nyquist
frequency; times are the best of 3 on `--seconds` of stereo noise, and ratios to the package's.
"""

from __future__ import annotations

import argparse

import numpy as np
from pedalboard.io import StreamResampler
from scipy.signal import resample_poly

from encodec_fx.resample import Resampler, resample

from common import best_of

PAIRS = [(44_100, 24_000), (48_000, 24_000), (24_000, 44_100), (16_000, 24_000), (8_000, 24_000)]
FRACTIONS = (0.9, 0.95, 1.05, 1.3)


def ours_stream(audio: np.ndarray, a: int, b: int, block: int) -> np.ndarray:
    resampler = Resampler(a, b)
    pieces = [resampler.process(audio[:, i: i + block]) for i in range(0, audio.shape[-1], block)]
    return np.concatenate(pieces + [resampler.flush()], axis=-1)


def pedalboard_stream(audio: np.ndarray, a: int, b: int, block: int) -> np.ndarray:
    resampler = StreamResampler(a, b, audio.shape[0])
    pieces = [resampler.process(np.ascontiguousarray(audio[:, i: i + block])) for i in range(0, audio.shape[-1], block)]
    return np.concatenate(pieces + [resampler.process(None)], axis=-1)


def scipy_whole(audio: np.ndarray, a: int, b: int) -> np.ndarray:
    common = np.gcd(a, b)
    return resample_poly(audio, b // common, a // common, axis=-1).astype(np.float32)


RESAMPLERS = {  # name → (whole, stream); scipy has no stream
    "encodec-fx": (lambda x, a, b: resample(x, a, b), ours_stream),
    "scipy resample_poly": (scipy_whole, None),
    "pedalboard": (lambda x, a, b: pedalboard_stream(x, a, b, x.shape[-1]), pedalboard_stream),
}


def gain_db(whole, frequency: float, a: int, b: int) -> float:
    t = np.arange(2 * a) / a
    out = whole(np.sin(2 * np.pi * frequency * t).astype(np.float32)[None], a, b)[0]
    middle = out[len(out) // 4: 3 * len(out) // 4]
    return 10 * np.log10(np.mean(middle.astype(np.float64) ** 2) / 0.5 + 1e-30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block", type=int, default=512)
    args = parser.parse_args()
    for a, b in PAIRS:
        nyquist = min(a, b) / 2
        fractions = [f for f in FRACTIONS if f * nyquist < a / 2]
        noise = (0.1 * np.random.default_rng(0).standard_normal((2, int(args.seconds * a)))).astype(np.float32)
        print(f"\n{a} → {b} Hz: gain (dB) at {', '.join(f'{f:g}' for f in fractions)} × Nyquist; time for "
              f"{args.seconds:g} s stereo")
        print("| resampler | " + " | ".join(f"{f:g}×" for f in fractions) + " | whole (s) | stream (s) |")
        print("|---|" + "---|" * (len(fractions) + 2))
        ours = None
        for name, (whole, stream) in RESAMPLERS.items():
            gains = [gain_db(whole, f * nyquist, a, b) for f in fractions]
            whole_s = best_of(3, lambda: whole(noise, a, b))
            stream_s = best_of(3, lambda: stream(noise, a, b, args.block)) if stream else None
            ours = ours or (whole_s, stream_s)
            ratio = f" ({whole_s / ours[0]:.1f}×)"
            streamed = "–" if stream_s is None else f"{stream_s:.3f} ({stream_s / ours[1]:.1f}×)"
            print(f"| {name} | " + " | ".join(f"{g:.1f}" for g in gains) + f" | {whole_s:.3f}{ratio} | {streamed} |")


if __name__ == "__main__":
    main()
