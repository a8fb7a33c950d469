"""Version 2 segments checked against the layout their header implies (issue 22: the fuzzer's silent wrong
outputs). Version 2 stores each segment's frames, units and payload counts in the segment itself, under a CRC
that a crafted or spliced file recomputes; version 3 derives them from its header. A segment whose frames or
payload count is not what the header implies, or a header whose channel count does not fit its streams, was
decoded to other codes than the archive's without a word; now the segment is damaged (lost with --recover)
or the header refused, in one line naming what is inconsistent."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.compress import _decoded, _numbered, check_archive_codes, compress_file, decompress_file
from entropy.archive import ArchiveHeader, ArchiveReader, ArchiveWriter, DamagedSegmentError, Segment, Unit
from entropy.coding import encode_many

from conftest import randomize

FRAMES, UNIT = 30, 10  # three segments of one unit of 10 frames, 24 kHz, 75 frames per second, 4 codebooks


def write_v2(path, streams: int = 1, frames: int = FRAMES, unit: int = UNIT, seed: int = 0,
             old_header: bool = False) -> tuple[bytes, np.ndarray]:
    """A version 2 raw archive of `streams` mono streams (one per channel); `old_header`: without the fields
    version 2 headers did not hold before version 3 (streams, unit_frames, scaled, parity)."""
    codes = np.random.default_rng(seed).integers(0, 1024, (streams, 4, frames))
    segments = -(-frames // unit)
    header = ArchiveHeader(
        codec={"name": "encodec-fx-24khz", "sha256": "ab" * 32}, lm=None, coding_mode="raw", sample_rate=24_000,
        channels=streams, audio_length=frames * 320 - 100, model_sample_rate=24_000, bandwidth=3.0, n_q=4,
        frame_rate=75, chunk_length=None, chunk_stride=None, segment_frames=unit, segments=segments,
        units=segments, frames=frames, segment_seconds=unit / 75, model_audio_length=frames * 320 - 100,
        streams=streams, unit_frames=unit).to_dict()
    if old_header:
        for name in ("streams", "unit_frames", "scaled", "parity"):
            del header[name]
    with ArchiveWriter(path, header, version=2, overwrite=True) as writer:
        for number in range(segments):
            part = codes[:, :, number * unit:(number + 1) * unit]
            payloads = encode_many(list(part), "raw")
            writer.write_segment(Segment(number, number * unit, part.shape[-1],
                                         (Unit(part.shape[-1], (math.nan,) * streams, tuple(payloads)),)))
    return path.read_bytes(), codes


def v2_parts(data: bytes) -> tuple[dict, list[bytes]]:
    with ArchiveReader(data) as reader:
        return dict(reader.header), [data[slot.offset:slot.offset + slot.size] for slot in reader._slots]


def v2_archive(header: dict, blocks: list[bytes], index: bool = True) -> bytes:
    """Header and segments, every CRC recomputed, and an index built from the segments' own fields (or one
    whose CRC does not match: the reader then scans the segments, as after damage to the index)."""
    text = json.dumps(header).encode()
    preamble = struct.pack("<4sBI", b"ECFX", 2, len(text)) + text
    preamble += struct.pack("<I", zlib.crc32(preamble))
    offset, entries = len(preamble), []
    for block in blocks:
        _, first, frames = struct.unpack_from("<IQI", block, 2)
        entries.append(struct.pack("<QQI", offset, first, frames))
        offset += len(block)
    table = struct.pack("<2sI", b"IX", len(blocks)) + b"".join(entries)
    table += struct.pack("<I", zlib.crc32(table) ^ (0 if index else 1))
    return preamble + b"".join(blocks) + table + struct.pack("<Q4s", offset, b"XFCE")


def edited(block: bytes, **fields: int) -> bytes:
    """A segment with fields changed (segment `frames`, its first unit's `unit_frames`), CRC recomputed."""
    body = bytearray(block[:-4])
    places = {"frames": 14, "unit_frames": 26}
    for name, value in fields.items():
        struct.pack_into("<I", body, places[name], value)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def read_codes(data: bytes, tmp_path):
    """The header and lost segments of `check_archive_codes` (`verify`): every payload read and decoded."""
    path = tmp_path / "crafted.ecfx"
    path.write_bytes(data)
    return check_archive_codes(path)


@pytest.mark.parametrize("number, fields", [
    (2, {"frames": 9, "unit_frames": 9}),  # the last segment cut short: no later segment's first frame moves
    (1, {"unit_frames": 8}),  # the unit's frames, not the segment's: decoded as the first 8 of the payload's 10
    (0, {"unit_frames": 12}),  # more frames than the header's segments hold
])
def test_a_segment_whose_frames_were_edited_is_damaged_not_decoded_to_other_codes(tmp_path, number, fields):
    header, blocks = v2_parts(write_v2(tmp_path / "a.ecfx")[0])
    blocks[number] = edited(blocks[number], **fields)
    data = v2_archive(header, blocks)
    with ArchiveReader(data) as reader:
        with pytest.raises(DamagedSegmentError, match=rf"^archive segment {number} is damaged: it does not fit "
                                                      r"the header's layout: it covers frames \[\d+, \+\d+\) in 1 "
                                                      r"unit of \[\d+\] frames, the header frames "):
            reader.segment(number)
    _, lost = read_codes(data, tmp_path)
    assert [(segment.number, "header's layout" in segment.reason) for segment in lost] == [(number, True)]


def test_a_segment_spliced_from_an_archive_of_another_layout_is_lost_and_the_others_read(tmp_path):
    """Segment 1 of an archive of 15-frame segments in place of this one's (both CRC-valid, the index damaged so
    that the reader scans, as a splice into it does): it was read as frames [15, 30) of this archive."""
    data, codes = write_v2(tmp_path / "a.ecfx")
    header, blocks = v2_parts(data)
    _, others = v2_parts(write_v2(tmp_path / "b.ecfx", unit=15, seed=1)[0])
    spliced = v2_archive(header, [blocks[0], others[1], blocks[2]], index=False)
    header, lost = read_codes(spliced, tmp_path)
    assert [segment.number for segment in lost] == [1]
    assert "it covers frames [15, +15) in 1 unit of [15] frames, the header frames [10, +10)" in lost[0].reason
    with ArchiveReader(spliced) as reader:
        assert not reader.indexed
        numbered = list(_numbered(reader.scan(recover=True), header, True, []))
    decoded = list(_decoded(numbered, header, 1, None, None, True, []))
    assert decoded[1] == UNIT  # lost: its frames as silence
    for number in (0, 2):
        np.testing.assert_array_equal(decoded[number][1][0][0], codes[0, :, number * UNIT:(number + 1) * UNIT])


@pytest.mark.parametrize("old_header", [False, True])
def test_a_segment_of_another_stream_count_is_lost(tmp_path, old_header):
    """A 2-stream segment among 1-stream ones; a header without `streams` (before version 3) allows 1 stream or
    one per channel, not 2 of 1 channel."""
    header, blocks = v2_parts(write_v2(tmp_path / "a.ecfx", old_header=old_header)[0])
    _, stereo = v2_parts(write_v2(tmp_path / "b.ecfx", streams=2, seed=1)[0])
    _, lost = read_codes(v2_archive(header, [blocks[0], stereo[1], blocks[2]]), tmp_path)
    assert [segment.number for segment in lost] == [1]
    assert lost[0].reason.endswith("its units hold 2 payload(s), but the header's 1 channel(s) are coded as 1 "
                                   "stream(s), one payload each")


def test_a_channel_count_that_does_not_fit_the_streams_is_refused(tmp_path):
    header, blocks = v2_parts(write_v2(tmp_path / "a.ecfx", streams=2)[0])
    header["channels"] = 3  # 2 streams are 1 channel each, or a model's 2 channels are 1 stream
    with pytest.raises(ValueError, match=r"^the archive header's streams must be 1 or the 3 channels \(one stream "
                                         r"per channel\), got 2$"):
        read_codes(v2_archive(header, blocks), tmp_path)


def test_a_channel_count_edited_in_an_old_header_makes_its_segments_damaged(tmp_path):
    """Without `streams` the header allows 1 stream or one per channel: 2 payloads per unit fit neither 3
    channels nor a model's 1 stream."""
    header, blocks = v2_parts(write_v2(tmp_path / "a.ecfx", streams=2, old_header=True)[0])
    header["channels"] = 3
    _, lost = read_codes(v2_archive(header, blocks), tmp_path)
    assert [segment.number for segment in lost] == [0, 1, 2]
    assert all(segment.reason.endswith("its units hold 2 payload(s), but the header's 3 channel(s) are coded as "
                                       "1 or 3 stream(s), one payload each") for segment in lost)


def test_a_channel_count_edited_for_a_mono_codec_is_damage_not_rows_decoded_as_others(tmp_path):
    """1 channel edited to 2 (1 stream: what a stereo model writes): a mono codec makes 2 streams of it, and each
    unit's 1 payload no longer lines up with them: the segments are damaged (once: decoded as the wrong rows of
    the batch, or an exception)."""
    torch_model = randomize(EncodecModel(EncodecConfig(num_filters=4)), seed=11)
    torch_model.save_pretrained(tmp_path / "codec24")
    model = EncodecModel.from_pretrained(tmp_path / "codec24")
    rate, n = 24_000, 24_000 * 6  # 2 segments of 5 s and 1 s
    audio = 0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    with AudioFile(str(tmp_path / "a.wav"), "w", samplerate=rate, num_channels=1) as file:
        file.write(audio[None].astype(np.float32))
    header = compress_file(tmp_path / "a.wav", tmp_path / "v3.ecfx", model, bandwidth=3.0, model_name="m",
                           mode="raw", progress=False)
    with ArchiveReader(tmp_path / "v3.ecfx") as reader:
        segments = list(reader)
    fields = header.to_dict() | {"channels": 2}
    with ArchiveWriter(tmp_path / "v2.ecfx", fields, version=2) as writer:
        for segment in segments:
            writer.write_segment(segment)
    with pytest.raises(ValueError, match=r"^archive segment 0 is damaged: its units hold 1 payload\(s\), but the "
                                         r"header's 2 channel\(s\) make 2 stream\(s\) for this codec$"):
        decompress_file(tmp_path / "v2.ecfx", tmp_path / "out.wav", model, progress=False)
    lost = decompress_file(tmp_path / "v2.ecfx", tmp_path / "out.wav", model, recover=True, progress=False)
    assert [segment.number for segment in lost] == [0, 1]
    with AudioFile(str(tmp_path / "out.wav")) as file:
        assert file.num_channels == 2 and not np.any(file.read(file.frames))  # silence, not other codes' audio


def test_a_valid_v2_archive_of_several_streams_and_an_old_header_reads_exactly(tmp_path):
    for streams, old_header in ((1, False), (2, False), (2, True), (1, True)):
        data, codes = write_v2(tmp_path / "a.ecfx", streams=streams, frames=25, old_header=old_header)
        header, lost = read_codes(data, tmp_path)
        assert lost == []
        with ArchiveReader(data) as reader:
            numbered = list(_numbered(reader.scan(recover=False), header, False, []))
        decoded = list(_decoded(numbered, header, streams, None, None, False, []))
        np.testing.assert_array_equal(np.concatenate([units[0] for _, units in decoded], axis=-1), codes)
