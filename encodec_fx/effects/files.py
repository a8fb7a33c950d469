"""Streaming a file through a chain: constant memory, output aligned with the input.

The file is read block by block and every block goes through the chain with `reset=False`; then
blocks of silence flush what the chain withholds (its latency, and whatever native plugins
withhold on top, which no plugin reports: the flush goes on until the output has the input's
length). Since streamed output is never padded at the front, the first `frames` output samples are
the input's, aligned and of exactly its length. The output appears only once complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pedalboard
from pedalboard.io import AudioFile
from tqdm import tqdm

from entropy.atomic import replacing
from entropy.number_checks import is_integer

from ..audio_io import AUDIO_SUFFIXES, check_destination, open_audio, write_options
from .chain import Chain, _leaves
from .protocol import AUDIO, Effect
from .ranges import check_frequencies_below_nyquist, check_plugin

MAX_BLOCK_SIZE = 2**22  # 95 s at 44.1 kHz: larger blocks only cost memory (10**9 was a MemoryError)
MAX_NATIVE_LATENCY_S = 10.0  # how much silence beyond the reported latency the flush may take


def process_file(input_path: str | os.PathLike, output_path: str | os.PathLike,
                 chain: Effect | pedalboard.Plugin, block_size: int = 8192, overwrite: bool = False,
                 progress: bool = False) -> None:
    """Stream `input_path` through `chain` (an effect, a `Chain` or a native plugin) into `output_path`,
    with the input's rate, channels and length. WAV is written as 32-bit float; other formats with
    pedalboard's defaults. Refuses to overwrite unless `overwrite`."""
    output_path = check_destination(output_path, overwrite, AUDIO_SUFFIXES, source=input_path)
    if not is_integer(block_size) or not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise ValueError(f"block_size must be an integer from 1 to {MAX_BLOCK_SIZE} samples, got {block_size!r}")
    chain = chain if isinstance(chain, Chain) else Chain([chain])
    if chain.input_kind not in (AUDIO, None) or chain.output_kind not in (AUDIO, None):
        raise ValueError("a chain for a file must take and give audio: put an EncodecDecoder after an EncodecEncoder")
    with open_audio(input_path) as source:
        rate, channels, frames = int(source.samplerate), source.num_channels, source.frames
        if frames == 0:  # as compress refuses it: an empty output would report success for nothing
            raise ValueError(f"{input_path} holds no audio samples")
        if rate != source.samplerate:
            raise ValueError(f"{input_path} has a sample rate of {source.samplerate} Hz; expected a whole number")
        check_plugins(chain, rate)
        try:
            with replacing(output_path, overwrite=overwrite) as (temporary,), \
                    AudioFile(str(temporary), "w", samplerate=rate, num_channels=channels,
                              **write_options(output_path)) as sink, \
                    tqdm(total=frames, unit="sample", unit_scale=True, disable=not progress,
                         desc=Path(input_path).name) as bar:
                chain.reset()
                written = 0
                for block in _blocks(source, chain, rate, channels, block_size, frames):
                    block = block[:, : frames - written]
                    if not np.isfinite(block).all():
                        raise ValueError(f"the chain gave NaN or infinite samples {written / rate:.2f} s into "
                                         "the output; nothing was written")
                    sink.write(np.ascontiguousarray(block))
                    written += block.shape[-1]
                    bar.update(block.shape[-1])
        finally:
            chain.reset()


def check_plugins(chain: Chain, sample_rate: int) -> None:
    """The chain's native plugins against their ranges (a chain built in Python was not parsed) and their
    filter frequencies against the Nyquist frequency of this file: refused before any output is made."""
    plugins = [(index, stage) for index, stage in enumerate(_leaves([chain])) if isinstance(stage, pedalboard.Plugin)]
    for index, plugin in plugins:
        check_plugin(plugin, f"stage {index} ({type(plugin).__name__})")
    check_frequencies_below_nyquist(plugins, sample_rate)


def _blocks(source: AudioFile, chain: Chain, rate: int, channels: int, block_size: int,
            frames: int) -> Iterator[np.ndarray]:
    """The chain's output blocks, (channels, samples): the file's blocks, then silence until `frames` are out.
    An empty block goes first: it fixes the stream's layout as (channels, samples), which a first block of
    no more samples than channels (a tiny file, or a tiny `block_size`) could not."""
    yield chain(np.zeros((channels, 0), dtype=np.float32), rate, block_size, reset=False)
    out = 0
    while source.tell() < frames:
        block = chain(source.read(block_size), rate, block_size, reset=False)
        out += block.shape[-1]
        yield block
    silence, flushed = np.zeros((channels, block_size), dtype=np.float32), 0
    limit = chain.latency_at(rate) + int(MAX_NATIVE_LATENCY_S * rate)
    while out < frames:
        if flushed > limit:
            raise ValueError(f"the chain still withheld {frames - out} samples after {flushed / rate:.1f} s of "
                             "silence; a plugin in it seems to hold its output back indefinitely")
        block = chain(silence, rate, block_size, reset=False)
        flushed += block_size
        out += block.shape[-1]
        yield block
