"""The mean of several checkpoints of one codec: a generator in its adversarial phase swings from one
checkpoint to the next (training/LOG.md, 2026-12-07, fifth session), and the mean of a few neighbours is
better than any of them. Every tensor of the state is averaged as stored: each weight-normalised
convolution's magnitude and direction apart (not their product), the codebooks and their statistics. Fit
for checkpoints a few hundred steps apart, whose codebook entries are still the same entries; a mean is
for evaluating and shipping, not for resuming training.

    python -m training.average OUT_DIR MODEL_DIR MODEL_DIR [MODEL_DIR ...]

MODEL_DIR: a model folder (a run's model/, or a copy of it per checkpoint). OUT_DIR gets the mean in the
same layout, ready for `quality.py --model` or `python -m training.ship`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from encodec_fx.model import EncodecModel


def average(model_dirs: list[str | Path], out_dir: str | Path) -> EncodecModel:
    """The mean model of `model_dirs` (same configuration), saved to `out_dir` (which must not exist)."""
    if len(model_dirs) < 2:
        raise ValueError(f"averaging needs at least two models, got {len(model_dirs)}")
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder for the mean")
    models = [EncodecModel.from_pretrained(path) for path in model_dirs]
    config = models[0].config.to_dict()
    for path, model in zip(model_dirs[1:], models[1:]):
        if model.config.to_dict() != config:
            raise ValueError(f"{path} has another configuration than {model_dirs[0]}: only checkpoints of one "
                             "codec can be averaged")
    states = [model.state_dict() for model in models]
    mean = {name: torch.stack([state[name].double() for state in states]).mean(0).to(tensor.dtype)
            for name, tensor in states[0].items()}
    models[-1].load_state_dict(mean)
    models[-1].save_pretrained(out)
    return models[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.average", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("model_dirs", nargs="+", metavar="model_dir")
    args = parser.parse_args(argv)
    try:
        average(args.model_dirs, args.out_dir)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote the mean of {len(args.model_dirs)} models to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
