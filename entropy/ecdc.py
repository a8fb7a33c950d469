"""The original EnCodec `.ecdc` file format, no-LM variant, byte-identical to `encodec.compress`.

Layout: a big-endian header (b"ECDC", version byte 0, uint32 length of the JSON that follows),
JSON metadata {"m": model name, "al": audio length in samples, "nc": codebooks, "lm": false},
then one record per chunk: the chunk's scale as big-endian float32 (normalising models only) and
its codes, frame-major then codebook, bit-packed LSB first and flushed to a byte boundary.

The file does not store how many frames each chunk has: the reader derives it from the model's
geometry (sample rate, frame rate, chunking), so reading needs an `EcdcGeometry` for the model.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from entropy.atomic import replacing
from entropy.bitpack import MAX_BITS, pack_bits, packed_size, unpack_bits

ECDC_MAGIC = b"ECDC"
ECDC_VERSION = 0
_HEADER = struct.Struct("!4sBI")
_SCALE = struct.Struct("!f")
_METADATA_KEYS = ("m", "al", "nc", "lm")
_READ_PIECE = 1 << 20
"""Bytes read at a time: a length field says how much to read, so a damaged one must not allocate it."""
_SOURCES = "bytes, a bytearray, a byte memoryview, a path or a binary file object opened for reading"


def _positive_int(value: object, name: str, accepted: str = "a positive integer") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {accepted}, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


def _set_field(geometry: EcdcGeometry, name: str, value: object) -> None:
    object.__setattr__(geometry, name, value)  # the dataclass is frozen


@dataclass(frozen=True)
class EcdcGeometry:
    """What a reader must know about a model to split an `.ecdc` stream into chunks and frames.

    `channels` does not affect the byte layout; it is kept so a decoder knows the audio's shape.
    """

    sample_rate: int
    frame_rate: int
    channels: int
    normalize: bool
    chunk_length: int | None = None
    chunk_stride: int | None = None
    bits_per_code: int = 10

    def __post_init__(self) -> None:
        for name, meaning in (("sample_rate", "samples per second"), ("frame_rate", "code frames per second"),
                              ("channels", "audio channels")):
            _set_field(self, name, _positive_int(getattr(self, name), f"EcdcGeometry {name}",
                                                 f"a positive integer ({meaning})"))
        for name in ("chunk_length", "chunk_stride"):
            if getattr(self, name) is not None:
                _set_field(self, name, _positive_int(getattr(self, name), f"EcdcGeometry {name}",
                                                     "a positive integer (samples) or None"))
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise TypeError(f"EcdcGeometry normalize must be True or False, got {self.normalize!r}")
        _set_field(self, "normalize", bool(self.normalize))
        accepted = f"an integer from 1 to {MAX_BITS}"
        bits = _positive_int(self.bits_per_code, "EcdcGeometry bits_per_code", accepted)
        if bits > MAX_BITS:
            raise ValueError(f"EcdcGeometry bits_per_code must be {accepted}, got {bits}")
        _set_field(self, "bits_per_code", bits)
        if (self.chunk_length is None) != (self.chunk_stride is None):
            raise ValueError("chunk_length and chunk_stride must be given together (or both None for one chunk)")
        if self.chunk_length is not None and self.chunk_stride is not None \
                and not 0 < self.chunk_stride <= self.chunk_length:
            raise ValueError(
                f"chunk_stride must be in [1, chunk_length={self.chunk_length}], got {self.chunk_stride}"
            )

    def chunk_lengths(self, audio_length: int) -> list[int]:
        """Samples in each chunk: chunks start at 0, stride, 2*stride... and the last may be shorter."""
        return list(self._chunk_lengths(audio_length))

    def chunk_count(self, audio_length: int) -> int:
        """len(chunk_lengths(audio_length)), without building the list."""
        chunking = self._chunking()
        return 1 if chunking is None else -(-audio_length // chunking[1])

    def _chunk_lengths(self, audio_length: int) -> Iterator[int]:
        chunking = self._chunking()
        if chunking is None:
            yield audio_length
            return
        length, stride = chunking
        for start in range(0, audio_length, stride):
            yield min(length, audio_length - start)

    def _chunking(self) -> tuple[int, int] | None:
        """(chunk_length, chunk_stride), or None for one chunk (`__post_init__` has them given together)."""
        if self.chunk_length is None or self.chunk_stride is None:
            return None
        return self.chunk_length, self.chunk_stride

    def frames_in(self, samples: int) -> int:
        """Frames the encoder emits for `samples` samples: ceil(samples * frame_rate / sample_rate).

        Exact integer arithmetic: the original decoder's float version overcounts by one for some
        lengths (e.g. 6720 samples), which makes it fail on files its own encoder wrote.
        """
        return -(-samples * self.frame_rate // self.sample_rate)


OFFICIAL_GEOMETRIES: dict[str, EcdcGeometry] = {
    "encodec_24khz": EcdcGeometry(sample_rate=24_000, frame_rate=75, channels=1, normalize=False),
    "encodec_48khz": EcdcGeometry(
        sample_rate=48_000, frame_rate=150, channels=2, normalize=True, chunk_length=48_000, chunk_stride=47_520
    ),
}


@dataclass(frozen=True)
class EcdcContent:
    """Everything an `.ecdc` file holds: per chunk, codes [n_q, frames] and (normalising models) a scale."""

    model_name: str
    audio_length: int
    codes: list[np.ndarray]
    scales: list[float] | None = None

    @property
    def num_codebooks(self) -> int:
        return int(np.shape(self.codes[0])[0])


def ecdc_bytes(content: EcdcContent, geometry: EcdcGeometry | None = None) -> bytes:
    """Serialise `content` to `.ecdc` bytes; `geometry` is needed only for non-official model names."""
    if not isinstance(content, EcdcContent):
        raise TypeError(f"content must be an EcdcContent, got {type(content).__name__}")
    if not isinstance(content.model_name, str):
        raise TypeError(f"the model name must be a string, got {content.model_name!r}")
    geometry = _geometry_for(content.model_name, geometry)
    scales = _check_content(content, geometry)
    metadata = {"m": content.model_name, "al": int(content.audio_length), "nc": content.num_codebooks, "lm": False}
    # json.dumps with default separators and this key order is what the original writes.
    metadata_bytes = json.dumps(metadata).encode("utf-8")
    parts = [_HEADER.pack(ECDC_MAGIC, ECDC_VERSION, len(metadata_bytes)), metadata_bytes]
    for index, chunk_codes in enumerate(content.codes):
        if scales is not None:  # a normalising model's (`_check_content`)
            parts.append(_SCALE.pack(scales[index]))
        parts.append(pack_bits(np.asarray(chunk_codes).T.ravel(), geometry.bits_per_code))
    return b"".join(parts)


def write_ecdc(
    content: EcdcContent, destination: str | os.PathLike | BinaryIO, geometry: EcdcGeometry | None = None, *,
    overwrite: bool = False,
) -> None:
    """Write `content` as `.ecdc` to a path or a binary file object.

    A path is written atomically (a temporary file beside it, renamed once complete), and an
    existing file is replaced only with `overwrite=True`.
    """
    if isinstance(destination, (str, os.PathLike)):
        path = _writable_path(destination, overwrite)
        data = ecdc_bytes(content, geometry)
        with replacing(path, overwrite=overwrite) as (temporary,):  # refuses a file that appeared meanwhile
            temporary.write_bytes(data)
        return
    write = getattr(destination, "write", None)
    if isinstance(destination, (bytes, bytearray, memoryview, io.TextIOBase)) or not callable(write):
        raise TypeError(
            "destination must be a path or a binary file object opened for writing, got "
            + ("a text stream (open it with 'wb')" if isinstance(destination, io.TextIOBase)
               else type(destination).__name__)
        )
    destination.write(ecdc_bytes(content, geometry))


def read_ecdc(source: bytes | str | os.PathLike | BinaryIO, geometry: EcdcGeometry | None = None) -> EcdcContent:
    """Read an `.ecdc` file written without the entropy-coding LM.

    `source` is the file's bytes (bytes, bytearray or a memoryview of bytes), a path, or a binary
    file object. Bytes and paths must hold exactly one file (trailing bytes are an error); a file
    object is left positioned just after the file, so an `.ecdc` stream embedded in a larger one can
    be read. `geometry` overrides the table of official models, and is required for other model names.
    """
    if geometry is not None and not isinstance(geometry, EcdcGeometry):
        raise TypeError(f"geometry must be an EcdcGeometry or None, got {type(geometry).__name__}")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return read_ecdc(file.read(), geometry)
    if isinstance(source, memoryview) and (source.itemsize != 1 or source.ndim != 1):
        raise TypeError(
            f"source must be {_SOURCES}, got a memoryview of format {source.format!r} and shape "
            f"{list(source.shape)}: cast it to bytes first (view.cast('B'))"
        )
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(source)
        content = _read_ecdc_stream(stream, geometry, len(source))
        trailing = len(source) - stream.tell()
        if trailing:
            raise ValueError(f"{trailing} unexpected bytes after the last chunk of the .ecdc data")
        return content
    if isinstance(source, io.TextIOBase):
        raise TypeError(f"source must be {_SOURCES}, got a text stream: open the file with 'rb'")
    if not callable(getattr(source, "read", None)):
        raise TypeError(f"source must be {_SOURCES}, got {type(source).__name__}")
    return _read_ecdc_stream(source, geometry, _remaining_size(source))


def _read_ecdc_stream(stream: BinaryIO, geometry: EcdcGeometry | None, size: int | None) -> EcdcContent:
    """The file at the stream's position; `size`, if known, is how many bytes the stream has left."""
    magic, version, metadata_length = _HEADER.unpack(_read_exactly(stream, _HEADER.size, "the header"))
    if magic != ECDC_MAGIC:
        raise ValueError(f"not an .ecdc file: magic is {magic!r}, expected {ECDC_MAGIC!r}")
    if version != ECDC_VERSION:
        raise ValueError(f"unsupported .ecdc version {version}: only version {ECDC_VERSION} is supported")
    metadata = _parse_metadata(_read_exactly(stream, metadata_length, "the JSON metadata"))
    model_name, audio_length, num_codebooks = metadata["m"], metadata["al"], metadata["nc"]
    geometry = _geometry_for(model_name, geometry)

    chunk_count = geometry.chunk_count(audio_length)
    # A damaged or crafted audio length may claim billions of chunks: the chunks are read one by one
    # (never listed first), so reading stops at the first missing byte, and every chunk holds at least
    # one frame, so when the bytes left cannot hold that many chunks the error says so.
    claim = None
    if size is not None:
        chunk_least = (_SCALE.size if geometry.normalize else 0) + packed_size(num_codebooks, geometry.bits_per_code)
        left = size - _HEADER.size - metadata_length
        if chunk_count * chunk_least > left:
            claim = (f"the metadata's audio length of {audio_length} samples makes {chunk_count} chunk(s) for "
                     f"{model_name!r}, at least {chunk_count * chunk_least} bytes with {num_codebooks} codebooks, "
                     f"but only {left} bytes follow the metadata")
    try:
        codes, scales = _read_chunks(stream, geometry, audio_length, num_codebooks, chunk_count)
    except ValueError as error:
        if claim is None or not str(error).startswith("truncated"):
            raise
        raise ValueError(f"{error} ({claim})") from None
    return EcdcContent(model_name, audio_length, codes, scales if geometry.normalize else None)


def _read_chunks(stream: BinaryIO, geometry: EcdcGeometry, audio_length: int, num_codebooks: int,
                 chunk_count: int) -> tuple[list[np.ndarray], list[float]]:
    codes, scales = [], []
    for index, chunk_samples in enumerate(geometry._chunk_lengths(audio_length)):
        where = f"chunk {index} of {chunk_count}"
        if geometry.normalize:
            (scale,) = _SCALE.unpack(_read_exactly(stream, _SCALE.size, f"the scale of {where}"))
            if not (math.isfinite(scale) and scale > 0):
                raise ValueError(
                    f"the scale of {where} is {scale}: scales must be finite and positive (damaged .ecdc data?)"
                )
            scales.append(scale)
        frames = geometry.frames_in(chunk_samples)
        count = frames * num_codebooks
        packed = _read_exactly(stream, packed_size(count, geometry.bits_per_code), f"the codes of {where}")
        frame_major = unpack_bits(packed, geometry.bits_per_code, count).reshape(frames, num_codebooks)
        codes.append(np.ascontiguousarray(frame_major.T))
    return codes, scales


def _parse_metadata(metadata_bytes: bytes) -> dict:
    try:
        metadata = json.loads(metadata_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the .ecdc metadata is not valid UTF-8 JSON: {error}") from None
    if not isinstance(metadata, dict) or any(key not in metadata for key in _METADATA_KEYS):
        raise ValueError(f"the .ecdc metadata must be a JSON object with keys {_METADATA_KEYS}, got {metadata!r}")
    if metadata["lm"] is not False:
        raise ValueError(
            'LM entropy-coded .ecdc files ("lm": true) are not supported: '
            "only files written without the language model (use_lm=False) can be read"
        )
    if not isinstance(metadata["m"], str):
        raise ValueError(f'the .ecdc model name "m" must be a string, got {metadata["m"]!r}')
    for key, meaning in (("al", "audio length"), ("nc", "number of codebooks")):
        if not _is_positive_int(metadata[key]):
            raise ValueError(f'the .ecdc {meaning} "{key}" must be a positive integer, got {metadata[key]!r}')
    return metadata


def _check_content(content: EcdcContent, geometry: EcdcGeometry) -> list[float] | None:
    """Reject content the reader could not split back into the same chunks, frames and codes;
    the scales as plain floats."""
    if not _is_positive_int(content.audio_length):
        raise ValueError(f"audio_length must be a positive integer, got {content.audio_length!r}")
    if not isinstance(content.codes, (list, tuple)):
        raise TypeError(f"codes must be a list of [n_q, frames] integer arrays, one per chunk, got "
                        f"{type(content.codes).__name__}")
    chunk_count = geometry.chunk_count(content.audio_length)
    if len(content.codes) != chunk_count:  # checked before listing the chunks: the length may be absurd
        raise ValueError(
            f"{content.audio_length} samples make {chunk_count} chunk(s) for {content.model_name!r}, "
            f"got codes for {len(content.codes)}"
        )
    chunk_lengths = geometry.chunk_lengths(content.audio_length)
    scales = None
    if geometry.normalize:
        if content.scales is None or not hasattr(content.scales, "__len__") or len(content.scales) != chunk_count:
            raise ValueError(f"{content.model_name!r} normalises audio: give one scale per chunk ({chunk_count})")
        scales = [_scale_value(scale, index) for index, scale in enumerate(content.scales)]
    if not geometry.normalize and content.scales is not None:
        raise ValueError(f"{content.model_name!r} does not normalise audio: scales must be None")
    num_codebooks = np.shape(content.codes[0])[0] if np.ndim(content.codes[0]) == 2 else 0
    code_limit = 1 << geometry.bits_per_code
    for index, (chunk_codes, chunk_samples) in enumerate(zip(content.codes, chunk_lengths)):
        chunk_codes = np.asarray(chunk_codes)
        expected_shape = (num_codebooks, geometry.frames_in(chunk_samples))
        if num_codebooks < 1 or chunk_codes.shape != expected_shape:
            raise ValueError(
                f"codes of chunk {index} must have shape [n_q, frames] with n_q >= 1 the same for every chunk "
                f"and frames = {expected_shape[1]} for its {chunk_samples} samples, got {list(chunk_codes.shape)}"
            )
        if not np.issubdtype(chunk_codes.dtype, np.integer):
            raise ValueError(f"codes of chunk {index} must be integers, got dtype {chunk_codes.dtype}")
        low, high = int(chunk_codes.min()), int(chunk_codes.max())
        if low < 0 or high >= code_limit:
            raise ValueError(
                f"codes of chunk {index} must lie in [0, {code_limit - 1}] ({geometry.bits_per_code} bits), "
                f"got range [{low}, {high}]"
            )
    return scales


def _scale_value(scale: object, index: int) -> float:
    """A chunk's scale as a float that float32 holds finite and positive (the original writes
    1e-8 + the chunk's RMS); a number, or a size-1 array or tensor."""
    value = scale
    if hasattr(value, "numel") and hasattr(value, "item") and not isinstance(value, np.generic):  # a tensor
        if value.numel() != 1:
            raise ValueError(f"the scale of chunk {index} must be one number, got a tensor of shape "
                             f"{list(getattr(value, 'shape'))}")  # a tensor's torch.Size
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"the scale of chunk {index} must be one number, "
                             f"got an array of shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"the scale of chunk {index} must be a real number (or a size-1 array or tensor), "
                        f"got {scale!r}")
    value = float(value)
    try:
        stored = _SCALE.unpack(_SCALE.pack(value))[0]
    except OverflowError:
        stored = math.inf
    if not (math.isfinite(stored) and stored > 0):
        raise ValueError(
            f"the scale of chunk {index} must be a finite positive number that float32 holds "
            f"(about 1.4e-45 to 3.4e38), got {value!r}"
        )
    return value


def _geometry_for(model_name: str, geometry: EcdcGeometry | None) -> EcdcGeometry:
    if geometry is not None:
        if not isinstance(geometry, EcdcGeometry):
            raise TypeError(f"geometry must be an EcdcGeometry or None, got {type(geometry).__name__}")
        return geometry
    if model_name not in OFFICIAL_GEOMETRIES:
        raise ValueError(
            f"unknown model name {model_name!r}: known names are {sorted(OFFICIAL_GEOMETRIES)}; "
            "pass geometry=EcdcGeometry(...) for other models"
        )
    return OFFICIAL_GEOMETRIES[model_name]


def _writable_path(destination: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(destination)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} already exists: pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: there is no folder {path.parent}")
    return path


def _remaining_size(stream: BinaryIO) -> int | None:
    """Bytes left from the position of a seekable stream, else None."""
    try:
        if not stream.seekable():
            return None
        position = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return end - position if isinstance(end, int) and isinstance(position, int) else None


def _read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    """`size` bytes, read a piece at a time so that memory follows the bytes that are there, not `size`."""
    pieces, got = [], 0
    while got < size:
        piece = stream.read(min(size - got, _READ_PIECE))
        if not isinstance(piece, (bytes, bytearray)):
            raise TypeError(f"the .ecdc source's read() returned {type(piece).__name__}, not bytes: "
                            f"give {_SOURCES}")
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    if got != size:
        raise ValueError(f"truncated .ecdc data: {what} needs {size} bytes, only {got} left")
    return b"".join(pieces)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value > 0)

