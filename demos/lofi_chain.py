"""A lo-fi chain of codec artefacts: EnCodec at a low bit rate, a few bit errors and native pedalboard
plugins around it, over an audio file (or a synthesised test signal), written as a WAV.

    python demos/lofi_chain.py [INPUT] [--output lofi.wav] [--force] [--bandwidth 1.5] [--model PATH_OR_NAME]

A file is streamed through the chain block by block (`process_file`, constant memory); the
synthesised signal is processed in one batch call. Both give output aligned with the input and of
its length. An existing output is overwritten only with --force, the input never. Without --model
the package's default model is used.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pedalboard

from encodec_fx import EncodecModel
from encodec_fx.audio_io import AUDIO_SUFFIXES, check_destination, open_audio, write_audio
from encodec_fx.cli import command_line_message
from encodec_fx.effects import Chain, EncodecDecoder, EncodecEncoder, TokenSubstitution
from encodec_fx.effects.files import process_file

MAX_SECONDS = 3600.0  # of test signal


def test_signal(rate: int, seconds: float) -> np.ndarray:
    """Stereo: a chord in the left-to-right field, a plucked melody and a few noise hits."""
    t = np.arange(int(rate * seconds)) / rate
    chord = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (110.0, 164.8, 220.0, 277.2))
    melody = np.zeros_like(t)
    for index, start in enumerate(np.arange(0.0, seconds, 0.25)):
        after = np.clip(t - start, 0.0, None)
        note = 440.0 * 2 ** ([0, 3, 7, 10, 12, 7][index % 6] / 12)
        melody += 0.15 * np.sin(2 * np.pi * note * after) * np.exp(-8.0 * after) * (t >= start)
    hits = np.random.default_rng(0).standard_normal(t.size) * np.exp(-40.0 * (t % 0.5)) * 0.2
    return np.stack([chord + melody + hits, 0.8 * chord + melody + 0.6 * hits]).astype(np.float32)


def lofi_chain(model: EncodecModel | None, bandwidth: float) -> Chain:
    """Band-limit and squash, code at `bandwidth` kbps with a few token errors, then colour and limit."""
    return Chain([
        pedalboard.HighpassFilter(cutoff_frequency_hz=120),
        pedalboard.Compressor(threshold_db=-20, ratio=3),
        EncodecEncoder(bandwidth=bandwidth, model=model),
        TokenSubstitution(rate=0.005, seed=0),  # the odd bit error: short chirps and smears
        EncodecDecoder(model=model),
        pedalboard.LowpassFilter(cutoff_frequency_hz=7000),
        pedalboard.Reverb(room_size=0.25, wet_level=0.15),
        pedalboard.Limiter(threshold_db=-1),
    ])


def check_arguments(args: argparse.Namespace) -> Path:
    """Bad arguments refused before any work; the output path, which is not the input and is
    overwritten only with --force."""
    if not (math.isfinite(args.seconds) and 0.01 <= args.seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds must be from 0.01 to {MAX_SECONDS:g}, got {args.seconds:g}")
    if args.input:
        with open_audio(args.input) as file:  # a missing, unreadable or empty input is refused now, not later
            if file.frames == 0:
                raise ValueError(f"{args.input} holds no audio samples")
    return check_destination(args.output, args.force, AUDIO_SUFFIXES, source=args.input)


def run(args: argparse.Namespace) -> None:
    output = check_arguments(args)
    model = EncodecModel.from_pretrained(args.model) if args.model else None  # None: the default model
    chain = lofi_chain(model, args.bandwidth)
    print(f"chain: {' -> '.join(type(stage).__name__ for stage in chain)}")
    if args.input:
        process_file(args.input, output, chain, block_size=4096, overwrite=args.force, progress=True)
    else:
        rate = 44100
        write_audio(output, chain(test_signal(rate, args.seconds), rate), rate, overwrite=args.force)
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="audio file (wav, flac, ogg, mp3, aiff); default: a test signal")
    parser.add_argument("--output", default="lofi.wav", help="audio file to write (default lofi.wav)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output (never the input)")
    parser.add_argument("--bandwidth", type=float, default=1.5, help="codec kbps (default 1.5, the lowest)")
    parser.add_argument("--model", help="model directory, checkpoint, shipped name or hub id (default: the package's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the test signal (default 4)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError) as error:  # bad input: one line, no traceback
        print(f"lofi_chain: error: {command_line_message(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
