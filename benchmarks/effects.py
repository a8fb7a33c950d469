"""EncodecCompressor as an audio effect: streaming and batch speed, against the model called directly.

    python benchmarks/effects.py [--seconds 5] [--block 512] [--bandwidth 6] [--rate 44100] [--channels 2]
                                 [--num-filters 32] [--frames-per-step 1,default] [--precision exact]

Full-size 24 kHz model with random weights (speed does not depend on the weights; `--num-filters 16` is the
shipped model's size), one thread, 44.1 kHz stereo noise by default, the effect decoding at its default
precision unless `--precision` says (`encodec_fx.precision`; the direct codec decodes at the same).
Speeds are times real time (audio duration / processing time, above 1 is faster than real time), the
best of `--runs` runs. Prints
  * streaming, for each `--frames-per-step` k: the effect fed `--block`-sample blocks with
    reset=False, against the streaming codec called directly (`StreamingEncoder.push` then
    `StreamingDecoder.push`) on the same audio already resampled to 24 kHz, k hops at a time. Their
    ratio is the effect's own overhead: streaming resampling in and out, layouts, channel mapping,
    `Codes` blocks, Python. The latency is the effect's, which grows by a hop per extra frame;
  * batch: the effect on the whole input against what it wraps called directly (the package's resample in,
    model.encode, model.decode, resample out), as a ratio of times.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from encodec_fx import EncodecConfig
from encodec_fx.effects import EncodecCompressor
from encodec_fx.precision import PRECISIONS
from encodec_fx.resample import resample
from encodec_fx.stream import default_frames_per_step
from encodec_fx.streaming import StreamingDecoder, StreamingEncoder

from common import best_of, random_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--num-filters", type=int, default=32,
                        help="model width: 32 is the official model's, 16 the shipped default's")
    parser.add_argument("--frames-per-step", default="1,default",
                        help="comma-separated frames_per_step values to measure streaming with; "
                             "'default' is the effect's own choice (the most that adds no latency)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="the effect's decoding precision (default: the effect's own choice)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = random_model(EncodecConfig.encodec_24khz(num_filters=args.num_filters))
    model_rate = model.config.sampling_rate
    rate, block, seconds = args.rate, args.block, args.seconds
    audio = (0.1 * np.random.default_rng(0).standard_normal((args.channels, int(seconds * rate)))).astype(np.float32)
    effect = EncodecCompressor(args.bandwidth, model=model, precision=args.precision)
    precision = effect.decoding_precision
    print(f"24 kHz model, {args.num_filters} filters (random weights), {args.bandwidth:g} kbps, {rate} Hz x "
          f"{args.channels} channel(s), {seconds:g} s, one thread, best of {args.runs}, decoding at {precision}; "
          "streaming in "
          f"{block}-sample blocks ({1000 * block / rate:.1f} ms)")
    at_model_rate = torch.from_numpy(resample(audio, rate, model_rate))[:, None]  # channels as the batch
    encoder, decoder = StreamingEncoder(model, args.bandwidth), StreamingDecoder(model, precision)

    for value in args.frames_per_step.split(","):
        frames_per_step = default_frames_per_step(model) if value == "default" else int(value)
        streaming_effect = EncodecCompressor(args.bandwidth, model=model, precision=args.precision,
                                             frames_per_step=None if value == "default" else frames_per_step)
        step = frames_per_step * model.config.hop_length

        def streaming() -> None:
            streaming_effect.reset()
            for start in range(0, audio.shape[-1], block):
                streaming_effect(audio[:, start: start + block], rate, reset=False)

        def streaming_direct() -> None:
            encoder.reset()
            decoder.reset()
            with torch.inference_mode():
                for start in range(0, at_model_rate.shape[-1], step):
                    decoder.push(encoder.push(at_model_rate[..., start: start + step]))

        streaming(), streaming_direct()  # warm up
        stream_time, direct_stream_time = best_of(args.runs, streaming), best_of(args.runs, streaming_direct)
        latency = streaming_effect.latency_at(rate)
        name = f"{frames_per_step} (the default)" if value == "default" else frames_per_step
        print(f"streaming, frames_per_step={name} (latency {latency} samples, {1000 * latency / rate:.1f} ms): "
              f"effect {seconds / stream_time:.2f}x real time ({1000 * stream_time * block / audio.shape[-1]:.2f} ms "
              f"per block); streaming codec called directly {seconds / direct_stream_time:.2f}x; "
              f"effect / direct time = {stream_time / direct_stream_time:.3f}")

    def batch_direct() -> None:
        with torch.inference_mode():
            encoded = model.encode(torch.from_numpy(resample(audio, rate, model_rate))[:, None],
                                   bandwidth=args.bandwidth)
            decoded = model.decode(encoded.audio_codes, encoded.audio_scales, precision=precision)[0]
        resample(decoded[:, 0].numpy(), model_rate, rate, audio.shape[-1])

    def batch() -> None:
        effect(audio, rate)

    batch(), batch_direct()
    batch_time, direct_time = best_of(args.runs, batch), best_of(args.runs, batch_direct)
    print(f"batch: effect {seconds / batch_time:.2f}x real time, the model called directly "
          f"{seconds / direct_time:.2f}x; effect / direct time = {batch_time / direct_time:.3f}")


if __name__ == "__main__":
    main()
