"""Audio files ↔ `.ecfx` archives: codec, entropy coding and archive container put together.

Compression streams the input: it is read (and resampled to the model's rate) a second at a time,
coded by the streaming encoder (causal models) or chunk by chunk (chunked models), and cut into
segments of a few seconds that are entropy-coded independently. Decompression streams the other
way and restores the original sample rate, channel count and exact length. Memory grows with the
audio's length only by the codes (≤ 3 kB per second) and their payloads in each candidate coding
mode: the static mode's distribution goes in the header before the segments, and "auto" keeps
whichever mode's archive comes out smallest.

Channels: a mono model codes each channel of the input as its own stream, except stereo (`channels="joint"`,
the default): then the bandwidth is the file's total, split between two streams, mid and side or left and
right, whichever measures better (`choose_split`). A stereo model codes a mono input duplicated (and decodes
it back to mono) and refuses more than two channels.

Describing an archive needs none of this: `entropy.describe.describe_archive` reads its header alone.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import torch
from pedalboard.io import AudioFile
from tqdm import tqdm

from entropy import format_v3 as v3
from entropy.archive import (
    ARCHIVE_SUFFIX,
    MAX_SEGMENT_CODES,
    SEGMENT_SECONDS,
    ArchiveError,
    ArchiveHeader,
    ArchiveReader,
    ArchiveWriter,
    Segment,
    Unit,
    check_segment_seconds,
)
from entropy.atomic import replacing
from entropy.coding import CODING_MODES, LM_MODES, CodingMode, StaticModel, decode_many, encode_many, is_coding_mode
from entropy.lm import EntropyLM
from entropy.number_checks import is_finite_number
from entropy.portable_lm import PortableLM

from .audio_io import AUDIO_SUFFIXES, check_destination, open_audio, resampled, write_audio
from .channels import from_model_channels, to_model_channels
from .checkpoints import weights_sha256
from .config import EncodecConfig
from .model import EncodecModel
from .resample import ResampledReader, Resampler
from .stream import CodeBlock, default_frames_per_step
from .validation import as_number

LM_GROUP_ROWS = 32
"""Payloads (one per segment, unit and stream) LM-coded as the rows of one batch, whole segments at a
time: the LM runs once per frame for all of them, which makes LM coding several times faster
(measured per frame and row at 6 kbps, one thread: 4.6 ms alone, 0.9 ms in batches of 8, 0.5 ms in
batches of 32). Each row's attention cache takes 4–8 MB (24/48 kHz LM), so rows, not segments, are
counted: a stereo file on the mono model groups 16 segments, the chunked 48 kHz model 6. Rows do not
affect each other's arithmetic, so a reader may decode any segment alone or in any batch; it decodes
each group together for speed."""
AUTO = "auto"  # every mode there is a model for (lm with an LM; static; raw), keeping the smallest archive
PROGRESS_FROM_SECONDS = 5.0
CHANNEL_CODINGS = ("joint", "independent")
SPLIT_MEASURE_SECONDS = 20.0
"""Seconds of a stereo file (from its start) that each split of the codebooks is decoded and measured on."""
Progress = Callable[[float], None]


@dataclass(frozen=True)
class CodedUnit:
    """Codes of one unit for every stream: [streams, n_q, frames], and per-stream scales if any."""

    codes: np.ndarray
    scales: np.ndarray | None


# --- identities ----------------------------------------------------------------------------------


def identity(name: str, module: torch.nn.Module) -> dict:
    """How an archive names the codec or LM it needs: a name to find it by and the hash that proves it."""
    return {"name": name, "sha256": weights_sha256(module.state_dict())}


def check_identity(kind: str, needed: dict, module: torch.nn.Module | None, parameter: str) -> None:
    """Refuse to decode with a missing or different codec/LM, naming the one needed and the `parameter` that
    takes it. Version 3 archives keep a 32-hex-digit prefix of the sha256, version 2 all of it."""
    wanted = f"{kind} {needed['name']!r} (sha256 {needed['sha256'][:12]}…)"
    if module is None:
        raise ValueError(f"this archive needs the {wanted}; pass it as the `{parameter}` argument")
    if not weights_sha256(module.state_dict()).startswith(needed["sha256"]):
        raise ValueError(f"this archive needs the {wanted}, but the given {kind} has other weights; "
                         f"pass the right one as the `{parameter}` argument")


def check_modules(model: object, lm: object, model_optional: bool = False) -> None:
    """The codec and LM given from Python are models, not names: load them first."""
    if not isinstance(model, EncodecModel) and not (model_optional and model is None):
        raise TypeError(f"model must be an EncodecModel (EncodecModel.from_pretrained(name or path)), "
                        f"got {type(model).__name__}")
    if lm is not None and not isinstance(lm, EntropyLM):
        raise TypeError(f"lm must be an EntropyLM (encodec_fx.load_lm(name or path)) or None, got {type(lm).__name__}")


def check_fits(header: ArchiveHeader, model: EncodecModel) -> None:
    """Refuse a header whose codec facts are not the model's (only a hand-made archive has them)."""
    config = model.config
    facts = {"model_sample_rate": (header.model_sample_rate, config.sampling_rate),
             "chunk_length": (header.chunk_length, config.chunk_length),
             "n_q": (header.n_q, min(header.n_q, len(model.quantizer.layers)))}
    for name, (found, expected) in facts.items():
        if found != expected:
            raise ValueError(f"the archive header's {name} is {found!r}, but its codec has {expected!r}: "
                             "the archive is damaged or was not written by encodec-fx")


# --- compression ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What an archive's header takes from the codec and the audio, not from the codes: from the model
    when compressing, from the source archive when transcoding."""

    codec: dict
    sample_rate: int
    channels: int
    audio_length: int
    model_sample_rate: int
    frame_rate: float
    chunk_length: int | None
    chunk_stride: int | None
    units_per_segment: int
    segment_seconds: float
    model_audio_length: int | None
    card: int


def compress_file(source: str | os.PathLike, destination: str | os.PathLike, model: EncodecModel, *,
                  bandwidth: float, model_name: str, mode: str = AUTO, lm: EntropyLM | None = None,
                  lm_name: str | None = None, overwrite: bool = False, progress: bool = True,
                  parity: int = 0, channels: str = "joint", segment_seconds: float = SEGMENT_SECONDS
                  ) -> ArchiveHeader:
    """Compress an audio file into a `.ecfx` archive at `bandwidth` kbps; returns its header. `mode` is a
    coding mode, or "auto": each mode there is a model for (lm only with `lm`), keeping the one that
    gives the smallest archive (the header records it). `parity` K adds a parity segment after every K
    segments, which rebuilds any one damaged segment of the K (0: none). `segment_seconds`: shorter
    segments make time ranges faster to decode (with an LM) for a few more bytes (`SEGMENT_SECONDS`).

    `channels` "joint" (the default) makes `bandwidth` the total for a stereo file on a mono model: its
    codebooks are split between mid and side, or left and right, whichever measures better on the file
    (`choose_split`); "independent" codes each channel at `bandwidth`, as for more channels."""
    _check_coding(mode, lm, parity)
    if channels not in CHANNEL_CODINGS:
        raise ValueError(f"channels must be one of {', '.join(CHANNEL_CODINGS)}, got {channels!r}")
    check_modules(model, lm)
    units_per_segment, unit_frames, segment_seconds = segment_geometry(model.config, segment_seconds)
    if not isinstance(model_name, (str, os.PathLike)) or not str(model_name):
        raise ValueError("model_name is how the archive names its codec (a shipped name or a path), "
                         f"got {model_name!r}")
    n_q = model.num_quantizers_for_bandwidth(bandwidth)  # fail on a bad bandwidth before reading anything
    bandwidth = float(bandwidth if bandwidth is not None else model.config.target_bandwidths[0])  # or a 0-d array
    if lm is not None and (lm.config.card != model.config.codebook_size or lm.config.n_q < n_q):
        raise ValueError(f"the LM predicts {lm.config.n_q} codebooks of {lm.config.card} codes, but this codec "
                         f"gives {n_q} of {model.config.codebook_size} at {bandwidth:g} kbps: pass the LM trained "
                         "for this codec")
    check_destination(destination, overwrite, {ARCHIVE_SUFFIX}, source=source)
    config = model.config
    split = None
    with open_audio(source) as file, torch.inference_mode():
        sample_rate, file_channels, length = int(file.samplerate), file.num_channels, file.frames
        check_segment_codes(units_per_segment * unit_frames, n_q, file_channels, segment_seconds)
        joint = channels == "joint" and file_channels == 2 and config.audio_channels == 1 and n_q >= 2
        with _progress_bar(length / sample_rate, progress, "compress") as advance:
            if joint:
                split, units, samples = _code_joint(model, bandwidth, file, source, unit_frames, advance)
            else:
                blocks = ModelBlocks(model_reader(file, source, config), config)
                units, samples = list(code_units(model, bandwidth, blocks, advance, unit_frames)), blocks.samples
    facts = _Facts(identity(str(model_name), model), sample_rate, file_channels, length, config.sampling_rate,
                   config.frame_rate, config.chunk_length, config.chunk_stride, units_per_segment,
                   segment_seconds, samples, config.codebook_size)
    return _write_archive(destination, units, facts, bandwidth, mode, lm, lm_name, overwrite, parity, split)


Split = tuple[str, list[int]]  # a stereo coding of entropy.format_v3.STEREO_CODINGS and each stream's codebooks
_JOINT_STREAMS = {"left-right": (0, 1), "mid-side": (2, 3)}  # rows of _stereo_streams' output


def _code_joint(model: EncodecModel, bandwidth: float, file: AudioFile, source: str | os.PathLike, unit_frames: int,
                advance: Progress) -> tuple[Split, list[CodedUnit], int]:
    """Stereo on a mono model: left, right, mid and side of the first `SPLIT_MEASURE_SECONDS` are coded and the
    split chosen on them (`choose_split`); a longer file is then read again from its start and only the chosen
    two streams coded (four streams of a whole file cost twice the encoder's time). Whether the file is longer
    is found by reading on, not from `frames` (an MP3's is an estimate); the same open file is rewound, so the
    header's length and the codes come from one file. Returns the split, the units and the samples coded."""
    config = model.config
    reader = model_reader(file, source, config)
    measured = int(SPLIT_MEASURE_SECONDS * config.sampling_rate)
    kept: list[np.ndarray] = []
    blocks = ModelBlocks(_Head(reader, measured), config, _keeping_stereo_streams(kept))
    units = list(code_units(model, bandwidth, blocks, unit_frames=unit_frames))
    split = choose_split(model, units, np.concatenate(kept, axis=-1))
    if reader.read(1).shape[-1] == 0:  # the whole file
        advance(blocks.samples / config.sampling_rate)
        return split, [_split_unit(unit, *split) for unit in units], blocks.samples
    file.seek(0)
    blocks = ModelBlocks(model_reader(file, source, config), config,
                         lambda audio, config: _stereo_streams(audio)[list(_JOINT_STREAMS[split[0]])])
    units = [_zero_past(unit, split[1]) for unit in code_units(model, bandwidth, blocks, advance, unit_frames)]
    return split, units, blocks.samples


def _keeping_stereo_streams(kept: list[np.ndarray]) -> Callable[[np.ndarray, EncodecConfig], np.ndarray]:
    """`_stereo_streams`, appending the audio to `kept`."""
    def streams(audio: np.ndarray, config: EncodecConfig) -> np.ndarray:
        kept.append(audio.copy())
        return _stereo_streams(audio)
    return streams


def _stereo_streams(audio: np.ndarray) -> np.ndarray:
    """Stereo (2, n) → streams left, right, mid, side (4, 1, n) for a mono model."""
    left, right = audio
    return np.stack([left, right, (left + right) / 2, (left - right) / 2])[:, np.newaxis, :]


class _Head:
    """The first `samples` of a stereo reader (what the split is measured on)."""

    def __init__(self, reader: AudioFile | ResampledReader, samples: int):
        self.reader, self.left = reader, samples

    def read(self, count: int) -> np.ndarray:
        count = min(count, self.left)
        self.left -= count
        return self.reader.read(count) if count else np.zeros((2, 0), dtype=np.float32)


def split_candidates(n_q: int) -> list[Split]:
    """The splits of `n_q` codebooks that compression measures: mid-side with 1, 2, 4 … n_q / 2 codebooks
    for the side, and left-right halves."""
    sides = [1 << i for i in range(n_q.bit_length()) if 1 << i <= n_q // 2]
    return [("mid-side", [n_q - side, side]) for side in sides] + [("left-right", [n_q - n_q // 2, n_q // 2])]


def choose_split(model: EncodecModel, units: list[CodedUnit], audio: np.ndarray) -> Split:
    """The split of the codebooks whose decode of `audio` (the stereo file's start at the model's rate) has the
    smallest multi-scale mel distance over both channels; `units` hold left, right, mid and side at all n_q."""
    from .train.losses import MultiScaleMelLoss
    candidates = split_candidates(units[0].codes.shape[1])
    needed = sorted({(row, n) for stereo, counts in candidates for row, n in zip(_JOINT_STREAMS[stereo], counts)})
    decoded: dict[tuple[int, int], torch.Tensor] = {}
    for n in sorted({n for _, n in needed}):
        rows = [row for row, m in needed if m == n]
        out = _decode_rows(model, units, rows, n)[:, 0, :audio.shape[-1]]
        decoded.update({(row, n): out[i] for i, row in enumerate(rows)})
    mel = MultiScaleMelLoss(model.config.sampling_rate)
    reference = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))

    def distance(split: Split) -> float:
        first, second = (decoded[row, n] for row, n in zip(_JOINT_STREAMS[split[0]], split[1]))
        estimate = torch.stack(_to_left_right(split[0], first, second))
        return float(mel(estimate[:, None], reference[:, None]))
    return min(candidates, key=distance)


def _decode_rows(model: EncodecModel, units: list[CodedUnit], rows: list[int], n: int) -> torch.Tensor:
    """The streams `rows` of `units` decoded with their first `n` codebooks, as one batch: (rows, channels,
    samples). Through the stream decoder, which takes a chunked model's units and scales as they are."""
    decoder, blocks = model.stream_decoder(), []
    for unit in units:
        scales = None if unit.scales is None else (torch.from_numpy(unit.scales[rows]),)
        codes = torch.from_numpy(unit.codes[rows, :n].astype(np.int64))
        blocks.append(decoder.push(CodeBlock((codes,), scales, decoder.chunked, len(rows))))
    return torch.cat(blocks + [decoder.flush()], dim=-1)


_Samples = TypeVar("_Samples", torch.Tensor, np.ndarray)


def _to_left_right(stereo: str, first: _Samples, second: _Samples) -> tuple[_Samples, _Samples]:
    """The left and right channels of a split archive's two decoded streams (torch or numpy)."""
    return (first + second, first - second) if stereo == "mid-side" else (first, second)


def _split_unit(unit: CodedUnit, stereo: str, codebooks: list[int]) -> CodedUnit:
    """A unit of the 4 joint streams → its 2 streams for `stereo`, codebooks past a stream's count zeroed."""
    rows = list(_JOINT_STREAMS[stereo])
    return _zero_past(CodedUnit(unit.codes[rows], None if unit.scales is None else unit.scales[rows]), codebooks)


def _zero_past(unit: CodedUnit, codebooks: list[int]) -> CodedUnit:
    """A unit of a split's 2 streams with the codebooks past each stream's count zeroed (and dropped past the
    larger count)."""
    codes = unit.codes[:, :max(codebooks)].copy()
    for stream, count in enumerate(codebooks):
        codes[stream, count:] = 0
    return CodedUnit(codes, unit.scales)


def transcode_file(source: str | os.PathLike, destination: str | os.PathLike, *, bandwidth: float | None = None,
                   mode: str | None = None, lm: EntropyLM | None = None, lm_name: str | None = None,
                   source_lm: EntropyLM | None = None, parity: int | None = None, overwrite: bool = False,
                   repaired: list[int] | None = None) -> ArchiveHeader:
    """Re-code an archive without its audio: keep the first codebooks for a lower `bandwidth` (residual
    quantisation makes a lower bandwidth's codes the first codebooks of a higher one's), and/or entropy-code
    them in another `mode` (a coding mode or "auto") or with another LM. Writes a version 3 archive, byte for
    byte the one `compress_file` writes from the audio at that bandwidth and mode; returns its header.

    None keeps the archive's bandwidth, mode (lm needs `lm`) and parity. `source_lm` is the LM the archive
    was coded with, if it was. Segments that parity rebuilds are transcoded as written (their numbers go to
    `repaired`); one that cannot be rebuilt is an error, as there are no codes to write for it."""
    if lm is not None and not isinstance(lm, EntropyLM) or source_lm is not None and not isinstance(source_lm,
                                                                                                   EntropyLM):
        raise TypeError("lm and source_lm must be EntropyLMs (encodec_fx.load_lm(name or path)) or None")
    check_destination(destination, overwrite, {ARCHIVE_SUFFIX}, source=source)
    with ArchiveReader(source) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        is_split = header.stream_codebooks is not None
        if bandwidth is None or is_split and as_number(bandwidth) == header.bandwidth:
            n_q = header.n_q
        elif is_split:
            _whole_codebooks(header, bandwidth)  # an odd or a higher bandwidth: the error every archive gives
            raise ValueError(f"cannot transcode split stereo ({header.stereo}) to another bandwidth: the split is "
                             "chosen from the audio, so compress it again (or compress with channels='independent')")
        else:
            n_q = _codebooks_for(header, bandwidth)  # refuses a higher or odd bandwidth
        mode = mode if mode is not None else header.coding_mode
        parity = header.parity if parity is None else parity
        _check_coding(mode, lm, parity)
        _check_lm(header, source_lm, "source_lm")
        static = StaticModel.from_bytes(header.static_model) if header.static_model else None
        card = _card(header, static)
        if lm is not None and (lm.config.n_q < n_q or lm.config.card != card):
            raise ValueError(f"the LM predicts {lm.config.n_q} codebooks of {lm.config.card} codes; the archive's "
                             f"codes have {n_q} of {card}: pass the LM trained for its codec")
        coder = _lm_coder(header.coding_mode, source_lm)
        numbered = _numbered(reader.scan(recover=True), header, False, [])
        streams = len(reader.segment(0).units[0].payloads)  # version 2 headers do not say
        units: list[CodedUnit] = []
        for item in _decoded(numbered, header, streams, coder, static, False, []):
            assert not isinstance(item, int)  # a lost segment: without recover, it has raised
            segment, codes = item
            for unit, unit_codes in zip(segment.units, codes):
                scales = None if math.isnan(unit.scales[0]) else np.array(unit.scales, np.float32)
                units.append(CodedUnit(unit_codes[:, :n_q], scales))
        if repaired is not None:
            repaired += sorted(reader.repaired)
    facts = _Facts(header.codec, header.sample_rate, header.channels, header.audio_length, header.model_sample_rate,
                   header.frame_rate, header.chunk_length, header.chunk_stride, _segment_units(header),
                   header.segment_seconds, header.model_audio_length, card)
    new_bandwidth = header.bandwidth if bandwidth is None else float(bandwidth)  # or a 0-d array
    split = (header.stereo, header.stream_codebooks) if header.stereo and header.stream_codebooks else None
    return _write_archive(destination, units, facts, new_bandwidth, mode, lm, lm_name, overwrite, parity, split)


def _codebooks_for(header: ArchiveHeader, bandwidth: float) -> int:
    """Codebooks at `bandwidth` kbps, which must be one that compressing refuses no more than the archive's own:
    EnCodec's bandwidths double from the smallest (2 codebooks), so the archive's codebooks halved (each codebook
    the archive's kbps per codebook), at most the archive's."""
    n_q = _whole_codebooks(header, bandwidth)
    halvings = header.n_q // n_q
    if header.n_q % n_q or halvings & (halvings - 1) or n_q < min(2, header.n_q):
        offered = [header.bandwidth / (1 << k) for k in range(header.n_q.bit_length()) if header.n_q >> k >= 2
                   and not header.n_q % (1 << k)] or [header.bandwidth]
        raise ValueError(f"bandwidth {as_number(bandwidth):g} kbps is not one the codec codes; from this archive "
                         f"transcode to {', '.join(f'{b:g}' for b in offered)} kbps")
    return n_q


def _whole_codebooks(header: ArchiveHeader, bandwidth: float) -> int:
    """The codebooks `bandwidth` kbps pays for, refused unless a whole number of the archive's, at most its own."""
    kbps = as_number(bandwidth)
    paid = _codebooks_paid(header)
    per_codebook = header.bandwidth / paid
    n_q = 0  # stays 0 unless `kbps` is a whole number of codebooks
    if is_finite_number(kbps):  # numpy's too, as compress_file takes them
        nearest = round(kbps / per_codebook)
        if abs(nearest * per_codebook - kbps) <= 1e-9:
            n_q = nearest
    if n_q < 1:
        raise ValueError(f"bandwidth {kbps!r} kbps is not a whole number of codebooks of {per_codebook:g} kbps "
                         f"for this archive (it holds {header.bandwidth:g} kbps)")
    if n_q > paid:
        raise ValueError(f"cannot transcode to {kbps:g} kbps: the archive holds {header.bandwidth:g} kbps of "
                         "codes, and a higher bandwidth needs the audio (compress it again)")
    return n_q


def _codebooks_paid(header: ArchiveHeader) -> int:
    """Codebooks the archive's bandwidth pays for: every stream's (split stereo) or n_q."""
    return sum(header.stream_codebooks) if header.stream_codebooks else header.n_q


def _card(header: ArchiveHeader, static: StaticModel | None) -> int:
    """Codes per codebook of the archive's codec: the static model's, or 2 to the bits of a code that its
    bandwidth pays (`entropy.format_v3.derived_bandwidth`: 10 bits)."""
    if static is not None:
        return static.card
    codebooks = _codebooks_paid(header)
    bits = round(header.bandwidth * 1000 / (codebooks * header.frame_rate))
    paid = v3.derived_bandwidth(codebooks, header.frame_rate) * bits / 10
    if not 1 <= bits <= 16 or abs(paid - header.bandwidth) > 1e-9:
        raise ValueError(f"the archive's {header.bandwidth:g} kbps is not a whole number of bits per code of its "
                         f"{codebooks} codebook(s) at {header.frame_rate:g} frames per second")
    return 1 << bits


def _check_coding(mode: str, lm: EntropyLM | None, parity: int) -> None:
    if mode not in (*CODING_MODES, AUTO):
        raise ValueError(f"coding mode {mode!r} is not one of {', '.join((*CODING_MODES, AUTO))}")
    if mode in LM_MODES and lm is None:
        raise ValueError(f"coding mode {mode!r} needs an LM; pass one, or use mode 'static' or 'raw'")
    if isinstance(parity, bool) or not isinstance(parity, int) or not 0 <= parity < 1 << 16:
        raise ValueError(f"parity must be a whole number of segments per parity segment, 0 for none, got {parity!r}")


def _check_lm(header: ArchiveHeader, lm: EntropyLM | None, parameter: str) -> None:
    """Refuse to decode an LM-coded archive with a missing or different LM (`check_identity`)."""
    if header.coding_mode in LM_MODES:
        assert header.lm is not None  # ArchiveHeader refuses an LM mode without the LM's identity
        check_identity("LM", header.lm, lm, parameter)


def _lm_coder(mode: str, lm: EntropyLM | None) -> PortableLM | None:
    """The coder of an LM mode, None for the others."""
    if mode not in LM_MODES:
        return None
    assert lm is not None  # an LM mode without an LM is refused first: `_check_coding`, `_check_lm`
    return PortableLM(lm)


def _write_archive(destination: str | os.PathLike, units: list[CodedUnit], facts: _Facts, bandwidth: float,
                   mode: str, lm: EntropyLM | None, lm_name: str | None, overwrite: bool, parity: int,
                   split: Split | None = None) -> ArchiveHeader:
    """Codes → archive: segments of `facts.units_per_segment` units, each coding mode tried ("auto") and the
    smallest archive kept. Compression and transcoding both end here, so that an archive transcoded to a
    lower bandwidth is byte for byte the one compressing at that bandwidth writes."""
    units_per_segment = facts.units_per_segment
    segments = [units[start: start + units_per_segment] for start in range(0, len(units), units_per_segment)]
    lm_group = max(1, LM_GROUP_ROWS // (units_per_segment * len(units[0].codes)))
    if mode == AUTO:
        candidates: list[CodingMode] = ["static", "raw", "lm"] if lm is not None else ["static", "raw"]
    else:
        assert is_coding_mode(mode)  # `_check_coding` refused anything else
        candidates = [mode]
    codebooks = split[1] if split is not None else None
    static = None if "static" not in candidates else \
        StaticModel.from_codes(np.concatenate([c for u in units for c in u.codes], axis=-1), card=facts.card) \
        if codebooks is None else _split_static(units, codebooks, facts.card)
    coded = {candidate: _archived(segments, candidate, _lm_coder(candidate, lm), static,
                                  lm_group if candidate in LM_MODES else 1, codebooks) for candidate in candidates}
    table = static.to_bytes() if static is not None else b""  # the static model's, which sits in the header
    chosen = min(candidates, key=lambda candidate: coded[candidate][1] + (len(table) if candidate == "static" else 0))
    lm_identity = None
    if chosen in LM_MODES:
        assert lm is not None  # an LM mode is a candidate only with an LM (`_check_coding`)
        lm_identity = identity(lm_name or "lm", lm)
    header = ArchiveHeader(
        codec=facts.codec, lm=lm_identity,
        coding_mode=chosen, sample_rate=facts.sample_rate, channels=facts.channels, audio_length=facts.audio_length,
        model_sample_rate=facts.model_sample_rate, bandwidth=bandwidth, n_q=units[0].codes.shape[1],
        frame_rate=facts.frame_rate, chunk_length=facts.chunk_length, chunk_stride=facts.chunk_stride,
        segment_frames=units_per_segment * units[0].codes.shape[-1],
        static_model=table if chosen == "static" else None, model_audio_length=facts.model_audio_length,
        segments=len(segments), units=len(units), frames=sum(u.codes.shape[-1] for u in units),
        segment_seconds=facts.segment_seconds, lm_group_segments=lm_group if chosen in LM_MODES else 1,
        streams=len(units[0].codes), unit_frames=units[0].codes.shape[-1], scaled=units[0].scales is not None,
        parity=parity, stereo=split[0] if split is not None else None, stream_codebooks=codebooks)
    with ArchiveWriter(destination, header, overwrite=overwrite) as writer:
        for segment in coded[chosen][0]:
            writer.write_segment(segment)
    return header


def _split_static(units: list[CodedUnit], codebooks: list[int], card: int) -> StaticModel:
    """The static model of a split archive: codebook k counted over the streams that have it."""
    counts = np.zeros((max(codebooks), card), np.int64)
    for unit in units:
        for codes, count in zip(unit.codes, codebooks):
            counts[:count] += StaticModel.from_codes(codes[:count], card=card).counts
    return StaticModel(counts)


def _static_for(static: StaticModel | None, n_q: int) -> StaticModel | None:
    """The static model for payloads of `n_q` codebooks: its first `n_q` (a split archive's side stream)."""
    return static if static is None or static.num_codebooks == n_q else StaticModel(static.counts[:n_q])


def _by_codebooks(n_qs: list[int]) -> dict[int, list[int]]:
    """Row positions by their codebook count: rows of one count are coded as one batch."""
    groups: dict[int, list[int]] = {}
    for position, n_q in enumerate(n_qs):
        groups.setdefault(n_q, []).append(position)
    return groups


def _archived(segments: list[list[CodedUnit]], mode: CodingMode, coder: PortableLM | None, static: StaticModel | None,
              group_segments: int, codebooks: list[int] | None = None) -> tuple[list[Segment], int]:
    """The archive's segments in one coding mode, and the bytes of their payloads. In lm mode,
    `group_segments` segments are coded as rows of one batch (with a split, one batch per codebook count)."""
    archived, first_frame = [], 0
    for group_start in range(0, len(segments), group_segments):
        group = segments[group_start: group_start + group_segments]
        rows = [codes[:codebooks[stream]] if codebooks else codes
                for segment in group for unit in segment for stream, codes in enumerate(unit.codes)]
        coded: list[bytes] = [b""] * len(rows)
        for n_q, positions in _by_codebooks([row.shape[0] for row in rows]).items():
            for position, payload in zip(positions, encode_many([rows[p] for p in positions], mode, lm=coder,
                                                                static=_static_for(static, n_q))):
                coded[position] = payload
        payloads = iter(coded)
        for number, segment in enumerate(group, group_start):
            units = tuple(Unit(unit.codes.shape[-1], _scales(unit), tuple(next(payloads) for _ in unit.codes))
                          for unit in segment)
            frames = sum(unit.frames for unit in units)
            archived.append(Segment(number, first_frame, frames, units))
            first_frame += frames
    return archived, sum(len(payload) for segment in archived for unit in segment.units for payload in unit.payloads)


def code_units(model: EncodecModel, bandwidth: float, blocks: Iterable[torch.Tensor],
               advance: Progress = lambda seconds: None, unit_frames: int | None = None) -> Iterator[CodedUnit]:
    """Audio blocks (streams, channels, n) at the model's rate → units of codes: one per chunk for
    chunked models, `unit_frames` frames (default: SEGMENT_SECONDS' worth) for streaming ones."""
    encoder, pending = model.stream_encoder(bandwidth), []
    unit_frames = unit_frames if unit_frames is not None else segment_geometry(model.config, SEGMENT_SECONDS)[1]
    for block in blocks:
        advance(block.shape[-1] / model.config.sampling_rate)
        coded = encoder.push(block)
        if coded.chunked:
            yield from _chunk_units(coded)
            continue
        pending.append(coded.rows[0])
        while sum(c.shape[-1] for c in pending) >= unit_frames:
            codes = torch.cat(pending, dim=-1)
            pending = [codes[..., unit_frames:]]
            yield _unit(codes[..., :unit_frames], None)
    coded = encoder.flush()
    if coded.chunked:
        yield from _chunk_units(coded)
        return
    codes = torch.cat(pending + [coded.rows[0]], dim=-1)
    for start in range(0, codes.shape[-1], unit_frames):
        yield _unit(codes[..., start: start + unit_frames], None)


def _chunk_units(coded: CodeBlock) -> Iterator[CodedUnit]:
    for row, codes in enumerate(coded.rows):
        yield _unit(codes, None if coded.scales is None else coded.scales[row])


def _unit(codes: torch.Tensor, scale: torch.Tensor | None) -> CodedUnit:
    return CodedUnit(codes.cpu().numpy().astype(np.int16),
                     None if scale is None else scale.view(-1).float().cpu().numpy())


def _scales(unit: CodedUnit) -> tuple[float, ...]:
    """Per stream: the chunk's loudness scale, or NaN for models that do not normalise."""
    return tuple(float("nan") for _ in unit.codes) if unit.scales is None else tuple(map(float, unit.scales))


def _segment_units(header: ArchiveHeader) -> int:
    """Units of every segment but the last, from the header's geometry (units / segments rounded up is not it
    when the last segment is short: 7 chunks in 2 segments of 5)."""
    return header.segment_frames // (header.unit_frames or header.segment_frames)


def segment_geometry(config: EncodecConfig, seconds: float) -> tuple[int, int, float]:
    """(units per segment, frames per unit, the segment's seconds) for segments of `seconds` rounded to whole
    frames (streaming models: one unit of that many frames) or chunks (chunked models)."""
    length = as_number(seconds)
    check_segment_seconds(length)
    assert is_finite_number(length)  # check_segment_seconds refused anything else
    frames_per_chunk = config.frames_per_chunk
    if frames_per_chunk is None:  # unchunked
        frames = max(1, round(length * config.frame_rate))
        return 1, frames, frames / config.frame_rate
    stride = config.chunk_sizes()[1]
    chunks = max(1, round(length * config.sampling_rate / stride))
    return chunks, frames_per_chunk, chunks * stride / config.sampling_rate


def check_segment_codes(frames: int, n_q: int, channels: int, segment_seconds: float) -> None:
    """Refuse, before any coding, segments that would hold more codes than an archive's segment may
    (`MAX_SEGMENT_CODES`): long segments of a file with many channels at a high bandwidth."""
    if frames * n_q * channels > MAX_SEGMENT_CODES:
        longest = segment_seconds * MAX_SEGMENT_CODES / (frames * n_q * channels)
        raise ValueError(f"segments of {segment_seconds:g} s would hold {frames} frames × {n_q} codebooks × {channels} "
                         f"channels, more than the {MAX_SEGMENT_CODES} codes an archive segment holds: use "
                         f"segment_seconds of at most {longest:.3g} for this file")


def model_reader(file: AudioFile, source: str | os.PathLike, config: EncodecConfig) -> AudioFile | ResampledReader:
    """`file` read at the model's rate; refused when it holds nothing to code, or more channels than a
    stereo model codes."""
    channels = file.num_channels
    if file.frames == 0:
        raise ValueError(f"{source} holds no audio samples")
    if config.audio_channels == 2 and channels > 2:
        raise ValueError(f"{source} has {channels} channels; this stereo model codes 1 or 2")
    return resampled(file, config.sampling_rate)  # at least one sample: the length is rounded up


class ModelBlocks:
    """The input a second at a time as the model's streams (streams, model channels, n), counting samples;
    `to_streams` maps (channels, n) audio to them (by default each channel its own stream for a mono
    model, stereo as stereo: `to_model_channels`)."""

    def __init__(self, reader: AudioFile | ResampledReader | _Head, config: EncodecConfig,
                 to_streams: Callable[[np.ndarray, EncodecConfig], np.ndarray] = to_model_channels):
        self.reader, self.config, self.to_streams, self.samples = reader, config, to_streams, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            audio = self.reader.read(self.config.sampling_rate)
            if audio.shape[-1] == 0:
                return
            self.samples += audio.shape[-1]
            yield torch.from_numpy(self.to_streams(audio, self.config))


# --- decompression -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LostSegment:
    """A segment that could not be read (`reason`), written as silence from `start_seconds` to `end_seconds`
    of the audio with `recover`."""
    number: int
    start_seconds: float
    end_seconds: float
    reason: str


def decompress_file(source: str | os.PathLike, destination: str | os.PathLike, model: EncodecModel | None, *,
                    lm: EntropyLM | None = None, overwrite: bool = False, recover: bool = False,
                    progress: bool = True, start: float | None = None, duration: float | None = None,
                    repaired: list[int] | None = None) -> list[LostSegment]:
    """Decode an archive to an audio file at its original rate, channels and length.

    Damaged or missing segments raise, naming the segment; with `recover`, they become silence and
    are returned instead. Segments that parity rebuilt (version 3) decode as written; their numbers are
    appended to `repaired` when given. With `start` and/or `duration` (seconds), only that time range is
    decoded and written (`decode_range`)."""
    check_modules(model, lm, model_optional=True)
    destination = check_destination(destination, overwrite, AUDIO_SUFFIXES, source=source)
    if start is not None or duration is not None:
        audio, header, lost = _range(source, model, lm, start or 0.0, duration, recover, repaired)
        write_audio(destination, audio, header.sample_rate, overwrite=overwrite)
        return lost
    with ArchiveReader(source) as reader:
        header = _checked_header(reader, model, lm)
        assert model is not None  # _checked_header refuses None, naming the codec needed
        static = StaticModel.from_bytes(header.static_model) if header.static_model else None
        lost = []  # list[LostSegment], as the range branch above binds it
        numbered = _numbered(reader.scan(recover=True), header, recover, lost)
        coder = _lm_coder(header.coding_mode, lm)
        decoded = _decoded(numbered, header, _streams(header, model.config.audio_channels), coder, static, recover,
                           lost)
        with torch.inference_mode(), _AudioSink(destination, header, overwrite) as sink, \
                _progress_bar(header.audio_length / header.sample_rate, progress, "decompress") as advance:
            for block in decode_audio(model, header, decoded):
                advance(block.shape[-1] / header.model_sample_rate)
                sink.write(block)
        if repaired is not None:
            repaired += sorted(reader.repaired)
    return lost


def _checked_header(reader: ArchiveReader, model: EncodecModel | None, lm: EntropyLM | None) -> ArchiveHeader:
    header = ArchiveHeader.from_dict(reader.header)
    check_identity("codec", header.codec, model, "model")
    assert model is not None  # check_identity refuses None
    check_fits(header, model)
    _check_lm(header, lm, "lm")
    return header


RANGE_WARMUP_FRAMES = 150
"""Code frames decoded before a time range (2 s at 75 Hz) for a streaming (causal) model, whose output
depends on what came before through its convolutions' context and its LSTM's state. Measured with the
shipped model on speech at 1.5 and 24 kbps, the largest difference to the whole decode: 3e-5 after 75
frames of warm-up, 4e-7 after 100, 3e-7 (float rounding) after 150; the tests hold it to 1e-5."""


def decode_range(source: str | os.PathLike, model: EncodecModel, *, start: float = 0.0,
                 duration: float | None = None, lm: EntropyLM | None = None, recover: bool = False,
                 repaired: list[int] | None = None) -> np.ndarray:
    """The audio from `start` seconds for `duration` seconds (to the end if None) as float32 (channels,
    samples) at the original rate: the samples the whole decode gives there, decoding only the segments
    the range needs (found through the index) and, before it, enough of the codes for the model to warm up.
    A range that runs past the end is cut at the end; one that starts past it, or a negative start or
    duration, is refused."""
    check_modules(model, lm)
    return _range(source, model, lm, start, duration, recover, repaired)[0]


def _range(source: str | os.PathLike, model: EncodecModel | None, lm: EntropyLM | None, start: float,
           duration: float | None, recover: bool, repaired: list[int] | None
           ) -> tuple[np.ndarray, ArchiveHeader, list[LostSegment]]:
    start_seconds = as_number(start)
    if not is_finite_number(start_seconds) or start_seconds < 0:
        raise ValueError(f"start must be a finite number of seconds >= 0, got {start_seconds!r}")
    duration_seconds = None if duration is None else as_number(duration)
    if duration_seconds is not None and (not is_finite_number(duration_seconds) or duration_seconds < 0):
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration!r}")
    with ArchiveReader(source) as reader:
        header = _checked_header(reader, model, lm)
        assert model is not None  # _checked_header refuses None, naming the codec needed
        config = model.config
        rate, model_rate = header.sample_rate, header.model_sample_rate
        total = header.audio_length / rate
        if start_seconds >= total:
            raise ValueError(f"start {start_seconds:g} s is past the end of the archive's audio ({total:g} s)")
        first = round(start_seconds * rate)
        end = header.audio_length if duration is None else min(header.audio_length, first + round(duration * rate))
        model_length = header.model_audio_length or -(-header.audio_length * model_rate // rate)
        resampler = None if rate == model_rate else Resampler(model_rate, rate)
        up, down = (1, 1) if resampler is None else (resampler.up, resampler.down)
        taps = None if resampler is None else resampler.taps  # a filter: the rates differ
        margin = 0 if taps is None else len(taps) // up + down + 2  # model samples the filter reaches
        model_first = max(0, (first * down // up - margin) // down * down)  # outputs line up with the stream's
        model_end = min(model_length, -(-end * down // up) + margin)
        numbers, offset, trim = _range_plan(header, config, model_first, model_end,
                                            lookahead=default_frames_per_step(model) - 1)
        static = StaticModel.from_bytes(header.static_model) if header.static_model else None
        lost: list[LostSegment] = []
        segments: list[tuple[int, Segment | None]] = []
        for number in numbers:
            try:
                segments.append((number, reader.segment(number)))
            except ArchiveError as error:
                if not recover:
                    raise
                _lose(lost, number, header, str(error))
                segments.append((number, None))
        coder = _lm_coder(header.coding_mode, lm)
        streams = _streams(header, config.audio_channels)
        decoded = list(_decoded(segments, header, streams, coder, static, recover, lost))
        if repaired is not None:
            repaired += sorted(reader.repaired)
    head = decoded[0] if decoded else None
    frames_per_chunk = config.frames_per_chunk  # None: `trim` counts frames, else units (chunks)
    if isinstance(head, int):  # the first segment lost: its silence starts at the decode's start
        decoded[0] = head - (trim if frames_per_chunk is None else trim * frames_per_chunk)
    elif head is not None:
        segment, codes = head
        if frames_per_chunk is None:
            decoded[0] = (segment, [codes[0][..., trim:]])
        else:
            decoded[0] = (Segment(segment.number, segment.first_frame, segment.frames, segment.units[trim:]),
                          codes[trim:])
    with torch.inference_mode():
        blocks = [from_model_channels(block.float().cpu().numpy(), header.channels)
                  for block in decode_audio(model, header, decoded) if block.numel()]
    audio = np.concatenate(blocks, axis=-1)[:, model_first - offset: model_end - offset]
    if resampler is not None:
        audio = np.concatenate([resampler.process(np.ascontiguousarray(audio)),
                                resampler.flush() if model_end == model_length else
                                np.zeros((header.channels, 0), np.float32)], axis=-1)
        audio = audio[:, first - model_first * up // down: end - model_first * up // down]
    else:
        audio = audio[:, first - model_first: end - model_first]
    if audio.shape[-1] < end - first:  # as the whole decode pads: an archive of another resampler
        audio = np.pad(audio, ((0, 0), (0, end - first - audio.shape[-1])))
    return np.ascontiguousarray(audio, dtype=np.float32), header, lost


def _range_plan(header: ArchiveHeader, config: EncodecConfig, model_first: int, model_end: int, lookahead: int = 0
                ) -> tuple[list[int], int, int]:
    """The segments that model samples [model_first, model_end) need; the model sample their decode starts at;
    and how many frames (streaming models) or units (chunked) of the first to skip. A streaming model starts
    RANGE_WARMUP_FRAMES early, and decodes `lookahead` frames past the last it needs: the first output of a
    stream that starts (or starts again after a lost segment) waits for its first step's frames, which its
    padding reflects. A chunked one starts a chunk early, whose tail overlaps the first chunk needed."""
    segment_frames = header.segment_frames
    if config.chunk_length is None:
        hop = config.hop_length
        first_frame = max(0, model_first // hop - RANGE_WARMUP_FRAMES)
        last_frame = min(header.frames, -(-model_end // hop) + lookahead) - 1
        first, last = first_frame // segment_frames, max(first_frame, last_frame) // segment_frames
        return list(range(first, last + 1)), first_frame * hop, first_frame - first * segment_frames
    stride, per_segment = config.chunk_sizes()[1], _segment_units(header)
    first_unit = max(0, model_first // stride - 1)
    last_unit = min(header.units - 1, max(first_unit, (model_end - 1) // stride))
    first, last = first_unit // per_segment, last_unit // per_segment
    return list(range(first, last + 1)), first_unit * stride, first_unit - first * per_segment


def check_archive_codes(source: str | os.PathLike, lm: EntropyLM | None = None,
                        repaired: list[int] | None = None) -> tuple[ArchiveHeader, list[LostSegment]]:
    """Read every segment (CRCs) and entropy-decode every frame's codes, writing no audio; the header and
    the segments that are damaged, missing or do not decode (`verify`). Segments that parity rebuilds are
    not lost; their numbers go to `repaired`."""
    with ArchiveReader(source) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        _check_lm(header, lm, "lm")
        static = StaticModel.from_bytes(header.static_model) if header.static_model else None
        lost: list[LostSegment] = []
        segments = list(_numbered(reader.scan(recover=True), header, True, lost))
        whole = next((segment for _, segment in segments if segment is not None), None)
        streams = len(whole.units[0].payloads) if whole is not None else 1  # no codec here to say how many
        coder = _lm_coder(header.coding_mode, lm)
        for _ in _decoded(segments, header, streams, coder, static, True, lost):
            pass
        if repaired is not None:
            repaired += sorted(reader.repaired)
    return header, sorted(lost, key=lambda segment: segment.number)


def _numbered(scan: Iterable, header: ArchiveHeader, recover: bool, lost: list[LostSegment]
             ) -> Iterator[tuple[int, Segment | None]]:
    """(number, segment) for every segment the header announces, None for one the scan lost (damaged
    or cut off): that raises, or with `recover` is recorded in `lost`."""
    expected = 0
    for item in scan:
        if isinstance(item, Segment):
            yield from ((number, None) for number in range(expected, item.number))
            expected = item.number + 1
            yield item.number, item
        elif not recover:
            raise item
        else:
            _lose(lost, item.index, header, str(item))
    for number in range(expected, header.segments):
        if not recover:
            raise ValueError(f"archive segment {number} is missing; pass recover=True to decode the rest")
        if not any(segment.number == number for segment in lost):
            _lose(lost, number, header, "missing")
        yield number, None


def _lose(lost: list[LostSegment], number: int, header: ArchiveHeader, reason: str) -> None:
    """Record segment `number` as lost; the last one ends with the audio, not a whole segment later."""
    seconds, audio_seconds = header.segment_seconds, header.audio_length / header.sample_rate
    lost.append(LostSegment(number, number * seconds, min((number + 1) * seconds, audio_seconds), reason))


def _streams(header: ArchiveHeader, model_channels: int) -> int:
    """Code streams per unit: one per channel for a mono model, one in all for a stereo one."""
    return header.channels if model_channels == 1 else 1


def _decoded(numbered: Iterable[tuple[int, Segment | None]], header: ArchiveHeader, streams: int,
             lm: PortableLM | None, static: StaticModel | None, recover: bool, lost: list[LostSegment]
             ) -> Iterator[tuple[Segment, list[np.ndarray]] | int]:
    """Per segment in order: the segment and its units' `streams` codes [streams, n_q, frames], or the
    number of code frames it held if it is lost. Segments are decoded in batches of as many as the writer
    LM-coded together (`lm_group_segments`), counted from the first given: from segment 0, the writer's own
    groups; for a time range, as few batches as its segments need. Rows do not affect each other's
    arithmetic, so any grouping decodes the same codes; a lost segment keeps its rows' places."""
    units_per_segment = _segment_units(header)
    group: list[tuple[int, Segment | None]] = []
    for item in numbered:
        group.append(item)
        if len(group) == header.lm_group_segments:
            yield from _decode_group(group, header, streams, units_per_segment, lm, static, recover, lost)
            group = []
    if group:
        yield from _decode_group(group, header, streams, units_per_segment, lm, static, recover, lost)


def _decode_group(group: list[tuple[int, Segment | None]], header: ArchiveHeader, streams: int,
                  units_per_segment: int, lm: PortableLM | None, static: StaticModel | None, recover: bool,
                  lost: list[LostSegment]) -> Iterator[tuple[Segment, list[np.ndarray]] | int]:
    group = [(number, _with_streams(number, segment, header, streams, recover, lost)) for number, segment in group]
    payloads: list[bytes | None] = []  # None: a lost segment's
    frames: list[int] = []
    for number, segment in group:
        if segment is None:
            units = min(units_per_segment, header.units - number * units_per_segment)
            payloads += [None] * (units * streams)
            frames += [0] * (units * streams)
        else:
            payloads += [payload for unit in segment.units for payload in unit.payloads]
            frames += [unit.frames for unit in segment.units for _ in unit.payloads]
    n_qs = (header.stream_codebooks or [header.n_q] * streams) * (len(payloads) // streams)
    decoded: list = [None] * len(payloads)
    for n_q, positions in _by_codebooks(n_qs).items():
        for position, codes in zip(positions, decode_many([payloads[p] for p in positions], n_q,
                                                          [frames[p] for p in positions], header.coding_mode, lm=lm,
                                                          static=_static_for(static, n_q))):
            decoded[position] = codes if isinstance(codes, ValueError) or n_q == header.n_q else \
                np.pad(codes, ((0, header.n_q - n_q), (0, 0)))  # a split's fewer codebooks, zeros past them
    rows = iter(decoded)
    for number, segment in group:
        if segment is None:
            units = min(units_per_segment, header.units - number * units_per_segment)
            [next(rows) for _ in range(units * streams)]
            yield _lost_frames(number, header)
            continue
        results = [[next(rows) for _ in unit.payloads] for unit in segment.units]
        error = next((r for unit in results for r in unit if isinstance(r, ValueError)), None)
        if error is None:
            yield segment, [np.stack(unit) for unit in results]
        elif not recover:
            raise ValueError(f"archive segment {number} is damaged: {error}")
        else:
            _lose(lost, number, header, str(error))
            yield segment.frames


def _with_streams(number: int, segment: Segment | None, header: ArchiveHeader, streams: int, recover: bool,
                  lost: list[LostSegment]) -> Segment | None:
    """`segment`, or None (lost) if its units do not hold one payload per stream: the rows of a batch would
    shift, each payload decoded as another's (a version 2 header's channels edited, which the codec implies the
    streams from)."""
    if segment is None or all(len(unit.payloads) == streams for unit in segment.units):
        return segment
    held = sorted({len(unit.payloads) for unit in segment.units})
    reason = (f"its units hold {' and '.join(map(str, held))} payload(s), but the header's {header.channels} "
              f"channel(s) make {streams} stream(s) for this codec")
    if not recover:
        raise ValueError(f"archive segment {number} is damaged: {reason}")
    _lose(lost, number, header, reason)
    return None


def _lost_frames(number: int, header: ArchiveHeader) -> int:
    if number < header.segments - 1:
        return header.segment_frames
    return header.frames - number * header.segment_frames


def decode_audio(model: EncodecModel, header: ArchiveHeader,
                 decoded: Iterable[tuple[Segment, list[np.ndarray]] | int]) -> Iterator[torch.Tensor]:
    """Decoded segments (or frame counts of lost ones) → audio blocks (streams, model channels, n) at
    the model's rate; a lost segment is silence, and the decoder starts afresh after it."""
    streams = _streams(header, model.config.audio_channels)
    if header.stream_codebooks is not None:
        yield from _decode_split(model, header, decoded)
        return
    decoder = model.stream_decoder()
    for item in decoded:
        if isinstance(item, int):
            tail = decoder.flush()
            yield tail
            yield torch.zeros(streams, model.config.audio_channels, _silence(model, item, tail.shape[-1]))
            continue
        segment, unit_codes = item
        for unit, codes in zip(segment.units, unit_codes):  # a unit is one row: a chunk, or a run of frames
            scales = None if math.isnan(unit.scales[0]) else (torch.tensor(unit.scales, dtype=torch.float32),)
            yield decoder.push(CodeBlock((torch.from_numpy(codes),), scales, decoder.chunked, codes.shape[0]))
    yield decoder.flush()


def _decode_split(model: EncodecModel, header: ArchiveHeader,
                  decoded: Iterable[tuple[Segment, list[np.ndarray]] | int]) -> Iterator[torch.Tensor]:
    """`decode_audio` of a split stereo archive: each stream decoded with its own codebooks, then left and
    right (2, 1, n) from mid and side (or as they are)."""
    codebooks, stereo = header.stream_codebooks or [], header.stereo or ""
    decoders = [model.stream_decoder() for _ in codebooks]

    def joined(blocks: list[torch.Tensor]) -> torch.Tensor:
        if not all(block.numel() for block in blocks):  # a flush with nothing decoded: the decoders run in step
            return torch.zeros(2, 1, 0)
        return torch.stack(_to_left_right(stereo, blocks[0][0], blocks[1][0]))

    for item in decoded:
        if isinstance(item, int):
            tail = joined([decoder.flush() for decoder in decoders])
            yield tail
            yield torch.zeros(2, 1, _silence(model, item, tail.shape[-1]))
            continue
        segment, unit_codes = item
        for unit, codes in zip(segment.units, unit_codes):
            blocks = []
            for stream, (decoder, count) in enumerate(zip(decoders, codebooks)):
                scales = None if math.isnan(unit.scales[stream]) else \
                    (torch.tensor(unit.scales[stream: stream + 1], dtype=torch.float32),)
                rows = (torch.from_numpy(codes[stream: stream + 1, :count]),)
                blocks.append(decoder.push(CodeBlock(rows, scales, decoder.chunked, 1)))
            yield joined(blocks)
    yield joined([decoder.flush() for decoder in decoders])


def _silence(model: EncodecModel, frames: int, flushed: int) -> int:
    """Model-rate samples of silence standing for `frames` lost code frames. A chunked model loses
    whole chunks, and the decoder's flush already gave the overlap at their start (`flushed`)."""
    config = model.config
    frames_per_chunk = config.frames_per_chunk
    if frames_per_chunk is None:  # unchunked
        return frames * config.hop_length
    chunks = math.ceil(frames / frames_per_chunk)
    return chunks * config.chunk_sizes()[1] - flushed


class _AudioSink:
    """Model-rate audio blocks → the original rate, channel count and exact length, written to a
    temporary file that replaces the destination only when complete."""

    def __init__(self, destination: Path, header: ArchiveHeader, overwrite: bool):
        self.destination, self.header, self.overwrite = destination, header, overwrite
        self.remaining_model = header.model_audio_length
        self.remaining = header.audio_length
        self.resampler = None if header.sample_rate == header.model_sample_rate else \
            Resampler(header.model_sample_rate, header.sample_rate)

    def __enter__(self) -> _AudioSink:
        self._files = ExitStack()
        temporary, = self._files.enter_context(replacing(self.destination, overwrite=self.overwrite))
        self.file = self._files.enter_context(AudioFile(str(temporary), "w", samplerate=self.header.sample_rate,
                                                        num_channels=self.header.channels))
        return self

    def write(self, block: torch.Tensor) -> None:
        if not block.numel():  # a flush with nothing decoded (after a lost segment) has not even a batch
            return
        audio = from_model_channels(block.float().cpu().numpy(), self.header.channels)
        if self.remaining_model is not None:  # drop the codec's padding past the input's end
            audio = audio[:, : self.remaining_model]
            self.remaining_model -= audio.shape[-1]
        if not audio.shape[-1]:
            return
        if self.resampler is not None:
            audio = self.resampler.process(np.ascontiguousarray(audio))
        self._emit(audio)

    def _emit(self, audio: np.ndarray) -> None:
        audio = audio[:, : self.remaining]
        self.remaining -= audio.shape[-1]
        if audio.shape[-1]:
            self.file.write(np.ascontiguousarray(audio, dtype=np.float32))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Finish the file and put it in place; on any failure, finishing included, remove it."""
        if kind is None:
            try:
                if self.resampler is not None:
                    self._emit(self.resampler.flush())
                if self.remaining > 0:  # an archive of another resampler may come up a sample short
                    self._emit(np.zeros((self.header.channels, self.remaining), np.float32))
            except BaseException as failure:
                self._files.__exit__(type(failure), failure, failure.__traceback__)
                raise
        self._files.__exit__(kind, error, traceback)


@contextmanager
def _progress_bar(seconds: float, enabled: bool, label: str) -> Iterator[Progress]:
    """A tqdm bar in seconds of audio, shown only for inputs longer than PROGRESS_FROM_SECONDS; yields
    the function that advances it."""
    with tqdm(total=seconds, desc=label, leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s",
              disable=not enabled or seconds < PROGRESS_FROM_SECONDS) as bar:
        yield lambda advance: bar.update(min(advance, bar.total - bar.n))
