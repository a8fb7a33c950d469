"""What a `.ecfx` archive holds, read from its header and index alone: no codec, LM or torch is
needed, so `encodec-fx info` answers at once."""

from __future__ import annotations

import os
from pathlib import Path

from entropy.archive import ArchiveHeader, ArchiveReader


def describe_archive(source: str | os.PathLike) -> dict:
    """What an archive holds, for `encodec-fx info`."""
    size = Path(source).stat().st_size
    with ArchiveReader(source) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        segments, truncated = len(reader), reader.truncated
    seconds = header.audio_length / header.sample_rate
    expected = header.segments
    return {"codec": header.codec, "lm": header.lm, "coding_mode": header.coding_mode,
            "sample_rate": header.sample_rate, "channels": header.channels, "audio_length": header.audio_length,
            "duration_seconds": round(seconds, 3), "model_sample_rate": header.model_sample_rate,
            "bandwidth_kbps": header.bandwidth, "n_q": header.n_q, "segments": segments,
            "segments_expected": expected, "complete": not truncated and segments == expected, "bytes": size,
            "kbps": round(size * 8 / seconds / 1000, 3)}
