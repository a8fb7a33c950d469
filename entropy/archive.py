"""The encodec-fx archive container, `.ecfx`: a JSON header, self-contained segments, an index.

A pure format module (bytes and files in, plain data out; no model, no torch). It implements
docs/archive-format.md, which specifies the byte layout, the integrity rules and how a reader seeks
and recovers: segments are CRC-checked one by one, so damage costs only the segments it touches, and
a reader that finds the index missing or damaged (a truncated file) scans for segments instead.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import io
import json
import math
import numbers
import os
import re
import struct
import weakref
import zlib
from dataclasses import MISSING, asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Mapping

import numpy as np

from entropy import crc_scan, format_v3 as v3

from . import atomic

if TYPE_CHECKING:  # a format module: no torch, which entropy.coding imports
    from entropy.coding import CodingMode

ARCHIVE_SUFFIX = ".ecfx"
ARCHIVE_MAGIC = b"ECFX"
ARCHIVE_VERSION = 3  # 3: binary header and framing, parity (2: JSON header; 1: float LM, CPU-dependent)
READ_VERSIONS = (2, 3)
SEGMENT_MARKER = b"SG"
INDEX_MARKER = b"IX"
FOOTER_MAGIC = b"XFCE"

_PREAMBLE = struct.Struct("<4sBI")  # magic, version, header length
_CRC = struct.Struct("<I")
_SEGMENT_FIELDS = struct.Struct("<2sIQII")  # marker, number, first frame, frames, body length
_SEGMENT_OVERHEAD = _SEGMENT_FIELDS.size + _CRC.size
_UNIT_COUNT = struct.Struct("<I")
_UNIT_FIELDS = struct.Struct("<IH")  # frames, channel count
_CHANNEL_FIELDS = struct.Struct("<fI")  # scale, payload length
_INDEX_FIELDS = struct.Struct("<2sI")  # marker, segment count
_INDEX_ENTRY = struct.Struct("<QQI")  # offset, first frame, frames
_FOOTER = struct.Struct("<Q4s")  # index offset, footer magic
_FRAME_TOLERANCE = 1e-6
"""Frames by which a time may miss a frame boundary and still count as on it, so that times
computed as frame / frame_rate find that frame despite float rounding."""
_SOURCES = "bytes, a bytearray, a memoryview, a path or a binary file object opened for reading"

# Bounds on what a header may announce (docs/archive-format.md, "Bounds"): the writer refuses beyond them and
# so does the reader, before anything is allocated from them, so that a crafted archive is an ArchiveError and
# not a memory bomb. Each lies beyond what encodec-fx writes by default (in brackets).
MAX_SAMPLE_RATE = 768_000  # Hz, of the audio and of the model (the highest common audio rate; 8-48 kHz)
MAX_CHANNELS = 1024  # channels and streams (the file's)
MAX_CODEBOOKS = 256  # n_q (at most 32)
MAX_UNIT_FRAMES = 1 << 16  # code frames in one payload (375 or 150; 9,000 at most, 60 s at 150 frames/s)
MAX_SEGMENT_CODES = 1 << 24  # frames × codebooks × streams of one segment, 128 MiB decoded (24,000 for
# stereo at 24 kbps; long segments of many channels reach it, which `encodec_fx.compress` refuses up front)
SEGMENT_SECONDS = 5.0
"""The segment length `encodec_fx.compress` writes unless told otherwise. Segments are what a time range
decodes whole, what parity protects and what `--recover` loses; each costs 8 bytes (its length, CRC and
index entry) and, with an LM, restarts the LM's context. Measured with the shipped codec and LM
(docs/archive-format.md): 2 s segments take 1.4 % more bytes at 1.5 kbps and 0.1 % fewer at 6, and an
LM archive then decodes a 10 s range in 0.69 s instead of 1.19 s."""
MIN_SEGMENT_SECONDS = 0.1  # shorter costs more in framing (8 bytes each) than any range could gain
MAX_SEGMENT_SECONDS = 60.0  # longer brings nothing (the LM sees 3.5 s back)
MAX_LM_ROWS = 256  # payloads LM-coded as one batch, each with its attention cache (at most 32)
MAX_HEADER_DEPTH = 16  # nesting of a version 2 JSON header (2)
V2_MIN_SEGMENT_BYTES = _SEGMENT_OVERHEAD + _UNIT_COUNT.size + _UNIT_FIELDS.size + _CHANNEL_FIELDS.size
"""The fewest bytes a version 2 segment (one unit, one stream, an empty payload) takes."""


def check_segment_seconds(seconds: object) -> None:
    """MIN_SEGMENT_SECONDS to MAX_SEGMENT_SECONDS, or a one-line error (`encodec_fx.compress` and the
    collection job, which checks before any file is read)."""
    if not isinstance(seconds, numbers.Real) or isinstance(seconds, bool) or \
            not MIN_SEGMENT_SECONDS <= float(seconds) <= MAX_SEGMENT_SECONDS:  # NaN fails too
        raise ValueError(f"segment_seconds must be from {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g} seconds, "
                         f"got {seconds!r}")


class ArchiveError(ValueError):
    """The bytes are not a readable `.ecfx` archive, or part of one is damaged or missing."""


class DamagedSegmentError(ArchiveError):
    """Segment `index` cannot be read; the other segments usually still can."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, reason)
        self.index, self.reason = index, reason

    def __str__(self) -> str:
        return f"archive segment {self.index} is damaged: {self.reason}"


class TruncatedArchiveError(ArchiveError):
    """The file ends early: segment `index` and all after it (and the index) are missing."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, reason)
        self.index, self.reason = index, reason

    def __str__(self) -> str:
        return f"archive is truncated {self.reason}"


@dataclass(frozen=True)
class Unit:
    """One chunk of codes (chunked models) or a whole segment: per channel a scale and a payload.

    Scales are stored as float32, so they are rounded to float32 here and read back equal; NaN
    marks a model that does not normalise. Payloads are opaque bytes (`encode_codes` output).
    """

    frames: int
    scales: tuple[float, ...]
    payloads: tuple[bytes, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", _checked_uint(self.frames, 32, "unit frames", minimum=1))
        scales = tuple(_as_float32(scale) for scale in self.scales)
        payloads = tuple(self.payloads)
        if not all(isinstance(payload, (bytes, bytearray, memoryview)) for payload in payloads):
            raise ValueError("unit payloads must be bytes")
        payloads = tuple(bytes(payload) for payload in payloads)
        if not 1 <= len(scales) <= 0xFFFF or len(payloads) != len(scales):
            raise ValueError(
                f"a unit needs one scale and one payload per channel (1 to 65535 channels), "
                f"got {len(scales)} scales and {len(payloads)} payloads"
            )
        if any(len(payload) > 0xFFFFFFFF for payload in payloads):
            raise ValueError("a unit payload must be shorter than 4 GiB")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "payloads", payloads)


@dataclass(frozen=True)
class Segment:
    """Frames [first_frame, first_frame + frames) of the archive's timeline, decodable on its own."""

    number: int
    first_frame: int
    frames: int
    units: tuple[Unit, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "number", _checked_uint(self.number, 32, "segment number"))
        object.__setattr__(self, "first_frame", _checked_uint(self.first_frame, 64, "segment first_frame"))
        object.__setattr__(self, "frames", _checked_uint(self.frames, 32, "segment frames", minimum=1))
        units = tuple(self.units)
        if not units or not all(isinstance(unit, Unit) for unit in units):
            raise ValueError(f"segment {self.number} needs at least one Unit, got {self.units!r}")
        object.__setattr__(self, "units", units)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_identity(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(key), str) for key in ("name", "sha256"))


def _v2_unit_frames(values: dict[str, Any]) -> Any:
    """Frames of a chunk of a version 2 header (which has no unit_frames): ceil(chunk_length · frame_rate /
    model rate), or the segment's frames over its chunks where that does not divide them (audio shorter than a
    chunk); the header's own value (None) where its fields are not numbers, for the checks to name."""
    try:
        whole = math.ceil(values["chunk_length"] * values["frame_rate"] / values["model_sample_rate"])
        if whole >= 1 and values["segment_frames"] % whole == 0:
            return whole
        units = round(values["segment_seconds"] * values["model_sample_rate"] / values["chunk_stride"])
        return values["segment_frames"] // units if units >= 1 and values["segment_frames"] % units == 0 else None
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


@dataclass(frozen=True)
class ArchiveHeader:
    """The header fields encodec-fx writes, as a typed view of the header dict.

    `to_dict()` gives what `ArchiveWriter` takes; `from_dict(reader.header)` reads it back and
    ignores keys it does not know (the format allows extra keys; `ArchiveReader.header` keeps them).
    """

    codec: dict
    lm: dict | None
    coding_mode: CodingMode  # checked by __post_init__
    sample_rate: int
    channels: int
    audio_length: int
    model_sample_rate: int
    bandwidth: float
    n_q: int
    frame_rate: float
    chunk_length: int | None
    chunk_stride: int | None
    segment_frames: int
    segments: int  # segment count, units and code frames in all: what a lost segment held
    units: int
    frames: int
    segment_seconds: float
    static_model: bytes | None = None
    model_audio_length: int | None = None  # samples at the model's rate, before the codec's padding
    lm_group_segments: int = 1  # segments whose payloads were LM-coded as rows of one batch
    streams: int = 1  # payloads per unit (version 3 needs it; version 2 archives leave it to the codec)
    unit_frames: int | None = None  # frames of every unit but the last; None: segment_frames (unchunked)
    scaled: bool = False  # whether units carry the chunks' loudness scales (models that normalise)
    parity: int = 0  # data segments per parity segment (version 3), 0 for none
    stereo: str | None = None  # split stereo (version 3): what the 2 streams are, "mid-side" or "left-right"
    stream_codebooks: list[int] | None = None  # split stereo: each stream's codebooks (n_q the most), the sum paid

    def __post_init__(self) -> None:
        """Refuse values no archive encodec-fx writes can hold: the header's CRC only says that
        the bytes are as written, not that a foreign or hand-made archive makes sense (a channel
        count of 0 crashed the audio writer)."""
        def refuse(name: str, accepted: str) -> None:
            raise ValueError(f"the archive header's {name} must be {accepted}, got {getattr(self, name)!r}")

        for name in ("sample_rate", "channels", "audio_length", "model_sample_rate", "n_q", "segment_frames",
                     "segments", "units", "frames", "lm_group_segments", "streams"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                refuse(name, "a positive integer")
        for name in ("chunk_length", "chunk_stride", "model_audio_length"):
            if getattr(self, name) is not None and (not _is_int(getattr(self, name)) or getattr(self, name) < 0):
                refuse(name, "a non-negative integer or null")
        for name in ("bandwidth", "frame_rate", "segment_seconds"):
            value = getattr(self, name)  # (numbers.Real promises < and <=: for a finite number, not <= 0 is > 0)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and not value <= 0):
                refuse(name, "a positive number")
        if not _is_identity(self.codec):
            refuse("codec", "an object with the codec's name and sha256")
        if self.coding_mode not in v3.CODING_MODE_IDS:
            refuse("coding_mode", ", ".join(v3.CODING_MODE_IDS))
        if self.unit_frames is not None and (not _is_int(self.unit_frames) or self.unit_frames < 1):
            refuse("unit_frames", "a positive integer or null")
        if not _is_int(self.parity) or self.parity < 0:
            refuse("parity", "a non-negative integer")
        if (self.stereo, self.stream_codebooks) != (None, None) and not (
                self.stereo in v3.STEREO_CODINGS and self.channels == self.streams == 2
                and isinstance(self.stream_codebooks, list) and len(self.stream_codebooks) == 2
                and all(_is_int(n) and 1 <= n <= self.n_q for n in self.stream_codebooks)
                and max(self.stream_codebooks) == self.n_q):
            refuse("stream_codebooks", f"2 codebook counts of at most n_q {self.n_q} (the larger n_q) with a stereo "
                   f"coding of {', '.join(v3.STEREO_CODINGS)} for 2 channels in 2 streams")
        if self.coding_mode in v3.LM_CODING_MODES and not _is_identity(self.lm):
            refuse("lm", f"an object with the LM's name and sha256, as the coding mode is {self.coding_mode}")
        if self.coding_mode == "static" and self.static_model is None:
            refuse("static_model", "the codes' distribution, as the coding mode is static")
        for name, bound in (("sample_rate", MAX_SAMPLE_RATE), ("model_sample_rate", MAX_SAMPLE_RATE),
                            ("channels", MAX_CHANNELS), ("streams", MAX_CHANNELS), ("n_q", MAX_CODEBOOKS),
                            ("unit_frames", MAX_UNIT_FRAMES)):
            if getattr(self, name) is not None and getattr(self, name) > bound:
                refuse(name, f"at most {bound}")
        if self.frame_rate > self.model_sample_rate:
            refuse("frame_rate", f"at most the model's sample rate ({self.model_sample_rate})")
        if self.streams not in (1, self.channels):  # a model of several channels codes them as one stream
            refuse("streams", f"1 or the {self.channels} channels (one stream per channel)")
        if self.segment_frames * self.n_q * self.streams > MAX_SEGMENT_CODES:
            raise ValueError(f"the archive header's segments hold {self.segment_frames} frames of {self.n_q} codebooks "
                             f"in {self.streams} stream(s), more than {MAX_SEGMENT_CODES} codes")

    def check_consistent(self) -> None:
        """Refuse sizes that contradict each other (ValueError), before anything is allocated from them: a
        reader trusts the header's CRC, which a crafted archive recomputes. The segments, units and frames must
        follow from the geometry, and the audio's length from the frames (an `audio_length` of 2e8 in a
        4.7 KB archive decoded to 400 MB of padding zeros): a streaming model gives ceil(samples / hop) frames,
        a chunked one ceil(samples / stride) chunks; model samples are ceil(samples · model rate / rate)."""
        try:
            self.geometry()
        except ValueError as error:
            raise ValueError(f"the archive header's sizes contradict each other: {error}") from None
        unit_frames = self.unit_frames or self.segment_frames
        rows = self.lm_group_segments * (self.segment_frames // unit_frames) * self.streams
        if self.lm_group_segments > 1 and rows > MAX_LM_ROWS:
            raise ValueError(f"the archive header's LM groups hold {rows} payloads, more than {MAX_LM_ROWS}")
        model_length = self.model_audio_length
        derived = -(-self.audio_length * self.model_sample_rate // self.sample_rate)
        if model_length is None:
            model_length = derived
        elif abs(model_length - derived) > 2 + self.model_sample_rate // self.sample_rate:
            raise ValueError(f"the archive header's model_audio_length {model_length} does not follow from "
                             f"{self.audio_length} samples at {self.sample_rate} Hz ({derived} at the model's rate)")
        low: int | Fraction
        high: int | Fraction
        if self.chunk_length is not None or self.chunk_stride is not None:
            stride = self.chunk_stride
            if not stride or self.chunk_length is None or not stride <= self.chunk_length <= 64 * MAX_SAMPLE_RATE:
                raise ValueError(f"the archive header's chunk_stride {stride!r} and chunk_length "
                                 f"{self.chunk_length!r} must be 1 <= stride <= length <= {64 * MAX_SAMPLE_RATE}")
            low, high = (self.units - 1) * stride, self.units * stride  # samples that make this many chunks
            what = f"{self.units} chunks of stride {stride}"
        else:  # frame_rate = ceil(rate / hop): the hop lies in [rate / frame_rate, rate / (frame_rate - 1))
            low = Fraction(self.frames - 1) * Fraction(self.model_sample_rate) / Fraction(self.frame_rate)
            high = self.frames * (Fraction(self.model_sample_rate) / Fraction(self.frame_rate - 1)
                                  if self.frame_rate > 1 else self.model_sample_rate)
            what = f"{self.frames} frames at {self.frame_rate:g} per second"
        if not low < model_length <= high:
            raise ValueError(f"the archive header's audio of {self.audio_length} samples ({model_length} at the "
                             f"model's rate) does not fit its {what}: the archive is damaged or crafted")

    def to_dict(self) -> dict[str, Any]:
        header = asdict(self)
        if self.stream_codebooks is None:  # what version 2 headers never hold
            del header["stereo"], header["stream_codebooks"]
        if self.static_model is not None:
            header["static_model"] = base64.b64encode(self.static_model).decode("ascii")
        return header

    @classmethod
    def from_dict(cls, header: Mapping[str, Any]) -> ArchiveHeader:
        missing = [field.name for field in fields(cls) if field.default is MISSING and field.name not in header]
        if missing:
            raise ValueError(f"the archive header lacks the fields {missing}")
        values = {field.name: header[field.name] for field in fields(cls) if field.name in header}
        if values.get("static_model") is not None and not isinstance(values["static_model"], bytes):  # v2: base64
            try:
                values["static_model"] = base64.b64decode(values["static_model"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ValueError("the archive header's static_model must be base64 text") from None
        if values.get("unit_frames") is None and values.get("chunk_length") and values.get("chunk_stride"):
            values["unit_frames"] = _v2_unit_frames(values)  # version 2 headers do not say
        parsed = cls(**values)
        parsed.check_consistent()
        return parsed

    def geometry(self) -> v3.Geometry:
        """The segments' layout this header implies (version 3 stores only this, and derives the rest)."""
        unit_frames = self.unit_frames or self.segment_frames
        if self.segment_frames % unit_frames:
            raise ValueError(f"segment_frames {self.segment_frames} is not a whole number of units of {unit_frames}")
        tail: tuple[int, ...] = ()
        if self.chunk_stride and self.chunk_length and self.frame_rate == int(self.frame_rate):
            model_length = self.model_audio_length or v3.derived_model_length(self.audio_length, self.sample_rate,
                                                                              self.model_sample_rate)
            tail = v3.chunk_tail(model_length, self.chunk_length, self.chunk_stride, self.model_sample_rate,
                                 int(self.frame_rate), unit_frames, self.frames)
        geometry = v3.Geometry(self.frames, unit_frames, self.segment_frames // unit_frames, self.streams,
                               self.scaled, self.parity, tail)
        if (geometry.units, geometry.segments) != (self.units, self.segments):
            raise ValueError(f"the header's {self.units} units in {self.segments} segments do not follow from "
                             f"{self.frames} frames in units of {unit_frames}, {geometry.segment_units} per segment")
        return geometry


class ArchiveWriter:
    """Writes an `.ecfx` archive atomically: nothing appears at `path` until `close()` succeeds.

    Use it as a context manager: an exception inside the `with` leaves neither the archive nor the
    temporary file. Without `with`, a `write_segment` or `close` that raises discards the archive
    (the writer is then spent, and `close()` says so), `discard()` abandons it, and a writer dropped
    unclosed removes its temporary file when it is garbage-collected (or at exit). Segments must come
    in order: numbers 0, 1, 2... covering frames contiguously from frame 0. An existing `path` is
    replaced only with `overwrite=True`.

    `version` 3 (the default for an `ArchiveHeader`) stores the header in binary and derives each
    segment's frames and units from it, so segments must match the header's geometry, and adds a
    parity segment after every `header.parity` segments. A plain dict header is written as version 2,
    whose JSON header keeps any keys.
    """

    def __init__(self, path: str | os.PathLike, header: Mapping[str, Any] | ArchiveHeader, *,
                 overwrite: bool = False, version: int | None = None) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"the archive path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = os.fsdecode(os.fspath(path))
        self.overwrite = overwrite
        self._file: io.BufferedWriter | None = None
        self._failure: str | None = None  # why the archive was discarded, if an error did it
        self.version = version if version is not None else 3 if isinstance(header, ArchiveHeader) else 2
        if self.version not in READ_VERSIONS:
            raise ValueError(f"version must be one of {READ_VERSIONS}, got {version!r}")
        self._geometry: v3.Geometry | None = None
        if self.version == 3:
            typed = header if isinstance(header, ArchiveHeader) else ArchiveHeader.from_dict(header)
            self._geometry = typed.geometry()
            preamble_bytes = v3.encode_header(typed, self._geometry)
            self._sizes: list[int] = []  # of every segment written, parity included
            self._group: list[bytes] = []  # the data segments of the parity group being written
        else:
            if isinstance(header, ArchiveHeader) and header.stream_codebooks is not None:
                raise ValueError("version 2 archives cannot hold split stereo (stream_codebooks): write version 3")
            header_json = _header_json(header.to_dict() if isinstance(header, ArchiveHeader) else header)
            preamble = _PREAMBLE.pack(ARCHIVE_MAGIC, 2, len(header_json)) + header_json
            preamble_bytes = preamble + _crc(preamble)
        directory = os.path.dirname(os.path.abspath(self.path))
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"cannot write {self.path}: it is a folder; give a file name")
        self._refuse_existing()
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot write {self.path}: there is no folder {directory}")
        self._directory = directory
        self._temporary_path = str(atomic.create_temporary(self.path))  # errors name the destination
        descriptor = os.open(self._temporary_path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        self._file = os.fdopen(descriptor, "wb")
        # Removes the temporary file if the writer is dropped without close() or discard().
        self._cleanup = weakref.finalize(self, _remove_temporary, self._file, self._temporary_path)
        self._offset = 0
        self._entries: list[tuple[int, int, int]] = []  # offset, first frame, frames
        self._next_frame = 0
        try:
            self._write(preamble_bytes)
        except BaseException as error:
            self._fail(error)
            raise

    def write_segment(self, segment: Segment) -> None:
        """Appends `segment`; if that fails, the archive is discarded (nothing appears at `path`)."""
        self._check_open()
        try:
            if not isinstance(segment, Segment):
                raise TypeError(f"write_segment takes a Segment, got {type(segment).__name__}")
            expected = len(self._entries)
            if segment.number != expected:
                raise ValueError(
                    f"segments must be written in order: expected segment {expected}, got {segment.number}"
                )
            if segment.first_frame != self._next_frame:
                raise ValueError(
                    f"segment {expected} must start at frame {self._next_frame}, where the previous one ends, "
                    f"got first_frame {segment.first_frame}"
                )
            offset = self._offset
            if self._geometry is None:
                self._write(_segment_bytes(segment))
            else:
                self._write_v3(segment, self._geometry)
        except BaseException as error:
            self._fail(error)
            raise
        self._entries.append((offset, segment.first_frame, segment.frames))
        self._next_frame += segment.frames

    def close(self) -> None:
        """Writes the index and footer and moves the archive into place (once; later calls do nothing,
        except after a failed write or close, which they report again: nothing was written)."""
        if self._file is None:
            if self._failure is not None:
                raise ValueError(f"the archive writer for {self.path} was discarded after an error "
                                 f"({self._failure}): nothing was written")
            return
        try:
            if self._geometry is not None:
                self._close_v3(self._geometry)
            else:
                index_offset = self._offset
                index = _INDEX_FIELDS.pack(INDEX_MARKER, len(self._entries))
                index += b"".join(_INDEX_ENTRY.pack(*entry) for entry in self._entries)
                self._write(index + _crc(index) + _FOOTER.pack(index_offset, FOOTER_MAGIC))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._refuse_existing()
            atomic.place(Path(self._temporary_path), self.path, self.overwrite)  # no replacing unless overwrite
        except BaseException as error:
            self._fail(error)
            raise atomic.write_error(error, self.path) or error
        self._cleanup.detach()
        self._file = None
        _fsync_directory(self._directory)

    def _write_v3(self, segment: Segment, geometry: v3.Geometry) -> None:
        """A data segment, checked against the header's geometry, then the group's parity when it is full."""
        number = segment.number
        if number >= geometry.segments:
            raise ValueError(f"the header announces {geometry.segments} segments; segment {number} is one too many")
        frames = geometry.units_of(number)
        found = [unit.frames for unit in segment.units]
        if found != frames or segment.frames != sum(frames):
            raise ValueError(f"segment {number} must hold units of {frames} frames ({sum(frames)} in all), as the "
                             f"header's geometry says, got {found} ({segment.frames})")
        for unit in segment.units:
            if len(unit.payloads) != geometry.streams:
                raise ValueError(f"segment {number}: every unit holds {geometry.streams} payload(s), got "
                                 f"{len(unit.payloads)}")
            if any(math.isnan(scale) == geometry.scales for scale in unit.scales):
                raise ValueError(f"segment {number}: the header says units {'have' if geometry.scales else 'lack'}"
                                 " scales (NaN for none)")
        block = v3.segment_bytes(segment.units, geometry, number)
        self._write_block(block)
        if geometry.parity:
            self._group.append(block)
            if len(self._group) == geometry.parity or number == geometry.segments - 1:
                self._write_block(v3.parity_bytes(self._group, number // geometry.parity))
                self._group = []

    def _write_block(self, block: bytes) -> None:
        self._write(block)
        self._sizes.append(len(block))

    def _close_v3(self, geometry: v3.Geometry) -> None:
        if len(self._entries) != geometry.segments:
            raise ValueError(f"the header announces {geometry.segments} segments, "
                             f"{len(self._entries)} were written")
        self._write(v3.index_bytes(self._sizes))

    def discard(self) -> None:
        """Abandons the archive: the temporary file is removed and `path` is left as it was."""
        if self._file is None:
            return
        self._file = None
        self._cleanup()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _write(self, data: bytes) -> None:
        file = self._check_open()
        try:
            file.write(data)
        except OSError as error:  # a full disk: named as such, after the destination
            raise atomic.write_error(error, self.path) or error from None
        self._offset += len(data)

    def _check_open(self) -> io.BufferedWriter:
        """The temporary file, while the archive is being written."""
        if self._failure is not None:
            raise ValueError(f"the archive writer for {self.path} was discarded after an error ({self._failure})")
        if self._file is None:
            raise ValueError(f"the archive writer for {self.path} is closed")
        return self._file

    def _fail(self, error: BaseException) -> None:
        self._failure = f"{type(error).__name__}: {error}"
        self.discard()

    def _refuse_existing(self) -> None:
        if not self.overwrite and os.path.lexists(self.path):
            raise FileExistsError(f"{self.path} already exists: pass overwrite=True to replace it")


@dataclass(frozen=True)
class _Entry:
    """Where a readable segment lies and which frames it covers (from the index or a scan)."""

    offset: int
    size: int
    first_frame: int
    frames: int


class ArchiveReader:
    """Reads an `.ecfx` archive from its bytes, a path or a binary file object, seeking through the index.

    Opening reads the header (`.header`, a dict) and the index; when the index is missing or damaged
    (`.indexed` is False) it scans the segments instead. Segments are read, and CRC-checked, only
    when asked for. A path stays open until `close()`: use the reader as a context manager. A file
    object holds the archive from its current position to its end; a seekable one is read as
    segments are asked for (and moved about), another is read whole at once; it is left open.
    """

    def __init__(self, source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO) -> None:
        self._source: bytes | BinaryIO  # the archive's bytes, or the file they are read from as needed
        self._owns_file = False
        self._start = 0  # where the archive starts in the file
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._source = bytes(source)
            self._size = len(self._source)
        elif isinstance(source, (str, os.PathLike)):
            self._source = file = open(source, "rb")
            self._owns_file = True
            self._size = os.fstat(file.fileno()).st_size
        elif isinstance(source, io.TextIOBase):
            raise TypeError(f"an archive source must be {_SOURCES}, got a text stream: open the file with 'rb'")
        elif callable(getattr(source, "read", None)):  # file descriptors (ints) are refused below
            if _seekable(source):
                self._source, self._start = source, source.tell()
                self._size = source.seek(0, io.SEEK_END) - self._start
            else:
                self._source = _bytes_read(source.read(), "read()")
                self._size = len(self._source)
        else:
            raise TypeError(f"an archive source must be {_SOURCES}, got {type(source).__name__}")
        self.index_problem: str | None = None  # why the index was not used, when it was not
        self.version = 2
        self._geometry: v3.Geometry | None = None
        self.repaired: set[int] = set()  # segments rebuilt from parity (version 3)
        try:
            self.header, self._segments_start = self._read_header()
            if self._geometry is not None:
                self._open_v3(self._geometry)
            else:
                index_offset = self._find_index()
                entries = None if index_offset is None else self._read_index(index_offset)
                self.indexed = entries is not None
                self._layout = _v2_layout(self.header)
                if entries is not None:
                    self._slots: list[_Entry | str] = list(entries)
                    self._truncation: TruncatedArchiveError | None = None
                else:
                    self._slots, self._truncation = _scan(
                        self._read_at(0, self._size), self._segments_start, index_offset
                    )
        except BaseException:
            self.close()
            raise
        self._located = [(slot.first_frame, number, slot.frames)
                         for number, slot in enumerate(self._slots) if isinstance(slot, _Entry)]
        self._located_starts = [first_frame for first_frame, _, _ in self._located]

    def __len__(self) -> int:
        """Segments known to the reader: all of them, or those before a truncation."""
        return len(self._slots)

    @property
    def truncated(self) -> bool:
        """Whether the archive ends before its last segment does."""
        return self._truncation is not None

    def segment(self, index: int) -> Segment:
        """Segment `index`, CRC-checked; a `DamagedSegmentError` naming it if it cannot be read."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"a segment index must be an integer, got {index!r}")
        index = int(index)
        if not 0 <= index < len(self._slots):
            if index >= len(self._slots) and self._truncation is not None:
                raise _fresh(self._truncation)
            raise IndexError(f"segment {index} is out of range: the archive has {len(self._slots)} segments")
        slot = self._slots[index]
        if self._geometry is not None:
            return self._segment_v3(index, slot, self._geometry)
        if isinstance(slot, str):
            raise DamagedSegmentError(index, slot)
        try:
            segment = _decode_segment(self._read_at(slot.offset, slot.size))
        except _Unreadable as problem:
            raise DamagedSegmentError(index, problem.reason) from None
        if (segment.number, segment.first_frame, segment.frames) != (index, slot.first_frame, slot.frames):
            raise ArchiveError(
                f"archive index is inconsistent with segment {index}: the index says frames "
                f"[{slot.first_frame}, +{slot.frames}), the segment is number {segment.number} with frames "
                f"[{segment.first_frame}, +{segment.frames})"
            )
        problem = _layout_problem(self._layout, index, segment)
        if problem is not None:
            raise DamagedSegmentError(index, f"it does not fit the header's layout: {problem}")
        return segment

    def __iter__(self) -> Iterator[Segment]:
        """Every segment in order; raises at the first damaged one, and at the end if truncated."""
        for index in range(len(self._slots)):
            yield self.segment(index)
        if self._truncation is not None:
            raise _fresh(self._truncation)

    def scan(self, recover: bool = True) -> Iterator[Segment | ArchiveError]:
        """Every segment in order, or the error that stops reading it, then the truncation if any.

        With `recover=False` it stops after the first error instead of going on to the next segment.
        """
        for index in range(len(self._slots)):
            try:
                yield self.segment(index)
            except DamagedSegmentError as error:
                yield error
                if not recover:
                    return
        if self._truncation is not None:
            yield _fresh(self._truncation)

    def segment_for_frame(self, frame: int) -> Segment:
        """The segment whose frames include `frame`, found through the index without scanning."""
        if isinstance(frame, bool) or not isinstance(frame, numbers.Integral) or frame < 0:
            raise ValueError(f"frame must be a non-negative integer, got {frame!r}")
        frame = int(frame)
        if self._geometry is not None:  # version 3: every segment's place follows from the header
            if frame >= self._geometry.frames:
                raise ValueError(f"frame {frame} is past the end of the archive, which holds frames "
                                 f"[0, {self._geometry.frames})")
            number = frame // (self._geometry.unit_frames * self._geometry.segment_units)
            if number >= len(self._slots) and self._truncation is not None:
                raise _fresh(self._truncation)
            return self.segment(number)
        position = bisect.bisect_right(self._located_starts, frame) - 1
        following = 0
        if position >= 0:
            first_frame, number, frames = self._located[position]
            if frame < first_frame + frames:
                return self.segment(number)
            following = number + 1
        next_located = position + 1
        until = self._located[next_located][1] if next_located < len(self._located) else len(self._slots)
        if following < until:  # the frame lies in segments that could not be read
            if until - following == 1:
                raise DamagedSegmentError(following, self._slots[following])
            raise DamagedSegmentError(
                following, f"frame {frame} lies in one of the damaged segments {following} to {until - 1}"
            )
        if self._truncation is not None:
            raise _fresh(self._truncation)
        end = self._located[-1][0] + self._located[-1][2] if self._located else 0
        raise ValueError(f"frame {frame} is past the end of the archive, which holds frames [0, {end})")

    def segment_at_time(self, seconds: float) -> Segment:
        """The segment playing at `seconds` from the start: frame floor(seconds * frame_rate).

        `seconds` is any finite real number: int, float, Fraction, a numpy scalar (not a bool)."""
        if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
            raise TypeError(f"seconds must be a real number (int, float, Fraction or numpy scalar), got {seconds!r}")
        if isinstance(seconds, numbers.Integral):
            value: int | Fraction | float = int(seconds)
        elif isinstance(seconds, numbers.Rational):
            value = Fraction(seconds)  # exact: Fraction(1, 75) finds frame 1 at 75 frames per second
        else:
            value = float(seconds)  # a numpy float computes in its own, narrower precision otherwise
        if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
            raise ValueError(f"seconds must be a finite non-negative number, got {seconds!r}")
        try:
            position = value * self.header["frame_rate"]
        except OverflowError:  # an int too large for a float
            position = math.inf
        if position == math.inf:
            end = self._located[-1][0] + self._located[-1][2] if self._located else 0
            raise ValueError(f"{seconds!r} s is past the end of the archive, which holds frames [0, {end})")
        nearest = round(position)
        on_boundary = abs(position - nearest) <= _FRAME_TOLERANCE
        return self.segment_for_frame(nearest if on_boundary else math.floor(position))

    def close(self) -> None:
        """Closes the file the reader opened (a file object it was given stays open)."""
        if self._owns_file and not isinstance(self._source, bytes):
            self._source.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _read_at(self, offset: int, size: int) -> bytes:
        source = self._source
        if isinstance(source, bytes):
            return source[offset:offset + size]
        source.seek(self._start + offset)
        if self._owns_file:
            return source.read(size)
        pieces, got = [], 0
        while got < size:  # a raw stream may return fewer bytes than asked for
            piece = _bytes_read(source.read(size - got), "read()")
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def _read_header(self) -> tuple[dict, int]:
        """The header dict and where the first segment starts."""
        if self._size == 0:
            raise ArchiveError("not an encodec-fx archive (.ecfx): the file is empty")
        preamble = self._read_at(0, _PREAMBLE.size)
        magic = preamble[:len(ARCHIVE_MAGIC)]
        if magic != ARCHIVE_MAGIC:
            if not ARCHIVE_MAGIC.startswith(magic):
                hint = " (an original EnCodec .ecdc file: read it with read_ecdc)" if magic == b"ECDC" else ""
                raise ArchiveError(
                    f"not an encodec-fx archive (.ecfx): it starts with {magic!r}, not {ARCHIVE_MAGIC!r}{hint}"
                )
            raise ArchiveError(f"archive is truncated in its header: the file has only {self._size} bytes")
        if len(preamble) > len(ARCHIVE_MAGIC) and preamble[len(ARCHIVE_MAGIC)] not in READ_VERSIONS:
            raise ArchiveError(
                f"unsupported encodec-fx archive version {preamble[len(ARCHIVE_MAGIC)]}: "
                f"this reader supports versions {' and '.join(map(str, READ_VERSIONS))}"
            )
        if len(preamble) > len(ARCHIVE_MAGIC) and preamble[len(ARCHIVE_MAGIC)] == 3:
            self.version = 3
            try:
                header, self._geometry, start = v3.decode_header(self._read_at, self._size)
            except v3.Unreadable as problem:
                raise ArchiveError(f"archive {'is' if problem.truncated else 'header is'} {problem.reason}") from None
            return header, start
        if len(preamble) < _PREAMBLE.size:
            raise ArchiveError(f"archive is truncated in its header: the file has only {self._size} bytes")
        _, _, header_length = _PREAMBLE.unpack(preamble)
        header_end = _PREAMBLE.size + header_length
        if header_end + _CRC.size > self._size:
            raise ArchiveError(
                f"archive is truncated in its header: it needs {header_end + _CRC.size} bytes, the file has "
                f"{self._size} (or the header length is damaged)"
            )
        block = self._read_at(0, header_end + _CRC.size)
        if not _crc_matches(block):
            raise ArchiveError("archive header is damaged: its CRC32 does not match")
        text = block[_PREAMBLE.size:header_end]
        depth = _json_depth(text)
        if depth > MAX_HEADER_DEPTH:
            raise ArchiveError(f"archive header is invalid: its JSON nests {depth} deep, more than {MAX_HEADER_DEPTH}")
        try:
            header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ArchiveError(f"archive header is invalid: not UTF-8 JSON ({error})") from None
        invalid = _header_problem(header)
        segments = header.get("segments") if isinstance(header, dict) else None
        room = self._size - header_end - _CRC.size
        if invalid is None and isinstance(segments, int) and not isinstance(segments, bool) \
                and segments * V2_MIN_SEGMENT_BYTES > room:  # (JSON holds no other integers)
            invalid = (f"it announces {segments} segments, more than the {room} bytes after it can hold "
                       f"({V2_MIN_SEGMENT_BYTES} bytes each at least): the file is cut short or crafted")
        if invalid is not None:
            raise ArchiveError(f"archive header is invalid: {invalid}")
        return header, header_end + _CRC.size

    def _open_v3(self, geometry: v3.Geometry) -> None:
        """Locates the segments of a version 3 archive: through the index, or by scanning without one."""
        self._physical: list[tuple[int, int] | str] = []
        end, has_footer = self._size, False
        if self._size >= self._segments_start + v3.CRC.size + v3.FOOTER.size:
            length, magic = v3.FOOTER.unpack(self._read_at(self._size - v3.FOOTER.size, v3.FOOTER.size))
            index_start = self._size - v3.FOOTER.size - length
            if magic != v3.FOOTER_MAGIC:
                self.index_problem = f"no footer: the file does not end with {v3.FOOTER_MAGIC!r}"
            elif not self._segments_start <= index_start:
                self.index_problem = f"the footer is damaged: it gives the index {length} bytes, more than there are"
            else:
                end, has_footer = index_start, True
                try:
                    sizes = v3.read_index(self._read_at(index_start, length), geometry)
                except v3.Unreadable as problem:
                    self.index_problem = problem.reason
                else:
                    if self._segments_start + sum(sizes) != index_start or min(sizes, default=5) < 5:
                        raise ArchiveError(f"archive index is inconsistent with its segments: its {len(sizes)} "
                                           f"segments end at byte {self._segments_start + sum(sizes)}, the index "
                                           f"starts at byte {index_start}")
                    offset = self._segments_start
                    for size in sizes:
                        self._physical.append((offset, size))
                        offset += size
        else:
            self.index_problem = "no footer: the file is too short to end with one"
        self.indexed = bool(self._physical)
        truncated, cut = False, None
        if not self.indexed:
            self._physical, truncated, cut = v3.scan(self._read_at(0, end), self._segments_start, end, geometry,
                                                has_footer)
            if has_footer:
                self._physical += ["missing: the scan did not find it"] * (geometry.physical - len(self._physical))
        known = [number for number in range(geometry.segments)
                 if not isinstance(self._slot_at(geometry.position(number)), str)]
        count = geometry.segments if not truncated else (known[-1] + 1 if known else 0)
        if truncated:  # damaged segments the group's parity rebuilds count too, up to the truncation
            count = max([count] + [n + 1 for n in range(geometry.segments) if self._repairable(n, geometry)])
        self._slots = []
        for number in range(count):
            slot = self._slot_at(geometry.position(number))
            frames = sum(geometry.units_of(number))
            self._slots.append(slot if isinstance(slot, str) else
                               _Entry(slot[0], slot[1], geometry.first_frame(number), frames))
        self._truncation = None
        if truncated and count < geometry.segments:
            self._truncation = _truncated_after(count) if cut is None else \
                TruncatedArchiveError(count, f"in segment {count}: {cut}")
        self._located = []

    @property
    def damaged_parity(self) -> list[int]:
        """The parity groups whose parity segment is unreadable (read and checked when asked for)."""
        geometry = self._geometry
        if geometry is None:
            return []
        return [group for group in range(geometry.groups)
                if isinstance(self._block(geometry.position(group, parity=True), True, group), str)]

    def location(self, index: int) -> tuple[int, int]:
        """Where segment `index` lies in the file, as (offset, size), if the reader found it."""
        slot = self._slots[index]
        if isinstance(slot, str):
            raise DamagedSegmentError(index, slot)
        return slot.offset, slot.size

    def _slot_at(self, position: int) -> tuple[int, int] | str:
        if position < len(self._physical):
            return self._physical[position]
        return "missing: the file ends before it"

    def _block(self, position: int, parity: bool, number: int) -> bytes | str:
        """The checked bytes of the `position`-th segment in the file, or why they cannot be read."""
        slot = self._slot_at(position)
        if isinstance(slot, str):
            return slot
        block = self._read_at(*slot)
        try:
            v3.checked_block(block, parity, number)
        except v3.Unreadable as problem:
            return problem.reason
        return block

    def _repairable(self, number: int, geometry: v3.Geometry) -> bool:
        if not geometry.parity:
            return False
        group = number // geometry.parity
        others = [self._slot_at(geometry.position(other)) for other in geometry.group(number) if other != number]
        return not any(isinstance(slot, str) for slot in others) and \
            not isinstance(self._slot_at(geometry.position(group, parity=True)), str)

    def _segment_v3(self, index: int, slot: _Entry | str, geometry: v3.Geometry) -> Segment:
        block = self._block(geometry.position(index), False, index) if isinstance(slot, _Entry) else slot
        if isinstance(block, str):
            repaired = self._repair(index, geometry)
            if repaired is None:
                raise DamagedSegmentError(index, block)
            block = repaired
            self.repaired.add(index)
        try:
            units = v3.decode_units(v3.checked_block(block, False, index), geometry, index)
        except v3.Unreadable as problem:
            raise DamagedSegmentError(index, f"its body is malformed: {problem.reason}") from None
        return Segment(index, geometry.first_frame(index), sum(frames for frames, _, _ in units),
                       tuple(Unit(*unit) for unit in units))

    def _repair(self, number: int, geometry: v3.Geometry) -> bytes | None:
        """Segment `number`'s bytes rebuilt from its group's parity and other segments, or None."""
        if not geometry.parity:
            return None
        group = number // geometry.parity
        parity = self._block(geometry.position(group, parity=True), True, group)
        blocks = [self._block(geometry.position(other), False, other) for other in geometry.group(number)
                  if other != number]
        others = [block for block in blocks if not isinstance(block, str)]
        if isinstance(parity, str) or len(others) != len(blocks):
            return None
        body = v3.checked_block(parity, True, group)
        xor = int.from_bytes(body, "little")
        for block in others:
            if len(block) > len(body):
                return None
            xor ^= int.from_bytes(block.ljust(len(body), b"\0"), "little")
        padded = xor.to_bytes(len(body), "little")
        try:
            size = v3.block_size(padded, 0, len(padded))
            v3.checked_block(padded[:size], False, number)
        except v3.Unreadable:
            return None
        return padded[:size]

    def _find_index(self) -> int | None:
        """Where the index starts, if the file ends with a footer that can be trusted (see the spec)."""
        smallest_index = _INDEX_FIELDS.size + _CRC.size
        if self._size < self._segments_start + smallest_index + _FOOTER.size:
            self.index_problem = "no footer: the file is too short to end with one"
            return None
        footer_start = self._size - _FOOTER.size
        index_offset, magic = _FOOTER.unpack(self._read_at(footer_start, _FOOTER.size))
        if magic != FOOTER_MAGIC:
            self.index_problem = f"no footer: the file does not end with {FOOTER_MAGIC!r}"
            return None
        if not self._segments_start <= index_offset <= footer_start - smallest_index:
            self.index_problem = f"the footer is damaged: it puts the index at byte {index_offset}, outside the file"
            return None
        marker, count = _INDEX_FIELDS.unpack(self._read_at(index_offset, _INDEX_FIELDS.size))
        if marker == INDEX_MARKER or index_offset + _index_size(count) == footer_start:
            return index_offset
        self.index_problem = f"the footer is damaged: there is no index at byte {index_offset}, where it points"
        return None

    def _read_index(self, index_offset: int) -> list[_Entry] | None:
        """The index's entries, or None when it is damaged (the reader then scans)."""
        block = self._read_at(index_offset, self._size - _FOOTER.size - index_offset)
        marker, count = _INDEX_FIELDS.unpack_from(block)
        if marker != INDEX_MARKER or len(block) != _index_size(count) or not _crc_matches(block):
            self.index_problem = "the index is damaged: " + (
                "its CRC32 does not match" if marker == INDEX_MARKER and len(block) == _index_size(count)
                else "its marker or segment count is wrong")
            return None
        raw = [_INDEX_ENTRY.unpack_from(block, _INDEX_FIELDS.size + i * _INDEX_ENTRY.size) for i in range(count)]
        ends = [offset for offset, _, _ in raw[1:]] + [index_offset]
        entries = [_Entry(offset, end - offset, first, frames) for (offset, first, frames), end in zip(raw, ends)]
        problem = _index_problem(entries, self._segments_start, index_offset)
        if problem is not None:
            raise ArchiveError(f"archive index is inconsistent with its segments: {problem}")
        return entries


def _fresh(truncation: TruncatedArchiveError) -> TruncatedArchiveError:
    """A fresh copy of the reader's truncation each time, so raising it again does not pile up tracebacks."""
    return TruncatedArchiveError(truncation.index, truncation.reason)


class _Unreadable(Exception):
    """Why the bytes at some position are not a readable segment; `truncated` if they run out."""

    def __init__(self, reason: str, truncated: bool = False, whole: tuple[int, int] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.truncated = reason, truncated
        self.whole = whole  # (number, size) of a segment whose CRC matches, which the scan steps over whole


def _scan(data: bytes, start: int,
          index_offset: int | None) -> tuple[list[_Entry | str], TruncatedArchiveError | None]:
    """Locates the segments without an index: per number, where it lies or why it is unreadable.

    `index_offset` is where a trusted footer says the index is (the segments end there), or None.
    """
    has_footer = index_offset is not None
    end = index_offset if index_offset is not None else len(data)
    slots: list[_Entry | str] = []
    position = start
    skipped: str | None = None  # why the bytes skipped to reach `position` were unreadable
    candidates: _Candidates | None = None  # found when first needed, for the whole range at once
    gap_start = start  # where the bytes since the last segment read begin
    while True:
        expected = len(slots)
        if position == end:
            return slots, None if has_footer else _truncated_after(expected)
        # Segments lost between the last one read and `position` took bytes: no more can be missing than
        # fit there (a CRC-valid number of 2**31 listed two billion lost segments).
        most = expected + (position - gap_start) // V2_MIN_SEGMENT_BYTES
        if not has_footer and INDEX_MARKER.startswith(data[position:position + len(INDEX_MARKER)]):
            count = _index_at(data, position)
            if count is not None and count <= most:
                _mark_lost(slots, count, skipped, position)
            return slots, None
        try:
            entry, number = _locate_segment(data, position, end, expected)
            if number > most:
                raise _Unreadable(f"byte {position} holds segment number {number}, more than the "
                                  f"{position - gap_start} bytes before it leave room for")
        except _Unreadable as problem:
            if problem.whole is not None and problem.whole[0] > most:
                problem.whole = (-1, problem.whole[1])  # a number out of reach: its bytes are skipped, no more
            if problem.whole is not None:  # a whole segment as written (its CRC matches): step over it
                number, size = problem.whole
                if number >= expected:
                    _mark_lost(slots, number, skipped, position)
                    slots.append(problem.reason)
                    skipped = None
                    gap_start = position + size
                else:
                    skipped = skipped or problem.reason
                position += size
                continue
            if candidates is None:
                candidates = _Candidates(data, start, end, has_footer)
            resume = candidates.next(position + 1, expected, gap_start)
            if resume is not None:
                skipped = skipped or problem.reason
                position = resume
                continue
            if problem.truncated and not has_footer:
                return slots, TruncatedArchiveError(expected, f"in segment {expected}: {problem.reason}")
            slots.append(problem.reason)
            return slots, None if has_footer else _truncated_after(expected + 1)
        _mark_lost(slots, number, skipped, position)
        skipped = None
        slots.append(entry)
        position += entry.size
        gap_start = position


class _Candidates:
    """Every marker in [start, end) that starts a segment whose framing and CRC32 match (or, without a footer,
    a CRC-valid index), found for all markers at once (`entropy.crc_scan`): checking each with zlib cost its
    claimed length, quadratic in a crafted file of markers that each claim most of it (120k markers in 2.6 MB
    took a minute)."""

    def __init__(self, data: bytes, start: int, end: int, has_footer: bool) -> None:
        octets = np.frombuffer(data, np.uint8)
        limit = len(data) if not has_footer else end
        first = octets[start:end - 1]
        second = octets[start + 1:end]
        segment = np.flatnonzero((first == SEGMENT_MARKER[0]) & (second == SEGMENT_MARKER[1])) + start
        index = np.flatnonzero((first == INDEX_MARKER[0]) & (second == INDEX_MARKER[1])) + start
        prefixes = crc_scan.prefix_crcs(data[:limit])
        segment = segment[segment + _SEGMENT_FIELDS.size <= end]
        sizes = _SEGMENT_OVERHEAD + _u32(octets, segment + 18)
        segment, sizes = segment[segment + sizes <= end], sizes[segment + sizes <= end]
        good = _crcs_match(octets, prefixes, segment, segment + sizes - _CRC.size)
        self.positions, self.numbers = segment[good], _u32(octets, segment[good] + 2)
        if not has_footer:  # a CRC-valid index ends the segments: it counts as a candidate of any number
            index = index[index + _INDEX_FIELDS.size <= len(data)]
            sizes = _INDEX_FIELDS.size + _INDEX_ENTRY.size * _u32(octets, index + 2) + _CRC.size
            index, sizes = index[index + sizes <= len(data)], sizes[index + sizes <= len(data)]
            good = _crcs_match(octets, prefixes, index, index + sizes - _CRC.size)
            order = np.argsort(np.concatenate([self.positions, index[good]]), kind="stable")
            self.numbers = np.concatenate([self.numbers, np.full(int(good.sum()), 1 << 40)])[order]
            self.positions = np.concatenate([self.positions, index[good]])[order]

    def next(self, after: int, expected: int, gap_start: int) -> int | None:
        """The first candidate at or after `after` numbered `expected` or later, and no later than the bytes
        from `gap_start` leave room for (an index: any)."""
        first = int(np.searchsorted(self.positions, after))
        numbers, positions = self.numbers[first:], self.positions[first:]
        reach = expected + (positions - gap_start) // V2_MIN_SEGMENT_BYTES
        chosen = np.flatnonzero((numbers >= expected) & ((numbers <= reach) | (numbers == 1 << 40)))
        return int(self.positions[first + chosen[0]]) if chosen.size else None


def _u32(octets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The little-endian u32 at each position, as int64."""
    value = np.zeros(len(positions), np.int64)
    for byte in range(4):
        value |= octets[positions + byte].astype(np.int64) << (8 * byte)
    return value


def _crcs_match(octets: np.ndarray, prefixes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each block [start, end) is followed by its CRC32."""
    if not len(starts):
        return np.zeros(0, bool)
    return crc_scan.range_crcs(prefixes, starts, ends).astype(np.int64) == _u32(octets, ends)


def _locate_segment(data: bytes, position: int, end: int, expected: int) -> tuple[_Entry, int]:
    """The readable segment at `position` (within `end`) and its number; raises _Unreadable."""
    rest = data[position:min(position + len(SEGMENT_MARKER), end)]
    if rest != SEGMENT_MARKER:
        if len(rest) < len(SEGMENT_MARKER) and SEGMENT_MARKER.startswith(rest):
            raise _Unreadable(f"only {len(rest)} of its bytes are left", truncated=True)
        raise _Unreadable(f"no segment marker at byte {position}")
    if position + _SEGMENT_FIELDS.size > end:
        raise _Unreadable(f"only {end - position} of its bytes are left", truncated=True)
    body_length = _SEGMENT_FIELDS.unpack_from(data, position)[4]
    size = _SEGMENT_OVERHEAD + body_length
    if position + size > end:
        raise _Unreadable(f"it needs {size} bytes from byte {position}, only {end - position} are left",
                          truncated=True)
    try:
        segment = _decode_segment(data[position:position + size])
    except _Unreadable as problem:
        if problem.whole is not None:
            problem.whole = (problem.whole[0], size)
        raise
    if segment.number < expected:
        raise _Unreadable(f"byte {position} holds segment number {segment.number}, expected {expected} or later",
                          whole=(segment.number, size))
    return _Entry(position, size, segment.first_frame, segment.frames), segment.number


def _mark_lost(slots: list[_Entry | str], until: int, skipped: str | None, position: int) -> None:
    """Records segments len(slots) .. until - 1 as unreadable: the scan found the next thing at `position`."""
    if len(slots) < until:
        slots.append(skipped or f"missing: the next readable part of the archive is at byte {position}")
    slots.extend(f"lost in the damaged bytes before byte {position}" for _ in range(len(slots), until))


def _truncated_after(count: int) -> TruncatedArchiveError:
    if count == 0:
        return TruncatedArchiveError(0, "after its header: no segment and no index follow it")
    return TruncatedArchiveError(count, f"after segment {count - 1}: the index that ends every archive is missing")


def _index_at(data: bytes, position: int) -> int | None:
    """The segment count of a CRC-valid index starting at `position`, or None."""
    if position + _INDEX_FIELDS.size > len(data):
        return None
    marker, count = _INDEX_FIELDS.unpack_from(data, position)
    size = _index_size(count)
    if marker != INDEX_MARKER or position + size > len(data) or not _crc_matches(data[position:position + size]):
        return None
    return count


def _index_size(count: int) -> int:
    return _INDEX_FIELDS.size + count * _INDEX_ENTRY.size + _CRC.size


def _index_problem(entries: list[_Entry], segments_start: int, index_offset: int) -> str | None:
    first_offset = entries[0].offset if entries else index_offset
    if first_offset != segments_start:
        return f"the first segment is at byte {first_offset}, but the header ends at byte {segments_start}"
    frame = 0
    for number, entry in enumerate(entries):
        if entry.size < _SEGMENT_OVERHEAD:
            return f"entry {number} leaves segment {number} {entry.size} bytes, fewer than {_SEGMENT_OVERHEAD}"
        if entry.first_frame != frame or entry.frames < 1:
            return (f"entry {number} covers frames [{entry.first_frame}, +{entry.frames}), but segment {number} "
                    f"must start at frame {frame} and cover at least one")
        frame += entry.frames
    return None


def _v2_layout(header: dict) -> tuple[v3.Geometry, dict] | None:
    """What a version 2 header implies of every segment (version 3 stores only this): the geometry (units and
    their frames, first frames), and the payloads a unit holds, one per stream: the header's `streams`, or in
    a header written before it held them, 1 or one per channel (the codec says which). None for a header the
    checks refuse: whoever reads its fields (`ArchiveHeader.from_dict`) is told why."""
    try:
        parsed = ArchiveHeader.from_dict(header)
        geometry = parsed.geometry()
    except (ValueError, TypeError, ArithmeticError):
        return None
    return geometry, {"streams": (parsed.streams,) if "streams" in header else tuple(sorted({1, parsed.channels})),
                      "channels": parsed.channels}


def _layout_problem(layout: tuple[v3.Geometry, dict] | None, number: int, segment: Segment) -> str | None:
    """How version 2 segment `number` differs from what its header implies, or None. Its CRC says only that
    its bytes are as written: a segment of another archive, or with its frames edited (CRC recomputed), decoded
    to other codes than the archive's without a word (issue 22)."""
    if layout is None:
        return None
    geometry, counts = layout
    if number >= geometry.segments:
        return f"it is segment {number}, but the header announces {geometry.segments}"
    expected = geometry.units_of(number)
    found = [unit.frames for unit in segment.units]
    if (segment.first_frame, segment.frames, found) != (geometry.first_frame(number), sum(expected), expected):
        return (f"it covers frames [{segment.first_frame}, +{segment.frames}) in {_frame_list(found)}, the header "
                f"frames [{geometry.first_frame(number)}, +{sum(expected)}) in {_frame_list(expected)}")
    payloads = sorted({len(unit.payloads) for unit in segment.units})
    if len(payloads) > 1 or payloads[0] not in counts["streams"]:
        needed = " or ".join(map(str, counts["streams"]))
        return (f"its units hold {' and '.join(map(str, payloads))} payload(s), but the header's "
                f"{counts['channels']} channel(s) are coded as {needed} stream(s), one payload each")
    return None


def _frame_list(frames: list[int]) -> str:
    shown = ", ".join(map(str, frames[:4])) + (", ..." if len(frames) > 4 else "")
    return f"{len(frames)} unit{'s' if len(frames) != 1 else ''} of [{shown}] frames"


def _segment_bytes(segment: Segment) -> bytes:
    parts = [_UNIT_COUNT.pack(len(segment.units))]
    for unit in segment.units:
        parts.append(_UNIT_FIELDS.pack(unit.frames, len(unit.payloads)))
        for scale, payload in zip(unit.scales, unit.payloads):
            parts += [_CHANNEL_FIELDS.pack(scale, len(payload)), payload]
    body = b"".join(parts)
    if len(body) > 0xFFFFFFFF:
        raise ValueError(f"segment {segment.number} holds {len(body)} bytes, more than a segment can (4 GiB)")
    block = _SEGMENT_FIELDS.pack(SEGMENT_MARKER, segment.number, segment.first_frame, segment.frames, len(body))
    block += body
    return block + _crc(block)


def _decode_segment(block: bytes) -> Segment:
    """The segment in `block`, exactly one segment's bytes; raises _Unreadable."""
    if not _crc_matches(block):
        raise _Unreadable("its CRC32 does not match")
    marker, number, first_frame, frames, body_length = _SEGMENT_FIELDS.unpack_from(block)
    if marker != SEGMENT_MARKER or body_length != len(block) - _SEGMENT_OVERHEAD:
        raise _Unreadable(f"its marker {marker!r} or body length {body_length} does not fit its {len(block)} bytes")
    try:
        return Segment(number, first_frame, frames, _decode_units(block[_SEGMENT_FIELDS.size:-_CRC.size]))
    except (ValueError, struct.error) as error:
        raise _Unreadable(f"its body is malformed: {error}", whole=(number, len(block))) from None


def _decode_units(body: bytes) -> tuple[Unit, ...]:
    (count,) = _UNIT_COUNT.unpack_from(body)
    position = _UNIT_COUNT.size
    units = []
    for _ in range(count):
        frames, channels = _UNIT_FIELDS.unpack_from(body, position)
        position += _UNIT_FIELDS.size
        scales, payloads = [], []
        for _ in range(channels):
            scale, length = _CHANNEL_FIELDS.unpack_from(body, position)
            position += _CHANNEL_FIELDS.size
            if position + length > len(body):
                raise ValueError("a payload runs past the end of the body")
            scales.append(scale)
            payloads.append(body[position:position + length])
            position += length
        units.append(Unit(frames, tuple(scales), tuple(payloads)))
    if position != len(body):
        raise ValueError(f"{len(body) - position} bytes follow the last unit")
    return tuple(units)


def _header_json(header: Mapping[str, Any]) -> bytes:
    """The header as compact UTF-8 JSON, refusing anything that would not read back equal."""
    if not isinstance(header, dict):
        raise ValueError(f"the archive header must be a dict, got {type(header).__name__}")
    try:
        text = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the archive header is not plain JSON: {error}") from None
    if json.loads(text) != header:
        raise ValueError(
            "the archive header does not read back equal from JSON: use lists (not tuples), "
            "string keys and plain int/float/str/bool/None values"
        )
    problem = _header_problem(header)
    if problem is not None:
        raise ValueError(f"invalid archive header: {problem}")
    data = text.encode("utf-8")
    if len(data) > 0xFFFFFFFF:
        raise ValueError(f"the archive header is {len(data)} bytes of JSON, more than 4 GiB")
    return data


def _json_depth(text: bytes) -> int:
    """How deep the JSON in `text` nests, counted without parsing it (the parser recurses, and a header of
    thousands of brackets broke even `info` with a RecursionError); brackets inside strings do not count."""
    outside = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', text)
    depth = deepest = 0
    for match in re.finditer(rb"[\[{\]}]", outside):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _header_problem(header: object) -> str | None:
    if not isinstance(header, dict):
        return f"it must be a JSON object, got {type(header).__name__}"
    rate = header.get("frame_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
        return f'"frame_rate" (frames per second of the segment timeline) must be a positive number, got {rate!r}'
    return None


def _crc(data: bytes) -> bytes:
    return _CRC.pack(zlib.crc32(data))


def _crc_matches(block: bytes) -> bool:
    """Whether `block` ends with the CRC32 of the bytes before it."""
    return len(block) >= _CRC.size and _crc(block[:-_CRC.size]) == block[-_CRC.size:]


def _as_float32(value: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except (OverflowError, struct.error) as error:
        raise ValueError(f"scale {value!r} cannot be stored as float32: {error}") from None


def _checked_uint(value: int, bits: int, name: str, minimum: int = 0) -> int:
    """`value` as a plain int (numpy integers welcome) if it fits the field, else ValueError."""
    if not _is_int(value) or not minimum <= value < 1 << bits:
        raise ValueError(f"{name} must be an integer in [{minimum}, 2**{bits}), got {value!r}")
    return int(value)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _bytes_read(data: object, call: str) -> bytes:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"the archive source's {call} returned {type(data).__name__}, not bytes: give {_SOURCES}")
    return bytes(data)


def _remove_temporary(file: Any, path: str) -> None:
    """Closes and removes an unfinished archive's temporary file (holds no reference to its writer)."""
    try:
        file.close()
    except OSError:  # flushing the buffered bytes fails too on a full disk: the file goes all the same
        pass
    atomic.discard(Path(path))


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable: POSIX keeps directory entries in buffers of their own."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
