"""Entropy coding of one segment of EnCodec codes ([K codebooks, T frames]) into bytes and back.

Three modes trade speed for size:
- "raw": 10 bits per code (bit-packed, frame-major then codebook as in `.ecdc`); no model.
- "static": one fixed distribution per codebook (`StaticModel`, counted over the segment or a
  whole file and stored by the caller, e.g. in a header) drives a range coder; very fast.
- "lm": the `EntropyLM` predicts every frame from the one before; smallest, and as slow as the LM.

A payload is the mode's body, then a CRC32 of the codes (little-endian uint32). Bodies: raw, the
bit-packed codes; static, range-coded 32-bit little-endian words, codebook after codebook; lm, the
same words frame after frame. K and T are not stored: the caller's container knows them.
Range decoding with the wrong model or corrupt bytes yields plausible but wrong codes rather than
an error, so `decode_codes` checks the CRC and raises ValueError("segment payload is corrupt ...").
"""

from __future__ import annotations

import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal

import constriction
import numpy as np
import torch

from entropy.bitpack import pack_bits, unpack_bits
from entropy.lm import EntropyLM, LMState

CodingMode = Literal["raw", "static", "lm"]
CODING_MODES: tuple[str, ...] = ("raw", "static", "lm")

RAW_BITS = 10
"""Bits per code in raw mode: EnCodec codebooks have 1024 entries."""

LM_THREADS = 1
"""Torch threads the LM runs under while coding. LM probabilities differ by a few 1e-9 between
one and two threads (measured: ~60 % of the entries of a frame) and the range coder turns any such
difference into wrong symbols. Rounding probabilities to a coarse grid does not fix this: with
grids of 2^-12 .. 2^-20 some entries still fall on opposite sides of a grid point (1 to 78 of
491,520 in a 60-frame measurement), so coding pins the thread count instead. One thread is also the
fastest for one frame's work (measured: 20 times faster than two on a busy 2-core machine).
Coding sets the count process-wide while it runs and restores it after. Probabilities may still
differ across CPU kinds or torch builds; the CRC then reports the payload as corrupt."""

UNSEEN_SHARE = 2.0 ** -10
"""Probability mass a `StaticModel` spreads evenly over all entries, so that codes its counts never
saw stay codable (about 20 bits each at 1024 entries) while seen codes pay only ~0.0014 bits more."""

_CRC = struct.Struct("<I")
_STATIC_HEADER = struct.Struct("<HIB")  # codebooks, entries per codebook, bits per count
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)  # rows of probabilities


@dataclass(frozen=True, eq=False)
class StaticModel:
    """How often each entry of each codebook occurs: counts [K, card], non-negative integers."""

    counts: np.ndarray

    def __post_init__(self) -> None:
        counts = self.counts
        if counts.ndim != 2 or counts.shape[0] < 1 or counts.shape[1] < 2:
            raise ValueError(f"counts must have shape [K>=1, card>=2], got {counts.shape}")
        if not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise ValueError("counts must be non-negative integers")

    @classmethod
    def from_codes(cls, codes: np.ndarray, card: int = 1 << RAW_BITS) -> StaticModel:
        """Counts the codes [K, T] of a segment, or of a whole file concatenated along T."""
        codes = _checked_codes(codes)
        _check_entries(codes, card)
        return cls(np.stack([np.bincount(row, minlength=card) for row in codes]).astype(np.int64))

    @property
    def num_codebooks(self) -> int:
        return self.counts.shape[0]

    @property
    def card(self) -> int:
        return self.counts.shape[1]

    def probabilities(self) -> np.ndarray:
        """[K, card] float32, every entry non-zero. Elementwise float64 arithmetic is exact IEEE
        on every platform, so encoder and decoder get identical tables from identical counts."""
        totals = np.maximum(self.counts.sum(axis=1, keepdims=True), 1)
        mixed = (1 - UNSEEN_SHARE) * self.counts / totals + UNSEEN_SHARE / self.card
        return mixed.astype(np.float32)

    def to_bytes(self) -> bytes:
        """Header fields, then the counts bit-packed just wide enough and deflated (mostly zeros)."""
        bits = max(int(self.counts.max()).bit_length(), 1)
        packed = zlib.compress(pack_bits(self.counts.ravel(), bits), 9)
        return _STATIC_HEADER.pack(self.num_codebooks, self.card, bits) + packed

    @classmethod
    def from_bytes(cls, data: bytes) -> StaticModel:
        if len(data) < _STATIC_HEADER.size:
            raise ValueError(f"static model needs at least {_STATIC_HEADER.size} bytes, got {len(data)}")
        num_codebooks, card, bits = _STATIC_HEADER.unpack_from(data)
        try:
            packed = zlib.decompress(data[_STATIC_HEADER.size:])
            counts = unpack_bits(packed, bits, num_codebooks * card)
        except (zlib.error, ValueError) as error:
            raise ValueError(f"static model bytes are corrupt: {error}") from error
        return cls(counts.reshape(num_codebooks, card))


def encode_codes(codes: np.ndarray, mode: CodingMode, *, lm: EntropyLM | None = None,
                 static: StaticModel | None = None) -> bytes:
    """Codes [K, T] (entries in [0, card)) to bytes; `lm` or `static` is the model its mode needs."""
    codes = _checked_codes(codes)
    _check_model(mode, lm, static, codes.shape[0])
    _check_entries(codes, _card(mode, lm, static))
    if mode == "raw":
        body = pack_bits(codes.T.ravel(), RAW_BITS)
    elif mode == "static":
        body = _encode_static(codes, static)
    else:
        body = _encode_lm(codes, lm)
    return body + _CRC.pack(_codes_crc(codes))


def decode_codes(payload: bytes, num_codebooks: int, num_frames: int, mode: CodingMode, *,
                 lm: EntropyLM | None = None, static: StaticModel | None = None) -> np.ndarray:
    """Inverse of `encode_codes`: codes [K, T] as int64. Needs the same model (for "lm": same
    weights, same CPU kind and torch build). Raises ValueError if the payload is corrupt."""
    _check_model(mode, lm, static, num_codebooks)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if len(payload) < _CRC.size:
        raise ValueError(f"segment payload is corrupt: {len(payload)} bytes, too short for its CRC")
    body, (expected_crc,) = payload[:-_CRC.size], _CRC.unpack(payload[-_CRC.size:])
    try:
        if mode == "raw":
            packed = unpack_bits(body, RAW_BITS, num_codebooks * num_frames)
            codes = packed.reshape(num_frames, num_codebooks).T
        elif mode == "static":
            codes = _decode_static(body, num_frames, static)
        else:
            codes = _decode_lm(body, num_codebooks, num_frames, lm)
    except (ValueError, AssertionError) as error:  # constriction's failures include AssertionError
        raise ValueError(f"segment payload is corrupt: {error}") from error
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if _codes_crc(codes) != expected_crc:
        raise ValueError("segment payload is corrupt: the decoded codes do not match the stored CRC32")
    return codes


def _encode_static(codes: np.ndarray, static: StaticModel) -> bytes:
    """Codebook after codebook, each through one fixed model: no per-symbol table."""
    encoder = constriction.stream.queue.RangeEncoder()
    for row, model in zip(codes, _static_coding_models(static)):
        encoder.encode(row.astype(np.int32), model)
    return _words_to_bytes(encoder.get_compressed())


def _decode_static(body: bytes, num_frames: int, static: StaticModel) -> np.ndarray:
    decoder = constriction.stream.queue.RangeDecoder(_bytes_to_words(body))
    rows = [decoder.decode(model, num_frames) for model in _static_coding_models(static)]
    return np.stack(rows).reshape(static.num_codebooks, num_frames)


def _static_coding_models(static: StaticModel) -> list:
    """One fixed constriction model per codebook: its table is quantised once, not once per symbol
    as with a batched (n, card) table, which makes coding ~100 times faster."""
    return [constriction.stream.model.Categorical(probabilities, perfect=False)
            for probabilities in static.probabilities()]


def _encode_lm(codes: np.ndarray, lm: EntropyLM) -> bytes:
    encoder = constriction.stream.queue.RangeEncoder()
    state, previous = lm.initial_state(1, codes.shape[0]), None
    with _torch_threads(LM_THREADS):
        for frame in codes.T:
            probabilities, state = _lm_step(lm, previous, state)
            encoder.encode(frame.astype(np.int32), _CATEGORICAL, probabilities)
            previous = frame
    return _words_to_bytes(encoder.get_compressed())


def _decode_lm(body: bytes, num_codebooks: int, num_frames: int, lm: EntropyLM) -> np.ndarray:
    """Mirror of `_encode_lm`: frame t is decoded before the LM can predict frame t+1."""
    decoder = constriction.stream.queue.RangeDecoder(_bytes_to_words(body))
    state, previous = lm.initial_state(1, num_codebooks), None
    frames = [np.zeros((num_codebooks, 0), np.int64)]
    with _torch_threads(LM_THREADS):
        for _ in range(num_frames):
            probabilities, state = _lm_step(lm, previous, state)
            previous = decoder.decode(_CATEGORICAL, probabilities)
            frames.append(previous[:, None])
    return np.concatenate(frames, axis=1)


def _lm_step(lm: EntropyLM, previous: np.ndarray | None, state: LMState) -> tuple[np.ndarray, LMState]:
    """The LM's [K, card] float32 probabilities of the next frame, given the frame before (or
    None): the one path both coding sides go through."""
    if previous is not None:
        previous = torch.from_numpy(previous.astype(np.int64)).to(state.past[0].device).unsqueeze(0)
    probabilities, state = lm.step(previous, state)
    return np.ascontiguousarray(probabilities[0].cpu().numpy(), dtype=np.float32), state


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Runs the block under `count` torch threads (process-wide while it runs)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_model(mode: str, lm: EntropyLM | None, static: StaticModel | None, num_codebooks: int) -> None:
    """The mode exists, its model is given and fits `num_codebooks`."""
    if mode not in CODING_MODES:
        raise ValueError(f"mode must be one of {CODING_MODES}, got {mode!r}")
    if mode == "static" and static is None:
        raise ValueError("static mode needs a StaticModel (static=...)")
    if mode == "lm" and lm is None:
        raise ValueError("lm mode needs an EntropyLM (lm=...)")
    if mode == "static" and num_codebooks != static.num_codebooks:
        raise ValueError(f"the static model has {static.num_codebooks} codebooks, the segment {num_codebooks}")
    if mode == "lm" and not 1 <= num_codebooks <= lm.config.n_q:
        raise ValueError(f"the LM takes 1..{lm.config.n_q} codebooks, the segment has {num_codebooks}")
    if num_codebooks < 1:
        raise ValueError(f"a segment has at least one codebook, got {num_codebooks}")


def _card(mode: str, lm: EntropyLM | None, static: StaticModel | None) -> int:
    """Entries per codebook that `mode` can code (its model checked present by `_check_model`)."""
    if mode == "static":
        return static.card
    if mode == "lm":
        return lm.config.card
    return 1 << RAW_BITS


def _checked_codes(codes: np.ndarray) -> np.ndarray:
    """codes as a C-contiguous int64 [K, T] array."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be an integer array [K, T], got {codes.dtype} {codes.shape}")
    return np.ascontiguousarray(codes, dtype=np.int64)


def _check_entries(codes: np.ndarray, card: int) -> None:
    if codes.size and (codes.min() < 0 or codes.max() >= card):
        raise ValueError(f"codes must lie in [0, {card - 1}], got [{codes.min()}, {codes.max()}]")


def _codes_crc(codes: np.ndarray) -> int:
    """CRC32 of the codes [K, T] as little-endian uint32 in row-major order."""
    return zlib.crc32(codes.astype("<u4").tobytes())


def _words_to_bytes(words: np.ndarray) -> bytes:
    return words.astype("<u4").tobytes()


def _bytes_to_words(body: bytes) -> np.ndarray:
    if len(body) % 4:
        raise ValueError(f"a range-coded body is whole 32-bit words, got {len(body)} bytes")
    return np.frombuffer(body, dtype="<u4").astype(np.uint32)
