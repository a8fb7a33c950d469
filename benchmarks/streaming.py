"""Streaming versus offline coding on the full-size 24 kHz model, one thread, random weights.

    python benchmarks/streaming.py [--seconds 10] [--block 512] [--bandwidth 6]

Prints the real-time factor (processing time / audio duration; below 1 is faster than real time)
of the stateful streaming encoder + decoder fed `--block`-sample blocks, and of offline
`encode` + `decode` on the whole input, and checks both give the same codes.
"""

from __future__ import annotations

import argparse

import torch

from encodec_fx import StreamingDecoder, StreamingEncoder

from common import best_of, random_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = random_model()
    x = 0.1 * torch.randn(1, 1, int(args.seconds * model.config.sampling_rate))
    streamed: list[torch.Tensor] = []

    def offline() -> None:
        model.decode(model.encode(x, bandwidth=args.bandwidth).audio_codes)

    def streaming() -> None:
        encoder, decoder = StreamingEncoder(model, args.bandwidth), StreamingDecoder(model)
        streamed.clear()
        for start in range(0, x.shape[-1], args.block):
            streamed.append(encoder.push(x[..., start: start + args.block]))
            decoder.push(streamed[-1])
        streamed.append(encoder.flush())
        decoder.push(streamed[-1])
        decoder.flush()

    with torch.inference_mode():
        offline_rtf = best_of(args.runs, offline) / args.seconds
        streaming_rtf = best_of(args.runs, streaming) / args.seconds
        same = torch.equal(torch.cat(streamed, dim=-1), model.encode(x, bandwidth=args.bandwidth).audio_codes[0])
    print(f"real-time factor, 1 thread, {args.seconds:g} s at {args.bandwidth:g} kbps: "
          f"streaming {streaming_rtf:.3f} ({args.block}-sample blocks, {1 / streaming_rtf:.1f}x real time), "
          f"offline {offline_rtf:.3f} ({1 / offline_rtf:.1f}x real time); same codes: {same}")


if __name__ == "__main__":
    main()
