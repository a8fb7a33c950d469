"""Transcoding a collection of `.ecfx` archives: each → one archive re-coded without its audio (a lower
bandwidth, another coding or LM, parity), the LMs loaded once per worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entropy.archive import ARCHIVE_SUFFIX
from entropy.coding import LM_MODES

from ..pretrained import archive_lm
from .archive_checks import archive_is_whole
from .decompress import _header, needed_lm
from .inputs import WorkItem

if TYPE_CHECKING:
    from entropy.lm import EntropyLM


@dataclass
class TranscodeJob:
    """`encodec-fx transcode` for many archives. None keeps each archive's bandwidth, coding or parity; `lm`
    codes the outputs (default: each archive's own LM for lm coding), `source_lm` decodes the inputs (default:
    the LM each names)."""

    bandwidth: float | None = None
    coding: str | None = None
    lm: str | None = None
    source_lm: str | None = None
    parity: int | None = None
    suffix: str = ARCHIVE_SUFFIX
    input_suffixes: set[str] = field(default_factory=lambda: {ARCHIVE_SUFFIX})

    def options(self) -> dict[str, Any]:
        return {"command": "transcode", "bandwidth": self.bandwidth, "coding": self.coding, "lm": self.lm,
                "parity": self.parity}

    def setup(self) -> None:
        self._lms: dict[str, EntropyLM] = {}

    def _load(self, source: str | None) -> EntropyLM | None:
        from ..lm import load_lm
        if source is None:
            return None
        if source not in self._lms:
            self._lms[source] = load_lm(source)
        return self._lms[source]

    def run(self, item: WorkItem) -> dict[str, Any]:
        from ..compress import transcode_file
        header = _header(item.source)
        source_lm = archive_lm(self.source_lm, header.lm)
        if header.coding_mode in LM_MODES and source_lm is None:
            raise ValueError(f"the archive needs LM {needed_lm(header)!r}, which is not here; "
                             "pass it as the `source_lm` argument")
        keeps_lm = self.coding in (None, "auto", *LM_MODES) and header.coding_mode in LM_MODES
        target = self.lm or (source_lm if keeps_lm else None)
        repaired: list[int] = []
        out = transcode_file(item.source, item.output, bandwidth=self.bandwidth, mode=self.coding,
                             lm=self._load(target), lm_name=target, source_lm=self._load(source_lm),
                             parity=self.parity, overwrite=True, repaired=repaired)
        size = Path(item.output).stat().st_size
        seconds = out.audio_length / out.sample_rate
        return {"duration_seconds": round(seconds, 6), "output_bytes": size,
                "kbps": round(size * 8 / seconds / 1000, 4),
                "bandwidth": out.bandwidth, "coding_mode": out.coding_mode} | \
            ({"repaired_segments": repaired} if repaired else {})

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        return archive_is_whole(item.output, record)
