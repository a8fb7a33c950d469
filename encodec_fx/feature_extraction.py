"""EncodecFeatureExtractor: raw audio (or a batch of it) → padded `input_values` and `padding_mask`.

It mirrors `transformers.EncodecFeatureExtractor`. Note for the 48 kHz model: with padding on (the
default) the batch is padded to (ceil(L / stride) - 1) * stride + chunk_length samples, which adds
an all-padding chunk and changes the codes of the last real chunk compared with encoding the raw
audio. For codes identical to the original package, pass `padding=False` (one item, or items of
equal length): `EncodecModel` takes any length.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .atomic import replacing
from .config import EncodecConfig, model_directory
from .validation import check_samples, check_sampling_rate

PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"


class AudioBatch(dict):
    """The extractor's output: a dict (`model(**batch)` works) whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class EncodecFeatureExtractor:
    """Turns mono (N,) or stereo (2, N) arrays, or lists of them, into model inputs (B, C, L)."""

    def __init__(self, feature_size: int = 1, sampling_rate: int = 24_000, padding_value: float = 0.0,
                 chunk_length_s: float | None = None, overlap: float | None = None,
                 padding_side: str = "right", **unused: Any):
        if feature_size not in (1, 2):
            raise ValueError(f"feature_size is the channel count: 1 (mono) or 2 (stereo), got {feature_size}")
        if padding_side != "right":
            raise ValueError(f"padding_side must be 'right' (EnCodec pads at the end), got {padding_side!r}")
        self.feature_size = feature_size
        self.sampling_rate = sampling_rate
        self.padding_value = padding_value
        self.chunk_length_s = chunk_length_s
        self.overlap = overlap

    @classmethod
    def from_config(cls, config: EncodecConfig) -> EncodecFeatureExtractor:
        return cls(feature_size=config.audio_channels, sampling_rate=config.sampling_rate,
                   chunk_length_s=config.chunk_length_s, overlap=config.overlap)

    @property
    def chunk_length(self) -> int | None:
        return None if self.chunk_length_s is None else int(self.chunk_length_s * self.sampling_rate)

    @property
    def chunk_stride(self) -> int | None:
        if self.chunk_length_s is None or self.overlap is None:
            return None
        return max(1, int((1.0 - self.overlap) * self.chunk_length))

    def __call__(self, raw_audio: np.ndarray | Sequence, padding: bool | str | None = None,
                 truncation: bool = False, max_length: int | None = None, return_tensors: str | None = None,
                 sampling_rate: int | None = None) -> AudioBatch:
        """`padding`: True/'longest' (the default), 'max_length' (to `max_length`) or False/'do_not_pad'.
        `truncation` cuts items to `max_length` (48 kHz: to whole chunks of the shortest item).
        `return_tensors`: None (lists of arrays), 'np' or 'pt'. Returns `input_values` (B, C, L) and,
        when padding, `padding_mask` (B, L) with 1 on real samples."""
        check_sampling_rate(sampling_rate, self.sampling_rate)
        if padding and truncation:
            raise ValueError("padding and truncation are both set; choose one")
        if padding is None:
            padding = True
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        if return_tensors not in (None, "np", "pt"):
            raise ValueError(f"return_tensors must be None, 'np' or 'pt', got {return_tensors!r}")
        items = self._frames_by_channels(raw_audio)
        pad = padding not in (False, "do_not_pad")

        stride, chunk = self.chunk_stride, self.chunk_length
        if stride is not None and chunk is not None and max_length is None:
            if truncation:
                steps = math.floor(min(len(item) for item in items) / stride)
                max_length = (steps - 1) * stride + chunk
            elif pad:
                steps = math.ceil(max(len(item) for item in items) / stride)
                max_length = (steps - 1) * stride + chunk
                padding = "max_length"
        if truncation:
            if max_length is None:
                raise ValueError("truncation=True needs max_length")
            items = [item[:max_length] for item in items]
        masks = None
        if pad:
            if padding == "max_length":
                if max_length is None:
                    raise ValueError("padding='max_length' needs max_length")
                target = max_length
            else:
                target = max(len(item) for item in items)
            masks = [np.pad(np.ones(len(item), np.int32), (0, max(0, target - len(item)))) for item in items]
            items = [np.pad(item, [(0, max(0, target - len(item))), (0, 0)], constant_values=self.padding_value)
                     for item in items]
        batch = AudioBatch(input_values=[np.ascontiguousarray(item.T) for item in items])
        if masks is not None:
            batch["padding_mask"] = masks
        if return_tensors is not None:
            for key, arrays in batch.items():
                if len({array.shape for array in arrays}) > 1:
                    raise ValueError(f"items have different lengths {[a.shape[-1] for a in arrays]}: "
                                     f"pad them (padding=True) to return {return_tensors!r} tensors")
                stacked = np.stack(arrays)
                batch[key] = torch.from_numpy(stacked) if return_tensors == "pt" else stacked
        return batch

    def _frames_by_channels(self, raw_audio: np.ndarray | Sequence) -> list[np.ndarray]:
        """Each item as float32 (samples, channels), checked."""
        is_batched = isinstance(raw_audio, (list, tuple)) and len(raw_audio) > 0 \
            and isinstance(raw_audio[0], (np.ndarray, list, tuple))
        examples = list(raw_audio) if is_batched else [raw_audio]
        if not examples:
            raise ValueError("raw_audio is empty; expected an array of samples or a list of arrays")
        items = []
        for index, example in enumerate(examples):
            array = np.asarray(example)
            what = f"raw_audio[{index}]" if is_batched else "raw_audio"
            check_samples(array, what)
            array = array.astype(np.float32, copy=False)
            expected = "(samples,)" if self.feature_size == 1 else "(2, samples)"
            if array.ndim > 2 or (self.feature_size == 1 and array.ndim != 1) \
                    or (self.feature_size == 2 and (array.ndim != 2 or array.shape[0] != 2)):
                raise ValueError(f"{what} has shape {array.shape}; this extractor takes "
                                 f"{'mono' if self.feature_size == 1 else 'stereo'} audio shaped {expected}")
            items.append(array.reshape(-1, 1) if array.ndim == 1 else array.T)
        return items

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"feature_extractor_type": "EncodecFeatureExtractor", "feature_size": self.feature_size,
                "sampling_rate": self.sampling_rate, "padding_value": self.padding_value,
                "chunk_length_s": self.chunk_length_s, "overlap": self.overlap, "padding_side": "right",
                "return_attention_mask": True}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `preprocessor_config.json` into `directory` (made if missing)."""
        with replacing(model_directory(directory) / PREPROCESSOR_CONFIG_NAME) as (temporary,):
            temporary.write_text(self.to_json_string())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> EncodecFeatureExtractor:
        """Read `preprocessor_config.json`, given the file or the directory holding it."""
        path = Path(path)
        if path.is_dir():
            path = path / PREPROCESSOR_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {PREPROCESSOR_CONFIG_NAME} at {path}: pass the file or a model "
                                    "directory in the hub layout")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        return cls(**values)
