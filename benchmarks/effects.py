"""EncodecCompressor as an audio effect: streaming speed, and the cost of the batch effect layer.

    python benchmarks/effects.py [--seconds 5] [--block 512] [--bandwidth 6] [--rate 44100] [--channels 2]

Full-size 24 kHz model with random weights, one thread, 44.1 kHz stereo noise by default. Prints
  * streaming: the effect fed `--block`-sample blocks with reset=False, as times real time (audio
    duration / processing time; above 1 is faster than real time), with what the time goes to:
    resampling in and out (`StreamingResampler`), the streaming encoder and the streaming decoder;
  * batch: the effect on the whole input versus what it wraps called directly (resample_poly in,
    model.encode, model.decode, resample_poly out), as a ratio of times.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.effects import EncodecCompressor
from encodec_fx.effects import codec_stream
from encodec_fx.effects.resample import resample


def best_of(runs: int, function: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def random_model() -> EncodecModel:
    torch.manual_seed(0)
    model = EncodecModel(EncodecConfig.encodec_24khz()).eval()
    for _, buffer in model.named_buffers():
        if buffer.dim() == 2:  # codebooks start at zero; give them values
            buffer.normal_()
    return model


class Stopwatch:
    """Wraps a method to add up the time spent in it."""

    def __init__(self, owner: type, name: str):
        self.owner, self.name, self.original, self.total = owner, name, getattr(owner, name), 0.0
        stopwatch = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return stopwatch.original(*args, **kwargs)
            finally:
                stopwatch.total += time.perf_counter() - start
        setattr(owner, name, timed)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = random_model()
    rate, block = args.rate, args.block
    audio = (0.1 * np.random.default_rng(0).standard_normal((args.channels, int(args.seconds * rate)))).astype(np.float32)
    effect = EncodecCompressor(args.bandwidth, model=model)
    print(f"24 kHz model (random weights), {args.bandwidth:g} kbps, {rate} Hz x {args.channels} channel(s), "
          f"{args.seconds:g} s, one thread; streaming latency {effect.latency_at(rate)} samples "
          f"({1000 * effect.latency_at(rate) / rate:.1f} ms)")

    def streaming() -> None:
        effect.reset()
        for start in range(0, audio.shape[-1], block):
            effect(audio[:, start: start + block], rate, reset=False)

    streaming()  # warm up
    stream_time = best_of(args.runs, streaming)
    watches = {"resampling": Stopwatch(codec_stream.StreamingResampler, "process"),
               "encoder": Stopwatch(codec_stream.StreamingEncoder, "push"),
               "decoder": Stopwatch(codec_stream.StreamingLayers, "push")}
    streaming()
    for watch in watches.values():
        watch.restore()
    print(f"streaming, {block}-sample blocks: {args.seconds / stream_time:.2f}x real time "
          f"({1000 * stream_time / (audio.shape[-1] / block):.2f} ms per block of {1000 * block / rate:.1f} ms)")
    total = sum(watch.total for watch in watches.values())
    parts = ", ".join(f"{name} {100 * watch.total / total:.0f}%" for name, watch in watches.items())
    print(f"  time spent (of the codec effect's streaming work): {parts}")

    def direct() -> None:
        at_model_rate = torch.from_numpy(resample(audio, rate, 24000))[:, None]
        with torch.inference_mode():
            encoded = model.encode(at_model_rate, bandwidth=args.bandwidth)
            decoded = model.decode(encoded.audio_codes, encoded.audio_scales)[0]
        resample(decoded[:, 0].numpy(), 24000, rate, audio.shape[-1])

    def batch() -> None:
        effect(audio, rate)

    batch()
    direct_time, batch_time = best_of(args.runs, direct), best_of(args.runs, batch)
    print(f"batch: effect {args.seconds / batch_time:.1f}x real time, the model called directly "
          f"{args.seconds / direct_time:.1f}x; effect / direct time = {batch_time / direct_time:.3f}")


if __name__ == "__main__":
    main()
