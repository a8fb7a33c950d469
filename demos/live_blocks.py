"""Live-style processing: audio arrives in small blocks, each goes through a chain with reset=False
as an audio callback would, and the demo prints the chain's latency and the real-time factor.

    python demos/live_blocks.py [INPUT] [--block 512] [--frames-per-step N] [--output live.wav] [--force]
                                [--model PATH_OR_NAME]

The chain (gate, EnCodec, reverb) streams: each call returns the audio that block completes, the
first calls fewer samples (the latency is withheld at the start, never padded), and blocks of
silence flush the rest at the end. Midway the codec's bandwidth is lowered, as an automation lane
would, between two blocks. The real-time factor is audio duration / processing time: above 1, a
live callback keeps up (on this machine, with other load, at this block size). The codec codes
--frames-per-step frames at once (default: the most that adds no latency, fastest on average, but
the block completing a step does all of its work; 1 spreads the work evenly, which the slowest-block
figure shows). An existing output is overwritten only with --force, the input never. Without --model
the package's default model is used.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pedalboard
import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel
from encodec_fx.audio_io import AUDIO_SUFFIXES, check_destination, open_audio, write_audio
from encodec_fx.cli import command_line_message
from encodec_fx.effects import Chain, EncodecCompressor

MAX_BLOCK = 65536  # samples
MAX_SECONDS = 3600.0  # of test signal


def test_signal(rate: int, seconds: float) -> np.ndarray:
    """Stereo: a decaying note every quarter second over a soft chord."""
    t = np.arange(int(rate * seconds)) / rate
    since = t % 0.25
    notes = 0.2 * np.sin(2 * np.pi * 330.0 * 2 ** ((t // 0.25) % 5 / 12) * since) * np.exp(-10.0 * since)
    chord = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0))
    return np.stack([notes + chord, 0.7 * notes + chord]).astype(np.float32)


def check_arguments(args: argparse.Namespace) -> Path | None:
    """Bad arguments refused before any work; the output path if any, which is not the input and
    is overwritten only with --force."""
    if not 1 <= args.block <= MAX_BLOCK:
        raise ValueError(f"--block must be from 1 to {MAX_BLOCK} samples, got {args.block}")
    cores = os.cpu_count() or 1
    if not 1 <= args.threads <= cores:
        raise ValueError(f"--threads must be from 1 to {cores} (this machine's cores), got {args.threads}")
    if not (math.isfinite(args.seconds) and 0.01 <= args.seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds must be from 0.01 to {MAX_SECONDS:g}, got {args.seconds:g}")
    if not args.output:
        return None
    return check_destination(args.output, args.force, AUDIO_SUFFIXES, source=args.input)


def read(path: str) -> tuple[np.ndarray, int]:
    with open_audio(path) as file:
        if file.frames == 0:
            raise ValueError(f"{path} holds no audio samples")
        return file.read(file.frames), int(file.samplerate)


def run(args: argparse.Namespace) -> None:
    output_path = check_arguments(args)
    audio, rate = read(args.input) if args.input else (test_signal(44100, args.seconds), 44100)
    model = EncodecModel.from_pretrained(args.model or DEFAULT_MODEL)
    for flag, bandwidth in (("--bandwidth", args.bandwidth), ("--later-bandwidth", args.later_bandwidth)):
        try:  # both now, not halfway through the run
            model.num_quantizers_for_bandwidth(bandwidth)
        except ValueError as error:
            raise ValueError(f"{flag}: {error}") from None
    codec = EncodecCompressor(args.bandwidth, model=model, frames_per_step=args.frames_per_step)
    chain = Chain([pedalboard.NoiseGate(threshold_db=-60), codec, pedalboard.Reverb(room_size=0.2, wet_level=0.1)])
    torch.set_num_threads(args.threads)
    latency = chain.latency_at(rate)
    print(f"{audio.shape[0]} channel(s) at {rate} Hz, {args.block}-sample blocks ({1000 * args.block / rate:.1f} ms); "
          f"chain latency {latency} samples ({1000 * latency / rate:.1f} ms)")

    block, frames = args.block, audio.shape[-1]
    flush = -(-latency // block) * block
    signal = np.concatenate([audio, np.zeros((audio.shape[0], flush), np.float32)], axis=-1)
    outputs, times = [], []
    for start in range(0, signal.shape[-1], block):
        if start >= frames // 2 and codec.bandwidth != args.later_bandwidth:
            codec.bandwidth = args.later_bandwidth  # automation: takes effect from the codec's next step
            print(f"t = {start / rate:.2f} s: bandwidth {args.bandwidth:g} -> {args.later_bandwidth:g} kbps")
        began = time.perf_counter()
        outputs.append(chain(signal[:, start: start + block], rate, block, reset=False))
        times.append(time.perf_counter() - began)
    chain_time = sum(times)
    output = np.concatenate(outputs, axis=-1)[:, :frames]
    first = next(index for index, out in enumerate(outputs) if out.shape[-1])
    duration = signal.shape[-1] / rate
    late = sum(spent > block / rate for spent in times)
    withheld = signal.shape[-1] - sum(out.shape[-1] for out in outputs)
    print(f"first output in block {first}; {withheld} samples withheld in all (the reported latency, {latency}, "
          "plus any a native plugin holds back unreported)")
    print(f"real-time factor {duration / chain_time:.2f}x ({1000 * chain_time / len(times):.2f} ms per block on "
          f"average, slowest {1000 * max(times):.2f} ms; {late} of {len(times)} blocks took longer than their "
          f"{1000 * block / rate:.1f} ms)")
    if output_path:
        write_audio(output_path, output, rate, overwrite=args.force)  # appears only once complete
        print(f"wrote {output_path} ({output.shape[-1]} samples, aligned with the input)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="audio file; default: a synthesised test signal at 44.1 kHz")
    parser.add_argument("--block", type=int, default=512, help="samples per block (default 512)")
    parser.add_argument("--bandwidth", type=float, default=6.0, help="codec kbps at the start (default 6)")
    parser.add_argument("--later-bandwidth", type=float, default=1.5, help="codec kbps from halfway (default 1.5)")
    parser.add_argument("--output", help="audio file to write the streamed output to (default: none)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output (never the input)")
    parser.add_argument("--model", help="model directory, checkpoint, shipped name or hub id (default: the package's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the test signal (default 4)")
    parser.add_argument("--frames-per-step", type=int,
                        help="code frames computed at once (default: the codec effect's, 7 for the 24 kHz model)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: a small block is less work than handing it to threads)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError) as error:  # bad input: one line, no traceback
        print(f"live_blocks: error: {command_line_message(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
