"""Packet loss and bit errors on an EnCodec stream: the damaged audio, and spectrograms before and after.

    python demos/packet_loss.py [INPUT] [--loss 0.1] [--packet-frames 3] [--concealment repeat]
                                [--bit-errors 0.01] [--seed 0] [--prefix packet_loss] [--force] [--model PATH_OR_NAME]

Writes PREFIX_clean.wav (coded and decoded, nothing lost), PREFIX_damaged.wav (packets of
`--packet-frames` code frames lost with probability `--loss`, concealed, and tokens replaced with
probability `--bit-errors`) and, with matplotlib installed (`pip install 'encodec-fx[demos]'`),
PREFIX.png: spectrograms of the input, the clean and the damaged audio. The damage is drawn from
`--seed`, the same every run. Existing files are overwritten only with --force, the input never.
Without --model the package's default model is used.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from encodec_fx import EncodecModel
from encodec_fx.audio_io import check_destination, open_audio, write_options
from encodec_fx.cli import command_line_message
from encodec_fx.effects import Chain, EncodecDecoder, EncodecEncoder, PacketLoss, TokenSubstitution
from entropy.atomic import replacing

MAX_SECONDS = 3600.0  # of test signal


def test_signal(rate: int, seconds: float) -> np.ndarray:
    """Mono: a rising then falling tone with harmonics over quiet noise, easy to follow in a spectrogram."""
    t = np.arange(int(rate * seconds)) / rate
    pitch = 220.0 * 2 ** (2 * np.minimum(t, seconds - t) / seconds)  # up an octave and back
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    tone = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6))
    return (tone + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)[np.newaxis]


def read(path: str) -> tuple[np.ndarray, int]:
    with open_audio(path) as file:
        if file.frames == 0:
            raise ValueError(f"{path} holds no audio samples")
        return file.read(file.frames), int(file.samplerate)


def write(path: Path, audio: np.ndarray, rate: int) -> None:
    with AudioFile(str(path), "w", samplerate=rate, num_channels=audio.shape[0], **write_options(path)) as file:
        file.write(audio)


def pyplot():
    """matplotlib.pyplot, or None if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(plt, path: Path, signals: dict[str, np.ndarray], rate: int) -> None:
    """Spectrograms (first channel) one above the other."""
    figure, axes = plt.subplots(len(signals), 1, figsize=(9, 2.6 * len(signals)), sharex=True, constrained_layout=True)
    for axis, (title, audio) in zip(axes, signals.items()):
        axis.specgram(audio[0], NFFT=1024, Fs=rate, noverlap=768, cmap="magma", vmin=-120)
        axis.set_title(title)
        axis.set_ylabel("Hz")
    axes[-1].set_xlabel("seconds")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def check_arguments(args: argparse.Namespace, plt) -> list[Path]:
    """Bad arguments refused before any work; the files to write, none of them the input and
    existing ones overwritten only with --force."""
    if not (math.isfinite(args.seconds) and 0.01 <= args.seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds must be from 0.01 to {MAX_SECONDS:g}, got {args.seconds:g}")
    outputs = [f"{args.prefix}_clean.wav", f"{args.prefix}_damaged.wav"] + ([f"{args.prefix}.png"] if plt else [])
    return [check_destination(output, args.force, source=args.input) for output in outputs]


def run(args: argparse.Namespace) -> None:
    plt = pyplot()
    outputs = check_arguments(args, plt)
    audio, rate = read(args.input) if args.input else (test_signal(24000, args.seconds), 24000)
    model = EncodecModel.from_pretrained(args.model) if args.model else None  # None: the default model
    encoder = EncodecEncoder(args.bandwidth, model=model)
    decoder = EncodecDecoder(model=encoder.model)
    loss = PacketLoss(args.loss, packet_frames=args.packet_frames, concealment=args.concealment, seed=args.seed)
    damage = Chain([loss, TokenSubstitution(args.bit_errors, seed=args.seed)])  # codes → codes
    codes = encoder(audio, rate)
    clean, damaged = decoder(codes, rate), decoder(damage(codes, rate), rate)
    # the same seed draws the same losses whatever the concealment: count them where nothing is concealed
    lost = ~PacketLoss(args.loss, args.packet_frames, "zeros", args.seed)(codes, rate).received.any(axis=(1, 2))
    changed = (damage[1](codes, rate).audio_codes != codes.audio_codes).mean()
    print(f"{codes.num_frames} code frames at {codes.bandwidth:g} kbps: {100 * lost.mean():.1f}% of frames lost "
          f"({args.concealment} concealment), {100 * changed:.2f}% of tokens changed")
    damage_title = f"{100 * args.loss:g}% packet loss ({args.concealment}), {100 * args.bit_errors:g}% token errors"
    signals = {"input": audio, f"EnCodec {codes.bandwidth:g} kbps": clean, damage_title: damaged}
    with replacing(*outputs) as temporaries:  # the files appear together, once all are complete
        write(temporaries[0], clean, rate)
        write(temporaries[1], damaged, rate)
        if plt:
            plot(plt, temporaries[2], signals, rate)
    print(f"wrote {', '.join(map(str, outputs))}")
    if not plt:
        print("no spectrogram plot: matplotlib is not installed (pip install 'encodec-fx[demos]')")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="audio file; default: a synthesised test signal")
    parser.add_argument("--loss", type=float, default=0.1, help="probability a packet is lost (default 0.1)")
    parser.add_argument("--packet-frames", type=int, default=3, help="code frames per packet (default 3)")
    parser.add_argument("--concealment", choices=PacketLoss.CONCEALMENTS, default="repeat",
                        help="what replaces a lost packet (default repeat)")
    parser.add_argument("--bit-errors", type=float, default=0.01, help="probability a token is corrupted")
    parser.add_argument("--bandwidth", type=float, default=6.0, help="codec kbps (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the losses and bit errors (default 0)")
    parser.add_argument("--prefix", default="packet_loss", help="output file prefix (default packet_loss)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files (never the input)")
    parser.add_argument("--model", help="model directory, checkpoint, shipped name or hub id (default: the package's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the test signal (default 4)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError) as error:  # bad input: one line, no traceback
        print(f"packet_loss: error: {command_line_message(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
