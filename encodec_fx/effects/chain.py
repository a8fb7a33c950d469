"""`Chain`: our effects and native pedalboard plugins, in any order, as one effect.

Python objects cannot run inside a native `pedalboard.Pedalboard`, so the chain cuts itself into
segments: each run of consecutive native plugins becomes one native `Pedalboard` (it runs at native
speed with pedalboard's own buffering), and our effects run between them. The flow of audio and
codes is checked whenever the chain is built or changed, and again when it runs (a nested chain may
have changed since), so a mistake is reported with the offending stage's index and name.

Streaming (`reset=False`): every stage streams; each native segment is called with `reset=False`
too, so it keeps its state. pedalboard re-initialises its plugins when a block is longer than the
first block of the stream (measured: `MP3Compressor` then gives garbage), so blocks for a native
segment are cut into pieces no longer than its first one. The chain's `latency` is the sum of its
stages' latencies; native plugins count as 0, since none reports a latency: the few that withhold
samples in a stream (`MP3Compressor`, `Resample`…) do so on top of it, in output that is shorter
still, which `process_file` flushes by counting samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence
from typing import Any, TypeAlias

import numpy as np
import pedalboard

from .codes import Codes
from .layout import AudioLayout, read_array, read_block, stream_layout
from .portable import portable, rebuilt
from .protocol import AUDIO, CODES, Effect, check_sample_rate

Stage: TypeAlias = Effect | pedalboard.Plugin


def stage_kinds(stage: Stage) -> tuple[str | None, str | None]:
    """(kind taken, kind given); None for a stage that passes anything through (an empty chain)."""
    if isinstance(stage, pedalboard.Plugin):
        return AUDIO, AUDIO
    return stage.input_kind, stage.output_kind


def _describe(index: int, stage: Stage) -> str:
    return f"stage {index} ({type(stage).__name__})"


def _holds(stage: Stage, chain: Chain) -> bool:
    """Whether `stage` is `chain` or a Chain that holds it, at any depth."""
    return stage is chain or (isinstance(stage, Chain) and any(_holds(inner, chain) for inner in stage._stages))


def _leaves(stages: Iterable[Stage]) -> Iterator[Stage]:
    """Every stage, nested Chains opened."""
    for stage in stages:
        if isinstance(stage, Chain):
            yield from _leaves(stage._stages)
        else:
            yield stage


def check_distinct(stages: list[Stage]) -> None:
    """One object, one place: a stream keeps its state in the effect object, so an object used twice
    (here or in a nested Chain) would mix two places' streams and silently garble the audio."""
    seen: set[int] = set()
    for stage in _leaves(stages):
        if id(stage) in seen:
            raise ValueError(f"{type(stage).__name__} object {stage!r} appears twice in the chain: a stream keeps "
                             "its state in the object, so use a second instance (or copy.deepcopy) instead")
        seen.add(id(stage))


def check_flow(stages: list[Stage]) -> None:
    """Every stage must take the kind of signal the stage before it gives."""
    previous: tuple[int, Stage] | None = None
    for index, stage in enumerate(stages):
        if not isinstance(stage, (Effect, pedalboard.Plugin)):
            raise TypeError(f"{_describe(index, stage)} is neither an encodec_fx effect nor a pedalboard plugin")
        taken, given = stage_kinds(stage)
        if previous is not None and taken is not None:
            before_index, before = previous
            offered = stage_kinds(before)[1]
            if taken != offered:
                remedy = "an EncodecDecoder" if taken == AUDIO else "an EncodecEncoder"
                raise ValueError(f"{_describe(index, stage)} takes {taken}, but {_describe(before_index, before)} "
                                 f"gives {offered}: put {remedy} between them")
        if given is not None:
            previous = (index, stage)


class _NativeStream:
    """What the chain keeps for one native segment in a stream."""

    def __init__(self, layout: AudioLayout):
        self.layout = layout
        self.piece: int | None = None  # the longest piece it may be given: its first one's length
        self.waiting = np.zeros((layout.num_channels, 0), dtype=np.float32)  # samples held for the next piece


def native_segments(stages: list[Stage]) -> list[Effect | pedalboard.Pedalboard]:
    """Runs of consecutive native plugins grouped into one native `Pedalboard` each."""
    segments: list[Effect | pedalboard.Pedalboard] = []
    natives: list[pedalboard.Plugin] = []
    for stage in stages:
        if isinstance(stage, pedalboard.Plugin):
            natives.append(stage)
            continue
        if natives:
            segments.append(pedalboard.Pedalboard(natives))
            natives = []
        segments.append(stage)
    if natives:
        segments.append(pedalboard.Pedalboard(natives))
    return segments


class Chain(Effect, MutableSequence):
    """A list of stages run in order, itself an effect (chains nest).

    List-like as `pedalboard.Pedalboard`: append, insert, remove, index, len, iteration, item and
    slice access. Every change is checked and refused (leaving the chain as it was) if it breaks
    the audio/codes flow; insert an encoder and its decoder together with a slice,
    `chain[i:i] = [encoder, decoder]`, since either alone would break it.
    """

    def __init__(self, stages: Iterable[Stage] = ()):
        self._stages: list[Stage] = []
        self._segments: list[Effect | pedalboard.Pedalboard] = []
        self._native_streams: dict[int, _NativeStream] = {}
        self._commit(list(stages))

    @property
    def input_kind(self) -> str | None:  # type: ignore[override]  # a class constant elsewhere; here the stages'
        """What the first stage that cares takes; None if no stage does (the chain passes anything)."""
        return next((kinds[0] for kinds in map(stage_kinds, self._stages) if kinds[0] is not None), None)

    @property
    def output_kind(self) -> str | None:  # type: ignore[override]  # as input_kind
        return next((kinds[1] for kinds in map(stage_kinds, reversed(self._stages)) if kinds[1] is not None), None)

    def _commit(self, stages: list[Stage]) -> None:
        if any(_holds(stage, self) for stage in stages):
            raise ValueError("a Chain cannot contain itself, directly or through a nested Chain")
        check_distinct(stages)
        check_flow(stages)
        self._stages = stages
        self._segments = native_segments(stages)
        self._native_streams = {}

    # --- list protocol -------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        """The stages, native plugins as parameters; a stream in progress does not travel."""
        return {"stages": [portable(stage) for stage in self._stages]}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, [rebuilt(stage) for stage in state["stages"]])

    def __getitem__(self, index: int | slice) -> Any:
        return self._stages[index]

    def __setitem__(self, index: int | slice, value: Any) -> None:
        stages = list(self._stages)
        stages[index] = value
        self._commit(stages)

    def __delitem__(self, index: int | slice) -> None:
        stages = list(self._stages)
        del stages[index]
        self._commit(stages)

    def __len__(self) -> int:
        return len(self._stages)

    def insert(self, index: int, value: Stage) -> None:
        stages = list(self._stages)
        stages.insert(index, value)
        self._commit(stages)

    def __repr__(self) -> str:
        return f"Chain({self._stages!r})"

    # --- effect protocol -----------------------------------------------------------------------

    def _process(self, signal: Any, sample_rate: int, buffer_size: int) -> Any:
        check_flow(self._stages)
        kind = self.input_kind
        if kind == AUDIO or (kind is None and isinstance(signal, np.ndarray)):
            audio, layout = read_array(signal)  # our checks and pedalboard's conversion, up front
            signal = layout.restore(audio)
        elif kind == CODES and not isinstance(signal, Codes):
            raise TypeError(f"this chain starts on codes (its first stages take Codes), got {type(signal).__name__}")
        for segment in self._segments:
            signal = segment(signal, sample_rate, buffer_size, True)
        return signal

    def _stream(self, signal: Any, sample_rate: int, buffer_size: int) -> Any:
        check_flow(self._stages)
        for index, segment in enumerate(self._segments):
            if isinstance(segment, pedalboard.Pedalboard):
                signal = self._stream_native(index, segment, signal, sample_rate, buffer_size)
            else:
                signal = segment(signal, sample_rate, buffer_size, False)
        return signal

    def _stream_native(self, index: int, board: pedalboard.Pedalboard, block: np.ndarray, sample_rate: int,
                       buffer_size: int) -> np.ndarray:
        """The next block through a native segment, in pieces no longer than its first piece.

        pedalboard guesses the layout of each array it is given, and a piece of at most as many
        samples as channels, such as (2, 1), reads as another layout; such a remainder waits for
        the next block (a few samples of latency on top of the chain's)."""
        if index not in self._native_streams:
            if block.ndim == 2 and block.shape == (0, 0):  # empty both ways: no layout to read yet
                return block.astype(np.float32)
            layout = stream_layout(block)  # an empty (channels, 0) or (0, channels) block fixes it too
            self._native_streams[index] = _NativeStream(layout)
        stream = self._native_streams[index]
        audio, _ = read_block(block, stream.layout)
        audio = np.concatenate([stream.waiting, audio], axis=-1)
        channels = stream.layout.num_channels
        if stream.piece is None and audio.shape[-1] > channels:
            stream.piece = audio.shape[-1]
        pieces, start = [], 0
        while stream.piece is not None and audio.shape[-1] - start > channels:
            end = min(start + stream.piece, audio.shape[-1])
            out = board(np.ascontiguousarray(audio[:, start:end]), sample_rate, buffer_size, False)
            # a short output comes back as (samples, channels)
            pieces.append(out if out.shape[0] == channels else out.T)
            start = end
        stream.waiting = audio[:, start:]
        out = np.concatenate(pieces, axis=-1) if pieces else np.zeros((channels, 0), dtype=np.float32)
        layout = stream.layout
        return AudioLayout(channels, out.shape[-1], layout.ndim, layout.channels_first).restore(out)

    def latency_at(self, sample_rate: int) -> int:
        sample_rate = check_sample_rate(sample_rate)
        return sum(stage.latency_at(sample_rate) for stage in self._stages if isinstance(stage, Effect))

    @property
    def latency(self) -> int:
        """The sum along the chain at the stream's rate; before any stream, of each stage's `latency`."""
        if self._stream_rate is not None:
            return self.latency_at(self._stream_rate)
        return sum(stage.latency for stage in self._stages if isinstance(stage, Effect))

    def _clear_stream(self) -> None:
        for stage in self._stages:
            stage.reset()
        self._native_streams = {}
