"""Version 3 of the `.ecfx` layout: a binary header, segments framed by a length and a CRC, parity.

Version 2 spends ~760 bytes of JSON header and index on every archive, more than the LM saves on a
short clip. Version 3 stores only what cannot be derived (docs/archive-format.md, "Version 3"): the
header is varints, identities are 16-byte digest prefixes with a one-byte name for shipped models,
every segment's number, frames and units follow from the header's geometry, and a segment costs its
length, its CRC and its index entry (8 bytes). The segment number is not stored but covered by the CRC
(the CRC runs on over the number), so a segment found out of place is still known or refused.
Optional parity segments (the XOR of K data segments) rebuild any one damaged segment of their group.

Every size read is checked against the bytes there are before anything is allocated; problems are
`Unreadable(reason)`, turned into one-line `ArchiveError`s by `entropy.archive`.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from entropy import crc_scan

VERSION = 3
MAGIC = b"ECFX"
FOOTER_MAGIC = b"XF"
FOOTER = struct.Struct("<I2s")  # index length (entries and CRC), footer magic
CRC = struct.Struct("<I")
DIGEST_BYTES = 16  # identities: the first 16 bytes of the weights' sha256
PARITY_BIT = 1 << 31  # parity segment g is numbered PARITY_BIT | g in its CRC

CODING_MODE_IDS: tuple[str, ...] = ("raw", "static", "lm", "lm-adaptive")
"""Coding mode names by their id byte in the header. Append new modes (never reorder or remove): the id
is what archives store, and a reader refuses ids it does not know."""
LM_CODING_MODES: tuple[str, ...] = ("lm", "lm-adaptive")  # modes whose header names the LM they need

WELL_KNOWN_NAMES: tuple[str, ...] = ("encodec-fx-24khz", "encodec-fx-24khz-lm")
"""Names of shipped codecs and LMs, stored as one byte (their position, plus one). Append only."""

# header flags
_CHUNKED = 1  # chunk_length and chunk_stride follow
_SCALES = 2  # every payload has a float32 scale (models that normalise chunks)
_BANDWIDTH = 4  # the bandwidth is stored (float64): it is not n_q · 10 bits · frame_rate
_LM = 8  # an LM identity follows the codec's
_STATIC = 16  # a static model's bytes follow
_SPLIT = 32  # the streams have codebook counts of their own, and a stereo coding (STEREO_CODINGS) says what they are
_KNOWN_FLAGS = _CHUNKED | _SCALES | _BANDWIDTH | _LM | _STATIC | _SPLIT
STEREO_CODINGS: tuple[str, ...] = ("left-right", "mid-side")  # streams of a split stereo archive, by id; append only

MAX_VARINT_BYTES = 10


class Unreadable(Exception):
    """Why some bytes are not what they should be; `truncated` if they ran out."""

    def __init__(self, reason: str, truncated: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.truncated = reason, truncated


def varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low first, the top bit set on all but the last byte."""
    if value < 0:
        raise ValueError(f"a varint holds a non-negative integer, got {value}")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63) if -(1 << 63) <= value < 1 << 63 else _too_big(value)


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _too_big(value: int) -> int:
    raise ValueError(f"{value} does not fit a signed 64-bit varint")


class Cursor:
    """Reads fields from `data[position:end]`, refusing to read past `end`."""

    def __init__(self, data: bytes, position: int = 0, end: int | None = None, what: str = "header") -> None:
        self.data, self.position, self.what = data, position, what
        self.end = len(data) if end is None else end

    def varint(self, name: str, limit: int = 1 << 64) -> int:
        value, shift = 0, 0
        for count in range(MAX_VARINT_BYTES):
            if self.position >= self.end:
                raise Unreadable(f"its {name} runs past the end of the {self.what}", truncated=True)
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if count and not byte:
                    raise Unreadable(f"its {name} is not a minimal varint")
                if value >= limit:
                    raise Unreadable(f"its {name} is {value}, more than {limit - 1}")
                return value
            shift += 7
        raise Unreadable(f"its {name} is a varint longer than {MAX_VARINT_BYTES} bytes")

    def take(self, size: int, name: str) -> bytes:
        if size > self.end - self.position:
            raise Unreadable(f"its {name} needs {size} bytes, only {self.end - self.position} are left",
                             truncated=True)
        self.position += size
        return self.data[self.position - size:self.position]

    def name(self, field: str) -> str | None:
        """A name field: 0 none, odd 2i+1 the well-known name i, even 2n a UTF-8 name of n bytes."""
        tag = self.varint(f"{field} name")
        if tag == 0:
            return None
        if tag & 1:
            if tag >> 1 >= len(WELL_KNOWN_NAMES):
                raise Unreadable(f"its {field} name is well-known name {tag >> 1}, which this reader does not know")
            return WELL_KNOWN_NAMES[tag >> 1]
        try:
            return self.take(tag >> 1, f"{field} name").decode("utf-8")
        except UnicodeDecodeError:
            raise Unreadable(f"its {field} name is not UTF-8") from None


def _name_bytes(name: str | None) -> bytes:
    if name is None:
        return varint(0)
    if name in WELL_KNOWN_NAMES:
        return varint(2 * WELL_KNOWN_NAMES.index(name) + 1)
    data = name.encode("utf-8")
    return varint(2 * len(data)) + data


def _digest(identity: dict, field: str) -> bytes:
    text = identity["sha256"]
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"the {field}'s sha256 must be hex, got {text!r}") from None
    if len(digest) < DIGEST_BYTES:
        raise ValueError(f"the {field}'s sha256 must have at least {2 * DIGEST_BYTES} hex digits, got {text!r}")
    return digest[:DIGEST_BYTES]


@dataclass(frozen=True)
class Geometry:
    """What the header says of the segments: how many, and the units, frames and payloads of each."""

    frames: int  # code frames in all
    unit_frames: int  # frames of every unit but the last
    segment_units: int  # units of every segment but the last
    streams: int  # payloads per unit
    scales: bool  # whether each payload has a float32 scale
    parity: int  # data segments per parity segment, 0 for none
    tail: tuple[int, ...] = ()  # frames of the last units when more than the last is short (`chunk_tail`)

    @property
    def units(self) -> int:
        if self.tail:
            return (self.frames - sum(self.tail)) // self.unit_frames + len(self.tail)
        return -(-self.frames // self.unit_frames)

    def unit_length(self, unit: int) -> int:
        """Frames of unit number `unit`."""
        whole = self.units - len(self.tail) if self.tail else self.units - 1
        if unit < whole:
            return self.unit_frames
        return self.tail[unit - whole] if self.tail else self.frames - unit * self.unit_frames

    @property
    def segments(self) -> int:
        return -(-self.units // self.segment_units)

    @property
    def groups(self) -> int:
        return -(-self.segments // self.parity) if self.parity else 0

    @property
    def physical(self) -> int:
        """Segments in the file, parity included."""
        return self.segments + self.groups

    def units_of(self, number: int) -> list[int]:
        """Frames of each unit of data segment `number`."""
        first = number * self.segment_units
        last = min(first + self.segment_units, self.units)
        return [self.unit_length(unit) for unit in range(first, last)]

    def first_frame(self, number: int) -> int:
        first, whole = number * self.segment_units, self.units - len(self.tail)
        if not self.tail or first <= whole:
            return first * self.unit_frames
        return whole * self.unit_frames + sum(self.tail[:first - whole])

    def slot(self, position: int) -> tuple[bool, int]:
        """(is parity, data segment number or parity group) of the `position`-th segment in the file."""
        if not self.parity:
            return False, position
        group, offset = divmod(position, self.parity + 1)
        if offset == self.parity or position == self.physical - 1:
            return True, group
        return False, group * self.parity + offset

    def position(self, number: int, parity: bool = False) -> int:
        """Where data segment `number` (or parity segment of group `number`) lies among the file's segments."""
        if not self.parity:
            return number
        if parity:
            return min(number * (self.parity + 1) + self.parity, self.physical - 1)
        return number + number // self.parity

    def group(self, number: int) -> range:
        return range(number - number % self.parity, min(number - number % self.parity + self.parity, self.segments))


MAX_TAIL_UNITS = 64
"""Short chunks at the end that `chunk_tail` lays out (a chunk overlapping the next by 1 %, as EnCodec's do,
makes at most 2)."""


def chunk_tail(model_length: int, chunk_length: int, chunk_stride: int, model_sample_rate: int, frame_rate: int,
               unit_frames: int, frames: int) -> tuple[int, ...]:
    """Frames of a chunked stream's last units, from the first that is short, when more than the last is (else
    ()): the chunks start every `chunk_stride` of the `model_length` samples and are `chunk_length` long or cut at
    the end, each ceil(samples / hop) frames. 142660 samples in 1 s chunks of stride 47520 at 48 kHz make
    [150, 150, 149, 1]: tail (149, 1). The hop is the one of those that give `frame_rate` (ceil(rate / hop))
    whose chunks make the header's `unit_frames` and `frames`; () if none does (the header is then refused)."""
    count = -(-model_length // chunk_stride)
    whole = 0 if model_length < chunk_length else (model_length - chunk_length) // chunk_stride + 1
    if count - whole < 2 or count - whole > MAX_TAIL_UNITS or frame_rate < 1:
        return ()
    smallest = -(-model_sample_rate // frame_rate)
    for hop in range(smallest, smallest + 8):
        if -(-model_sample_rate // hop) != frame_rate:
            break
        tail = tuple(-(-min(chunk_length, model_length - unit * chunk_stride) // hop) for unit in range(whole, count))
        if (whole == 0 and tail[0] == unit_frames or whole and -(-chunk_length // hop) == unit_frames) \
                and whole * unit_frames + sum(tail) == frames:
            return tail
    return ()


def crc_number(parity: bool, number: int) -> int:
    return (PARITY_BIT | number) if parity else number


def segment_crc(block: bytes, number: int) -> bytes:
    """CRC32 of the segment's bytes, run on over its number (u32): the number is checked but not stored."""
    return CRC.pack(zlib.crc32(struct.pack("<I", number), zlib.crc32(block)))


def encode_header(header: Any, geometry: Geometry) -> bytes:
    """Preamble, fields and CRC of `header` (an `ArchiveHeader`); ValueError if v3 cannot hold it."""
    frame_rate = header.frame_rate
    if frame_rate != int(frame_rate):
        raise ValueError(f"version 3 archives need a whole number of frames per second, got {frame_rate!r}")
    frame_rate = int(frame_rate)
    if header.coding_mode not in CODING_MODE_IDS:
        raise ValueError(f"coding mode {header.coding_mode!r} has no id in entropy.format_v3.CODING_MODE_IDS")
    chunked = header.chunk_length is not None
    split = header.stream_codebooks is not None
    stored_bandwidth = header.bandwidth != derived_bandwidth(sum(header.stream_codebooks) if split else header.n_q,
                                                             frame_rate)
    flags = ((_CHUNKED if chunked else 0) | (_SCALES if geometry.scales else 0)
             | (_BANDWIDTH if stored_bandwidth else 0) | (_LM if header.lm is not None else 0)
             | (_STATIC if header.static_model is not None else 0) | (_SPLIT if split else 0))
    fields = [varint(flags), varint(CODING_MODE_IDS.index(header.coding_mode)),
              _digest(header.codec, "codec"), _name_bytes(header.codec["name"])]
    if header.lm is not None:
        fields += [_digest(header.lm, "LM"), _name_bytes(header.lm["name"])]
    if header.static_model is not None:
        fields += [varint(len(header.static_model)), header.static_model]
    model_length = header.model_audio_length if header.model_audio_length is not None else \
        derived_model_length(header.audio_length, header.sample_rate, header.model_sample_rate)
    fields += [varint(header.sample_rate), varint(header.channels), varint(header.audio_length),
               varint(header.model_sample_rate),
               varint(zigzag(model_length - derived_model_length(header.audio_length, header.sample_rate,
                                                                 header.model_sample_rate))),
               varint(frame_rate), varint(header.n_q)]
    if stored_bandwidth:
        fields.append(struct.pack("<d", header.bandwidth))
    if chunked:
        fields += [varint(header.chunk_length), varint(header.chunk_stride)]
    fields += [varint(geometry.streams), varint(geometry.unit_frames), varint(geometry.segment_units),
               varint(geometry.frames), varint(header.lm_group_segments), varint(geometry.parity)]
    if split:
        fields += [varint(STEREO_CODINGS.index(header.stereo))] + [varint(n) for n in header.stream_codebooks]
    body = b"".join(fields)
    block = MAGIC + bytes([VERSION]) + varint(len(body)) + body
    return block + CRC.pack(zlib.crc32(block))


def derived_bandwidth(n_q: int, frame_rate: float) -> float:
    """kbps of n_q codebooks of 10-bit codes at `frame_rate`."""
    return n_q * 10 * frame_rate / 1000


def derived_model_length(audio_length: int, sample_rate: int, model_sample_rate: int) -> int:
    """Samples at the model's rate that `audio_length` samples become: ceil(n · model rate / rate)."""
    return -(-audio_length * model_sample_rate // sample_rate)


def decode_header(read_at: Callable[[int, int], bytes], size: int) -> tuple[dict, Geometry, int]:
    """The header as `ArchiveHeader.to_dict()` gives it (plus `streams`, `unit_frames`, `parity`), the
    geometry, and where the first segment starts. Sizes are checked against the file's `size`."""
    prefix = read_at(0, min(size, 5 + MAX_VARINT_BYTES))
    cursor = Cursor(prefix, 5, what="file")
    try:
        length = cursor.varint("header length")
    except Unreadable as problem:
        raise Unreadable(f"truncated in its header: {problem.reason}", truncated=True) from None
    header_end = cursor.position + length
    if header_end + CRC.size > size:
        raise Unreadable(f"truncated in its header: it needs {header_end + CRC.size} bytes, the file has {size} "
                         "(or the header length is damaged)", truncated=True)
    block = read_at(0, header_end + CRC.size)
    if CRC.pack(zlib.crc32(block[:header_end])) != block[header_end:]:
        raise Unreadable("damaged: its CRC32 does not match")
    try:
        header, geometry = _fields(Cursor(block, cursor.position, header_end), size - header_end)
    except Unreadable as problem:
        raise Unreadable(f"invalid: {problem.reason}") from None
    return header, geometry, header_end + CRC.size


def _fields(cursor: Cursor, room: int) -> tuple[dict, Geometry]:
    """The header fields; `room` is the bytes after the header, which the segments must fit in."""
    flags = cursor.varint("flags")
    if flags & ~_KNOWN_FLAGS:
        raise Unreadable(f"its flags {flags:#x} hold bits this reader does not know")
    mode_id = cursor.varint("coding mode")
    if mode_id >= len(CODING_MODE_IDS):
        raise Unreadable(f"its coding mode id {mode_id} is not one this reader knows ({', '.join(CODING_MODE_IDS)})")
    codec = {"sha256": cursor.take(DIGEST_BYTES, "codec digest").hex(), "name": cursor.name("codec")}
    lm = None
    if flags & _LM:
        lm = {"sha256": cursor.take(DIGEST_BYTES, "LM digest").hex(), "name": cursor.name("LM")}
    static = None
    if flags & _STATIC:
        static = cursor.take(cursor.varint("static model length", room + 1 << 32), "static model")
    positive = 1 << 48
    sample_rate = cursor.varint("sample rate", positive)
    channels = cursor.varint("channel count", 1 << 16)
    audio_length = cursor.varint("audio length", positive)
    model_sample_rate = cursor.varint("model sample rate", positive)
    delta = unzigzag(cursor.varint("model length"))
    frame_rate = cursor.varint("frame rate", positive)
    n_q = cursor.varint("codebook count", 1 << 16)
    for name, value in (("sample rate", sample_rate), ("channel count", channels), ("audio length", audio_length),
                        ("model sample rate", model_sample_rate), ("frame rate", frame_rate),
                        ("codebook count", n_q)):
        if value < 1:
            raise Unreadable(f"its {name} is 0")
    bandwidth = struct.unpack("<d", cursor.take(8, "bandwidth"))[0] if flags & _BANDWIDTH else None
    chunk_length = chunk_stride = None
    if flags & _CHUNKED:
        chunk_length, chunk_stride = cursor.varint("chunk length", positive), cursor.varint("chunk stride", positive)
    streams = cursor.varint("stream count", 1 << 16)
    unit_frames = cursor.varint("unit frames", 1 << 32)
    segment_units = cursor.varint("units per segment", 1 << 32)
    frames = cursor.varint("frame count", positive)
    lm_group = cursor.varint("LM group", 1 << 32)
    parity = cursor.varint("parity group", 1 << 32)
    stereo, codebooks = _split_fields(cursor, streams, n_q) if flags & _SPLIT else (None, None)
    if bandwidth is None:
        bandwidth = derived_bandwidth(sum(codebooks) if codebooks else n_q, frame_rate)
    if cursor.position != cursor.end:
        raise Unreadable(f"{cursor.end - cursor.position} bytes follow its last field")
    if min(streams, unit_frames, segment_units, frames, lm_group) < 1:
        raise Unreadable("its stream count, unit frames, units per segment, frame count and LM group must be "
                         "at least 1")
    model_length = derived_model_length(audio_length, sample_rate, model_sample_rate) + delta
    if model_length < 0:
        raise Unreadable(f"its model length is {model_length}")
    tail = chunk_tail(model_length, chunk_length or 0, chunk_stride, model_sample_rate, frame_rate, unit_frames,
                      frames) if chunk_stride else ()
    geometry = Geometry(frames, unit_frames, segment_units, streams, bool(flags & _SCALES), parity, tail)
    smallest = geometry.physical * (1 + CRC.size) + CRC.size + FOOTER.size
    if smallest > room:
        raise Unreadable(f"it announces {geometry.physical} segments, more than the {room} bytes after it can hold")
    segment_frames = unit_frames * segment_units
    header = {
        "codec": codec, "lm": lm, "coding_mode": CODING_MODE_IDS[mode_id], "sample_rate": sample_rate,
        "channels": channels, "audio_length": audio_length, "model_sample_rate": model_sample_rate,
        "bandwidth": bandwidth, "n_q": n_q, "frame_rate": frame_rate, "chunk_length": chunk_length,
        "chunk_stride": chunk_stride, "segment_frames": segment_frames, "segments": geometry.segments,
        "units": geometry.units, "frames": frames,
        "segment_seconds": (segment_units * chunk_stride / model_sample_rate if chunk_stride
                            else segment_frames / frame_rate),
        "static_model": static, "model_audio_length": model_length, "lm_group_segments": lm_group,
        "streams": streams, "unit_frames": unit_frames, "scaled": bool(flags & _SCALES), "parity": parity,
        **({"stereo": stereo, "stream_codebooks": codebooks} if codebooks else {}),
    }
    if not math.isfinite(bandwidth) or bandwidth <= 0:
        raise Unreadable(f"its bandwidth is {bandwidth!r}")
    return header, geometry


def _split_fields(cursor: Cursor, streams: int, n_q: int) -> tuple[str, list[int]]:
    """The stereo coding and each stream's codebook count (flag bit 5): the streams split n_q between them."""
    if streams != 2:
        raise Unreadable(f"it splits codebooks between {streams} streams; only stereo's 2 can be")
    stereo = cursor.varint("stereo coding")
    if stereo >= len(STEREO_CODINGS):
        raise Unreadable(f"its stereo coding id {stereo} is not one this reader knows ({', '.join(STEREO_CODINGS)})")
    codebooks = [cursor.varint("stream codebook count", n_q + 1) for _ in range(streams)]
    if min(codebooks) < 1 or max(codebooks) != n_q:
        raise Unreadable(f"its streams' codebook counts {codebooks} do not split {n_q} codebooks between 2 streams")
    return STEREO_CODINGS[stereo], codebooks


def segment_bytes(units: tuple, geometry: Geometry, number: int) -> bytes:
    """Data segment `number` (its units, `entropy.archive.Unit`s) as stored: length, body, CRC."""
    scales = b"".join(struct.pack("<f", scale) for unit in units for scale in unit.scales) if geometry.scales else b""
    payloads = [payload for unit in units for payload in unit.payloads]
    lengths = b"".join(varint(len(payload)) for payload in payloads[:-1])
    body = scales + lengths + b"".join(payloads)
    block = varint(len(body)) + body
    return block + segment_crc(block, number)


def parity_bytes(blocks: list[bytes], group: int) -> bytes:
    """The parity segment of a group: the XOR of its data segments' stored bytes, each zero-padded to
    the longest, framed like a data segment."""
    width = max(len(block) for block in blocks)
    xor = 0
    for block in blocks:
        xor ^= int.from_bytes(block.ljust(width, b"\0"), "little")
    body = xor.to_bytes(width, "little")
    block = varint(len(body)) + body
    return block + segment_crc(block, crc_number(True, group))


def block_size(data: bytes, position: int, end: int) -> int:
    """Bytes of the segment framed at `position` (its length, body and CRC), checked to end by `end`;
    raises Unreadable."""
    cursor = Cursor(data, position, end, what="archive")
    length = cursor.varint("length")
    size = cursor.position - position + length + CRC.size
    if position + size > end:
        raise Unreadable(f"it needs {size} bytes from byte {position}, only {end - position} are left",
                         truncated=True)
    return size


def checked_block(block: bytes, parity: bool, number: int) -> bytes:
    """The body of a stored segment whose CRC matches `number`; raises Unreadable."""
    cursor = Cursor(block, 0, what="segment")
    length = cursor.varint("length")
    if cursor.position + length + CRC.size != len(block):
        raise Unreadable(f"its length {length} does not fit its {len(block)} bytes")
    if segment_crc(block[:-CRC.size], crc_number(parity, number)) != block[-CRC.size:]:
        raise Unreadable("its CRC32 does not match")
    return block[cursor.position:-CRC.size]


def decode_units(body: bytes, geometry: Geometry, number: int
                 ) -> list[tuple[int, tuple[float, ...], tuple[bytes, ...]]]:
    """(frames, scales, payloads) of each unit of data segment `number`, from its checked body."""
    frames = geometry.units_of(number)
    count = len(frames) * geometry.streams
    cursor = Cursor(body, 0, what="segment")
    scales: list[float] = []
    if geometry.scales:
        raw = cursor.take(4 * count, "scales")
        scales = list(struct.unpack(f"<{count}f", raw))
    lengths = [cursor.varint("payload length", len(body) + 1) for _ in range(count - 1)]
    rest = len(body) - cursor.position - sum(lengths)
    if rest < 0:
        raise Unreadable(f"its payload lengths add up to more than its {len(body)} bytes")
    lengths.append(rest)
    payloads = [cursor.take(length, "payload") for length in lengths]
    nan = float("nan")
    return [(unit_frames,
             tuple(scales[i * geometry.streams:(i + 1) * geometry.streams]) if scales else (nan,) * geometry.streams,
             tuple(payloads[i * geometry.streams:(i + 1) * geometry.streams]))
            for i, unit_frames in enumerate(frames)]


def index_bytes(sizes: list[int]) -> bytes:
    """Entries (each segment's size, parity segments included, in file order), CRC, footer."""
    entries = b"".join(varint(size) for size in sizes)
    index = entries + CRC.pack(zlib.crc32(entries))
    return index + FOOTER.pack(len(index), FOOTER_MAGIC)


def read_index(data: bytes, geometry: Geometry) -> list[int]:
    """The sizes of the index block `data` (entries and CRC); raises Unreadable."""
    if len(data) < CRC.size or CRC.pack(zlib.crc32(data[:-CRC.size])) != data[-CRC.size:]:
        raise Unreadable("the index is damaged: its CRC32 does not match")
    cursor = Cursor(data, 0, len(data) - CRC.size, what="index")
    sizes = [cursor.varint("entry", 1 << 48) for _ in range(geometry.physical)]
    if cursor.position != cursor.end:
        raise Unreadable(f"the index holds {cursor.end - cursor.position} bytes more than the header's "
                         f"{geometry.physical} segments need")
    return sizes


def scan(data: bytes, start: int, end: int, geometry: Geometry, has_footer: bool
         ) -> tuple[list[tuple[int, int] | str], bool, str | None]:
    """Locates the file's segments without an index: per position in the file, (offset, size) or why it is
    unreadable; whether the file is cut short (no footer, and segments missing at the end); and, if it
    ends inside a segment, why that one cannot be read.

    A segment is recognised by its CRC, which covers its number: after damaged bytes, the scan looks for
    the next position whose framing and CRC match a segment still to come, and knows which one it is."""
    slots: list[tuple[int, int] | str] = []
    keys = {zlib.crc32(struct.pack("<I", crc_number(*geometry.slot(p)))) ^ _ZERO_KEY: p
            for p in range(geometry.physical)}
    position = start
    skipped: str | None = None
    cut: str | None = None
    candidates: _Candidates | None = None  # found when first needed, for the whole range at once
    while len(slots) < geometry.physical and position < end:
        expected = len(slots)
        found = _segment_at(data, position, end, keys, expected)
        if isinstance(found, tuple):
            size, number = found
            slots.extend(skipped or f"lost in the damaged bytes before byte {position}"
                         for _ in range(expected, number))
            skipped = None
            slots.append((position, size))
            position += size
            continue
        skipped = skipped or found
        if candidates is None:
            candidates = _Candidates(data, start, end, keys)
        resumed = candidates.next(position + 1, expected)
        if resumed is None:
            if has_footer or not _truncated(found):
                slots.append(found)
            else:
                cut = found
            position = end
            break
        position = resumed
    truncated = not has_footer and len(slots) < geometry.physical
    return slots, truncated, cut if truncated else None


_ZERO_KEY = zlib.crc32(b"\0\0\0\0")
_WINDOW = 1 << 18  # positions checked at once while resynchronising: bounds the arrays, not the work


class _Candidates:
    """Every position in [start, end) that frames a segment whose CRC names a file position, found window by
    window for all positions at once (`entropy.crc_scan`): trying each byte with zlib cost its claimed length,
    quadratic in a crafted file whose every byte claims most of it."""

    def __init__(self, data: bytes, start: int, end: int, keys: dict[int, int]) -> None:
        self.data, self.start, self.end = data, start, end
        self.prefixes = crc_scan.prefix_crcs(data[:end])
        self.keys = np.array(sorted(keys), dtype=np.uint32)
        self.numbers = np.array([keys[key] for key in sorted(keys)], dtype=np.int64)
        self.windows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def next(self, after: int, expected: int) -> int | None:
        """The first candidate at or after `after` that names a file position of `expected` or later."""
        window = max(after - self.start, 0) // _WINDOW
        while self.start + window * _WINDOW < self.end:
            positions, numbers = self._window(window)
            chosen = np.flatnonzero((positions >= after) & (numbers >= expected))
            if chosen.size:
                return int(positions[chosen[0]])
            window += 1
        return None

    def _window(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        if window not in self.windows:
            self.windows[window] = self._find(self.start + window * _WINDOW,
                                              min(self.end, self.start + (window + 1) * _WINDOW))
        return self.windows[window]

    def _find(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        raw = np.frombuffer(self.data[first:min(self.end, last + 7)], np.uint8)
        octets = np.zeros(last - first + 7, np.int64)
        octets[:len(raw)] = raw
        count = last - first
        positions = np.arange(first, last, dtype=np.int64)
        value = np.zeros(count, np.int64)
        width = np.zeros(count, np.int64)  # bytes of the length varint; 0 while unfinished
        for index in range(7):  # 49 bits: more than any file holds
            byte = octets[index:index + count]
            open_ = width == 0
            value[open_] |= (byte[open_] & 0x7F) << (7 * index)
            ends = open_ & (byte < 0x80)
            width[ends & ~((index > 0) & (byte == 0))] = index + 1  # not minimal: stays unfinished, refused
            width[ends & (index > 0) & (byte == 0)] = -1
        body_end = positions + width + value
        valid = (width > 0) & (body_end + CRC.size <= self.end)
        positions, body_end = positions[valid], body_end[valid]
        if not positions.size:
            return positions, positions
        running = crc_scan.range_crcs(self.prefixes, positions, body_end)
        stored = np.frombuffer(self.data, np.uint8)
        stored_crc = np.zeros(len(positions), np.uint32)
        for index in range(CRC.size):
            stored_crc |= stored[body_end + index].astype(np.uint32) << np.uint32(8 * index)
        keys = stored_crc ^ crc_scan.crc_continued(running, b"\0\0\0\0")
        slot = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[slot] == keys
        return positions[found], self.numbers[slot[found]]


def _truncated(reason: str) -> bool:
    return "left" in reason or "past the end" in reason


def _segment_at(data: bytes, position: int, end: int, keys: dict[int, int], expected: int) -> tuple[int, int] | str:
    """(size, file position) of the segment framed at `position` if its CRC names a position ≥ `expected`,
    else why not."""
    try:
        size = block_size(data, position, end)
    except Unreadable as problem:
        return problem.reason
    block_end = position + size - CRC.size
    running = zlib.crc32(data[position:block_end])
    stored = CRC.unpack_from(data, block_end)[0]
    # crc32(number, running) = crc32(number, 0) ^ crc32(0000, running) ^ crc32(0000, 0): look the number up
    number = keys.get(stored ^ zlib.crc32(b"\0\0\0\0", running))
    if number is None:
        return "its CRC32 does not match"
    if number < expected:
        return f"byte {position} holds an earlier segment"
    return size, number
