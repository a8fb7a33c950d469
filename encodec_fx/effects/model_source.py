"""Which EnCodec model a codec effect runs: a model object, anything `from_pretrained` loads, or by
default the model shipped with the package (loaded once per process and shared by every effect)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..model import EncodecModel
from ..pretrained import DEFAULT_MODEL, WEIGHTS_FILE, shipped_model_dir

ModelSource = EncodecModel | str | os.PathLike


def load_effect_model(source: ModelSource | None, effect_name: str) -> EncodecModel:
    """The model itself, the one loaded from a path, shipped name or hub id (loaded once, when
    assigned), or for None the shipped default `DEFAULT_MODEL`."""
    if source is None:
        folder = shipped_model_dir(DEFAULT_MODEL)
        return _shipped(folder, (folder / WEIGHTS_FILE).stat().st_mtime_ns)
    if isinstance(source, EncodecModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        return EncodecModel.from_pretrained(source).eval()
    raise TypeError(f"{effect_name}: model must be an EncodecModel, a path, a shipped model name or a hub id, "
                    f"got {type(source).__name__}")


@lru_cache(maxsize=2)
def _shipped(folder: Path, stamp: int) -> EncodecModel:
    """One shared copy of a shipped model (`stamp`, the weights' mtime, makes a reinstall load anew)."""
    return EncodecModel.from_pretrained(folder).eval()
