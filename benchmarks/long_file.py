"""Peak memory and time of compressing and of streaming a long file, against its length.

    python benchmarks/long_file.py [--minutes 60] [--shorter 5 15] [--threads 1] [--num-filters 32] [--keep DIR]

Writes a synthetic 44.1 kHz stereo WAV of `--minutes` (and of each `--shorter` length) to a temporary
folder, then runs, each in a fresh process so that its peak RSS is its own, on a 24 kHz model with
random weights (full size, or `--num-filters 16` as the shipped default):

* `compress`: `encodec_fx.compress.compress_file` in raw mode at 6 kbps (random weights have no LM;
  the coding mode costs little beside the codec), the stereo file coded jointly on the mono model
  (four streams of the first 20 s to choose the split, then the two chosen streams of the whole file);
* `effect`: `encodec_fx.effects.files.process_file` through an `EncodecCompressor` (encode and
  decode, streaming, 8192-sample blocks).

Prints seconds, real-time factor and peak RSS per length, and the time per minute of audio, which
stays flat when time is linear in the length. The 1-hour default takes a while (about one real-time
factor times an hour per step): use `--minutes 5 --shorter 1 2` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE, CHANNELS = 44_100, 2


def write_synthetic(path: Path, minutes: float) -> None:
    """Tones, a slow tremolo and a little noise, written a minute at a time (constant memory)."""
    from pedalboard.io import AudioFile
    rng = np.random.default_rng(0)
    total, block = int(minutes * 60 * RATE), 60 * RATE
    with AudioFile(str(path), "w", samplerate=RATE, num_channels=CHANNELS, bit_depth=16) as sink:
        for start in range(0, total, block):
            t = np.arange(start, min(start + block, total)) / RATE
            tone = np.sin(2 * np.pi * 220.0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
            left = 0.3 * tone + 0.01 * rng.standard_normal(len(t))
            right = 0.3 * np.sin(2 * np.pi * 330.0 * t) + 0.01 * rng.standard_normal(len(t))
            sink.write(np.stack([left, right]).astype(np.float32))


def child(task: str, source: Path, threads: int, num_filters: int) -> None:
    """Run one task and print {"seconds", "peak_rss_mib"} as JSON."""
    import torch
    torch.set_num_threads(threads)
    from encodec_fx import EncodecConfig

    from common import random_model
    model = random_model(EncodecConfig.encodec_24khz(num_filters=num_filters))
    start = time.perf_counter()
    if task == "compress":
        from encodec_fx.compress import compress_file
        compress_file(source, source.with_suffix(".ecfx"), model, bandwidth=6.0, mode="raw",
                      model_name="random-24khz", overwrite=True, progress=False)
    else:
        from encodec_fx.effects import EncodecCompressor
        from encodec_fx.effects.files import process_file
        process_file(source, source.with_name(source.stem + "-coded.wav"), EncodecCompressor(6.0, model=model),
                     overwrite=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak}))


def measure(task: str, source: Path, threads: int, num_filters: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", task, str(source), "--threads", str(threads),
                             "--num-filters", str(num_filters)],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{task} on {source.name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--shorter", type=float, nargs="*", default=[5.0, 15.0],
                        help="shorter lengths in minutes, to show that time grows linearly")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-filters", type=int, default=32,
                        help="32: the official model's size; 16: the shipped default's")
    parser.add_argument("--tasks", nargs="+", choices=["compress", "effect"], default=["compress", "effect"])
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.threads, args.num_filters)
        return
    lengths = sorted({*args.shorter, args.minutes})
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"44.1 kHz stereo 16-bit WAV, random-weight 24 kHz model ({args.num_filters} filters) at 6 kbps, "
              f"{args.threads} thread(s)")
        for minutes in lengths:
            source = folder / f"synthetic-{minutes:g}min.wav"
            write_synthetic(source, minutes)
            for task in args.tasks:
                result = measure(task, source, args.threads, args.num_filters)
                print(f"{task:8s} {minutes:6g} min: {result['seconds']:8.1f} s "
                      f"(RTF {result['seconds'] / (60 * minutes):.3f}, "
                      f"{result['seconds'] / minutes:6.1f} s per minute of audio), "
                      f"peak RSS {result['peak_rss_mib']:.0f} MiB",
                      flush=True)
            if not args.keep:
                for path in folder.glob(f"synthetic-{minutes:g}min*"):
                    path.unlink()


if __name__ == "__main__":
    main()
