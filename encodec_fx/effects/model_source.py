"""Which EnCodec model a codec effect runs: a model object, or anything `from_pretrained` loads."""

from __future__ import annotations

import os

from ..model import EncodecModel

ModelSource = EncodecModel | str | os.PathLike


def load_effect_model(source: ModelSource | None, effect_name: str) -> EncodecModel:
    """The model itself, or the one loaded from a path or hub id (loaded once, when assigned)."""
    if source is None:
        raise TypeError(f"{effect_name} needs a model: pass model=<EncodecModel> or a path or hub id accepted "
                        "by EncodecModel.from_pretrained (no default model is shipped yet)")
    if isinstance(source, EncodecModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        return EncodecModel.from_pretrained(source).eval()
    raise TypeError(f"{effect_name}: model must be an EncodecModel or a path or hub id, got {type(source).__name__}")
