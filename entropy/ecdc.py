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
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from entropy.bitpack import pack_bits, packed_size, unpack_bits

ECDC_MAGIC = b"ECDC"
ECDC_VERSION = 0
_HEADER = struct.Struct("!4sBI")
_SCALE = struct.Struct("!f")
_METADATA_KEYS = ("m", "al", "nc", "lm")


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
        if (self.chunk_length is None) != (self.chunk_stride is None):
            raise ValueError("chunk_length and chunk_stride must be given together (or both None for one chunk)")
        if self.chunk_length is not None and not 0 < self.chunk_stride <= self.chunk_length:
            raise ValueError(
                f"chunk_stride must be in [1, chunk_length={self.chunk_length}], got {self.chunk_stride}"
            )

    def chunk_lengths(self, audio_length: int) -> list[int]:
        """Samples in each chunk: chunks start at 0, stride, 2*stride... and the last may be shorter."""
        if self.chunk_length is None:
            return [audio_length]
        starts = range(0, audio_length, self.chunk_stride)
        return [min(self.chunk_length, audio_length - start) for start in starts]

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
    geometry = _geometry_for(content.model_name, geometry)
    _check_content(content, geometry)
    metadata = {"m": content.model_name, "al": int(content.audio_length), "nc": content.num_codebooks, "lm": False}
    # json.dumps with default separators and this key order is what the original writes.
    metadata_bytes = json.dumps(metadata).encode("utf-8")
    parts = [_HEADER.pack(ECDC_MAGIC, ECDC_VERSION, len(metadata_bytes)), metadata_bytes]
    for index, chunk_codes in enumerate(content.codes):
        if geometry.normalize:
            parts.append(_SCALE.pack(content.scales[index]))
        parts.append(pack_bits(np.asarray(chunk_codes).T.ravel(), geometry.bits_per_code))
    return b"".join(parts)


def write_ecdc(
    content: EcdcContent, destination: str | os.PathLike | BinaryIO, geometry: EcdcGeometry | None = None
) -> None:
    """Write `content` as `.ecdc` to a path or a binary file object."""
    data = ecdc_bytes(content, geometry)
    if isinstance(destination, (str, os.PathLike)):
        with open(destination, "wb") as file:
            file.write(data)
    else:
        destination.write(data)


def read_ecdc(source: bytes | str | os.PathLike | BinaryIO, geometry: EcdcGeometry | None = None) -> EcdcContent:
    """Read an `.ecdc` file written without the entropy-coding LM.

    `source` is the file's bytes, a path, or a binary file object. Bytes and paths must hold exactly
    one file (trailing bytes are an error); a file object is left positioned just after the file, so
    an `.ecdc` stream embedded in a larger one can be read. `geometry` overrides the table of
    official models, and is required for other model names.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return read_ecdc(file.read(), geometry)
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(source)
        content = _read_ecdc_stream(stream, geometry)
        trailing = len(source) - stream.tell()
        if trailing:
            raise ValueError(f"{trailing} unexpected bytes after the last chunk of the .ecdc data")
        return content
    return _read_ecdc_stream(source, geometry)


def _read_ecdc_stream(stream: BinaryIO, geometry: EcdcGeometry | None) -> EcdcContent:
    magic, version, metadata_length = _HEADER.unpack(_read_exactly(stream, _HEADER.size, "the header"))
    if magic != ECDC_MAGIC:
        raise ValueError(f"not an .ecdc file: magic is {magic!r}, expected {ECDC_MAGIC!r}")
    if version != ECDC_VERSION:
        raise ValueError(f"unsupported .ecdc version {version}: only version {ECDC_VERSION} is supported")
    metadata = _parse_metadata(_read_exactly(stream, metadata_length, "the JSON metadata"))
    model_name, audio_length, num_codebooks = metadata["m"], metadata["al"], metadata["nc"]
    geometry = _geometry_for(model_name, geometry)

    chunk_lengths = geometry.chunk_lengths(audio_length)
    codes, scales = [], []
    for index, chunk_samples in enumerate(chunk_lengths):
        where = f"chunk {index} of {len(chunk_lengths)}"
        if geometry.normalize:
            (scale,) = _SCALE.unpack(_read_exactly(stream, _SCALE.size, f"the scale of {where}"))
            scales.append(scale)
        frames = geometry.frames_in(chunk_samples)
        count = frames * num_codebooks
        packed = _read_exactly(stream, packed_size(count, geometry.bits_per_code), f"the codes of {where}")
        frame_major = unpack_bits(packed, geometry.bits_per_code, count).reshape(frames, num_codebooks)
        codes.append(np.ascontiguousarray(frame_major.T))
    return EcdcContent(model_name, audio_length, codes, scales if geometry.normalize else None)


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


def _check_content(content: EcdcContent, geometry: EcdcGeometry) -> None:
    """Reject content the reader could not split back into the same chunks, frames and codes."""
    if not _is_positive_int(content.audio_length):
        raise ValueError(f"audio_length must be a positive integer, got {content.audio_length!r}")
    chunk_lengths = geometry.chunk_lengths(content.audio_length)
    if len(content.codes) != len(chunk_lengths):
        raise ValueError(
            f"{content.audio_length} samples make {len(chunk_lengths)} chunk(s) for {content.model_name!r}, "
            f"got codes for {len(content.codes)}"
        )
    if geometry.normalize and (content.scales is None or len(content.scales) != len(chunk_lengths)):
        raise ValueError(f"{content.model_name!r} normalises audio: give one scale per chunk ({len(chunk_lengths)})")
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


def _geometry_for(model_name: str, geometry: EcdcGeometry | None) -> EcdcGeometry:
    if geometry is not None:
        return geometry
    if model_name not in OFFICIAL_GEOMETRIES:
        raise ValueError(
            f"unknown model name {model_name!r}: known names are {sorted(OFFICIAL_GEOMETRIES)}; "
            "pass geometry=EcdcGeometry(...) for other models"
        )
    return OFFICIAL_GEOMETRIES[model_name]


def _read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ValueError(f"truncated .ecdc data: {what} needs {size} bytes, only {len(data)} left")
    return data


def _is_positive_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0
