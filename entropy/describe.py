"""What a `.ecfx` archive holds, read from its header and index alone: no codec, LM or torch is
needed, so `encodec-fx info` answers at once."""

from __future__ import annotations

import os
from pathlib import Path

from entropy.archive import ArchiveHeader, ArchiveReader


def describe_archive(source: str | os.PathLike) -> dict:
    """What an archive holds, for `encodec-fx info`. `payload_bytes` are the entropy-coded codes (each payload
    with its 4-byte CRC of the codes), `overhead_bytes` all else: header, framing, index, parity segments."""
    size = Path(source).stat().st_size
    with ArchiveReader(source) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        segments, truncated, version = len(reader), reader.truncated, reader.version
        payload = sum(len(payload) for segment in reader.scan() if not isinstance(segment, Exception)
                      for unit in segment.units for payload in unit.payloads)
    seconds = header.audio_length / header.sample_rate
    expected = header.segments
    return {"codec": header.codec, "lm": header.lm, "coding_mode": header.coding_mode,
            "sample_rate": header.sample_rate, "channels": header.channels, "audio_length": header.audio_length,
            "duration_seconds": round(seconds, 3), "model_sample_rate": header.model_sample_rate,
            "bandwidth_kbps": header.bandwidth, "n_q": header.n_q, "segment_seconds": round(header.segment_seconds, 4),
            "segments": segments,
            "segments_expected": expected, "complete": not truncated and segments == expected, "bytes": size,
            "payload_bytes": payload, "overhead_bytes": size - payload, "parity": header.parity or None,
            "version": version, **({"stereo": header.stereo, "stream_codebooks": header.stream_codebooks}
                                   if header.stream_codebooks else {}),
            "kbps": round(size * 8 / seconds / 1000, 3)}
