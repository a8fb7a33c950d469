"""Version 3 of the `.ecfx` container: the binary header, derived geometry, overhead, damage of every byte,
parity repair, bounds; and that version 2 archives still read (a fixture written by version 2 code)."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import struct

import numpy as np
import pytest

from entropy import format_v3 as v3
from entropy.archive import (
    ArchiveError,
    ArchiveHeader,
    ArchiveReader,
    ArchiveWriter,
    DamagedSegmentError,
    Segment,
    TruncatedArchiveError,
    Unit,
)
from entropy.coding import CODING_MODES


def header(frames=1000, streams=1, parity=0, mode="lm", chunked=False, codec="encodec-fx-24khz") -> ArchiveHeader:
    """A header as compress writes it: 24 kHz, 75 frames/s, 5-s segments (or 1-s chunks of a 48 kHz model)."""
    unit_frames = 150 if chunked else 375
    units = -(-frames // unit_frames)
    per_segment = 5 if chunked else 1
    return ArchiveHeader(
        codec={"name": codec, "sha256": "ab" * 32},
        lm={"name": "encodec-fx-24khz-lm", "sha256": "cd" * 32} if mode == "lm" else None,
        coding_mode=mode, sample_rate=44_100, channels=streams, audio_length=frames * (294 if chunked else 588),
        model_sample_rate=48_000 if chunked else 24_000, bandwidth=6.0, n_q=8 if not chunked else 4,
        frame_rate=150 if chunked else 75, chunk_length=48_000 if chunked else None,
        chunk_stride=47_520 if chunked else None, segment_frames=unit_frames * per_segment,
        segments=-(-units // per_segment), units=units, frames=frames,
        segment_seconds=4.95 if chunked else 5.0, static_model=b"\x01\x02table" if mode == "static" else None,
        model_audio_length=frames * 320, streams=streams, unit_frames=unit_frames, scaled=chunked, parity=parity)


def segments_for(head: ArchiveHeader, seed=0, payload=(0, 300)) -> list[Segment]:
    geometry, generator = head.geometry(), random.Random(seed)
    segments = []
    for number in range(geometry.segments):
        units = tuple(Unit(frames, [generator.choice([0.5, 1.25]) if geometry.scales else math.nan
                                    for _ in range(geometry.streams)],
                           [generator.randbytes(generator.randint(*payload)) for _ in range(geometry.streams)])
                      for frames in geometry.units_of(number))
        segments.append(Segment(number, geometry.first_frame(number), sum(geometry.units_of(number)), units))
    return segments


def key(segment: Segment):
    """A segment's content, NaN scales made comparable."""
    return (segment.number, segment.first_frame, segment.frames,
            [(unit.frames, unit.payloads, [None if math.isnan(s) else s for s in unit.scales])
             for unit in segment.units])


def write(path, head, segments) -> bytes:
    with ArchiveWriter(path, head) as writer:
        for segment in segments:
            writer.write_segment(segment)
    return path.read_bytes()


CASES = [dict(), dict(streams=2, parity=2), dict(mode="static", parity=1), dict(mode="raw", chunked=True, streams=2),
         dict(frames=1, parity=3), dict(frames=751, chunked=True, parity=2, codec="/some/codec dir")]


@pytest.mark.parametrize("case", CASES, ids=[str(case) for case in CASES])
def test_round_trip_and_the_header_reads_back(tmp_path, case):
    head = header(**case)
    segments = segments_for(head)
    write(tmp_path / "a.ecfx", head, segments)
    with ArchiveReader(tmp_path / "a.ecfx") as reader:
        assert reader.version == 3 and reader.indexed and not reader.repaired
        assert [key(s) for s in reader] == [key(s) for s in segments]
        back = ArchiveHeader.from_dict(reader.header)
    # identities keep the first 16 bytes of the digest, names as written (shipped ones as one byte)
    assert back == dataclasses.replace(head, codec=head.codec | {"sha256": "ab" * 16},
                                       lm=head.lm and head.lm | {"sha256": "cd" * 16})


def test_overhead_targets(tmp_path):
    """≤ 100 bytes besides the payloads for 10 s of mono with the shipped model; ≤ 8 per further segment."""
    @functools.cache
    def overhead(frames):
        head = header(frames=frames)
        data = write(tmp_path / f"{frames}.ecfx", head, segments := segments_for(head, payload=(1000, 3000)))
        return len(data) - sum(len(p) for s in segments for u in s.units for p in u.payloads)
    ten_seconds = overhead(750)
    assert ten_seconds <= 100
    assert overhead(750 + 100 * 375) - overhead(750 + 99 * 375) <= 8  # its length, CRC and index entry
    assert (overhead(750 + 100 * 375) - ten_seconds) / 100 <= 8.03  # and the header's counts grow a little


def test_writer_refuses_segments_that_do_not_fit_the_header(tmp_path):
    head = header(frames=500, streams=2)
    good = segments_for(head)
    bad_frames = Segment(0, 0, 374, (Unit(374, [math.nan] * 2, [b"x", b"y"]),))
    for wrong, message in [(bad_frames, "units of \\[375\\] frames"),
                           (Segment(0, 0, 375, (Unit(375, [math.nan], [b"x"]),)), "holds 2 payload"),
                           (Segment(0, 0, 375, (Unit(375, [1.0, 1.0], [b"x", b"y"]),)), "lack scales")]:
        with pytest.raises(ValueError, match=message):
            write(tmp_path / "x.ecfx", head, [wrong])
    with pytest.raises(ValueError, match="announces 2 segments, 1 were written"):
        write(tmp_path / "x.ecfx", head, good[:1])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("parity", [0, 2])
def test_every_byte_truncated_or_flipped_gives_a_clean_error_or_the_right_segments(tmp_path, parity):
    head = header(frames=1400, parity=parity)
    segments = segments_for(head, payload=(5, 40))
    data = write(tmp_path / "a.ecfx", head, segments)
    expected = {s.number: key(s) for s in segments}
    damaged = [bytearray(data) for _ in range(len(data))]
    for position, copy in enumerate(damaged):
        copy[position] ^= 0x5A
    for broken in [data[:cut] for cut in range(len(data))] + [bytes(copy) for copy in damaged]:
        try:
            reader = ArchiveReader(broken)
        except ArchiveError as error:
            assert "\n" not in str(error)
            continue
        items = list(reader.scan())
        for item in items:
            assert isinstance(item, (Segment, DamagedSegmentError, TruncatedArchiveError)), item
            if isinstance(item, Segment):
                assert key(item) == expected[item.number]
        if parity and len(broken) == len(data) and reader.indexed:  # one flipped byte: parity rebuilds it
            assert all(isinstance(item, Segment) for item in items) and len(items) == head.segments


def test_parity_rebuilds_any_one_segment_per_group_and_says_so(tmp_path):
    head = header(frames=375 * 7 - 10, parity=3, streams=2)  # groups of 3, 3 and 1 data segments
    segments = segments_for(head, payload=(20, 200))
    data = write(tmp_path / "a.ecfx", head, segments)
    geometry = head.geometry()
    with ArchiveReader(data) as reader:
        spans = [reader.location(n) for n in range(head.segments)]
    # each parity segment costs its group's longest segment, and its own length, CRC and index entry
    without = write(tmp_path / "b.ecfx", dataclasses.replace(head, parity=0), segments)
    longest = sum(max(size for offset, size in spans[g * 3: g * 3 + 3]) for g in range(geometry.groups))
    assert longest + 6 * geometry.groups <= len(data) - len(without) <= longest + 8 * geometry.groups
    for number, (offset, size) in enumerate(spans):
        broken = bytearray(data)
        broken[offset + size // 2] ^= 1
        with ArchiveReader(bytes(broken)) as reader:
            assert [key(s) for s in reader] == [key(s) for s in segments]
            assert reader.repaired == {number}
    # two in one group: both lost, the other groups whole; a damaged parity segment costs nothing
    broken = bytearray(data)
    for number in (3, 5):
        offset, size = spans[number]
        broken[offset + size - 1] ^= 1
    with ArchiveReader(bytes(broken)) as reader:
        items = list(reader.scan())
        assert [i.index for i in items if isinstance(i, DamagedSegmentError)] == [3, 5]
        assert reader.repaired == set()
    with ArchiveReader(data) as reader:
        parity_offset = reader.location(2)[0] + reader.location(2)[1]  # group 0's parity follows segment 2
    broken = bytearray(data)
    broken[parity_offset + 3] ^= 1
    with ArchiveReader(bytes(broken)) as reader:
        assert [key(s) for s in reader] == [key(s) for s in segments] and reader.damaged_parity == [0]


def test_without_its_index_the_reader_scans_and_still_repairs(tmp_path):
    head = header(frames=375 * 5, parity=2)
    segments = segments_for(head, payload=(50, 100))
    data = write(tmp_path / "a.ecfx", head, segments)
    with ArchiveReader(data) as reader:
        offset, size = reader.location(1)
    broken = bytearray(data[:-3])  # the footer is gone: the reader scans
    broken[offset + 4] ^= 0xFF
    with ArchiveReader(bytes(broken)) as reader:
        assert not reader.indexed and reader.index_problem.startswith("no footer")
        assert [key(s) for s in reader] == [key(s) for s in segments] and reader.repaired == {1}


def test_sizes_are_checked_against_the_file_before_anything_is_allocated(tmp_path):
    data = write(tmp_path / "a.ecfx", header(), segments_for(header()))
    huge = header(frames=10 ** 9)  # 2.7 million segments announced, in a file of a few hundred bytes
    fields = v3.encode_header(huge, huge.geometry())
    with pytest.raises(ArchiveError, match="^archive header is invalid: it announces 2666667 segments, more "):
        ArchiveReader(fields + data[len(v3.encode_header(header(), header().geometry())):])
    length_at = 5
    broken = bytearray(data)
    broken[length_at] = 0xFF  # the header's length: now past the end of the file
    broken.insert(length_at + 1, 0x7F)
    with pytest.raises(ArchiveError, match="^archive is truncated in its header: it needs"):
        ArchiveReader(bytes(broken))


def test_coding_modes_and_shipped_names_have_ids():
    from encodec_fx.pretrained import LM_SUFFIX, shipped_names
    assert set(CODING_MODES) <= set(v3.CODING_MODE_IDS)
    for name in shipped_names():
        assert name in v3.WELL_KNOWN_NAMES and name + LM_SUFFIX in v3.WELL_KNOWN_NAMES


def test_a_version_2_archive_still_decodes(tmp_path):
    """Written by the version 2 code (tests/data/README.md): decoded as it decoded then, and transcoded to
    version 3 with the same codes."""
    from pathlib import Path

    from encodec_fx import EncodecModel, load_lm
    from encodec_fx.audio_io import read_audio
    from encodec_fx.compress import decode_range, transcode_file
    data = Path(__file__).parent / "data"
    with ArchiveReader(data / "v2-shipped-lm.ecfx") as reader:
        assert reader.version == 2 and ArchiveHeader.from_dict(reader.header).coding_mode == "lm"
    model, lm = EncodecModel.from_pretrained("encodec-fx-24khz"), load_lm("encodec-fx-24khz-lm")
    audio = decode_range(data / "v2-shipped-lm.ecfx", model, lm=lm)
    then = read_audio(data / "v2-shipped-lm.wav")
    assert audio.shape == then.shape
    np.testing.assert_allclose(audio, then, atol=2 / 32768)  # that 16-bit WAV: its conversion errs by up to 1.4 steps
    transcode_file(data / "v2-shipped-lm.ecfx", tmp_path / "v3.ecfx", mode="raw", source_lm=lm)
    assert (tmp_path / "v3.ecfx").read_bytes()[4] == 3
    np.testing.assert_array_equal(decode_range(tmp_path / "v3.ecfx", model), audio)


def test_payload_and_overhead_are_described(tmp_path):
    from entropy.describe import describe_archive
    head = header(frames=750)
    segments = segments_for(head, payload=(100, 200))
    write(tmp_path / "a.ecfx", head, segments)
    description = describe_archive(tmp_path / "a.ecfx")
    payload = sum(len(p) for s in segments for u in s.units for p in u.payloads)
    assert description["payload_bytes"] == payload and description["version"] == 3
    assert description["overhead_bytes"] == description["bytes"] - payload <= 100


def test_varints_are_minimal_and_bounded():
    for value in (0, 1, 127, 128, 16_383, 16_384, 2 ** 63):
        encoded = v3.varint(value)
        assert v3.Cursor(encoded).varint("x") == value and len(encoded) == max(1, -(-value.bit_length() // 7))
    with pytest.raises(v3.Unreadable, match="not a minimal varint"):
        v3.Cursor(b"\x80\x00").varint("x")
    with pytest.raises(v3.Unreadable, match="runs past the end"):
        v3.Cursor(b"\x80").varint("x")
    assert struct.unpack("<I", v3.segment_crc(b"abc", 7)) != struct.unpack("<I", v3.segment_crc(b"abc", 8))
