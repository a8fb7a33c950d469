"""Model outputs that read like transformers' `ModelOutput`: by attribute, by key, or by index.

`model.decode(...)[0]`, `model.decode(...)["audio_values"]` and `.audio_values` are the same tensor.
Fields left at None are skipped by index access and iteration, as in transformers; iteration yields
values, so `codes, scales, pad = model.encode(x)` unpacks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import torch


class _Output:
    def to_tuple(self) -> tuple:
        return tuple(value for _, value in self.items())

    def items(self) -> list[tuple[str, Any]]:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]  # every subclass is a dataclass
        return [(f.name, getattr(self, f.name)) for f in fields
                if getattr(self, f.name) is not None]

    def keys(self) -> list[str]:
        return [name for name, _ in self.items()]

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return dict(self.items())[key]
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_tuple())

    def __len__(self) -> int:
        return len(self.items())


@dataclass
class EncodecEncoderOutput(_Output):
    """`audio_codes` [chunks, batch, n_q, frames]; `audio_scales` one (batch, 1) tensor per chunk, or
    None per chunk for models that do not normalise; `last_frame_pad_length` code frames of zero
    padding appended to the last chunk so chunks stack (give it back to `decode`)."""

    audio_codes: torch.Tensor | None = None
    audio_scales: list[torch.Tensor | None] | None = None
    last_frame_pad_length: int | None = None


@dataclass
class EncodecDecoderOutput(_Output):
    audio_values: torch.Tensor | None = None


@dataclass
class EncodecOutput(_Output):
    audio_codes: torch.Tensor | None = None
    audio_values: torch.Tensor | None = None
