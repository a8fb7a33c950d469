"""The `.ecfx` archive container: round trips, seeking, damage, truncation and atomic writes.

Layout facts are checked against docs/archive-format.md with `struct` directly, not through the
module, so the document and the code cannot drift apart unnoticed.
"""

import base64
import gc
import io
import math
import os
import random
import re
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest

from entropy.archive import (
    V2_MIN_SEGMENT_BYTES,
    ArchiveError,
    ArchiveHeader,
    ArchiveReader,
    ArchiveWriter,
    DamagedSegmentError,
    Segment,
    TruncatedArchiveError,
    Unit,
)

from conftest import Trickle

FRAME_RATE = 75
SEGMENT_FRAMES = [7, 150, 1, 40]
HEADER = ArchiveHeader(
    codec={"name": "encodec_24khz", "sha256": "ab" * 32}, lm=None, coding_mode="static", sample_rate=44_100,
    channels=2, audio_length=52_000, model_sample_rate=24_000, bandwidth=6.0, n_q=8, frame_rate=FRAME_RATE,
    chunk_length=None, chunk_stride=None, segment_frames=150, segments=4, units=8, frames=198,
    segment_seconds=2.0, static_model=b"\x08\x00counts",
).to_dict() | {"note": "extra keys are kept"}


def make_segments() -> list[Segment]:
    """Segments with 1-3 units of 1-2 channels, NaN and real scales, payloads of 0-60 random bytes."""
    generator = random.Random(0)
    segments, first_frame = [], 0
    for number, frames in enumerate(SEGMENT_FRAMES):
        units = []
        for _ in range(generator.randint(1, 3)):
            channels = generator.randint(1, 2)
            scales = [generator.choice([math.nan, 0.5, 1.25, 3.0e-3]) for _ in range(channels)]
            payloads = [generator.randbytes(generator.randint(0, 60)) for _ in range(channels)]
            units.append(Unit(generator.randint(1, 200), scales, payloads))
        segments.append(Segment(number, first_frame, frames, units))
        first_frame += frames
    return segments


SEGMENTS = make_segments()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("archive") / "clip.ecfx"
    with ArchiveWriter(path, HEADER) as writer:
        for segment in SEGMENTS:
            writer.write_segment(segment)
    return path.read_bytes()


def layout(data: bytes) -> tuple[int, list[int], int]:
    """Where the segments start, each segment's offset, and the index offset, read by the spec."""
    (header_length,) = struct.unpack_from("<I", data, 5)
    segments_start = 13 + header_length
    index_offset, footer_magic = struct.unpack_from("<Q4s", data, len(data) - 12)
    assert footer_magic == b"XFCE"
    marker, count = struct.unpack_from("<2sI", data, index_offset)
    assert marker == b"IX"
    offsets = [struct.unpack_from("<QQI", data, index_offset + 6 + 20 * i)[0] for i in range(count)]
    return segments_start, offsets, index_offset


def flipped(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]


def assert_same_segment(read: Segment, written: Segment) -> None:
    """Equal, with NaN scales read back as NaN."""
    assert (read.number, read.first_frame, read.frames) == (written.number, written.first_frame, written.frames)
    assert len(read.units) == len(written.units)
    for read_unit, unit in zip(read.units, written.units):
        assert read_unit.frames == unit.frames and read_unit.payloads == unit.payloads
        for read_scale, scale in zip(read_unit.scales, unit.scales, strict=True):
            assert (math.isnan(read_scale) and math.isnan(scale)) or read_scale == scale


def assert_reads_segments(reader: ArchiveReader, numbers: list[int]) -> None:
    for number in numbers:
        assert_same_segment(reader.segment(number), SEGMENTS[number])


def test_round_trip_from_bytes_and_path(archive, tmp_path):
    path = tmp_path / "copy.ecfx"
    path.write_bytes(archive)
    with ArchiveReader(archive) as from_bytes, ArchiveReader(path) as from_path:
        for reader in (from_bytes, from_path):
            assert reader.header == HEADER and reader.indexed and len(reader) == len(SEGMENTS)
            assert base64.b64decode(reader.header["static_model"]) == b"\x08\x00counts"
            for read, written in zip(reader, SEGMENTS, strict=True):
                assert_same_segment(read, written)
    assert any(math.isnan(scale) for segment in SEGMENTS for unit in segment.units for scale in unit.scales)


def test_layout_follows_the_document(archive):
    assert archive[:5] == b"ECFX\x02"
    (header_length,) = struct.unpack_from("<I", archive, 5)
    header_end = 9 + header_length
    assert struct.unpack_from("<I", archive, header_end)[0] == zlib.crc32(archive[:header_end])
    segments_start, offsets, index_offset = layout(archive)
    assert offsets[0] == segments_start
    ends = offsets[1:] + [index_offset]
    first_frame = 0
    for number, (offset, end) in enumerate(zip(offsets, ends)):
        marker, read_number, read_first, frames, body_length = struct.unpack_from("<2sIQII", archive, offset)
        assert (marker, read_number, read_first, frames) == (b"SG", number, first_frame, SEGMENT_FRAMES[number])
        assert end == offset + 26 + body_length
        assert struct.unpack_from("<I", archive, end - 4)[0] == zlib.crc32(archive[offset:end - 4])
        (unit_count,) = struct.unpack_from("<I", archive, offset + 22)
        assert unit_count == len(SEGMENTS[number].units)
        first_frame += frames
    index_end = len(archive) - 12
    assert struct.unpack_from("<I", archive, index_end - 4)[0] == zlib.crc32(archive[index_offset:index_end - 4])


def test_scales_are_float32_and_nan_survives():
    assert Unit(1, [0.1], [b""]).scales == (struct.unpack("<f", struct.pack("<f", 0.1))[0],)
    assert math.isnan(Unit(1, [math.nan], [b""]).scales[0])
    with pytest.raises(ValueError, match="float32"):
        Unit(1, [1e40], [b""])


@pytest.mark.parametrize("make", [
    lambda: Unit(0, [1.0], [b""]),
    lambda: Unit(1, [1.0, 2.0], [b""]),
    lambda: Unit(1, [], []),
    lambda: Unit(1, [1.0], ["text"]),
    lambda: Segment(0, 0, 0, [Unit(1, [1.0], [b""])]),
    lambda: Segment(0, 0, 1, []),
    lambda: Segment(-1, 0, 1, [Unit(1, [1.0], [b""])]),
])
def test_invalid_units_and_segments_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_seek_by_frame_and_time(archive):
    reader = ArchiveReader(archive)
    frame = 0
    for segment in SEGMENTS:
        for frame in range(segment.first_frame, segment.first_frame + segment.frames):
            assert reader.segment_for_frame(frame).number == segment.number
            assert reader.segment_at_time(frame / FRAME_RATE).number == segment.number
        last_moment = (segment.first_frame + segment.frames - 0.01) / FRAME_RATE
        assert reader.segment_at_time(last_moment).number == segment.number
    total = sum(SEGMENT_FRAMES)
    with pytest.raises(ValueError, match=f"frame {total} is past the end of the archive"):
        reader.segment_for_frame(total)
    with pytest.raises(ValueError, match="non-negative"):
        reader.segment_at_time(-1.0)


def test_seek_reads_only_the_wanted_segment(archive):
    """Through the index, a damaged segment 0 does not stop a seek into segment 3."""
    _, offsets, _ = layout(archive)
    reader = ArchiveReader(flipped(archive, offsets[0] + 30))
    assert reader.indexed
    assert_same_segment(reader.segment_at_time(160 / FRAME_RATE), SEGMENTS[3])


def test_flipped_header_bytes(archive):
    segments_start, _, _ = layout(archive)
    for position in range(segments_start):
        with pytest.raises(ArchiveError) as error:
            ArchiveReader(flipped(archive, position))
        message = str(error.value)
        if position < 4:
            assert message.startswith("not an encodec-fx archive (.ecfx): ")
        elif position == 4:
            assert message.startswith(
                "unsupported encodec-fx archive version 253: this reader supports versions 2 and 3")
        elif position < 9:
            assert message.startswith(("archive header is damaged: ", "archive is truncated in its header"))
        else:
            assert message == "archive header is damaged: its CRC32 does not match"


def test_flipped_segment_bytes_damage_only_that_segment(archive):
    _, offsets, index_offset = layout(archive)
    ends = offsets[1:] + [index_offset]
    for number, (offset, end) in enumerate(zip(offsets, ends)):
        for position in range(offset, end):
            reader = ArchiveReader(flipped(archive, position))
            assert reader.indexed and len(reader) == len(SEGMENTS)
            with pytest.raises(DamagedSegmentError, match=f"^archive segment {number} is damaged: ") as error:
                reader.segment(number)
            assert error.value.index == number
            assert_reads_segments(reader, [other for other in range(len(SEGMENTS)) if other != number])


@pytest.mark.parametrize("lose_index", ["index CRC damaged", "footer cut off"])
def test_scan_recovers_around_a_flipped_segment_byte(archive, lose_index):
    _, offsets, index_offset = layout(archive)
    ends = offsets[1:] + [index_offset]
    for number, (offset, end) in enumerate(zip(offsets, ends)):
        for position in range(offset, end):
            data = flipped(archive, position)
            data = flipped(data, len(data) - 13) if lose_index == "index CRC damaged" else data[:-12]
            reader = ArchiveReader(data)
            assert not reader.indexed and len(reader) == len(SEGMENTS)
            items = list(reader.scan(recover=True))
            assert [isinstance(item, DamagedSegmentError) for item in items] == [
                other == number for other in range(len(SEGMENTS))
            ]
            assert items[number].index == number
            for item, segment in zip(items, SEGMENTS):
                if isinstance(item, Segment):
                    assert_same_segment(item, segment)
            with pytest.raises(DamagedSegmentError) as error:
                reader.segment_for_frame(SEGMENTS[number].first_frame)
            assert error.value.index == number


def test_scan_without_recover_stops_at_the_first_error(archive):
    _, offsets, _ = layout(archive)
    items = list(ArchiveReader(flipped(archive, offsets[1] + 3)).scan(recover=False))
    assert [type(item) for item in items] == [Segment, DamagedSegmentError]


def test_segments_lost_together_are_each_reported(archive):
    """Two segments wiped out without an index: both reported, seeking into them says so."""
    _, offsets, _ = layout(archive)
    data = archive[:offsets[1]] + bytes(offsets[3] - offsets[1]) + archive[offsets[3]:-12]
    reader = ArchiveReader(data)
    items = list(reader.scan())
    assert [type(item) for item in items] == [Segment, DamagedSegmentError, DamagedSegmentError, Segment]
    assert [items[1].index, items[2].index] == [1, 2]
    with pytest.raises(DamagedSegmentError, match="damaged segments 1 to 2") as error:
        reader.segment_for_frame(SEGMENTS[1].first_frame)
    assert error.value.index == 1
    assert_same_segment(reader.segment_for_frame(SEGMENTS[3].first_frame), SEGMENTS[3])


def test_flipped_index_or_footer_bytes_fall_back_to_scanning(archive):
    _, _, index_offset = layout(archive)
    for position in range(index_offset, len(archive)):
        reader = ArchiveReader(flipped(archive, position))
        assert not reader.indexed and len(reader) == len(SEGMENTS)
        for read, written in zip(reader, SEGMENTS, strict=True):
            assert_same_segment(read, written)
        assert reader.segment_for_frame(SEGMENTS[2].first_frame).number == 2


def rewrite_index(data: bytes, entries: list[tuple[int, int, int]]) -> bytes:
    """The archive with its index replaced by `entries`, CRC-valid, laid out by the spec."""
    _, _, index_offset = layout(data)
    index = struct.pack("<2sI", b"IX", len(entries)) + b"".join(struct.pack("<QQI", *entry) for entry in entries)
    return data[:index_offset] + index + struct.pack("<I", zlib.crc32(index)) + data[-12:]


def index_entries(data: bytes) -> list[tuple[int, int, int]]:
    _, offsets, index_offset = layout(data)
    return [struct.unpack_from("<QQI", data, index_offset + 6 + 20 * i) for i in range(len(offsets))]


def shift_first_frame_of_entry_2(entries):
    entries[2][1] += 1


def move_entry_0(entries):
    entries[0][0] += 1


def squeeze_segment_1(entries):
    entries[2][0] = entries[1][0] + 10


@pytest.mark.parametrize("change, message", [
    (shift_first_frame_of_entry_2, "entry 2 covers frames"),
    (move_entry_0, "the first segment is at byte"),
    (squeeze_segment_1, "entry 1 leaves segment 1 10 bytes"),
])
def test_index_contradicting_itself_is_an_error(archive, change, message):
    entries = [list(values) for values in index_entries(archive)]
    change(entries)
    with pytest.raises(ArchiveError, match=f"^archive index is inconsistent with its segments: {message}"):
        ArchiveReader(rewrite_index(archive, [tuple(values) for values in entries]))


def test_index_contradicting_a_segment_is_an_error(archive):
    entries = index_entries(archive)
    entries[0] = (entries[0][0], 0, entries[0][2] + 1)
    entries[1] = (entries[1][0], entries[1][1] + 1, entries[1][2] - 1)
    reader = ArchiveReader(rewrite_index(archive, entries))
    assert reader.indexed
    with pytest.raises(ArchiveError, match="^archive index is inconsistent with segment 0: "):
        reader.segment(0)
    assert_same_segment(reader.segment(2), SEGMENTS[2])


def test_truncation_at_every_byte(archive):
    segments_start, offsets, index_offset = layout(archive)
    ends = offsets[1:] + [index_offset]
    for cut in range(segments_start, len(archive)):
        if cut - segments_start < len(SEGMENTS) * V2_MIN_SEGMENT_BYTES:  # could not hold the segments announced
            with pytest.raises(ArchiveError, match=f"^archive header is invalid: it announces {len(SEGMENTS)} "
                                                   "segments, more than the"):
                ArchiveReader(archive[:cut])
            continue
        reader = ArchiveReader(archive[:cut])
        intact = sum(end <= cut for end in ends)
        assert not reader.indexed and len(reader) == intact
        items = list(reader.scan(recover=True))
        for item, segment in zip(items[:intact], SEGMENTS):
            assert_same_segment(item, segment)
        if cut > index_offset:  # cut inside the index: every segment is there, nothing is reported
            assert len(items) == intact and len(list(reader)) == intact
            continue
        truncation = items[-1]
        assert len(items) == intact + 1 and isinstance(truncation, TruncatedArchiveError)
        assert truncation.index == intact
        if cut in offsets + [index_offset]:
            expected = "after its header" if intact == 0 else f"after segment {intact - 1}"
        else:
            expected = f"in segment {intact}"
        assert str(truncation).startswith(f"archive is truncated {expected}: ")
        with pytest.raises(TruncatedArchiveError, match=f"^archive is truncated {expected}: "):
            list(reader)
        if intact < len(SEGMENTS):
            with pytest.raises(TruncatedArchiveError):
                reader.segment_for_frame(sum(SEGMENT_FRAMES) - 1)


def test_segment_out_of_range(archive):
    _, offsets, _ = layout(archive)
    with pytest.raises(IndexError, match="segment 4 is out of range: the archive has 4 segments"):
        ArchiveReader(archive).segment(4)
    with pytest.raises(TruncatedArchiveError, match="in segment 2"):
        ArchiveReader(archive[:offsets[2] + 5]).segment(3)


def handmade_archive(segment_bodies: list[bytes]) -> bytes:
    """An archive put together from docs/archive-format.md alone: one frame per segment."""
    header = b'{"frame_rate":75}'
    data = struct.pack("<4sBI", b"ECFX", 2, len(header)) + header
    data += struct.pack("<I", zlib.crc32(data))
    entries = []
    for number, body in enumerate(segment_bodies):
        entries.append(struct.pack("<QQI", len(data), number, 1))
        block = struct.pack("<2sIQII", b"SG", number, number, 1, len(body)) + body
        data += block + struct.pack("<I", zlib.crc32(block))
    index = struct.pack("<2sI", b"IX", len(entries)) + b"".join(entries)
    return data + index + struct.pack("<I", zlib.crc32(index)) + struct.pack("<Q4s", len(data), b"XFCE")


def test_handmade_archive_reads_and_a_malformed_body_is_damage():
    unit = struct.pack("<IH", 3, 2) + struct.pack("<fI", math.nan, 3) + b"abc" + struct.pack("<fI", 0.5, 0)
    reader = ArchiveReader(handmade_archive([struct.pack("<I", 1) + unit, struct.pack("<I", 1) + unit + b"junk"]))
    assert reader.indexed and reader.header == {"frame_rate": 75}
    assert_same_segment(reader.segment(0), Segment(0, 0, 1, [Unit(3, [math.nan, 0.5], [b"abc", b""])]))
    with pytest.raises(DamagedSegmentError, match="segment 1 is damaged: its body is malformed: 4 bytes follow"):
        reader.segment(1)


def test_truncation_inside_the_header(archive):
    segments_start, _, _ = layout(archive)
    for cut in range(1, segments_start):
        with pytest.raises(ArchiveError, match="^archive is truncated in its header"):
            ArchiveReader(archive[:cut])


def test_damage_and_truncation_together(archive):
    _, offsets, _ = layout(archive)
    reader = ArchiveReader(flipped(archive, offsets[1] + 25)[:offsets[3] + 10])
    items = list(reader.scan())
    assert [type(item) for item in items] == [Segment, DamagedSegmentError, Segment, TruncatedArchiveError]
    assert str(items[-1]).startswith("archive is truncated in segment 3: ")


@pytest.mark.parametrize("content, message", [
    (b"", "not an encodec-fx archive (.ecfx): the file is empty"),
    (random.Random(1).randbytes(5000), "not an encodec-fx archive (.ecfx): it starts with "),
    (b"hello, world\n", "not an encodec-fx archive (.ecfx): it starts with b'hell'"),
    (b"ECDC\x00\x00\x00\x00\x10{}", "not an encodec-fx archive (.ecfx): it starts with b'ECDC', not b'ECFX' (an"),
    (b"ECFX\x01\x00\x00\x00\x00", "unsupported encodec-fx archive version 1: this reader supports versions 2 and 3"),
])
def test_files_that_are_not_archives(tmp_path, content, message):
    path = tmp_path / "input.ecfx"
    path.write_bytes(content)
    for source in (content, path):
        with pytest.raises(ArchiveError) as error:
            ArchiveReader(source)
        assert str(error.value).startswith(message)


@pytest.mark.parametrize("header_json, message", [
    (b"[1, 2]", "it must be a JSON object"),
    (b'{"frame_rate": 0}', '"frame_rate"'),
    (b"\xff{}", "not UTF-8 JSON"),
])
def test_invalid_headers_with_valid_crc(header_json, message):
    preamble = struct.pack("<4sBI", b"ECFX", 2, len(header_json)) + header_json
    with pytest.raises(ArchiveError, match=f"^archive header is invalid: .*{message}"):
        ArchiveReader(preamble + struct.pack("<I", zlib.crc32(preamble)))


@pytest.mark.parametrize("header", [
    {"frame_rate": 75, "shape": (1, 2)},
    {"frame_rate": 75, 1: "integer key"},
    {"frame_rate": 75, "scale": math.nan},
    {"frame_rate": 75, "object": object()},
    {"codec": "no frame rate"},
    {"frame_rate": True},
])
def test_writer_refuses_headers_that_would_not_read_back(tmp_path, header):
    with pytest.raises(ValueError):
        ArchiveWriter(tmp_path / "out.ecfx", header)
    assert os.listdir(tmp_path) == []


def test_exception_inside_with_leaves_nothing(tmp_path):
    path = tmp_path / "out.ecfx"
    with pytest.raises(RuntimeError):
        with ArchiveWriter(path, HEADER) as writer:
            writer.write_segment(SEGMENTS[0])
            [temporary] = os.listdir(tmp_path)  # beside the destination, so the rename stays atomic
            assert temporary.startswith(".out.ecfx.") and not path.exists()
            raise RuntimeError("encoder failed")
    assert os.listdir(tmp_path) == []


def test_out_of_order_segment_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="expected segment 1, got 2"):
        with ArchiveWriter(tmp_path / "out.ecfx", HEADER) as writer:
            writer.write_segment(SEGMENTS[0])
            writer.write_segment(SEGMENTS[2])
    with pytest.raises(ValueError, match="must start at frame 0"):
        with ArchiveWriter(tmp_path / "out.ecfx", HEADER) as writer:
            writer.write_segment(Segment(0, 5, 1, SEGMENTS[0].units))
    assert os.listdir(tmp_path) == []


def test_writer_is_done_after_close(tmp_path):
    writer = ArchiveWriter(tmp_path / "out.ecfx", HEADER)
    writer.close()
    with pytest.raises(ValueError, match="is closed"):
        writer.write_segment(SEGMENTS[0])
    assert os.listdir(tmp_path) == ["out.ecfx"]


def test_existing_file_is_replaced_only_with_overwrite(tmp_path, archive):
    path = tmp_path / "out.ecfx"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists: pass overwrite=True"):
        ArchiveWriter(path, HEADER)
    assert path.read_bytes() == b"precious" and os.listdir(tmp_path) == ["out.ecfx"]
    with ArchiveWriter(path, HEADER, overwrite=True) as writer:
        for segment in SEGMENTS:
            writer.write_segment(segment)
    assert path.read_bytes() == archive and os.listdir(tmp_path) == ["out.ecfx"]


def test_archive_without_segments(tmp_path):
    path = tmp_path / "silence.ecfx"
    with ArchiveWriter(path, {"frame_rate": 150}):
        pass
    with ArchiveReader(path) as reader:
        assert reader.indexed and len(reader) == 0 and list(reader.scan()) == []
        with pytest.raises(ValueError, match="past the end"):
            reader.segment_for_frame(0)


def test_header_dataclass_needs_its_fields():
    with pytest.raises(ValueError, match="lacks the fields"):
        ArchiveHeader.from_dict({"frame_rate": 75})


@pytest.mark.parametrize("field", ["segments", "units", "frames", "segment_seconds"])
def test_header_needs_what_decoding_a_lost_segment_needs(field):
    """Decoding counts segments, units and frames against these; a hand-made header without them
    got past the header check and crashed decompress with a TypeError."""
    with pytest.raises(ValueError, match=rf"lacks the fields \['{field}'\]"):
        ArchiveHeader.from_dict({key: value for key, value in HEADER.items() if key != field})


@pytest.mark.parametrize("change, message", [
    ({"channels": 0}, r"channels must be a positive integer, got 0"),  # crashed the audio writer
    ({"sample_rate": "44100"}, r"sample_rate must be a positive integer, got '44100'"),
    ({"audio_length": 0}, r"audio_length must be a positive integer"),  # info divided by it
    ({"lm_group_segments": 0}, r"lm_group_segments must be a positive integer"),
    ({"frame_rate": float("nan")}, r"frame_rate must be a positive number"),
    ({"chunk_length": -1}, r"chunk_length must be a non-negative integer or null"),
    ({"segments": None}, r"segments must be a positive integer, got None"),
    ({"segment_seconds": None}, r"segment_seconds must be a positive number, got None"),
    ({"codec": None}, r"codec must be an object with the codec's name and sha256"),
    ({"coding_mode": "lm"}, r"lm must be an object with the LM's name and sha256, as the coding mode is lm"),
    ({"coding_mode": "zip"}, r"coding_mode must be raw, static, lm"),
    ({"static_model": None}, r"static_model must be the codes' distribution, as the coding mode is static"),
])
def test_header_values_that_no_archive_holds_are_refused(change, message):
    """A CRC-valid header can still be hand-made or foreign; each field is checked when read."""
    with pytest.raises(ValueError, match="the archive header's " + message):
        ArchiveHeader.from_dict(HEADER | change)


# --- input validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("source, detail", [
    (True, "got bool"),
    (None, "got NoneType"),
    (io.StringIO("ECFX"), "got a text stream: open the file with 'rb'"),
    (object(), "got object"),
])
def test_reader_says_what_sources_it_takes(source, detail):
    with pytest.raises(TypeError, match="an archive source must be bytes, a bytearray, a memoryview, a path or a "
                                        f"binary file object opened for reading, {detail}"):
        ArchiveReader(source)


def test_reader_refuses_file_descriptors_and_leaves_them_open():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(TypeError, match="got int"):
            ArchiveReader(read_end)
        os.fstat(read_end)  # still open: ArchiveReader(0) must not close stdin
    finally:
        os.close(read_end)
        os.close(write_end)


def test_reader_takes_binary_file_objects(archive, tmp_path):
    """From the file's position to its end; the caller's file object stays open."""
    embedded = io.BytesIO(b"prefix" + archive)
    embedded.seek(len(b"prefix"))
    path = tmp_path / "copy.ecfx"
    path.write_bytes(archive)
    with open(path, "rb") as file:
        for source in (embedded, file, Trickle(archive, 7), io.BufferedReader(Trickle(archive, 7))):
            with ArchiveReader(source) as reader:
                assert reader.header == HEADER and reader.indexed
                assert_same_segment(reader.segment_at_time(160 / FRAME_RATE), SEGMENTS[3])
                for read, written in zip(reader, SEGMENTS, strict=True):
                    assert_same_segment(read, written)
            assert not source.closed
    _, offsets, _ = layout(archive)
    with ArchiveReader(io.BytesIO(archive[:offsets[2] + 10])) as reader:  # no index: scans, on demand
        assert not reader.indexed and reader.truncated and len(reader) == 2
        assert_same_segment(reader.segment(1), SEGMENTS[1])


@pytest.mark.parametrize("seconds, number", [
    (np.float32(0.1), 1),  # frame 7
    (np.float64(157 / FRAME_RATE), 2),
    (np.int64(2), 1),  # frame 150, in segment 1 (frames 7 to 156)
    (Fraction(7, FRAME_RATE), 1),  # exactly on a boundary
    (Fraction(1, 2 * FRAME_RATE), 0),
])
def test_seek_by_time_takes_any_real_number(archive, seconds, number):
    assert ArchiveReader(archive).segment_at_time(seconds).number == number


@pytest.mark.parametrize("seconds, error, message", [
    ("0.1", TypeError, r"seconds must be a real number \(int, float, Fraction or numpy scalar\), got '0.1'"),
    (None, TypeError, "seconds must be a real number"),
    (True, TypeError, "seconds must be a real number"),
    (math.nan, ValueError, "seconds must be a finite non-negative number, got nan"),
    (-math.inf, ValueError, "finite non-negative"),
    (Fraction(-1, 3), ValueError, "finite non-negative"),
    (10**400, ValueError, r"is past the end of the archive, which holds frames \[0, 198\)"),
    (1e300, ValueError, r"is past the end of the archive"),
])
def test_seek_by_time_refuses_what_is_no_time(archive, seconds, error, message):
    with pytest.raises(error, match=message):
        ArchiveReader(archive).segment_at_time(seconds)


@pytest.mark.parametrize("index", ["0", None, 1.0, True])
def test_segment_index_must_be_an_integer(archive, index):
    with pytest.raises(TypeError, match=f"^a segment index must be an integer, got {re.escape(repr(index))}$"):
        ArchiveReader(archive).segment(index)


def test_segment_index_may_be_a_numpy_integer(archive):
    assert_same_segment(ArchiveReader(archive).segment(np.int64(2)), SEGMENTS[2])


def test_failed_write_without_with_leaves_nothing(tmp_path):
    writer = ArchiveWriter(tmp_path / "out.ecfx", HEADER)
    writer.write_segment(SEGMENTS[0])
    with pytest.raises(ValueError, match="expected segment 1, got 2"):
        writer.write_segment(SEGMENTS[2])
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match=r"discarded after an error \(ValueError: segments must be written in order"):
        writer.write_segment(SEGMENTS[1])
    with pytest.raises(ValueError, match="discarded after an error .*: nothing was written"):
        writer.close()
    assert os.listdir(tmp_path) == []
    writer = ArchiveWriter(tmp_path / "out.ecfx", HEADER)
    with pytest.raises(TypeError, match="write_segment takes a Segment, got dict"):
        writer.write_segment({"number": 0})
    assert os.listdir(tmp_path) == []


def test_caught_write_error_inside_with_is_not_reported_as_success(tmp_path):
    with pytest.raises(ValueError, match="discarded after an error"):
        with ArchiveWriter(tmp_path / "out.ecfx", HEADER) as writer:
            try:
                writer.write_segment(SEGMENTS[1])
            except ValueError:
                pass
    assert os.listdir(tmp_path) == []


def test_writer_dropped_unclosed_removes_its_temporary(tmp_path):
    writer = ArchiveWriter(tmp_path / "out.ecfx", HEADER)
    writer.write_segment(SEGMENTS[0])
    assert len(os.listdir(tmp_path)) == 1
    del writer
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_writer_errors_name_the_destination(tmp_path):
    missing = tmp_path / "no such folder" / "out.ecfx"
    with pytest.raises(FileNotFoundError, match=f"^cannot write {re.escape(str(missing))}: there is no folder "
                                                f"{re.escape(str(missing.parent))}$"):
        ArchiveWriter(missing, HEADER)
    with pytest.raises(IsADirectoryError, match="it is a folder; give a file name"):
        ArchiveWriter(tmp_path, HEADER, overwrite=True)
    with pytest.raises(TypeError, match="the archive path must be a str or os.PathLike, got int"):
        ArchiveWriter(3, HEADER)
    assert os.listdir(tmp_path) == []
