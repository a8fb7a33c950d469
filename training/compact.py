"""A compact resume checkpoint: a run directory packed into one small file to keep under version control.

Training on a CPU goes on over days, and machines do not survive between them, so the run must live in
the repository. A full checkpoint (fp32 weights, Adam moments of the codec and discriminator) is
several times the model's size; this keeps what cannot be rebuilt cheaply, in fp16:

* the codec's weights and codebooks (`embed_avg` is dropped: it is `embed` times the smoothed
  `cluster_size`, rebuilt exactly as the EMA update computes it);
* the discriminator's weights and its number of updates, the loss balancer's norm averages, the step,
  the random generators and the training settings.

The Adam moments are dropped: with betas (0.5, 0.9) they forget their past within a few dozen steps,
so a resumed run loses little. Resuming from a packed file therefore continues the run but is not
bit-identical to an uninterrupted one; resume from the run directory itself for that.

    python -m training.compact pack RUN_DIR FILE      # RUN_DIR → FILE
    python -m training.compact unpack FILE RUN_DIR    # FILE → RUN_DIR, then train-codec --resume
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from encodec_fx.checkpoints import load_state
from encodec_fx.config import EncodecConfig
from encodec_fx.model import EncodecModel
from encodec_fx.train.checkpoint import (
    CONTENT_ERRORS,
    damaged,
    has_checkpoint,
    load_checkpoint,
    make_run_dir,
    read_state,
    save_checkpoint,
)
from encodec_fx.train.quantizer import CodebookTraining
from encodec_fx.train.settings import TrainingConfig
from encodec_fx.train.trainer import CodecTrainer
from entropy.atomic import replacing

FORMAT = "encodec-fx compact resume checkpoint 1"
KIND = f"a compact resume checkpoint ({FORMAT})"
PACKED_KEYS = ("format", "config", "codec", "discriminator", "step", "balancer", "rng", "torch_generator", "settings")
EXACT_KEYS = (".cluster_size", ".inited")  # small; kept at full precision


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.half() if value.is_floating_point() and not key.endswith(EXACT_KEYS) else value
            for key, value in state.items()}


def pack(run_dir: str | Path, file: str | Path) -> int:
    """Write RUN_DIR's checkpoint to `file` (atomically); returns its size in bytes."""
    file = Path(file)
    if file.is_dir():
        raise IsADirectoryError(f"{file} is a folder: give the path of the file to write, e.g. {file / 'resume.pt'}")
    if not file.parent.is_dir():
        raise FileNotFoundError(f"no folder {file.parent} to write {file.name} in")
    model, state = load_checkpoint(run_dir)
    codec = {key: value for key, value in model.state_dict().items() if not key.endswith(".embed_avg")}
    packed = {"format": FORMAT, "config": model.config.to_dict(), "codec": _half(codec),
              "discriminator": _half(state["discriminator"]), "step": state["step"],
              "balancer": state["balancer"], "rng": state["rng"], "torch_generator": state["torch_generator"],
              "settings": state["settings"], "discriminator_updates": state.get("discriminator_updates")}
    with replacing(file, overwrite=True) as (temporary,):
        torch.save(packed, temporary)
    return file.stat().st_size


def unpack(file: str | Path, run_dir: str | Path, device: str = "cpu") -> int:
    """Rebuild a run directory from a packed file (fresh Adam moments); returns the step it holds."""
    file, run_dir = Path(file), Path(run_dir)
    if has_checkpoint(run_dir):
        raise FileExistsError(f"{run_dir} already holds a checkpoint; unpack into a new folder")
    if not file.is_file():
        raise FileNotFoundError(f"no compact resume checkpoint at {file}")
    packed = read_state(file, KIND, PACKED_KEYS)
    if packed["format"] != FORMAT:
        raise damaged(file, KIND, f"its format is {packed['format']!r}")
    try:  # a crafted or damaged file whose entries have the right names: one line, not a traceback
        trainer = _rebuild(packed, device)
    except CONTENT_ERRORS as error:
        raise damaged(file, KIND, error) from None
    make_run_dir(run_dir)
    save_checkpoint(trainer, run_dir, packed["settings"])
    return trainer.step


def _rebuild(packed: dict, device: str) -> CodecTrainer:
    """The trainer a packed file describes: codec (with `embed_avg` rebuilt), discriminator, balancer,
    random generators and step."""
    model = EncodecModel(EncodecConfig.from_dict(packed["config"]))
    codec = {key: value.float() if value.is_floating_point() else value for key, value in packed["codec"].items()}
    settings = CodebookTraining()
    for prefix in {key[: -len(".embed")] for key in codec if key.endswith(".embed")}:
        sizes, embed = codec[f"{prefix}.cluster_size"], codec[f"{prefix}.embed"]
        total = sizes.sum()
        smoothed = (sizes + settings.epsilon) / (total + sizes.numel() * settings.epsilon) * total
        codec[f"{prefix}.embed_avg"] = embed * smoothed[:, None]
    load_state(model, codec)
    trainer = CodecTrainer(model, TrainingConfig.from_settings(packed["settings"]), device)
    discriminator = {key: value.float() for key, value in packed["discriminator"].items()}
    load_state(trainer.discriminator, discriminator)
    trainer.balancer.load_state_dict(packed["balancer"])
    trainer.rng.bit_generator.state = packed["rng"]
    trainer.torch_generator.set_state(packed["torch_generator"])
    trainer.step = packed["step"]
    trainer.discriminator_updates = packed.get("discriminator_updates")  # absent in files packed before it was kept
    return trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compact", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("pack", help="run directory → compact file")
    command.add_argument("run_dir")
    command.add_argument("file")
    command = commands.add_parser("unpack", help="compact file → run directory (resume with train-codec --resume)")
    command.add_argument("file")
    command.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            print(f"wrote {args.file}: {pack(args.run_dir, args.file) / 1e6:.1f} MB")
        else:
            print(f"wrote {args.run_dir} at step {unpack(args.file, args.run_dir)}: continue with "
                  f"encodec-fx train-codec AUDIO_DIR {args.run_dir} --resume")
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
