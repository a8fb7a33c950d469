"""Decompressing and verifying collections of `.ecfx` archives, with the codecs and LMs they name
loaded once per worker (an archive names its codec and LM; `model`/`lm` override them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entropy.archive import ARCHIVE_SUFFIX, ArchiveHeader, ArchiveReader
from entropy.coding import LM_MODES

from ..pretrained import is_shipped, is_shipped_lm
from .inputs import WorkItem

if TYPE_CHECKING:
    from entropy.lm import EntropyLM

    from ..compress import LostSegment
    from ..model import EncodecModel


@dataclass
class _Models:
    """The codecs and LMs archives name, each loaded once per worker."""

    model: str | None = None
    lm: str | None = None
    device: str = "cpu"

    def setup(self) -> None:
        self._codecs: dict[str, EncodecModel] = {}
        self._lms: dict[str, EntropyLM] = {}

    def codec_for(self, header: ArchiveHeader) -> EncodecModel:
        from ..model import EncodecModel
        source = self.model or header.codec["name"]
        if self.model is None and not (is_shipped(source) or Path(source).exists()):
            raise ValueError(f"the archive needs codec {source!r}, which is not here: pass it as the `model` argument")
        if source not in self._codecs:
            self._codecs[source] = EncodecModel.from_pretrained(source, device=self.device)
        return self._codecs[source]

    def lm_for(self, header: ArchiveHeader) -> EntropyLM | None:
        from ..lm import load_lm
        needed = needed_lm(header)
        if needed is None:
            return None
        source = self.lm or needed
        if self.lm is None and not (is_shipped_lm(source) or Path(source).is_file()):
            raise ValueError(f"the archive needs LM {source!r}, which is not here: pass it as the `lm` argument")
        if source not in self._lms:
            self._lms[source] = load_lm(source)
        return self._lms[source]


def needed_lm(header: ArchiveHeader) -> str | None:
    """The name of the LM an archive's codes need; None for a coding without one (`ArchiveHeader` refuses an LM
    coding whose header names no LM)."""
    return header.lm["name"] if header.coding_mode in LM_MODES and header.lm is not None else None


def _header(path: Path) -> ArchiveHeader:
    with ArchiveReader(path) as reader:
        return ArchiveHeader.from_dict(reader.header)


@dataclass
class DecompressJob(_Models):
    """`encodec-fx decompress` for many archives; `recover` writes damaged segments as silence."""

    recover: bool = False
    suffix: str = ".wav"
    start: float | None = None  # a time range of every archive, seconds (decompress_file's start/duration)
    duration: float | None = None
    input_suffixes: set[str] = field(default_factory=lambda: {ARCHIVE_SUFFIX})

    def options(self) -> dict[str, Any]:
        return {"command": "decompress", "model": self.model, "lm": self.lm, "recover": self.recover,
                "format": self.suffix} | ({"start": self.start, "duration": self.duration}
                                          if self.start is not None or self.duration is not None else {})

    def run(self, item: WorkItem) -> dict[str, Any]:
        from ..compress import decompress_file
        header = _header(item.source)
        repaired: list[int] = []
        lost = decompress_file(item.source, item.output, self.codec_for(header), lm=self.lm_for(header),
                               overwrite=True, recover=self.recover, progress=False, start=self.start,
                               duration=self.duration, repaired=repaired)
        return {"duration_seconds": round(header.audio_length / header.sample_rate, 6),
                "sample_rate": header.sample_rate, "channels": header.channels,
                "output_bytes": item.output.stat().st_size, "lost_segments": [segment.number for segment in lost]} \
            | ({"repaired_segments": repaired} if repaired else {})

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        try:
            return item.output.stat().st_size == record.get("output_bytes")
        except OSError:
            return False


@dataclass
class VerifyJob(_Models):
    """`encodec-fx verify`: the container (header, index and footer), every segment's CRC and the entropy
    decoding of every frame, no audio written. A damaged archive is a failure whose one-line error names
    what is damaged. With `against` (the folder the archives were made from, mirrored as compress's -o
    mirrors it, or one original file), each archive is decoded and its SI-SNR and mel distance to its
    original recorded (see `quality`); an original that is missing is a failure of that archive."""

    against: str | None = None
    suffix: str = ".verified"  # journal keys only: verify writes no files
    input_suffixes: set[str] = field(default_factory=lambda: {ARCHIVE_SUFFIX})

    def options(self) -> dict[str, Any]:
        return {"command": "verify", "lm": self.lm, "against": self.against}

    def run(self, item: WorkItem) -> dict[str, Any]:
        from ..compress import check_archive_codes
        from .archive_checks import container_problem
        header = _header(item.source)
        problem = container_problem(item.source)
        repaired: list[int] = []
        header, lost = check_archive_codes(item.source, self.lm_for(header), repaired)
        if lost or repaired:
            raise ValueError(damage_line(lost, header.segments, repaired) + (f"; {problem}" if problem else ""))
        if problem:
            raise ValueError(f"{problem} (all {header.segments} segments are whole)")
        fields: dict[str, Any] = {"duration_seconds": round(header.audio_length / header.sample_rate, 6),
                                  "sample_rate": header.sample_rate, "channels": header.channels,
                                  "segments": header.segments, "coding_mode": header.coding_mode}
        if self.against is not None:
            from .quality import compare_to_original
            original = original_for(item, Path(self.against))
            fields["original"] = str(original)
            fields |= compare_to_original(item.source, original, header, self.codec_for(header), self.lm_for(header))
        return fields

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        return False  # archives are checked on every run: that is the point of verifying


def damage_line(lost: Sequence[LostSegment], segments: int, repaired: Sequence[int] = ()) -> str:
    """Damaged segments in one line: those parity rebuilds ("repairable": decompress and transcode rebuild
    them bit-exactly, and transcode writes a whole archive again), and those lost, which and why (the first
    five)."""
    numbers = ", ".join(f"{segment.number} ({segment.reason})" for segment in lost[:5])
    more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
    fixable = f"{len(repaired)} repairable from parity ({', '.join(map(str, repaired))})" if repaired else ""
    if not lost:
        return f"{len(repaired)} of {segments} segment(s) damaged, all {fixable} (transcode writes them whole)"
    return f"{len(lost)} of {segments} segment(s) damaged and lost: {numbers}{more}" + \
        (f"; {fixable}" if fixable else "")


def original_for(item: WorkItem, against: Path) -> Path:
    """The audio file an archive was made from: `against` itself when it is a file, else the file with the
    archive's path and name, and an audio suffix, under `against` (compress's -o mirroring, backwards)."""
    from ..audio_io import AUDIO_SUFFIXES
    if against.is_file():
        return against
    relative = Path(item.key).with_suffix("")  # the key is the archive's path with .verified for .ecfx
    folder = against / relative.parent
    found = sorted(path for path in folder.glob(glob_escape(relative.name) + ".*")
                   if path.suffix.lower() in AUDIO_SUFFIXES and path.stem == relative.name) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no original for it: nothing at {folder / relative.name}.* "
                                f"({', '.join(sorted(AUDIO_SUFFIXES))}) in the originals' folder {against}")
    if len(found) > 1:
        raise ValueError(f"two originals could have made it: {found[0]} and {found[1]}")
    return found[0]


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
