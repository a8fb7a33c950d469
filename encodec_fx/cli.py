"""The `encodec-fx` command line. Errors are one line on stderr and a non-zero exit status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import EncodecConfig
from .model import EncodecModel


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="encodec-fx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("convert", help=convert.__doc__, description=convert.__doc__)
    command.add_argument("source", help="checkpoint file, model directory or hub id")
    command.add_argument("output", help="directory to write config.json and model.safetensors into")
    command.add_argument("--config", help="config.json to use when the checkpoint's cannot be inferred")
    command.add_argument("--force", action="store_true", help="write into a non-empty directory")
    command.set_defaults(run=convert)

    from entropy import train
    command = commands.add_parser("train-lm", help="train the entropy-coding LM on a folder of audio",
                                  description=train.__doc__.split("\n\n")[0])
    train.add_arguments(command)
    command.set_defaults(run=train.run)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
