"""A run directory: the model in the hub layout plus one file with the rest of the training state.

    RUN_DIR/model/              config.json, preprocessor_config.json, model.safetensors (save_pretrained)
    RUN_DIR/training_state.pt   step, optimisers, discriminator, balancer, random generators, settings

The model directory is usable on its own (`EncodecModel.from_pretrained`). Training on a CPU runs for
days on machines that can stop at any moment, so a save must never leave a run that resumes wrongly:
both parts are written in full under temporary names first, the old model is kept aside as
`.model.previous` until the new state is in place, and the state records the sha256 of the weights
it belongs with. Loading takes whichever of the two model folders matches the state, so an
interrupted save resumes exactly from the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..atomic import replacing
from ..checkpoints import weights_sha256
from ..model import EncodecModel
from .trainer import CodecTrainer

MODEL_DIR = "model"
PREVIOUS_MODEL_DIR = f".{MODEL_DIR}.previous"
STAGING_MODEL_DIR = f".{MODEL_DIR}.new"
STATE_FILE = "training_state.pt"


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def save_checkpoint(trainer: CodecTrainer, run_dir: str | Path, settings: dict) -> None:
    """Write the model and `trainer.state_dict()`, with `settings` (e.g. the TrainingConfig) beside it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_dir, previous, staging = run_dir / MODEL_DIR, run_dir / PREVIOUS_MODEL_DIR, run_dir / STAGING_MODEL_DIR
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(staging)
    state = {**trainer.state_dict(), "settings": settings,
             "model_sha256": weights_sha256(trainer.model.state_dict())}
    with replacing(run_dir / STATE_FILE) as (temporary,):
        torch.save(state, temporary)
        if model_dir.exists():  # until the new state is in place, the old one pairs with `previous`
            shutil.rmtree(previous, ignore_errors=True)
            model_dir.rename(previous)
        staging.rename(model_dir)
    shutil.rmtree(previous, ignore_errors=True)


def load_checkpoint(run_dir: str | Path) -> tuple[EncodecModel, dict]:
    """(model, training state) of a run directory; give the state to `CodecTrainer.load_state_dict`."""
    run_dir = Path(run_dir)
    if not has_checkpoint(run_dir):
        raise FileNotFoundError(f"no checkpoint in {run_dir}: expected {MODEL_DIR}/ and {STATE_FILE}")
    state = torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=True)
    expected = state.get("model_sha256")
    for candidate in (run_dir / MODEL_DIR, run_dir / PREVIOUS_MODEL_DIR):
        if candidate.is_dir():
            model = EncodecModel.from_pretrained(candidate)
            if expected is None or weights_sha256(model.state_dict()) == expected:
                return model, state
    raise ValueError(f"the checkpoint in {run_dir} is damaged: no model folder holds the weights that "
                     f"{STATE_FILE} (step {state.get('step')}) was saved with")
