"""The `encodec-fx` command line. Errors are one line on stderr and a non-zero exit status, unexpected
ones too (ENCODEC_FX_TRACEBACK=1 shows their traceback)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .config import EncodecConfig
from .devices import add_device_argument
from .model import EncodecModel
from .pretrained import DEFAULT_MODEL, default_lm, is_shipped, is_shipped_lm

TRACEBACK_VARIABLE = "ENCODEC_FX_TRACEBACK"


def convert(args: argparse.Namespace) -> None:
    """Checkpoint (original `.th`, state dict, hub directory or hub id) → hub-layout directory."""
    output = Path(args.output)
    if output.exists() and any(output.iterdir()) and not args.force:
        raise FileExistsError(f"{output} exists and is not empty; pass --force to write into it")
    config = EncodecConfig.from_pretrained(args.config) if args.config else None
    model = EncodecModel.from_pretrained(args.source, config=config)
    model.save_pretrained(output)
    rates = ", ".join(f"{b:g}" for b in model.config.target_bandwidths)
    print(f"wrote {output}: {model.config.sampling_rate} Hz, {model.config.audio_channels} channel(s), "
          f"bandwidths {rates} kbps")


def load_codec(source: str | None, device: torch.device, named: str | None = None) -> EncodecModel:
    """The codec named on the command line, or for decompression the one the archive names (`named`:
    a shipped model's name, or a path that exists here)."""
    if source is None and named is not None and (is_shipped(named) or Path(named).exists()):
        source = named
    if source is None:
        needed = f" (this archive needs codec {named!r})" if named is not None else ""
        raise ValueError(f"no codec given{needed}: pass --model with a model directory, checkpoint, shipped "
                         "model name or hub id")
    return EncodecModel.from_pretrained(source, device=device)


def compress(args: argparse.Namespace) -> None:
    """Compress an audio file into a .ecfx archive."""
    from .compress import compress_file
    from .lm import load_lm
    model = load_codec(args.model, args.device)
    wants_lm = not args.no_lm and args.coding in (None, "lm")
    lm_name = (args.lm or default_lm(args.model)) if wants_lm else None  # a shipped codec's LM by default
    lm = load_lm(lm_name) if lm_name else None
    mode = args.coding or "auto"  # the smallest archive of the modes there is a model for
    header = compress_file(args.input, args.output, model, bandwidth=args.bandwidth, mode=mode,
                           model_name=args.model, lm=lm, lm_name=lm_name, overwrite=args.force)
    size = Path(args.output).stat().st_size
    seconds = header.audio_length / header.sample_rate
    print(f"wrote {args.output}: {seconds:.2f} s at {header.bandwidth:g} kbps codes, {header.coding_mode} coding, "
          f"{size} bytes = {size * 8 / seconds / 1000:.2f} kbps")


def decompress(args: argparse.Namespace) -> None:
    """Decode a .ecfx archive to an audio file with the original rate, channels and length."""
    from entropy.archive import ArchiveHeader, ArchiveReader

    from .compress import decompress_file
    from .lm import load_lm
    with ArchiveReader(args.input) as reader:
        header = ArchiveHeader.from_dict(reader.header)  # a nonsensical header is refused here
    model = load_codec(args.model, args.device, header.codec["name"])
    named_lm = header.lm["name"] if header.lm else None
    lm_source = args.lm or (named_lm if named_lm and (is_shipped_lm(named_lm) or Path(named_lm).is_file()) else None)
    lost = decompress_file(args.input, args.output, model, lm=load_lm(lm_source) if lm_source else None,
                           overwrite=args.force, recover=args.recover)
    for segment in lost:
        print(f"lost segment {segment.number} ({segment.start_seconds:.2f}–{segment.end_seconds:.2f} s), "
              f"written as silence: {segment.reason}", file=sys.stderr)
    print(f"wrote {args.output}" + (f" with {len(lost)} segment(s) lost" if lost else ""))


def info(args: argparse.Namespace) -> None:
    """Describe a .ecfx archive."""
    from entropy.describe import describe_archive
    description = describe_archive(args.archive)
    if not description["complete"]:
        print(f"encodec-fx info: warning: the archive is cut short: {description['segments']} of "
              f"{description['segments_expected']} segments are whole (decompress --recover writes the rest "
              "as silence)", file=sys.stderr)
    if args.json:
        print(json.dumps(description, indent=2))
        return
    for key, value in description.items():
        print(f"{key}: {value}")


def fx(args: argparse.Namespace) -> None:
    """Stream an audio file through an effect chain; the output lines up with the input and has its length."""
    from .effects.files import process_file
    from .effects.spec import parse_chain
    chain = parse_chain(args.chain, default_model=args.model, default_device=args.device)
    process_file(args.input, args.output, chain, block_size=args.block_size, overwrite=args.force,
                 progress=not args.quiet)
    print(f"wrote {args.output}: {args.input} through {len(chain)} stage(s), latency {chain.latency} samples")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="encodec-fx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("convert", help=convert.__doc__, description=convert.__doc__)
    command.add_argument("source", help="checkpoint file, model directory or hub id")
    command.add_argument("output", help="directory to write config.json and model.safetensors into")
    command.add_argument("--config", help="config.json to use when the checkpoint's cannot be inferred")
    command.add_argument("--force", action="store_true", help="write into a non-empty directory")
    command.set_defaults(run=convert)

    command = commands.add_parser("compress", help=compress.__doc__, description=compress.__doc__)
    command.add_argument("input", help="audio file (wav, flac, ogg, mp3, aiff), any rate and channel count")
    command.add_argument("output", help="archive to write (.ecfx)")
    command.add_argument("-b", "--bandwidth", type=float, default=6.0, help="kbps of codes (default 6)")
    command.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"codec: shipped model name, model directory, checkpoint or hub id "
                              f"(default {DEFAULT_MODEL})")
    command.add_argument("--lm", help="entropy-coding LM (.safetensors from train-lm, or a shipped LM's name); "
                                      "default: the LM shipped with the codec, if any")
    command.add_argument("--no-lm", action="store_true", help="do not use an LM (static or raw coding, whichever is smaller)")
    command.add_argument("--coding", choices=["lm", "static", "raw"],
                         help="lm: usually smallest, slowest; static: per-codebook distribution; raw: 10-bit codes "
                              "(default: each of them there is a model for, keeping the smallest archive)")
    add_device_argument(command, "cpu", "cpu; a GPU's rounding may pick another code where two nearly tie")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    command.set_defaults(run=compress)

    command = commands.add_parser("decompress", help=decompress.__doc__, description=decompress.__doc__)
    command.add_argument("input", help="archive (.ecfx)")
    command.add_argument("output", help="audio file to write (wav, flac, ogg, mp3, aiff)")
    command.add_argument("--model", help="codec, if the archive's cannot be found by its name")
    command.add_argument("--lm", help="LM file, if the archive's cannot be found by its name")
    command.add_argument("--recover", action="store_true", help="write damaged segments as silence")
    add_device_argument(command, "cpu", "cpu")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    command.set_defaults(run=decompress)

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

    command = commands.add_parser("info", help=info.__doc__, description=info.__doc__)
    command.add_argument("archive")
    command.add_argument("--json", action="store_true", help="print JSON")
    command.set_defaults(run=info)

    from .train import lm_tokens
    command = commands.add_parser("train-lm", help="train the entropy-coding LM on a folder of audio",
                                  description=lm_tokens.__doc__.split("\n\n")[0])
    lm_tokens.add_arguments(command)
    command.set_defaults(run=lm_tokens.run)

    from .train import command as train_codec
    command = commands.add_parser("train-codec", help="train an EnCodec codec on a folder of audio",
                                  description=train_codec.__doc__.split("\n\n")[0])
    train_codec.add_arguments(command)
    command.set_defaults(run=train_codec.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (OSError, ValueError) as error:
        print(f"encodec-fx {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"encodec-fx {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a failure no check foresaw: still one line, and the way to the whole story
        if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
            raise
        reason = (str(error).strip().splitlines() or [""])[0]
        print(f"encodec-fx {args.command}: error: unexpected {type(error).__name__}: {reason} (rerun with "
              f"{TRACEBACK_VARIABLE}=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
