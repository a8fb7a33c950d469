"""A run directory: the model in the hub layout plus one file with the rest of the training state.

    RUN_DIR/model/              config.json, preprocessor_config.json, model.safetensors (save_pretrained)
    RUN_DIR/training_state.pt   step, optimisers, discriminator, balancer, random generators, settings

The model directory is usable on its own (`EncodecModel.from_pretrained`). Training on a CPU runs for
days on machines that can stop at any moment, so a save must never leave a run that resumes wrongly:
both parts are written in full under temporary names first, the old model is kept aside as
`.model.previous` until the new state is in place, and the state records the sha256 of the weights
it belongs with. Loading takes whichever of the two model folders matches the state, so an
interrupted save resumes exactly from the previous checkpoint or the new one, never a mix.

A state file that is cut short, another kind of file, or one whose contents do not fit the trainer is
refused in one line naming it, before any audio is loaded: torch's own errors run over many lines,
and a missing entry would otherwise surface as a KeyError deep in the trainer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from entropy.atomic import replacing

from ..checkpoints import unreadable_reason, weights_sha256
from ..model import EncodecModel
from .trainer import CodecTrainer

MODEL_DIR = "model"
PREVIOUS_MODEL_DIR = f".{MODEL_DIR}.previous"
STAGING_MODEL_DIR = f".{MODEL_DIR}.new"
STATE_FILE = "training_state.pt"
STATE_KEYS = ("step", "generator_optimizer", "discriminator", "discriminator_optimizer", "balancer", "rng",
              "torch_generator", "settings")  # CodecTrainer.state_dict() and the settings beside it
STATE_KIND = "a train-codec state"
CONTENT_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError)  # from using bad contents


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def make_run_dir(run_dir: str | Path) -> None:
    """Create the run folder before training: a path that is a file, or one that cannot be created,
    would otherwise fail only at the first checkpoint, hours in."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"the run folder {run_dir} is a file: give a new folder, or a run's folder to resume")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the run folder {run_dir}: {error.strerror or error}") from None


def damaged(path: Path, kind: str, reason: str | Exception) -> ValueError:
    """The one-line error for a run's file that cannot be used: `reason` says why, or is the error that
    using its contents raised (torch's run over many lines, the first often only a heading; a KeyError
    names only the key)."""
    if isinstance(reason, KeyError):
        reason = f"no entry {reason}"
    elif isinstance(reason, Exception):
        lines = [line.strip() for line in str(reason).splitlines() if line.strip()] or [type(reason).__name__]
        reason = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    return ValueError(f"{path} is damaged or not {kind}: {reason}")


def read_state(path: Path, kind: str, keys: tuple[str, ...]) -> dict:
    """The dict a torch file holds, checked to have `keys`, a whole `step` and a `settings` dict (every
    file a run is saved in has both); anything else is a ValueError saying the file is not `kind`."""
    with open(path, "rb") as file:  # a file that cannot be opened is an OSError of its own
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # RuntimeError, UnpicklingError, EOFError, OSError… by the kind of damage
            reason = "the file is cut short or damaged" if isinstance(error, OSError) else unreadable_reason(error)
            raise damaged(path, kind, reason) from None
    if not isinstance(state, dict):
        raise damaged(path, kind, f"it holds a {type(state).__name__}, not a dict")
    missing = [key for key in keys if key not in state]
    if missing:
        raise damaged(path, kind, f"it lacks {', '.join(missing)}")
    if type(state["step"]) is not int or state["step"] < 0:
        raise damaged(path, kind, f"its step is {state['step']!r}, not a whole number ≥ 0")
    if not isinstance(state["settings"], dict):
        raise damaged(path, kind, f"its settings are a {type(state['settings']).__name__}, not a dict")
    return state


def read_training_state(run_dir: str | Path) -> dict:
    """RUN_DIR/training_state.pt, checked to hold everything `CodecTrainer.load_state_dict` reads."""
    return read_state(Path(run_dir) / STATE_FILE, STATE_KIND, STATE_KEYS)


def save_checkpoint(trainer: CodecTrainer, run_dir: str | Path, settings: dict) -> None:
    """Write the model and `trainer.state_dict()`, with `settings` (e.g. the TrainingConfig) beside it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_dir, previous, staging = run_dir / MODEL_DIR, run_dir / PREVIOUS_MODEL_DIR, run_dir / STAGING_MODEL_DIR
    if previous.is_dir() and has_checkpoint(run_dir):
        _settle(run_dir)
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(staging)
    state = {**trainer.state_dict(), "settings": settings,
             "model_sha256": weights_sha256(trainer.model.state_dict())}
    with replacing(run_dir / STATE_FILE, overwrite=True) as (temporary,):  # the run's own file
        torch.save(state, temporary)
        if model_dir.exists():  # until the new state is in place, the old one pairs with `previous`
            shutil.rmtree(previous, ignore_errors=True)
            model_dir.rename(previous)
        staging.rename(model_dir)
    shutil.rmtree(previous, ignore_errors=True)


def _settle(run_dir: Path) -> None:
    """After an interrupted save, keep the model folder that matches the state on disk as `model/` and
    drop the other: the next save then moves aside the one checkpoint that is whole, not a stray."""
    model_dir, previous = run_dir / MODEL_DIR, run_dir / PREVIOUS_MODEL_DIR
    _, folder, _ = _matching_model(run_dir)
    if folder == previous:
        shutil.rmtree(model_dir, ignore_errors=True)
        previous.rename(model_dir)
    else:
        shutil.rmtree(previous)


def _matching_model(run_dir: Path) -> tuple[EncodecModel, Path, dict]:
    """(model, its folder, training state): the model folder whose weights the state was saved with."""
    if not has_checkpoint(run_dir):
        raise FileNotFoundError(f"no checkpoint in {run_dir}: expected {MODEL_DIR}/ and {STATE_FILE}")
    state = read_training_state(run_dir)
    expected = state.get("model_sha256")
    for candidate in (run_dir / MODEL_DIR, run_dir / PREVIOUS_MODEL_DIR):
        if candidate.is_dir():
            model = EncodecModel.from_pretrained(candidate)
            if expected is None or weights_sha256(model.state_dict()) == expected:
                return model, candidate, state
    raise ValueError(f"the checkpoint in {run_dir} is damaged: no model folder holds the weights that "
                     f"{STATE_FILE} (step {state.get('step')}) was saved with")


def load_checkpoint(run_dir: str | Path) -> tuple[EncodecModel, dict]:
    """(model, training state) of a run directory; give the state to `CodecTrainer.load_state_dict`."""
    model, _, state = _matching_model(Path(run_dir))
    return model, state


def restore(trainer: CodecTrainer, state: dict, run_dir: str | Path) -> None:
    """`trainer.load_state_dict(state)`, with contents that do not fit the trainer (a crafted or damaged
    file whose entries have the right names) refused in one line naming the state file."""
    try:
        trainer.load_state_dict(state)
    except CONTENT_ERRORS as error:
        raise damaged(Path(run_dir) / STATE_FILE, STATE_KIND, error) from None
