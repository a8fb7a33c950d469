"""Entropy coding of one segment of EnCodec codes ([K codebooks, T frames]) into bytes and back.

Three modes trade speed for size:
- "raw": 10 bits per code (bit-packed, frame-major then codebook as in `.ecdc`); no model.
- "static": one fixed distribution per codebook (`StaticModel`, counted over the segment or a
  whole file and stored by the caller, e.g. in a header) drives a range coder; very fast.
- "lm": the `EntropyLM` predicts every frame from the one before (and, for an `intra_frame` LM, each
  codebook also from the frame's coarser codebooks); smallest, and as slow as the LM.
  It runs as a `PortableLM`, whose probabilities are bit-identical on every CPU, so that an archive
  decodes on any machine.
- "lm-adaptive": lm with the segment's own code statistics, counted as coding goes, mixed into the
  LM's distribution by weights that learn as they go (`entropy.adaptive`, integer arithmetic, so
  still the same bits on every CPU); no model bytes, a few % smaller than lm at low bitrates.

A payload is the mode's body, then a CRC32 of the codes (little-endian uint32). Bodies: raw, the
bit-packed codes; static, range-coded 32-bit little-endian words, codebook after codebook; lm, the
same words frame after frame, codebook after codebook within a frame (lm-adaptive too). K and T are not stored: the
caller's container knows them.
Range decoding with the wrong model or corrupt bytes yields plausible but wrong codes rather than
an error, so `decode_codes` checks the CRC and raises ValueError("segment payload is corrupt ...").
"""

from __future__ import annotations

import math
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal, TypeGuard

import constriction
import numpy as np
import torch

from entropy.adaptive import AdaptiveMixer
from entropy.bitpack import pack_bits, unpack_bits
from entropy.lm import EntropyLM
from entropy.portable_lm import NextFrame, PortableLM

CodingMode = Literal["raw", "static", "lm", "lm-adaptive"]
CODING_MODES: tuple[str, ...] = ("raw", "static", "lm", "lm-adaptive")
LM_MODES: tuple[str, ...] = ("lm", "lm-adaptive")
"""The modes that need an LM (and code the way `_encode_lm` does)."""


def is_coding_mode(mode: object) -> TypeGuard[CodingMode]:
    """One of CODING_MODES: to the type checker a CodingMode, which the coders take."""
    return mode in CODING_MODES


RAW_BITS = 10
"""Bits per code in raw mode: EnCodec codebooks have 1024 entries."""

LM_THREADS = 1
"""Torch threads the LM runs under while coding: one frame's work is too small to share (measured:
one thread 20 times faster than two on a busy 2-core machine). The `PortableLM`'s probabilities do
not depend on it. Coding sets the count process-wide while it runs and restores it after."""

UNSEEN_SHARE = 2.0 ** -10
"""Probability mass a `StaticModel` spreads evenly over all entries, so that codes its counts never
saw stay codable (about 20 bits each at 1024 entries) while seen codes pay only ~0.0014 bits more."""

MAX_STATIC_ENTRIES = 1 << 20
"""Codebooks × entries a stored `StaticModel` may have (encodec-fx writes at most 32 × 1024): its counts are
inflated with this bound, so that a few hundred crafted bytes cannot inflate to gigabytes."""

RANGE_CODER_SLACK_BITS = 96
"""Bits a range-coded body may hold beyond its bytes: the coder's 64-bit state, flushed as whole words."""

_PRECISION_BITS = 24  # constriction's default models quantise probabilities to multiples of 2^-24, at least one each

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
        if not 1 <= num_codebooks * card <= MAX_STATIC_ENTRIES or not 1 <= bits <= 32:
            raise ValueError(f"static model bytes are corrupt: {num_codebooks} codebooks of {card} entries of {bits}"
                             f" bits, beyond 1 to {MAX_STATIC_ENTRIES} entries of 1 to 32 bits")
        expected = (num_codebooks * card * bits + 7) // 8
        try:
            inflater = zlib.decompressobj()
            packed = inflater.decompress(data[_STATIC_HEADER.size:], expected + 1)  # no further, whatever it claims
            if len(packed) != expected or not inflater.eof or inflater.unused_data:
                raise ValueError(f"its counts do not inflate to the {expected} bytes of {num_codebooks} × {card} "
                                 f"counts of {bits} bits")
            counts = unpack_bits(packed, bits, num_codebooks * card)
        except (zlib.error, ValueError) as error:
            raise ValueError(f"static model bytes are corrupt: {error}") from error
        return cls(counts.reshape(num_codebooks, card))

    def least_bits(self) -> float:
        """Bits that coding one frame (a code per codebook) takes at least: each codebook's most probable
        entry, as the coder quantises it. A body of B bytes thus holds at most (8·B + slack) / this frames,
        checked before the decoder allocates them (a frame count near 2³² aborted the process)."""
        quantum = 2.0 ** -_PRECISION_BITS
        largest = np.minimum(self.probabilities().max(axis=1).astype(np.float64) + 2 * quantum,
                             1 - (self.card - 1) * quantum)
        return float(-np.log2(largest).sum())


LanguageModel = EntropyLM | PortableLM
"""What lm mode takes: an `EntropyLM` is converted to a `PortableLM` on each call; converting once
(`PortableLM(lm)`) saves ~0.1 s per call."""


def encode_codes(codes: np.ndarray, mode: CodingMode, *, lm: LanguageModel | None = None,
                 static: StaticModel | None = None) -> bytes:
    """Codes [K, T] (entries in [0, card)) to bytes; `lm` or `static` is the model its mode needs."""
    return encode_many([codes], mode, lm=lm, static=static)[0]


def decode_codes(payload: bytes, num_codebooks: int, num_frames: int, mode: CodingMode, *,
                 lm: LanguageModel | None = None, static: StaticModel | None = None) -> np.ndarray:
    """Inverse of `encode_codes`: codes [K, T] as int64. Needs the same model (for "lm": the same
    weights). Raises ValueError if the payload is corrupt."""
    result = decode_many([payload], num_codebooks, [num_frames], mode, lm=lm, static=static)[0]
    if isinstance(result, ValueError):
        raise result
    return result


def encode_many(rows: list[np.ndarray], mode: CodingMode, *, lm: LanguageModel | None = None,
                static: StaticModel | None = None) -> list[bytes]:
    """Several independent code arrays [K, T_i] (same K) to one payload each. In lm mode the LM runs
    once per frame for all rows together, so a batch costs little more than one row; each payload
    still decodes alone or in any batch (rows do not affect each other's arithmetic)."""
    rows = [_checked_codes(codes) for codes in rows]
    num_codebooks = rows[0].shape[0]
    if any(codes.shape[0] != num_codebooks for codes in rows):
        raise ValueError(f"rows must have the same number of codebooks, got {[c.shape[0] for c in rows]}")
    _check_model(mode, lm, static, num_codebooks)
    for codes in rows:
        _check_entries(codes, _card(mode, lm, static))
    if mode == "raw":
        bodies = [pack_bits(codes.T.ravel(), RAW_BITS) for codes in rows]
    elif mode == "static":
        bodies = [_encode_static(codes, _static_of(static)) for codes in rows]
    else:
        bodies = _encode_lm(rows, _lm_of(mode, lm), adaptive=mode == "lm-adaptive")
    return [body + _CRC.pack(_codes_crc(codes)) for body, codes in zip(bodies, rows)]


def decode_many(payloads: list[bytes | None], num_codebooks: int, frames: list[int], mode: CodingMode, *,
                lm: LanguageModel | None = None, static: StaticModel | None = None) -> list[np.ndarray | ValueError]:
    """Inverse of `encode_many`: per row the codes [K, T_i], or the ValueError saying why that row's
    payload is corrupt. A lost payload is given as None (its T_i is then ignored): the other rows
    still decode, since each row's LM computation depends only on its own codes."""
    _check_model(mode, lm, static, num_codebooks)
    if any(count < 0 for count in frames):
        raise ValueError(f"frame counts must be >= 0, got {frames}")
    if len(frames) != len(payloads):
        raise ValueError(f"one frame count per payload: got {len(frames)} for {len(payloads)} payloads")
    bodies: list[bytes | None] = []
    stored: list[int] = []  # each payload's CRC32 of its codes (0 for a missing one)
    for payload in payloads:
        if payload is None or len(payload) < _CRC.size:
            bodies.append(None)
            stored.append(0)
        else:
            bodies.append(payload[:-_CRC.size])
            stored.append(_CRC.unpack(payload[-_CRC.size:])[0])
    if mode in LM_MODES:
        decoded = _decode_lm(bodies, num_codebooks, frames, _lm_of(mode, lm), adaptive=mode == "lm-adaptive")
    else:
        decoded = [_decode_one(body, num_codebooks, count, mode, static) if body is not None else _missing()
                   for body, count in zip(bodies, frames)]
    results: list[np.ndarray | ValueError] = []
    for crc, codes in zip(stored, decoded):
        if isinstance(codes, ValueError):
            results.append(codes)
        elif _codes_crc(codes) != crc:
            results.append(ValueError("segment payload is corrupt: the decoded codes do not match the stored CRC32"))
        else:
            results.append(codes)
    return results


def _missing() -> ValueError:
    return ValueError("segment payload is corrupt: missing or too short for its CRC")


def _decode_one(body: bytes, num_codebooks: int, num_frames: int, mode: CodingMode,
                static: StaticModel | None) -> np.ndarray | ValueError:
    try:
        if mode == "raw":
            packed = unpack_bits(body, RAW_BITS, num_codebooks * num_frames)
            return np.ascontiguousarray(packed.reshape(num_frames, num_codebooks).T, dtype=np.int64)
        return np.ascontiguousarray(_decode_static(body, num_frames, _static_of(static)), dtype=np.int64)
    except (ValueError, AssertionError) as error:  # constriction's failures include AssertionError
        return ValueError(f"segment payload is corrupt: {error}")


def _encode_static(codes: np.ndarray, static: StaticModel) -> bytes:
    """Codebook after codebook, each through one fixed model: no per-symbol table."""
    encoder = constriction.stream.queue.RangeEncoder()
    for row, model in zip(codes, _static_coding_models(static)):
        encoder.encode(row.astype(np.int32), model)
    return _words_to_bytes(encoder.get_compressed())


def _decode_static(body: bytes, num_frames: int, static: StaticModel) -> np.ndarray:
    if num_frames * static.least_bits() > 8 * len(body) + RANGE_CODER_SLACK_BITS:
        raise ValueError(f"{len(body)} bytes cannot hold {num_frames} frames of {static.num_codebooks} codebooks "
                         f"(each takes at least {static.least_bits():.3g} bits)")
    decoder = constriction.stream.queue.RangeDecoder(_bytes_to_words(body))
    rows = [decoder.decode(model, num_frames) for model in _static_coding_models(static)]
    return np.stack(rows).reshape(static.num_codebooks, num_frames)


def _static_coding_models(static: StaticModel) -> list:
    """One fixed constriction model per codebook: its table is quantised once, not once per symbol
    as with a batched (n, card) table, which makes coding ~100 times faster."""
    return [constriction.stream.model.Categorical(probabilities, perfect=False)
            for probabilities in static.probabilities()]


def _encode_lm(rows: list[np.ndarray], lm: LanguageModel, adaptive: bool = False) -> list[bytes]:
    """Frame after frame, codebook after codebook within a frame (an `intra_frame` LM's distribution
    of codebook k depends on the frame's codes of codebooks < k), all rows in one LM batch; with
    `adaptive`, through an `AdaptiveMixer` that learns each row's codes as they go."""
    encoders = [constriction.stream.queue.RangeEncoder() for _ in rows]
    lm = _portable(lm)
    num_codebooks = rows[0].shape[0]
    state, previous = lm.initial_state(len(rows), num_codebooks), None
    mixer = AdaptiveMixer(len(rows), num_codebooks, lm.config.card) if adaptive else None
    with _lm_threads():
        for t in range(max(codes.shape[1] for codes in rows)):
            frame = lm.next_frame(previous, state)
            current = np.zeros((len(rows), num_codebooks), np.int64)  # ended rows: any codes will do
            active = np.array([t < codes.shape[1] for codes in rows])
            for index, codes in enumerate(rows):
                if active[index]:
                    current[index] = codes[:, t]
            if mixer is not None:
                mixer.start_frame()
            for k in range(num_codebooks):
                probabilities = _probabilities(frame, k, mixer)
                for row in np.flatnonzero(active):
                    encoders[row].encode(current[row, k:k + 1].astype(np.int32), _CATEGORICAL,
                                         probabilities[row:row + 1])
                if mixer is not None:
                    mixer.observe(k, current[:, k], active)
                frame.observe(k, current[:, k])
            previous = current
    return [_words_to_bytes(encoder.get_compressed()) for encoder in encoders]


def _decode_lm(bodies: list[bytes | None], num_codebooks: int, frames: list[int], lm: LanguageModel,
               adaptive: bool = False) -> list[np.ndarray | ValueError]:
    """Mirror of `_encode_lm`: each code is decoded before the LM predicts the next one that may
    depend on it. A row whose body is missing or fails stops decoding; the others go on unchanged."""
    decoders: list = []
    results: list[np.ndarray | ValueError] = []
    lm = _portable(lm)
    quantum = 2.0 ** -_PRECISION_BITS
    most_likely = 1 - (lm.config.card - 1) * quantum  # the largest probability the coder gives an entry
    capacity = [0.0 if body is None else 8.0 * len(body) + RANGE_CODER_SLACK_BITS for body in bodies]
    information = [0.0] * len(bodies)  # bits the codes decoded so far take at least, per row
    for body, count, bits in zip(bodies, frames, capacity):
        try:
            if body is not None and count * num_codebooks * -math.log2(most_likely) > bits:
                raise ValueError(f"{len(body)} bytes cannot hold {count} frames of {num_codebooks} codebooks")
            decoders.append(None if body is None else constriction.stream.queue.RangeDecoder(_bytes_to_words(body)))
            results.append(_missing() if body is None else np.zeros((num_codebooks, count), np.int64))
        except ValueError as error:
            decoders.append(None)
            results.append(ValueError(f"segment payload is corrupt: {error}"))
    state, previous = lm.initial_state(len(bodies), num_codebooks), None
    active = [index for index, decoder in enumerate(decoders) if decoder is not None]
    mixer = AdaptiveMixer(len(bodies), num_codebooks, lm.config.card) if adaptive else None
    with _lm_threads():
        for t in range(max([frames[index] for index in active], default=0)):
            frame = lm.next_frame(previous, state)
            current = np.zeros((len(bodies), num_codebooks), np.int64)
            if mixer is not None:
                mixer.start_frame()
            for k in range(num_codebooks):
                probabilities = _probabilities(frame, k, mixer)
                decoded = np.zeros(len(bodies), dtype=bool)
                for index in active:
                    codes = results[index]
                    if t >= frames[index] or not isinstance(codes, np.ndarray):
                        continue
                    try:
                        code = decoders[index].decode(_CATEGORICAL, probabilities[index:index + 1])[0]
                    except (ValueError, AssertionError) as error:
                        results[index] = ValueError(f"segment payload is corrupt: {error}")
                        continue
                    codes[k, t] = current[index, k] = code
                    decoded[index] = True
                    # Garbage decodes to codes the model finds unlikely: once they take more bits than the
                    # body holds, it is corrupt, rather than decoding all the frames a header claims.
                    information[index] -= math.log2(min(float(probabilities[index, code]) + 2 * quantum,
                                                        most_likely))
                    if information[index] > capacity[index]:
                        results[index] = ValueError(f"segment payload is corrupt: its {len(bodies[index] or b'')} "
                                                    "bytes cannot hold the codes decoded from them")
                if mixer is not None:
                    mixer.observe(k, current[:, k], decoded)
                frame.observe(k, current[:, k])
            previous = current
            active = [index for index in active if isinstance(results[index], np.ndarray) and t + 1 < frames[index]]
            if not active:  # every row has failed or ended: a failed row's claimed frames are not run through
                break
    return results


def _probabilities(frame: NextFrame, k: int, mixer: AdaptiveMixer | None) -> np.ndarray:
    """Codebook k's distribution [B, card]: the LM's, or mixed by `mixer`."""
    if mixer is None:
        return frame.probabilities(k)
    return mixer.probabilities(k, frame.logit_steps(k).numpy())


def _portable(lm: LanguageModel) -> PortableLM:
    return lm if isinstance(lm, PortableLM) else PortableLM(lm)


@contextmanager
def _lm_threads() -> Iterator[None]:
    """Runs the block under LM_THREADS torch threads, restoring the caller's count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(LM_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_model(mode: str, lm: LanguageModel | None, static: StaticModel | None, num_codebooks: int) -> None:
    """The mode exists, its model is given and fits `num_codebooks`."""
    if mode not in CODING_MODES:
        raise ValueError(f"mode must be one of {CODING_MODES}, got {mode!r}")
    if mode == "static":
        model = _static_of(static)
        if num_codebooks != model.num_codebooks:
            raise ValueError(f"the static model has {model.num_codebooks} codebooks, the segment {num_codebooks}")
    if mode in LM_MODES:
        n_q = _lm_of(mode, lm).config.n_q
        if not 1 <= num_codebooks <= n_q:
            raise ValueError(f"the LM takes 1..{n_q} codebooks, the segment has {num_codebooks}")
    if num_codebooks < 1:
        raise ValueError(f"a segment has at least one codebook, got {num_codebooks}")


def _static_of(static: StaticModel | None) -> StaticModel:
    """The model static mode needs, refused when missing."""
    if static is None:
        raise ValueError("static mode needs a StaticModel (static=...)")
    return static


def _lm_of(mode: str, lm: LanguageModel | None) -> LanguageModel:
    """The LM an LM mode needs, refused when missing."""
    if lm is None:
        raise ValueError(f"{mode} mode needs an EntropyLM (lm=...)")
    return lm


def _card(mode: str, lm: LanguageModel | None, static: StaticModel | None) -> int:
    """Entries per codebook that `mode` can code (its model checked present by `_check_model`)."""
    if mode == "static":
        return _static_of(static).card
    if mode in LM_MODES:
        return _lm_of(mode, lm).config.card
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
