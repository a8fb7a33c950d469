"""A compact export of a trained codec for shipping: one fp16 safetensors file, config inside.

Training statistics (`cluster_size`, `embed_avg`) are dropped and every tensor halved to fp16, about
a third of the `save_pretrained` size; `load_exported` rebuilds a float32 `EncodecModel`. Codes from
the export can differ from the full-precision model's where two codebook vectors are nearly tied.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, safe_open, save_file

from ..atomic import replacing
from ..checkpoints import TRAINING_STATISTICS, load_state, to_hub_keys, to_model_keys
from ..config import EncodecConfig
from ..model import EncodecModel


def export_generator(model: EncodecModel, path: str | Path) -> None:
    state = {key: value.detach().cpu().half().contiguous() for key, value in to_hub_keys(model.state_dict()).items()
             if not key.endswith(TRAINING_STATISTICS)}
    with replacing(path) as (temporary,):
        save_file(state, str(temporary), metadata={"format": "pt", "config": model.config.to_json_string()})


def load_exported(path: str | Path) -> EncodecModel:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported codec at {path}")
    with safe_open(str(path), "pt") as file:
        metadata = file.metadata() or {}
    if "config" not in metadata:
        raise ValueError(f"{path} is not a codec export (no config in its metadata)")
    model = EncodecModel(EncodecConfig.from_dict(json.loads(metadata["config"])))
    state = {key: value.float() for key, value in to_model_keys(load_file(str(path))).items()}
    defaults = model.state_dict()
    state |= {key: defaults[key] for key in defaults if key.endswith(TRAINING_STATISTICS)}
    load_state(model, state)
    return model.eval()
