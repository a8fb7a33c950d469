"""Pack what a GPU session needs to train, into one folder small enough to carry to the device machine.

    python training/pack_gpu_corpus.py corpus/ training/gpu --megabytes 40

The device machine reaches no network and takes at most 64 MiB of carried files, so the 2.5 h corpus
(about 250 MB as FLAC) cannot go whole. This takes an equal share of every source of the training
split (speech, voices, music, recordings, mixtures), whole files in name order, and the validation
split's first files per source, as 24 kHz mono 16-bit FLAC, until `--megabytes` are used; and it
downloads the wheels the device's Python lacks (pedalboard, constriction), for `training/gpu_run.sh`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from encodec_fx.audio_io import AUDIO_SUFFIXES, read_audio

RATE = 24_000
VALIDATION_SHARE = 0.1
DEVICE_PYTHON = "3.12"  # the device image's Python (/work/.library/device/KINDS.md)
WHEELS = ("pedalboard", "constriction")


def by_source(folder: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES:
            groups[path.name.split("-", 1)[0]].append(path)
    return groups


def copy_within(files: dict[str, list[Path]], destination: Path, budget: int) -> int:
    """Round-robin over sources, one whole file at a time, while the budget lasts; returns bytes used."""
    destination.mkdir(parents=True, exist_ok=True)
    used, queues = 0, {source: list(paths) for source, paths in files.items()}
    while any(queues.values()):
        for source, queue in queues.items():
            if not queue:
                continue
            path = queue.pop(0)
            audio = read_audio(path, RATE).mean(axis=0, keepdims=True)
            target = destination / f"{path.stem}.flac"
            with AudioFile(str(target), "w", samplerate=RATE, num_channels=1, bit_depth=16) as file:
                file.write(np.clip(audio, -1, 1).astype(np.float32))
            size = target.stat().st_size
            if used + size > budget:
                target.unlink()
                return used
            used += size
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a corpus folder with train/ and validation/")
    parser.add_argument("output", type=Path, help="folder to write corpus/, validation/ and wheels/ into")
    parser.add_argument("--megabytes", type=float, default=40.0, help="audio budget (default 40)")
    args = parser.parse_args(argv)
    budget = int(args.megabytes * 1e6)
    for split in ("train", "validation"):
        if not (args.corpus / split).is_dir():
            parser.error(f"{args.corpus} has no {split}/ folder: give a corpus built by `python -m training.corpus`")
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"{args.output} exists and is not empty")
    validation = copy_within(by_source(args.corpus / "validation"), args.output / "validation",
                             int(budget * VALIDATION_SHARE))
    train = copy_within(by_source(args.corpus / "train"), args.output / "corpus", budget - validation)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
                    "--python-version", DEVICE_PYTHON, "--platform", "manylinux2014_x86_64",
                    "--platform", "manylinux_2_28_x86_64", "-d", str(args.output / "wheels"), *WHEELS], check=True)
    wheels = sum(p.stat().st_size for p in (args.output / "wheels").iterdir())
    print(f"wrote {args.output}: {train / 1e6:.1f} MB training audio, {validation / 1e6:.1f} MB validation, "
          f"{wheels / 1e6:.1f} MB wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
