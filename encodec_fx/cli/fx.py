"""`encodec-fx fx`: an audio file streamed through an effect chain (see docs/effects.md)."""

from __future__ import annotations

import argparse

from ..devices import add_device_argument
from ..pretrained import DEFAULT_MODEL


def fx(args: argparse.Namespace) -> None:
    """Stream an audio file through an effect chain; the output lines up with the input and has its length."""
    from ..effects.files import process_file
    from ..effects.spec import parse_chain
    chain = parse_chain(args.chain, default_model=args.model, default_device=args.device)
    process_file(args.input, args.output, chain, block_size=args.block_size, overwrite=args.force,
                 progress=not args.quiet)
    print(f"wrote {args.output}: {args.input} through {len(chain)} stage(s), latency {chain.latency} samples")


def add_fx(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("fx", help=fx.__doc__, description=fx.__doc__)
    command.add_argument("input", help="audio file (wav, flac, ogg, mp3, aiff)")
    command.add_argument("output", help="audio file to write; WAV is written as 32-bit float")
    command.add_argument("--chain", required=True,
                         help="stages separated by |, e.g. \"highpass(cutoff_frequency_hz=80) | encodec(bandwidth=1.5) | "
                              "reverb(room_size=0.3)\" (see docs/effects.md)")
    command.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"codec for encodec/encode/decode stages without model= (default {DEFAULT_MODEL})")
    command.add_argument("--block-size", type=int, default=8192, help="samples per block, 1 to 4194304 (default 8192)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_argument(command, "cpu", "cpu")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    command.set_defaults(run=fx)
