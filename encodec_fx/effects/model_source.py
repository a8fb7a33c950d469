"""Which EnCodec model a codec effect runs: a model object, anything `from_pretrained` loads, or by
default the model shipped with the package (loaded once per process and shared by every effect)."""

from __future__ import annotations

import os
import weakref
from functools import lru_cache
from pathlib import Path

import torch

from ..model import EncodecModel
from ..pretrained import DEFAULT_MODEL, WEIGHTS_FILE, shipped_model_dir

ModelSource = EncodecModel | str | os.PathLike


def load_effect_model(source: ModelSource | None, effect_name: str, device: torch.device | None = None) -> EncodecModel:
    """The model itself, the one loaded from a path, shipped name or hub id (loaded once, when
    assigned), or for None the shipped default `DEFAULT_MODEL`; loaded onto `device` (default: the
    CPU). A model object is used where it is: `device`, if given, must be where it already is."""
    if source is None:
        folder = shipped_model_dir(DEFAULT_MODEL)
        model = _shipped(folder, (folder / WEIGHTS_FILE).stat().st_mtime_ns, device or torch.device("cpu"))
        _sources[model] = None
        return model
    if isinstance(source, EncodecModel):
        if device is not None and source.device != device:
            raise ValueError(f"{effect_name}: the model is on {source.device}, but device is {device}; move the "
                             "model there (model.to(device)) or leave device unset")
        return source
    if isinstance(source, (str, os.PathLike)):
        model = EncodecModel.from_pretrained(source, device=device)
        _sources[model] = source
        return model
    raise TypeError(f"{effect_name}: model must be an EncodecModel, a path, a shipped model name or a hub id, "
                    f"got {type(source).__name__}")


_sources: weakref.WeakKeyDictionary[EncodecModel, ModelSource | None] = weakref.WeakKeyDictionary()


def source_of(model: EncodecModel) -> ModelSource | None:
    """What a pickled effect carries: the name or path its model was loaded from (None: the default
    model), so that the other side loads it once; a model built in Python travels whole."""
    return _sources[model] if model in _sources else model


@lru_cache(maxsize=4)
def _shipped(folder: Path, stamp: int, device: torch.device) -> EncodecModel:
    """One shared copy of a shipped model per device (`stamp`, the weights' mtime, makes a reinstall
    load anew)."""
    return EncodecModel.from_pretrained(folder, device=device)
