"""`encodec-fx convert`: a checkpoint of any layout to a model directory; `encodec-fx export-onnx`: a model to
ONNX graphs."""

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


def export_onnx(args: argparse.Namespace) -> None:
    """Export a model (a shipped model's name, checkpoint, model directory or hub id) to ONNX: encoder.onnx and
    decoder.onnx, for a causal model encoder_step.onnx and decoder_step.onnx with their state as explicit inputs
    and outputs, and metadata.json (rates, frame rate, codebooks per bandwidth, state shapes). Needs
    `pip install "encodec-fx[onnx]"`."""
    from ..model import EncodecModel
    model = EncodecModel.from_pretrained(args.model)
    try:
        data = model.export_onnx(args.output, frames_per_step=args.frames_per_step, overwrite=args.force)
    except ImportError as error:  # an optional extra: a one-line error like the others
        raise ValueError(str(error)) from None
    graphs = ", ".join(sorted(path.name for path in Path(args.output).glob("*.onnx")))
    step = f", {data['frames_per_step']} frames per step" if "frames_per_step" in data else ""
    print(f"wrote {args.output}: {graphs}, metadata.json ({data['sampling_rate']} Hz, "
          f"{data['audio_channels']} channel(s){step})")


def add_export_onnx(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("export-onnx", help="export a model to ONNX graphs with their metadata",
                                  description=export_onnx.__doc__)
    command.add_argument("model", help="shipped model name, checkpoint file, model directory or hub id")
    command.add_argument("output", help="directory to write the .onnx graphs and metadata.json into")
    command.add_argument("--frames-per-step", type=int, default=None,
                         help="frames per call of the step graphs (causal models; default: the fewest they take, 7)")
    command.add_argument("--force", action="store_true", help="write into a non-empty directory")
    command.set_defaults(run=export_onnx)
