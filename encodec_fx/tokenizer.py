"""Audio → EnCodec codes for ML corpora, as a picklable batch callable.

    ds.map_batches(EncodecTokenizer, fn_constructor_kwargs={"bandwidth": 6.0}, concurrency=2)  # Ray Data
    dataset.map(EncodecTokenizer(bandwidth=6.0), batched=True, batch_size=16)                  # HF datasets

A batch is a dict of columns. The audio column holds, per example, either a dict with "array" and
"sampling_rate" (Hugging Face's `Audio` feature) or an array, with the rate in a column of its own or
given to the constructor. Arrays are (samples,) or (channels, samples). Examples are resampled to the
model's rate and mixed to mono for a mono model (one token stream per example; a stereo model takes
mono or stereo). Each example gets exactly the codes `model.encode` gives it alone: examples of a
whole number of frames (fixed-size training crops, say) are zero-padded to the longest and coded in one
call, which changes none of their frames; the rest are coded one at a time, because the model
reflect-pads a partial last frame, which a padded batch cannot reproduce, and so are the 48 kHz
model's, which owns its chunking and loudness scales. The model loads on first use, so the object
pickles small and each worker loads its own copy once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CODE_COLUMNS = ("codes", "n_q", "frame_rate", "num_frames")


class EncodecTokenizer:
    """Adds the columns "codes" (int16 [n_q, frames] per example), "n_q", "frame_rate" and "num_frames"."""

    def __init__(self, model: str = "encodec-fx-24khz", bandwidth: float = 6.0, audio_column: str = "audio",
                 sampling_rate_column: str = "sampling_rate", sampling_rate: int | None = None,
                 device: str = "cpu"):
        self.model_source, self.bandwidth, self.device = model, bandwidth, device
        self.audio_column, self.sampling_rate_column = audio_column, sampling_rate_column
        self.sampling_rate = sampling_rate
        self._model = None

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name != "_model"} | {"_model": None}

    @property
    def model(self):
        if self._model is None:
            from .model import EncodecModel
            self._model = EncodecModel.from_pretrained(self.model_source, device=self.device)
            self._model.num_quantizers_for_bandwidth(self.bandwidth)  # refuse a bad bandwidth at once
        return self._model

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        if self.audio_column not in batch:
            raise ValueError(f"the batch has no column {self.audio_column!r} (it has {', '.join(map(str, batch))}): "
                             "pass audio_column=")
        examples = [self._example(value, batch, index) for index, value in enumerate(batch[self.audio_column])]
        codes = self.encode(examples)
        config = self.model.config
        out = dict(batch)
        out["codes"] = codes if isinstance(batch[self.audio_column], list) else _object_array(codes)
        out["n_q"] = np.full(len(codes), codes[0].shape[0] if codes else 0, dtype=np.int32)
        out["frame_rate"] = np.full(len(codes), config.frame_rate, dtype=np.float64)
        out["num_frames"] = np.array([c.shape[-1] for c in codes], dtype=np.int64)
        return out

    def encode(self, examples: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Codes [n_q, frames] (int16) of each (channels, samples) example at the model's rate."""
        import torch
        config = self.model.config
        if not examples:
            return []
        hop = math.prod(config.upsampling_ratios)
        with torch.inference_mode():
            if config.chunk_length is not None:  # chunked models own their chunking: one example at a time
                return [self._alone(example) for example in examples]
            whole = [i for i, example in enumerate(examples) if example.shape[-1] % hop == 0]
            codes: list[np.ndarray | None] = [None] * len(examples)
            if whole:
                for row, item in zip(whole, self._batched([examples[i] for i in whole])):
                    codes[row] = item
            return [item if item is not None else self._alone(example) for item, example in zip(codes, examples)]

    def _batched(self, examples: list[np.ndarray]) -> list[np.ndarray]:
        """Examples of whole frames, zero-padded to the longest in one call: the causal model's frames
        see no sample after their own, so the padding changes none of them."""
        import torch
        longest = max(example.shape[-1] for example in examples)
        padded = np.zeros((len(examples), examples[0].shape[0], longest), dtype=np.float32)
        mask = np.zeros((len(examples), longest), dtype=np.int64)
        for row, example in enumerate(examples):
            padded[row, :, : example.shape[-1]] = example
            mask[row, : example.shape[-1]] = 1
        encoded = self.model.encode(torch.from_numpy(padded), torch.from_numpy(mask), bandwidth=self.bandwidth)
        codes = encoded.audio_codes[0].cpu().numpy().astype(np.int16)
        hop = math.prod(self.model.config.upsampling_ratios)
        return [codes[row, :, : example.shape[-1] // hop] for row, example in enumerate(examples)]

    def _alone(self, example: np.ndarray) -> np.ndarray:
        import torch
        encoded = self.model.encode(torch.from_numpy(example[None]), bandwidth=self.bandwidth)
        chunks = list(encoded.audio_codes[:, 0])
        if encoded.last_frame_pad_length:
            chunks[-1] = chunks[-1][..., : -encoded.last_frame_pad_length]
        return torch.cat(chunks, dim=-1).cpu().numpy().astype(np.int16)

    def _example(self, value: Any, batch: Mapping[str, Any], index: int) -> np.ndarray:
        """(model channels, samples) float32 at the model's rate."""
        from .channels import to_model_channels
        from .resample import resample
        if isinstance(value, Mapping):
            array, rate = value.get("array"), value.get("sampling_rate")
        else:
            array = value
            rates = batch.get(self.sampling_rate_column)
            rate = rates[index] if rates is not None else self.sampling_rate
        if rate is None:
            raise ValueError(f"example {index} has no sampling rate: add a {self.sampling_rate_column!r} column "
                             "or pass sampling_rate=")
        audio = np.asarray(array, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        if audio.ndim != 2 or audio.shape[-1] == 0 or not np.isfinite(audio).all():
            raise ValueError(f"example {index}: audio must be non-empty finite (samples,) or (channels, samples), "
                             f"got shape {audio.shape}")
        config = self.model.config
        if config.audio_channels == 1:
            audio = audio.mean(axis=0, keepdims=True)  # one token stream per example: the mix
        else:
            audio = to_model_channels(audio, config)[0]
        if int(rate) != config.sampling_rate:
            audio = resample(audio, int(rate), config.sampling_rate)
        return np.ascontiguousarray(audio, dtype=np.float32)


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array
