"""Codec augmentation for training: the batched path against a per-example loop and against MP3.

    python benchmarks/augment.py [--batch 32] [--seconds 4] [--rate 16000] [--threads 1,2] [--runs 3]
                                 [--model encodec-fx-24khz] [--device cpu]

A batch of `--batch` examples of `--seconds` s of mono noise at `--rate` Hz, each coded at a bandwidth drawn
from 1.5 to 24 kbps (`TorchEncodecCompression`, p=1, one seed for every row), timed as
  * batched: the transform on the (batch, 1, samples) tensor (on a CPU one example per model call, the
    default there: `encodec_fx.augment.batch.examples_per_call`);
  * one call: `code_batch` with the same draws and `per_call=batch`: one encoder and one decoder call;
  * loop: `EncodecCompressor` at each example's drawn bandwidth, one example after the other (what a
    pipeline does without the batched path); the batched output is checked against it (max |difference|);
  * batched + bursty loss: `TorchEncodecPacketLoss` (10-20 % Gilbert-Elliott loss, bursts of 2-4 packets,
    repeat concealment, 1e-3 bit errors) on the same batch, to show what the damage adds;
  * MP3: audiomentations' `Mp3Compression` (8-64 kbps, its default fast-mp3-augment backend) on each example,
    where audiomentations and that backend are installed.
Examples per second are the best of `--runs` runs, for each thread count (`torch.set_num_threads`).
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from encodec_fx import EncodecModel
from encodec_fx.augment import TorchEncodecCompression, TorchEncodecPacketLoss, code_batch
from encodec_fx.effects import EncodecCompressor

from common import best_of


def mp3_transform() -> object | None:
    try:
        import fast_mp3_augment  # noqa: F401  (audiomentations' default backend, an optional extra of it)
        from audiomentations import Mp3Compression
    except ImportError:
        return None
    return Mp3Compression(min_bitrate=8, max_bitrate=64, p=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="encodec-fx-24khz", help="anything EncodecModel.from_pretrained takes")
    parser.add_argument("--device", default="cpu", help="where the batched path codes (cpu, cuda)")
    args = parser.parse_args()

    model = EncodecModel.from_pretrained(args.model, device=args.device)
    rng = np.random.default_rng(0)
    num_samples = int(args.seconds * args.rate)
    audio = (rng.standard_normal((args.batch, 1, num_samples)) * 0.1).astype(np.float32)
    batch = torch.from_numpy(audio).to(args.device)
    compress = TorchEncodecCompression(1.5, 24.0, model=model, p=1.0, sample_rate=args.rate, seed=0)
    damage = TorchEncodecPacketLoss(0.1, 0.2, burst_length=(2, 4), concealment="repeat", bit_error_rate=1e-3,
                                    min_bandwidth=1.5, max_bandwidth=24.0, model=model, p=1.0,
                                    sample_rate=args.rate, seed=0)
    compress.randomize_parameters(batch, args.rate)
    compress.freeze_parameters()  # the same bandwidths in every run and in the loop
    bandwidths = [draw.bandwidth for draw in compress.transform_parameters["draws"]]
    # the loop at the batched path's precision ("exact"): the effect's own default decodes in bfloat16 where native
    effects = {kbps: EncodecCompressor(bandwidth=kbps, model=model, precision="exact") for kbps in set(bandwidths)}
    mp3 = mp3_transform()

    def loop() -> np.ndarray:
        return np.stack([effects[kbps](example, args.rate) for kbps, example in zip(bandwidths, audio)])

    batched = compress(batch).samples.cpu().numpy()
    difference = float(np.abs(batched - loop()).max())
    print(f"{args.batch} x {args.seconds:g} s at {args.rate} Hz, model {args.model} on {args.device}; "
          f"bandwidths drawn: {sorted(bandwidths)}")
    print(f"batched vs loop: max |difference| {difference:.2e}")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    draws = compress.transform_parameters["draws"]
    print("| threads | batched ex/s | one call ex/s | loop ex/s | batched / loop | batched + bursty loss ex/s "
          "| MP3 ex/s |")
    print("|---|---|---|---|---|---|---|")
    for threads in [int(n) for n in args.threads.split(",")]:
        torch.set_num_threads(threads)
        batched_s = best_of(args.runs, lambda: compress(batch))
        one_call_s = best_of(args.runs, lambda: code_batch(model, batch, args.rate, draws, per_call=args.batch))
        loop_s = best_of(args.runs, loop) if args.device == "cpu" else float("nan")
        damage_s = best_of(args.runs, lambda: damage(batch))
        mp3_s = best_of(args.runs, lambda: [mp3(example[0], args.rate) for example in audio]) if mp3 else float("nan")
        rate = [args.batch / seconds for seconds in (batched_s, one_call_s, loop_s, damage_s, mp3_s)]
        print(f"| {threads} | {rate[0]:.1f} | {rate[1]:.1f} | {rate[2]:.1f} | {loop_s / batched_s:.2f}x | "
              f"{rate[3]:.1f} | {rate[4]:.1f} |")


if __name__ == "__main__":
    main()
