"""Crafted archives (issue 22): sizes in a header or segment that the file cannot hold, made with valid CRCs in
both format versions. Each must end in a named one-line `ArchiveError`/ValueError within seconds and bounded
memory: not an abort, a hang, a memory bomb, or audio the payload cannot support."""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
import types
import zlib

import numpy as np
import pytest

from encodec_fx.cli import main
from encodec_fx.compress import check_archive_codes
from entropy import format_v3 as v3
from entropy.archive import ArchiveError, ArchiveHeader, ArchiveReader, ArchiveWriter, Segment, Unit
from entropy.coding import StaticModel, encode_many
from entropy.describe import describe_archive

FRAMES, UNIT = 30, 10  # three segments of 10 frames, 24 kHz, 75 frames per second, 4 codebooks


def base_header(mode: str, codes: np.ndarray) -> ArchiveHeader:
    return ArchiveHeader(
        codec={"name": "encodec-fx-24khz", "sha256": "ab" * 32}, lm=None, coding_mode=mode, sample_rate=24_000,
        channels=1, audio_length=FRAMES * 320 - 100, model_sample_rate=24_000, bandwidth=3.0, n_q=4,
        frame_rate=75, chunk_length=None, chunk_stride=None, segment_frames=UNIT, segments=FRAMES // UNIT,
        units=FRAMES // UNIT, frames=FRAMES, segment_seconds=UNIT / 75,
        static_model=StaticModel.from_codes(codes).to_bytes() if mode == "static" else None,
        model_audio_length=FRAMES * 320 - 100, unit_frames=UNIT)


def write_archive(path, mode: str = "static", version: int = 3) -> bytes:
    codes = np.random.default_rng(0).integers(0, 40, (4, FRAMES))
    header = base_header(mode, codes)
    static = StaticModel.from_bytes(header.static_model) if header.static_model else None
    with ArchiveWriter(path, header if version == 3 else header.to_dict(), version=version) as writer:
        for number in range(FRAMES // UNIT):
            payload = encode_many([codes[:, number * UNIT:(number + 1) * UNIT]], mode, static=static)[0]
            writer.write_segment(Segment(number, number * UNIT, UNIT, (Unit(UNIT, (math.nan,), (payload,)),)))
    return path.read_bytes()


def v2_with_header(data: bytes, header: dict | bytes) -> bytes:
    """A version 2 archive with another header (CRC recomputed), its segments moved and its index rebuilt."""
    (length,) = struct.unpack_from("<I", data, 5)
    start = 13 + length
    index_offset = struct.unpack_from("<Q", data, len(data) - 12)[0]
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    preamble = struct.pack("<4sBI", b"ECFX", 2, len(text)) + text
    preamble += struct.pack("<I", zlib.crc32(preamble))
    shift = len(preamble) - start
    (count,) = struct.unpack_from("<I", data, index_offset + 2)
    entries = [struct.unpack_from("<QQI", data, index_offset + 6 + 20 * i) for i in range(count)]
    index = struct.pack("<2sI", b"IX", count) + b"".join(struct.pack("<QQI", offset + shift, first, frames)
                                                         for offset, first, frames in entries)
    index += struct.pack("<I", zlib.crc32(index))
    return preamble + data[start:index_offset] + index + struct.pack("<Q4s", index_offset + shift, b"XFCE")


def v3_with_header(data: bytes, **changes) -> bytes:
    """A version 3 archive whose header fields are changed (CRC recomputed), its segments and index kept."""
    with ArchiveReader(data) as reader:
        fields, start = dict(reader.header), reader._segments_start
    fields.update(changes)
    fields.setdefault("stream_codebooks", None)
    fields.setdefault("stereo", None)
    geometry = v3.Geometry(fields["frames"], fields["unit_frames"], fields["segment_frames"] // fields["unit_frames"],
                           fields["streams"], fields["scaled"], fields["parity"])
    return v3.encode_header(types.SimpleNamespace(**fields), geometry) + data[start:]


def crafted(data: bytes, version: int, **changes) -> bytes:
    if version == 3:
        return v3_with_header(data, **changes)
    with ArchiveReader(data) as reader:
        header = dict(reader.header)
    return v2_with_header(data, header | changes)


@pytest.fixture(scope="module", params=[2, 3])
def version(request):
    return request.param


@pytest.fixture(scope="module")
def static_archive(tmp_path_factory, version):
    return write_archive(tmp_path_factory.mktemp("crafted") / "a.ecfx", "static", version)


def refused(data: bytes, tmp_path, capsys, pattern: str, by_info: bool = True) -> None:
    """`info` answers one line naming the problem (unless it lies where info does not read: a static table),
    and so does reading the codes through the API."""
    path = tmp_path / "crafted.ecfx"
    path.write_bytes(data)
    started = time.perf_counter()
    if by_info:
        assert main(["info", str(path)]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "unexpected" not in error, error
        assert error.startswith("encodec-fx info: error: ") and re.search(pattern, error), error
    with pytest.raises(ValueError, match=pattern):
        check_archive_codes(path)
    assert time.perf_counter() - started < 5


def test_the_unchanged_archive_reads(static_archive, tmp_path):
    path = tmp_path / "a.ecfx"
    path.write_bytes(static_archive)
    header, lost = check_archive_codes(path)
    assert lost == [] and header.frames == FRAMES and describe_archive(path)["complete"]


SIZE_CASES = [
    ({"segments": 10**6, "units": 10**6, "frames": 10**7}, r"announces 1000000 segments|segments, more than"),
    ({"audio_length": 10**12, "model_audio_length": 10**12}, r"does not fit its 30 frames"),
    ({"audio_length": 2 * 10**8, "model_audio_length": 2 * 10**8}, r"does not fit its 30 frames"),
    ({"model_audio_length": 10**19}, r"model_audio_length|does not fit|more than"),
    ({"model_audio_length": 2**62}, r"model_audio_length|does not fit|more than"),
    ({"sample_rate": 10**9}, r"sample_rate must be at most 768000"),
    ({"channels": 2**63}, r"channels must be at most 1024|channel count is \d+, more than"),
    ({"units": 10**12}, r"sizes contradict each other|units"),
    ({"segment_frames": 2 * 10**9, "unit_frames": 2 * 10**9}, r"unit_frames must be at most|more than"),
]


def version_cases(version: int) -> list[tuple[dict, str]]:
    """The size cases a header of `version` can state: version 3 stores the model length as a 64-bit
    difference (2**62 stands for 10**19), derives units from frames (it cannot state units alone) and
    segments from frames."""
    if version == 2:
        return SIZE_CASES
    cases = []
    for changes, pattern in SIZE_CASES:
        if changes.get("model_audio_length") == 10**19 or "units" in changes and "frames" not in changes:
            continue
        cases.append(({"frames": changes["frames"]} if "segments" in changes else changes, pattern))
    return cases


@pytest.mark.parametrize("header_version, changes, pattern",
                         [(version, *case) for version in (2, 3) for case in version_cases(version)])
def test_header_sizes_the_file_cannot_hold_are_refused_by_name(tmp_path, capsys, header_version, changes, pattern):
    archive = write_archive(tmp_path / "a.ecfx", "static", header_version)
    refused(crafted(archive, header_version, **changes), tmp_path, capsys, pattern)


def test_a_deeply_nested_json_header_is_refused_by_depth(static_archive, tmp_path, capsys):
    with ArchiveReader(write_archive(tmp_path / "v2.ecfx", "static", 2)) as reader:
        header = dict(reader.header)
    text = json.dumps(header)[:-1].encode() + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused(v2_with_header((tmp_path / "v2.ecfx").read_bytes(), text), tmp_path, capsys, r"nests 100001 deep")


@functools.cache  # made once for both archive versions: compressing the zeros takes seconds
def zlib_bomb(megabytes: int) -> bytes:
    compressor, zeros = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(megabytes)) + compressor.flush()


def test_a_static_model_that_inflates_to_512_mb_is_refused_without_inflating_it(static_archive, version,
                                                                                 tmp_path, capsys):
    bomb = struct.pack("<HIB", 4, 1024, 32) + zlib_bomb(512)  # 16 KiB of counts announced, 512 MiB inflated
    header_value = bomb if version == 3 else base64.b64encode(bomb).decode()
    refused(crafted(static_archive, version, static_model=header_value), tmp_path, capsys,
            r"static model bytes are corrupt: its counts do not inflate", by_info=False)
    too_many = struct.pack("<HIB", 65535, 2**32 - 1, 32) + zlib.compress(b"")
    with pytest.raises(ValueError, match="static model bytes are corrupt: 65535 codebooks of 4294967295 entries"):
        StaticModel.from_bytes(too_many)


# Two readings of the archive in one limited process (a start of Python and torch fewer), a line each: every
# segment checked against the header's layout, then the decoder's own bound with the layout unchecked (segment 0's
# payloads decoded directly).
LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
from entropy.archive import ArchiveHeader, ArchiveReader, _decode_segment
from entropy.coding import decode_many, StaticModel
from encodec_fx.compress import check_archive_codes
try:
    header, lost = check_archive_codes(sys.argv[1])
    print("lost:", "; ".join(f"{segment.number}: {segment.reason}" for segment in lost))
except ValueError as error:
    print("refused:", error)
data = open(sys.argv[1], "rb").read()
with ArchiveReader(data) as reader:
    header, slot = ArchiveHeader.from_dict(reader.header), reader._slots[0]
unit = _decode_segment(data[slot.offset:slot.offset + slot.size]).units[0]
static = StaticModel.from_bytes(header.static_model)
print(decode_many(list(unit.payloads), header.n_q, [unit.frames], header.coding_mode, static=static)[0])
"""


def run_limited(path, memory_bytes: int = 3 << 30, script: str = LIMITED) -> subprocess.CompletedProcess:
    """Reads every code of the archive in a process limited in memory and time: a regression fails the
    test instead of aborting or swapping the suite."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(path), str(memory_bytes)],
                          capture_output=True, text=True, timeout=60, env=os.environ | {"PYTHONPATH": os.getcwd()})


def v2_segment_with_unit_frames(data: bytes, frames: int) -> bytes:
    """Segment 0's unit frame count replaced (its CRC recomputed): the payload stays as it was."""
    (length,) = struct.unpack_from("<I", data, 5)
    start = 13 + length
    (body_length,) = struct.unpack_from("<I", data, start + 18)
    block = bytearray(data[start:start + 22 + body_length])
    struct.pack_into("<I", block, 26, frames)
    return data[:start] + bytes(block) + struct.pack("<I", zlib.crc32(block)) + data[start + 26 + body_length:]


def test_a_frame_count_near_2_32_in_a_static_archive_is_refused_not_an_abort(tmp_path):
    data = v2_segment_with_unit_frames(write_archive(tmp_path / "v2.ecfx", "static", 2), 2**32 - 2)
    path = tmp_path / "crafted.ecfx"
    path.write_bytes(data)
    result = run_limited(path)
    assert result.returncode == 0, result.stderr[-2000:]  # once: SIGABRT, "memory allocation of 17179869180 bytes"
    archive_check, *_, payload = result.stdout.splitlines()
    assert archive_check.startswith("lost: 0: archive segment 0 is damaged: it does not fit the header's layout")
    assert "1 unit of [4294967294] frames" in archive_check  # the header's 10 frames: never decoded
    # the decoder's own bound, the layout unchecked
    assert payload.startswith("segment payload is corrupt: ") and "cannot hold 4294967294 frames" in payload


def test_a_v3_frame_count_near_2_32_is_refused_in_the_header(tmp_path, capsys):
    """Version 3 keeps frame counts in its header (version 2 in its segments: the test above)."""
    archive = write_archive(tmp_path / "v3.ecfx", "static", 3)
    refused(crafted(archive, 3, unit_frames=2**32 - 1, segment_frames=2**32 - 1, frames=2**32 - 1),
            tmp_path, capsys, r"more than|at most|does not fit")


def test_lm_payloads_that_claim_more_frames_than_their_bytes_hold_stop_early():
    import torch

    from entropy.coding import decode_many
    from entropy.lm import EntropyLM, LMConfig
    torch.manual_seed(0)
    lm = EntropyLM(LMConfig(n_q=4, dim=16, num_heads=2, num_layers=1, past_context=8)).eval()
    started = time.perf_counter()
    result = decode_many([b"\x12\x34\x56\x78" * 3], 4, [50_000], "lm", lm=lm)[0]
    assert isinstance(result, ValueError) and "cannot hold" in str(result)
    assert time.perf_counter() - started < 5  # once: every one of the 50,000 frames decoded


def markers_file(version: int, megabytes: float, tmp_path) -> bytes:
    """A valid header, then `megabytes` of bytes that frame segment after segment claiming most of the file,
    none of whose CRCs matches; no footer."""
    data = write_archive(tmp_path / f"v{version}-{megabytes}.ecfx", "raw", version)
    with ArchiveReader(data) as reader:
        start = reader._segments_start
    size = int(megabytes * 1e6)
    if version == 2:
        piece = struct.pack("<2sIQII", b"SG", 1, 0, 1, size // 2)
    else:
        piece = bytes([0xFF, 0xFF, 0x3F])  # every position reads as a length of up to a megabyte
    junk = piece * (size // len(piece))
    header_block = data[:start]
    if version == 2:  # announce no more segments than fit, so that the header itself is accepted
        return header_block + junk
    return header_block + junk


@pytest.mark.parametrize("version_", [2, 3])
def test_resynchronisation_is_linear(tmp_path, version_):
    times = []
    for megabytes in (0.33, 1.3):
        data = markers_file(version_, megabytes, tmp_path)
        started = time.perf_counter()
        try:
            with ArchiveReader(data) as reader:
                list(reader.scan(recover=True))
        except ArchiveError:
            pass
        times.append(time.perf_counter() - started)
    assert times[1] < 5 and times[1] < 8 * times[0] + 0.5, times  # quadratic: 16 times longer (and a minute)
