"""Models shipped inside the package, found by name with no network: `from_pretrained("encodec-fx-24khz")`.

The official weights live on a hub many machines cannot reach and carry a non-commercial license, so
the package brings its own. Each shipped model is a folder here named after it, in the hub layout
(config.json, preprocessor_config.json, model.safetensors stored in fp16 without training statistics,
MODEL_CARD.md), with the entropy-coding LM trained on its codes beside it (lm.safetensors, known to
archives as "<name>-lm"). `python -m training.ship`, maintainer tooling in the source checkout, installs them.

A shipped name is resolved before anything else: it wins over a relative path of the same name
(write ./NAME for that) and is never looked up on the hub. A registered name whose files are absent
(a source checkout before the weights were added) fails with an error that says how to get them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeGuard

ROOT = Path(__file__).resolve().parent  # tests point this at a temporary folder
DEFAULT_MODEL = "encodec-fx-24khz"
REGISTERED = (DEFAULT_MODEL,)  # names reserved for shipped models even before their files exist
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LM_FILE = "lm.safetensors"
CARD_FILE = "MODEL_CARD.md"
LM_SUFFIX = "-lm"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")

__all__ = ["DEFAULT_MODEL", "archive_lm", "default_lm", "is_shipped", "is_shipped_lm", "shipped_lm_path",
           "shipped_model_dir", "shipped_names"]


def shipped_names() -> list[str]:
    """Registered names and every folder here that holds a config.json."""
    found = {path.parent.name for path in ROOT.glob(f"*/{CONFIG_FILE}")}
    return sorted(found | set(REGISTERED))


def is_shipped(name: object) -> TypeGuard[str]:
    """Whether `name` (a plain string, not a path object) names a shipped model."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return False
    return name in REGISTERED or (ROOT / name / CONFIG_FILE).is_file()


def shipped_model_dir(name: str) -> Path:
    """The folder of a shipped model, checked to hold its config and weights."""
    if not is_shipped(name):
        raise ValueError(f"{name!r} is not a shipped model; shipped: {', '.join(shipped_names())}")
    folder = ROOT / name
    missing = [file for file in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / file).is_file()]
    if missing:
        raise FileNotFoundError(
            f"shipped model {name!r} is missing {' and '.join(missing)} in {folder}: this copy of encodec-fx "
            f"has no weights for it; install them from a source checkout with "
            f"`python -m training.ship RUN_DIR --name {name}`, "
            "or pass another model (a directory, checkpoint file or hub id)")
    return folder


def is_shipped_lm(name: object) -> TypeGuard[str]:
    """Whether `name` is the archive name of a shipped model's LM ("<model>-lm")."""
    return isinstance(name, str) and name.endswith(LM_SUFFIX) and is_shipped(name[: -len(LM_SUFFIX)])


def shipped_lm_path(name: str) -> Path:
    """The file of a shipped LM given its archive name "<model>-lm", checked to exist."""
    if not is_shipped_lm(name):
        raise ValueError(f"{name!r} is not a shipped LM; shipped LMs are named <model>{LM_SUFFIX}, e.g. "
                         f"{DEFAULT_MODEL}{LM_SUFFIX}")
    path = ROOT / name[: -len(LM_SUFFIX)] / LM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"shipped LM {name!r} is missing: no {path}; install it from a source checkout with "
                                "`python -m training.ship --lm LM_FILE`, or use an LM file instead")
    return path


def default_lm(model_name: object) -> str | None:
    """Archive name of the LM shipped with model `model_name`, or None (not shipped, or shipped without one)."""
    if not is_shipped(model_name):
        return None
    return f"{model_name}{LM_SUFFIX}" if (ROOT / str(model_name) / LM_FILE).is_file() else None


def archive_lm(given: str | None, needed: dict | None) -> str | None:
    """The LM to load for an archive that names `needed` ({"name", "sha256"} or None): the one `given`, else
    the one it names if that is here (a shipped LM or a file)."""
    named = needed["name"] if needed else None
    return given or (named if named and (is_shipped_lm(named) or Path(named).is_file()) else None)
