"""EncodecCompressor as an audio effect: streaming and batch speed, against the model called directly.

    python benchmarks/effects.py [--seconds 5] [--block 512] [--bandwidth 6] [--rate 44100] [--channels 2]

Full-size 24 kHz model with random weights (speed does not depend on the weights), one thread,
44.1 kHz stereo noise by default. Speeds are times real time (audio duration / processing time,
above 1 is faster than real time), the best of `--runs` runs. Prints
  * streaming: the effect fed `--block`-sample blocks with reset=False, against the streaming codec
    called directly (`StreamingEncoder.push` then `StreamingDecoder.push`) on the same audio already
    resampled to 24 kHz, in blocks of the same duration. Their ratio is the effect's own overhead:
    streaming resampling in and out, layouts, channel mapping, `Codes` blocks, Python;
  * batch: the effect on the whole input against what it wraps called directly (resample_poly in,
    model.encode, model.decode, resample_poly out), as a ratio of times.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from encodec_fx import EncodecConfig
from encodec_fx.effects import EncodecCompressor
from encodec_fx.effects.resample import resample
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = random_model(EncodecConfig.encodec_24khz(num_filters=args.num_filters))
    model_rate = model.config.sampling_rate
    rate, block, seconds = args.rate, args.block, args.seconds
    audio = (0.1 * np.random.default_rng(0).standard_normal((args.channels, int(seconds * rate)))).astype(np.float32)
    effect = EncodecCompressor(args.bandwidth, model=model)
    latency = effect.latency_at(rate)
    print(f"24 kHz model, {args.num_filters} filters (random weights), {args.bandwidth:g} kbps, {rate} Hz x {args.channels} channel(s), "
          f"{seconds:g} s, one thread, best of {args.runs}; streaming latency {latency} samples "
          f"({1000 * latency / rate:.1f} ms)")

    def streaming() -> None:
        effect.reset()
        for start in range(0, audio.shape[-1], block):
            effect(audio[:, start: start + block], rate, reset=False)

    at_model_rate = torch.from_numpy(resample(audio, rate, model_rate))[:, None]  # channels as the batch
    cuts = [start * model_rate // rate for start in range(0, audio.shape[-1], block)] + [at_model_rate.shape[-1]]
    encoder, decoder = StreamingEncoder(model, args.bandwidth), StreamingDecoder(model)

    def streaming_direct() -> None:
        encoder.reset()
        decoder.reset()
        with torch.inference_mode():
            for start, end in zip(cuts, cuts[1:]):
                decoder.push(encoder.push(at_model_rate[..., start:end]))

    streaming(), streaming_direct()  # warm up
    stream_time, direct_stream_time = best_of(args.runs, streaming), best_of(args.runs, streaming_direct)
    print(f"streaming, {block}-sample blocks ({1000 * block / rate:.1f} ms): effect {seconds / stream_time:.2f}x "
          f"real time ({1000 * stream_time * block / audio.shape[-1]:.2f} ms per block); streaming codec called "
          f"directly {seconds / direct_stream_time:.2f}x; "
          f"effect / direct time = {stream_time / direct_stream_time:.3f}")

    def batch_direct() -> None:
        with torch.inference_mode():
            encoded = model.encode(torch.from_numpy(resample(audio, rate, model_rate))[:, None],
                                   bandwidth=args.bandwidth)
            decoded = model.decode(encoded.audio_codes, encoded.audio_scales)[0]
        resample(decoded[:, 0].numpy(), model_rate, rate, audio.shape[-1])

    def batch() -> None:
        effect(audio, rate)

    batch(), batch_direct()
    batch_time, direct_time = best_of(args.runs, batch), best_of(args.runs, batch_direct)
    print(f"batch: effect {seconds / batch_time:.2f}x real time, the model called directly "
          f"{seconds / direct_time:.2f}x; effect / direct time = {batch_time / direct_time:.3f}")


if __name__ == "__main__":
    main()
