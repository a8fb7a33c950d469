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
from typing import Any, Sequence

import numpy as np
import torch

from entropy.atomic import replacing
from entropy.number_checks import is_finite_number, is_integer

from .config import EncodecConfig, chunk_samples, model_directory, model_file
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
        """Each field is checked here, so a bad value (a hand-edited preprocessor_config.json, say) is
        refused when loaded rather than giving silently wrong padding, or a misleading error, on every
        call. The ranges are EncodecConfig's; as in transformers, chunk_length_s and overlap may be None
        (then there is no chunk padding)."""
        if not is_integer(feature_size) or feature_size not in (1, 2):
            raise ValueError(f"feature_size is the channel count: 1 (mono) or 2 (stereo), got {feature_size!r}")
        if not is_integer(sampling_rate) or sampling_rate < 1:
            raise ValueError(f"sampling_rate must be a positive integer (Hz), got {sampling_rate!r}")
        if not is_finite_number(padding_value):
            raise ValueError(f"padding_value must be a finite number, got {padding_value!r}")
        if chunk_length_s is not None and not (is_finite_number(chunk_length_s)
                                               and chunk_length_s * sampling_rate >= 1):
            raise ValueError(f"chunk_length_s must be None or seconds holding at least one sample "
                             f"(>= {1 / sampling_rate:g}), got {chunk_length_s!r}")
        if overlap is not None and not (is_finite_number(overlap) and 0 <= overlap < 1):
            raise ValueError(f"overlap must be None or a fraction from 0 up to (not including) 1, got {overlap!r}")
        if padding_side != "right":
            raise ValueError(f"padding_side must be 'right' (EnCodec pads at the end), got {padding_side!r}")
        # plain Python numbers, so that to_json_string works for numpy ones too
        self.feature_size = int(feature_size)
        self.sampling_rate = int(sampling_rate)
        self.padding_value = float(padding_value)
        self.chunk_length_s = None if chunk_length_s is None else float(chunk_length_s)
        self.overlap = None if overlap is None else float(overlap)

    @classmethod
    def from_config(cls, config: EncodecConfig) -> EncodecFeatureExtractor:
        return cls(feature_size=config.audio_channels, sampling_rate=config.sampling_rate,
                   chunk_length_s=config.chunk_length_s, overlap=config.overlap)

    @property
    def chunk_length(self) -> int | None:
        return chunk_samples(self.chunk_length_s, self.overlap, self.sampling_rate)[0]

    @property
    def chunk_stride(self) -> int | None:
        return chunk_samples(self.chunk_length_s, self.overlap, self.sampling_rate)[1]

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
        if max_length is not None and (not is_integer(max_length) or max_length < 1):
            # else a negative one silently cut samples off the end, 0 gave empty items, others a numpy TypeError
            raise ValueError(f"max_length must be a positive integer (samples), got {max_length!r}")
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
            try:
                masks = [np.pad(np.ones(len(item), np.int32), (0, max(0, target - len(item)))) for item in items]
                items = [np.pad(item, [(0, max(0, target - len(item))), (0, 0)], constant_values=self.padding_value)
                         for item in items]
            except MemoryError:  # numpy's message gives only a size and a shape; say which setting asked for it
                raise MemoryError(f"padding {len(items)} item(s) to {target} samples needs "
                                  f"{target * len(items) * (self.feature_size * 4 + 4) / 2**30:.1f} GiB, more than "
                                  "this machine has: check max_length (or chunk_length_s)") from None
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
        """Each item as float32 (samples, channels), checked. Torch tensors are read like numpy arrays
        (transformers reads a list of them as one array: 2-D, or an error for unequal lengths)."""
        first = raw_audio[0] if isinstance(raw_audio, (list, tuple)) and len(raw_audio) > 0 else None
        # as transformers: a list of arrays or lists is a batch; a list of tensors only when each tensor is
        # an item (1-D mono, 2-D stereo): [left, right] of a stereo extractor is one stereo item
        is_batched = isinstance(first, (np.ndarray, list, tuple)) or (
            isinstance(first, torch.Tensor) and first.dim() == (1 if self.feature_size == 1 else 2))
        examples = list(raw_audio) if is_batched else [raw_audio]
        if not examples:
            raise ValueError("raw_audio is empty; expected an array of samples or a list of arrays")
        items = []
        for index, example in enumerate(examples):
            what = f"raw_audio[{index}]" if is_batched else "raw_audio"
            if isinstance(example, torch.Tensor):
                check_samples(example, what)  # before .float(), which would turn integers into floats
                array = example.detach().cpu().float().numpy()  # bfloat16 has no numpy type
            else:
                array = np.asarray(example)
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
        with replacing(model_directory(directory) / PREPROCESSOR_CONFIG_NAME, overwrite=True) as (temporary,):
            temporary.write_text(self.to_json_string())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> EncodecFeatureExtractor:
        """Read `preprocessor_config.json`, given the file, the directory holding it or a shipped model's
        name (resolved as `EncodecConfig.from_pretrained` does). Errors name the file."""
        path = model_file(path, PREPROCESSOR_CONFIG_NAME)
        if not path.is_file():
            raise FileNotFoundError(f"no {PREPROCESSOR_CONFIG_NAME} at {path}: pass the file, a model directory "
                                    "in the hub layout or a shipped model's name such as encodec-fx-24khz")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of feature extractor fields, got {type(values).__name__}")
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
