"""A compact export of a trained codec for shipping: one fp16 safetensors file, config inside.

Training statistics (`cluster_size`, `embed_avg`) are dropped and every tensor halved to fp16, about
a third of the `save_pretrained` size; `load_exported` rebuilds a float32 `EncodecModel`. Codes from
the export can differ from the full-precision model's where two codebook vectors are nearly tied.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from entropy.atomic import replacing

from ..checkpoints import TRAINING_STATISTICS, to_hub_keys
from ..model import EncodecModel


def export_generator(model: EncodecModel, path: str | Path, overwrite: bool = True) -> None:
    """Write the compact export to `path` (an existing file is replaced only with `overwrite`)."""
    state = {key: value.detach().cpu().half().contiguous() for key, value in to_hub_keys(model.state_dict()).items()
             if not key.endswith(TRAINING_STATISTICS)}
    with replacing(path, overwrite=overwrite) as (temporary,):
        save_file(state, str(temporary), metadata={"format": "pt", "config": model.config.to_json_string()})


def load_exported(path: str | Path) -> EncodecModel:
    """The float32 model of an export: `EncodecModel.from_pretrained` reads the config it carries and
    fills in the dropped training statistics."""
    return EncodecModel.from_pretrained(path)
