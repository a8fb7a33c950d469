"""Loading and saving EnCodec weights in both official layouts.

Sources `EncodecModel.from_pretrained` accepts:
- the name of a model shipped in the package, such as `encodec-fx-24khz` (`encodec_fx.pretrained`),
  resolved first and offline;
- a directory in the hub layout: config.json + model.safetensors (or pytorch_model.bin);
- a state-dict file: an original `.th` checkpoint (keys `encoder.model.N.conv.conv.…`, optionally under
  "best_state"; its config is inferred) or a transformers-layout file (its config from `config=`, from
  its own safetensors metadata as in shipped models and training exports, or from config.json beside it);
- a hub id such as `facebook/encodec_24khz`, fetched with huggingface_hub (the `hub` extra).

Weight norm arrives as `weight_g`/`weight_v` or `parametrizations.weight.original0/1`; both map to
our parametrised convolutions. We save the hub layout with `weight_g`/`weight_v`, as the hub files do.
Weights stored in half precision load into float32, and absent codebook training statistics
(`cluster_size`, `embed_avg`: inference never reads them) take their fresh values, so a compact fp16
export loads like a full checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from entropy.atomic import replacing

from .config import CONFIG_NAME, EncodecConfig, model_directory
from .feature_extraction import PREPROCESSOR_CONFIG_NAME, EncodecFeatureExtractor

if TYPE_CHECKING:
    from .model import EncodecModel

WEIGHTS_NAMES = ("model.safetensors", "pytorch_model.bin")
TRAINING_STATISTICS = (".cluster_size", ".embed_avg")
HUB_FILES_HINT = "config.json and model.safetensors"

# original key piece → transformers key piece, applied in order
_ORIGINAL_TO_HUB = [
    (r"^(encoder|decoder)\.model\.", r"\1.layers."),
    (r"\.conv\.conv\.", ".conv."),
    (r"\.convtr\.convtr\.", ".conv."),
    (r"\.(conv|convtr)\.norm\.", ".norm."),
    (r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook."),
]
_WEIGHT_NORM_SAVED = {"weight_g": "parametrizations.weight.original0",
                      "weight_v": "parametrizations.weight.original1"}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a torch pickle (.th/.bin/.pt, told apart by content, not
    suffix), unwrapping "best_state"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if _is_safetensors(path):
        try:
            return load_file(path)
        except Exception as error:
            reason = unreadable_reason(error) if isinstance(error, OSError) else "it is damaged or cut short"
            raise ValueError(f"{path} is not a readable safetensors file: {reason}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable checkpoint (safetensors, or a torch state dict .th/.bin/.pt): "
                         f"{unreadable_reason(error)}") from None
    if isinstance(state, dict) and isinstance(state.get("best_state"), dict):
        state = state["best_state"]
    if not isinstance(state, dict) or not state \
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path} does not hold a state dict of tensors (a non-empty dict of names to tensors)")
    return state


def _is_safetensors(path: Path) -> bool:
    """Told by content: an 8-byte header length, then the JSON header."""
    with open(path, "rb") as file:
        return file.read(9)[8:9] == b"{"


def unreadable_reason(error: Exception) -> str:
    """One line on why a file could not be read (torch's own message runs over many lines and
    suggests loading untrusted pickles)."""
    message = str(error).strip()
    if isinstance(error, OSError) and message:
        return message.splitlines()[0]
    if isinstance(error, EOFError) or not message:
        return "the file is empty or cut short"
    if "zip archive" in message or "central directory" in message:
        return "the file is cut short or damaged"
    return "it is not a file of tensors"


def is_original_layout(state: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(("encoder.model.", "decoder.model.")) for key in state)


def to_model_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename either official layout to our module names (the transformers ones, parametrised)."""
    renamed = {}
    original = is_original_layout(state)
    for key, value in state.items():
        if original:
            for pattern, replacement in _ORIGINAL_TO_HUB:
                key = re.sub(pattern, replacement, key)
        stem, _, leaf = key.rpartition(".")
        if leaf in _WEIGHT_NORM_SAVED:
            key = f"{stem}.{_WEIGHT_NORM_SAVED[leaf]}"
        renamed[key] = value
    return renamed


def to_hub_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict → the hub files' layout (`weight_g`/`weight_v`)."""
    saved_names = {suffix: leaf for leaf, suffix in _WEIGHT_NORM_SAVED.items()}
    renamed = {}
    for key, value in state.items():
        for suffix, leaf in saved_names.items():
            if key.endswith("." + suffix):
                key = key[: -len(suffix)] + leaf
        renamed[key] = value
    return renamed


def infer_config(state: dict[str, torch.Tensor]) -> EncodecConfig:
    """Config of an original checkpoint (in our key names): the 48 kHz one has norm layers and
    two audio channels; sizes are read off the tensors."""
    first = state.get("encoder.layers.0.conv.parametrizations.weight.original1",
                      state.get("encoder.layers.0.conv.weight"))
    embed = state.get("quantizer.layers.0.codebook.embed")
    if first is None or embed is None or first.dim() != 3 or embed.dim() != 2:
        raise ValueError("cannot infer the model configuration from this checkpoint (no first encoder conv "
                         "or codebook of the usual shape); pass config=EncodecConfig(...)")
    has_norm = any(".norm." in key for key in state)
    preset = EncodecConfig.encodec_48khz if has_norm or first.shape[1] == 2 else EncodecConfig.encodec_24khz
    config = preset(audio_channels=first.shape[1], num_filters=first.shape[0], hidden_size=embed.shape[1],
                    codebook_size=embed.shape[0], codebook_dim=embed.shape[1])
    codebooks = sum(1 for key in state if key.endswith(".codebook.embed"))
    if codebooks != config.num_quantizers:
        raise ValueError(f"checkpoint has {codebooks} codebooks but the inferred configuration expects "
                         f"{config.num_quantizers}; pass config=EncodecConfig(...)")
    return config


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict in our key names, naming every missing or unexpected key, every tensor that
    is not finite (such weights would silently turn all audio into NaN) and a tensor of the wrong shape."""
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the model: missing keys {_names(missing)}; "
                         f"unexpected keys {_names(unexpected)}")
    damaged = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if damaged:
        raise ValueError(f"checkpoint holds NaN or infinite weights in {_names(damaged)}: the file is damaged "
                         f"or comes from a training run that diverged")
    wrong = [key for key, value in state.items() if value.shape != expected[key].shape]
    if wrong:  # torch's own error lists every tensor, over as many lines
        raise ValueError(f"checkpoint does not match the model's shapes: {len(wrong)} tensor(s) differ, e.g. "
                         f"{wrong[0]} is {tuple(state[wrong[0]].shape)} where the model has "
                         f"{tuple(expected[wrong[0]].shape)}")
    model.load_state_dict(state)


def _names(keys: list[str], shown: int = 8) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def load_model(model_class: type[EncodecModel], source: str | os.PathLike,
               config: EncodecConfig | None = None, **hub_kwargs: Any) -> EncodecModel:
    """`model_class.from_pretrained`: any source of the module docstring, in eval mode."""
    from .pretrained import is_shipped, shipped_model_dir
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        given = "no model source given" if source is None or source == "" else \
            f"the model source must be a path or a name, got {type(source).__name__} {source!r}"
        raise ValueError(f"{given}: pass a model directory, a checkpoint file, a shipped model name such as "
                         "encodec-fx-24khz, or a hub id such as facebook/encodec_24khz")
    if hub_kwargs and (is_shipped(source) or Path(source).exists()):  # e.g. a misspelt keyword, silently unused
        raise ValueError(f"{', '.join(hub_kwargs)}: options for hub downloads, but {source} is local")
    if config is not None and not isinstance(config, EncodecConfig):
        raise ValueError(f"config must be an EncodecConfig (EncodecConfig.from_dict turns a dict into one), "
                         f"got {type(config).__name__}")
    if is_shipped(source):
        source = shipped_model_dir(str(source))
    path = Path(source)
    if path.is_dir():
        weights = next((path / name for name in WEIGHTS_NAMES if (path / name).is_file()), None)
        if weights is None:
            inside = next((sub for sub in sorted(path.iterdir())
                           if sub.is_dir() and (sub / CONFIG_NAME).is_file()), None)
            hint = f" (did you mean {inside}?)" if inside is not None else ""
            raise FileNotFoundError(f"{path} holds no {' or '.join(WEIGHTS_NAMES)}: a model directory needs "
                                    f"{HUB_FILES_HINT}{hint}")
    elif path.is_file():
        weights = path
    elif "/" in str(source) and not path.is_absolute() and len(path.parts) == 2 and not path.parent.exists():
        weights = _download(str(source), **hub_kwargs)
    else:
        raise FileNotFoundError(f"no model at {source}: expected a directory with {HUB_FILES_HINT}, a checkpoint "
                                "file (.th/.safetensors/.bin), a shipped model name such as encodec-fx-24khz, "
                                "or a hub id such as facebook/encodec_24khz")
    state = read_state_dict(weights)
    original = is_original_layout(state)
    state = to_model_keys(state)
    if config is None:
        beside = weights.parent / CONFIG_NAME
        if original:
            config = infer_config(state)
        elif (embedded := _embedded_config(weights)) is not None:
            config = embedded
        elif beside.is_file():
            config = EncodecConfig.from_pretrained(beside)
        else:
            raise FileNotFoundError(f"no {CONFIG_NAME} beside {weights}: put it there or pass "
                                    "config=EncodecConfig(...)")
    model = model_class(config)
    state = {key: value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
             for key, value in state.items()}
    fresh = model.state_dict()
    state |= {key: fresh[key] for key in fresh if key.endswith(TRAINING_STATISTICS) and key not in state}
    load_state(model, state)
    return model.eval()


def _embedded_config(weights: Path) -> EncodecConfig | None:
    """The config a safetensors file carries in its metadata (shipped models and training exports do)."""
    if not _is_safetensors(weights):
        return None
    with safe_open(str(weights), framework="pt") as file:
        text = (file.metadata() or {}).get("config")
    if text is None:
        return None
    try:
        return EncodecConfig.from_dict(json.loads(text))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{weights} carries a config in its metadata that cannot be read: {error}") from None


def _download(repo_id: str, **hub_kwargs: Any) -> Path:
    """Fetch config.json and the weights of a hub repository; returns the weights' local path."""
    manual = (f"download {HUB_FILES_HINT} from https://huggingface.co/{repo_id} into a directory "
              "and pass its path (offline, HF_HUB_OFFLINE=1 fails at once instead of retrying)")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise FileNotFoundError(f"{repo_id!r} is not a local path, and loading from the hub needs "
                                f"`pip install encodec-fx[hub]`; or {manual}") from None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        # huggingface_hub reads the variable once, when first imported; set later (a notebook, a test)
        # it would still try the network, which on a machine without one can take minutes of retries
        hub_kwargs = {"local_files_only": True} | hub_kwargs
    first_error = None
    for weights in WEIGHTS_NAMES:  # as in a local directory: safetensors, else the older pickle
        try:
            hf_hub_download(repo_id, CONFIG_NAME, **hub_kwargs)
            return Path(hf_hub_download(repo_id, weights, **hub_kwargs))
        except Exception as error:
            first_error = first_error or error
    reason = str(first_error).strip().splitlines()[0] if str(first_error).strip() else type(first_error).__name__
    raise FileNotFoundError(f"could not fetch {repo_id!r} from the hub ({reason}); {manual}")


def save_model(model: EncodecModel, directory: str | os.PathLike) -> None:
    """The hub layout's three files, replaced together: a failed save leaves the old model whole."""
    directory = model_directory(directory)
    state = {key: value.detach().cpu().contiguous() for key, value in to_hub_keys(model.state_dict()).items()}
    files = directory / CONFIG_NAME, directory / PREPROCESSOR_CONFIG_NAME, directory / WEIGHTS_NAMES[0]
    with replacing(*files, overwrite=True) as (config, preprocessor_config, weights):
        config.write_text(model.config.to_json_string())
        preprocessor_config.write_text(EncodecFeatureExtractor.from_config(model.config).to_json_string())
        save_file(state, weights, metadata={"format": "pt"})


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 of a state dict that does not depend on file format, device or key
    insertion order: keys sorted, each hashed with its dtype, shape and little-endian bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        array = state[key].detach().cpu().contiguous().numpy()
        digest.update(f"{key}|{array.dtype.str[1:]}|{list(array.shape)}\n".encode())
        digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()
