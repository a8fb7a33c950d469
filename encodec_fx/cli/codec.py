"""`encodec-fx convert`: a checkpoint of any layout to a model directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def convert(args: argparse.Namespace) -> None:
    """Convert a checkpoint (original `.th`, state dict, hub directory or hub id) to a model directory in the
    hub layout (config.json and model.safetensors)."""
    from ..config import EncodecConfig
    from ..model import EncodecModel
    output = Path(args.output)
    if output.exists() and any(output.iterdir()) and not args.force:
        raise FileExistsError(f"{output} exists and is not empty; pass --force to write into it")
    config = EncodecConfig.from_pretrained(args.config) if args.config else None
    model = EncodecModel.from_pretrained(args.source, config=config)
    model.save_pretrained(output)
    rates = ", ".join(f"{b:g}" for b in model.config.target_bandwidths)
    print(f"wrote {output}: {model.config.sampling_rate} Hz, {model.config.audio_channels} channel(s), "
          f"bandwidths {rates} kbps")


def add_convert(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("convert", help="convert a checkpoint of any layout to a model directory",
                                  description=convert.__doc__)
    command.add_argument("source", help="checkpoint file, model directory or hub id")
    command.add_argument("output", help="directory to write config.json and model.safetensors into")
    command.add_argument("--config", help="config.json to use when the checkpoint's cannot be inferred")
    command.add_argument("--force", action="store_true", help="write into a non-empty directory")
    command.set_defaults(run=convert)
