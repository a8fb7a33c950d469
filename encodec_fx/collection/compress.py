"""Compressing a collection: each input file → one `.ecfx` archive, the models loaded once per worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from entropy.archive import SEGMENT_SECONDS, check_segment_seconds

from ..audio_io import AUDIO_SUFFIXES
from .archive_checks import archive_is_whole
from .inputs import WorkItem


@dataclass
class CompressJob:
    """`encodec-fx compress` for many files. `lm` is an LM's path or shipped name (None: no LM);
    `coding` a coding mode or "auto" (the smallest archive of the modes there is a model for)."""

    model: str
    bandwidth: float
    coding: str = "auto"
    lm: str | None = None
    device: str = "cpu"
    parity: int = 0
    channels: str = "joint"
    segment_seconds: float = SEGMENT_SECONDS
    suffix: str = ".ecfx"
    input_suffixes: set[str] = field(default_factory=lambda: set(AUDIO_SUFFIXES))

    def __post_init__(self) -> None:
        check_segment_seconds(self.segment_seconds)

    def options(self) -> dict[str, Any]:
        return {"command": "compress", "model": self.model, "bandwidth": self.bandwidth, "coding": self.coding,
                "lm": self.lm} | ({"parity": self.parity} if self.parity else {}) | \
            ({"channels": self.channels} if self.channels != "joint" else {}) | \
            ({"segment_seconds": self.segment_seconds} if self.segment_seconds != SEGMENT_SECONDS else {})

    def setup(self) -> None:
        from ..lm import load_lm
        from ..model import EncodecModel
        self._model = EncodecModel.from_pretrained(self.model, device=self.device)
        self._lm = load_lm(self.lm) if self.lm else None

    def run(self, item: WorkItem) -> dict[str, Any]:
        from ..compress import compress_file
        header = compress_file(item.source, item.output, self._model, bandwidth=self.bandwidth, mode=self.coding,
                               model_name=self.model, lm=self._lm, lm_name=self.lm, overwrite=True, progress=False,
                               parity=self.parity, channels=self.channels, segment_seconds=self.segment_seconds)
        size = item.output.stat().st_size
        seconds = header.audio_length / header.sample_rate
        return {"duration_seconds": round(seconds, 6), "sample_rate": header.sample_rate,
                "channels": header.channels, "output_bytes": size, "kbps": round(size * 8 / seconds / 1000, 4),
                "coding_mode": header.coding_mode, "codec": header.codec, "lm": header.lm}

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        return archive_is_whole(item.output, record)
