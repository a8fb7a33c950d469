"""A run directory: the model in the hub layout plus one file with the rest of the training state.

    RUN_DIR/model/              config.json, preprocessor_config.json, model.safetensors (save_pretrained)
    RUN_DIR/training_state.pt   step, optimisers, discriminator, balancer, random generators, settings

The model directory is usable on its own (`EncodecModel.from_pretrained`); both parts are written to
temporary names and moved into place, so an interrupted save leaves the previous checkpoint whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..model import EncodecModel
from .trainer import CodecTrainer

MODEL_DIR = "model"
STATE_FILE = "training_state.pt"


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def save_checkpoint(trainer: CodecTrainer, run_dir: str | Path, settings: dict) -> None:
    """Write the model and `trainer.state_dict()`, with `settings` (e.g. the TrainingConfig) beside it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = run_dir / f".{MODEL_DIR}.new"
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(staging)
    shutil.rmtree(run_dir / MODEL_DIR, ignore_errors=True)
    staging.rename(run_dir / MODEL_DIR)
    temporary = run_dir / f".{STATE_FILE}.new"
    torch.save({**trainer.state_dict(), "settings": settings}, temporary)
    temporary.replace(run_dir / STATE_FILE)


def load_checkpoint(run_dir: str | Path) -> tuple[EncodecModel, dict]:
    """(model, training state) of a run directory; give the state to `CodecTrainer.load_state_dict`."""
    run_dir = Path(run_dir)
    if not has_checkpoint(run_dir):
        raise FileNotFoundError(f"no checkpoint in {run_dir}: expected {MODEL_DIR}/ and {STATE_FILE}")
    model = EncodecModel.from_pretrained(run_dir / MODEL_DIR)
    state = torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=True)
    return model, state
