"""`encodec-fx fx`: an audio file streamed through an effect chain (see docs/effects.md)."""

from __future__ import annotations

import argparse

from ..audio_io import AUDIO_SUFFIXES
from ..devices import add_device_argument
from ..pretrained import DEFAULT_MODEL
from .collections import add_paths, add_run_arguments, check_one_file, single_or_many


def fx(args: argparse.Namespace) -> int:
    """Stream audio through an effect chain; each output lines up with its input and has its length. One
    file (INPUT OUTPUT), or files, folders and manifests into a mirrored tree (-o OUTPUT_DIR)."""
    many = single_or_many(args, "OUTPUT")
    if not many:
        check_one_file(args, AUDIO_SUFFIXES, audio_input=True)
    from ..effects.files import process_file
    from ..effects.spec import parse_chain
    if many:
        from ..collection.effects import EffectsJob
        from .collections import run_and_report
        parse_chain(args.chain, default_model=args.model, default_device=args.device)  # a bad spec: before any work
        job = EffectsJob(chain=args.chain, model=args.model, device=str(args.device), block_size=args.block_size,
                         suffix=f".{args.format}")
        return run_and_report(job, args.inputs, args.output_dir, args)
    chain = parse_chain(args.chain, default_model=args.model, default_device=args.device)
    process_file(args.input, args.output, chain, block_size=args.block_size, overwrite=args.force,
                 progress=not args.quiet)
    print(f"wrote {args.output}: {args.input} through {len(chain)} stage(s), latency {chain.latency} samples")
    return 0


def add_fx(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("fx", help="stream audio through an effect chain", description=fx.__doc__)
    add_paths(command, one="INPUT OUTPUT for one audio file (wav, flac, ogg, mp3, aiff; WAV is written as 32-bit "
                           "float)", many="the audio files, folders and manifests to process",
              verb="process many inputs", audio_out=True)
    command.add_argument("--chain", required=True,
                         help="stages separated by |, e.g. \"highpass(cutoff_frequency_hz=80) | "
                              "encodec(bandwidth=1.5) | reverb(room_size=0.3)\" (see docs/effects.md)")
    command.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"codec for encodec/encode/decode stages without model= (default {DEFAULT_MODEL})")
    command.add_argument("--block-size", type=int, default=8192, help="samples per block, 1 to 4194304 (default 8192)")
    add_device_argument(command, "cpu", "cpu")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_run_arguments(command)
    command.set_defaults(run=fx)
