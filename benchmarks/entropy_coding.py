"""Archive sizes and speeds per coding mode: raw 10-bit codes, static distribution, LM.

    OMP_NUM_THREADS=1 python benchmarks/entropy_coding.py [AUDIO ...] --model CODEC [--lm LM.safetensors]

For every audio file and bandwidth: the archive's kbps in each mode, the LM's coding overhead (LM
payload bits over the ideal −Σ log2 p of the same stepwise probabilities), and compress/decompress
real-time factors on one thread; then, per bandwidth over all files, each mode's kbps (total bits
over total duration) and the LM's saving against raw codes beside the paper's, for whole archives
and for the payloads alone (without the header, segment framing and index, which weigh on short
files; the paper's figures are payloads); then the LM step's time at 6 kbps, float against the
PortableLM that coding runs, side by side; last (alone with --archive-only), version 3's overhead bytes per
archive, transcoding against compressing at the lower bandwidth, and decoding 10 s from the middle of a
one-hour archive, the LM's for each of --segments (segment lengths in seconds); with --segments and
AUDIO, also the LM archives' bytes at 1.5 and 6 kbps per segment length over all the files. Without
--model/--lm, a full-size 24 kHz codec and paper-size LM with random weights are used: the sizes then
say nothing about the savings a trained LM gives (that needs the shipped model), but the speeds and the
coding overhead are real. Without AUDIO, 30 s of
synthetic music-like audio is used.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pedalboard.io import AudioFile

from encodec_fx import EncodecModel, load_lm
from encodec_fx.compress import compress_file, decompress_file
from entropy.archive import SEGMENT_SECONDS, ArchiveHeader, ArchiveReader
from entropy.lm import EntropyLM
from entropy.portable_lm import PortableLM
from entropy.train import lm_config_for

from common import random_model

PAPER_LM_KBPS = {1.5: 0.9, 3.0: 1.9, 6.0: 4.1, 12.0: 8.9}  # the paper's 24 kHz model with its LM


def synthetic_audio(path: Path, seconds: float = 30.0, rate: int = 24_000) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    notes = rng.choice([220.0, 247.0, 262.0, 294.0, 330.0, 349.0, 392.0], size=int(seconds * 4))
    melody = np.sin(2 * np.pi * np.repeat(notes, len(t) // len(notes) + 1)[: len(t)] * t)
    audio = 0.3 * melody * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(len(t))
    with AudioFile(str(path), "w", samplerate=rate, num_channels=1) as file:
        file.write(audio[None].astype(np.float32))


def payload_bits(archive: Path) -> int:
    """Bits of the entropy-coded payloads alone (each payload's CRC left out)."""
    with ArchiveReader(archive) as reader:
        return sum(8 * (len(p) - 4) for segment in reader for unit in segment.units for p in unit.payloads)


def ideal_bits(archive: Path, lm: EntropyLM) -> float:
    """−Σ log2 p of the archived codes under the probabilities the coder used (PortableLM's)."""
    from entropy.coding import decode_many
    lm = PortableLM(lm)
    with ArchiveReader(archive) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        segments = list(reader)
    ideal = 0.0
    for start in range(0, len(segments), header.lm_group_segments):
        units = [u for s in segments[start: start + header.lm_group_segments] for u in s.units]
        payloads = [p for u in units for p in u.payloads]
        frames = [u.frames for u in units for _ in u.payloads]
        rows = decode_many(payloads, header.n_q, frames, "lm", lm=lm)
        state, previous = lm.initial_state(len(rows), header.n_q), None
        for t in range(max(frames)):
            current = np.stack([r[:, t] if t < r.shape[1] else np.zeros(header.n_q, np.int64) for r in rows])
            probabilities = lm.step(previous, state, current).astype(np.float64)
            chosen = np.take_along_axis(probabilities, current[..., None], -1)[..., 0]
            active = np.array([t < f for f in frames])
            ideal -= float(np.log2(chosen[active]).sum())
            previous = current
    return ideal


def step_speeds(lm: EntropyLM, num_codebooks: int, frames: int = 375) -> None:
    """Milliseconds per frame and row of the float LM's step and the PortableLM's (what coding runs),
    side by side, over one 5-s segment per row at several batch sizes."""
    portable = PortableLM(lm)
    print(f"\nLM step, {num_codebooks} codebooks, ms per frame and row (float → portable, ratio):")
    for batch in (1, 8, 32):
        codes = np.random.default_rng(0).integers(0, lm.config.card, (batch, num_codebooks))
        times = {}
        for name, model, previous in (("float", lm, torch.from_numpy(codes)), ("portable", portable, codes)):
            state = model.initial_state(batch, num_codebooks)
            start = time.perf_counter()
            for _ in range(frames):
                model.step(previous, state, previous)  # as the frame's own codes too: any codes time alike
            times[name] = (time.perf_counter() - start) / frames / batch * 1000
        print(f"  batch {batch:>2}: {times['float']:.2f} → {times['portable']:.2f} "
              f"({times['portable'] / times['float']:.2f}×)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="*", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--lm")
    parser.add_argument("--archive-only", action="store_true",
                        help="only the version 3 archive costs: overhead, transcode, time ranges")
    parser.add_argument("--segments", type=lambda text: [float(x) for x in text.split(",")], default=[SEGMENT_SECONDS],
                        help=f"segment lengths in seconds to time LM ranges at, comma-separated (default "
                             f"{SEGMENT_SECONDS:g}); with AUDIO and --archive-only, also their bytes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.model:
        model = EncodecModel.from_pretrained(args.model)
    else:
        model = random_model()
    config = model.config
    lm = load_lm(args.lm) if args.lm else EntropyLM(lm_config_for(
        config.num_quantizers, config.codebook_size, config.frame_rate, "paper", intra_frame=False)).eval()
    if args.archive_only:
        with tempfile.TemporaryDirectory() as directory:
            path = args.audio[0] if args.audio else Path(directory) / "synthetic.wav"
            if not args.audio:
                synthetic_audio(path)
            archive_costs(model, lm, path, segments=args.segments)
            if args.audio and args.segments != [SEGMENT_SECONDS]:
                segment_costs(model, lm, args.audio, args.segments)
        return
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        files = args.audio or [directory / "synthetic.wav"]
        if not args.audio:
            synthetic_audio(files[0])
        print(f"{'file':<16} {'kbps':>5} {'raw':>7} {'static':>7} {'lm':>7} {'overhead':>9} "
              f"{'lm compress':>12} {'lm decompress':>14}")
        totals: dict[tuple[float, str], float] = {}  # (bandwidth, mode) → archive bits, over all files
        payloads: dict[tuple[float, str], float] = {}  # the same for the payloads alone
        total_seconds = 0.0
        for path in files:
            with AudioFile(str(path)) as file:
                seconds = file.frames / file.samplerate
            total_seconds += seconds
            for bandwidth in model.config.target_bandwidths:
                sizes, speeds, payload = {}, {}, {}
                for mode in ("raw", "static", "lm"):
                    archive, restored = directory / f"{mode}.ecfx", directory / f"{mode}.wav"
                    start = time.perf_counter()
                    compress_file(path, archive, model, bandwidth=bandwidth, mode=mode, model_name="codec",
                                  lm=lm if mode == "lm" else None, overwrite=True, progress=False)
                    compress_time = time.perf_counter() - start
                    start = time.perf_counter()
                    decompress_file(archive, restored, model, lm=lm, overwrite=True, progress=False)
                    speeds[mode] = (seconds / compress_time, seconds / (time.perf_counter() - start))
                    sizes[mode] = archive.stat().st_size * 8 / seconds / 1000
                    totals[bandwidth, mode] = totals.get((bandwidth, mode), 0.0) + archive.stat().st_size * 8
                    payload[mode] = payload_bits(archive)
                    payloads[bandwidth, mode] = payloads.get((bandwidth, mode), 0.0) + payload[mode]
                ideal = ideal_bits(directory / "lm.ecfx", lm)
                print(f"{path.name[:16]:<16} {bandwidth:>5g} {sizes['raw']:>7.2f} {sizes['static']:>7.2f} "
                      f"{sizes['lm']:>7.2f} {100 * (payload['lm'] / ideal - 1):>8.3f}% "
                      f"{speeds['lm'][0]:>11.1f}x {speeds['lm'][1]:>13.1f}x")
    print("kbps columns: archive size per second of audio; speeds: times real time, one thread, "
          "including the codec")
    print(f"\nall {len(files)} file(s), {total_seconds:.1f} s: kbps per mode, LM saving against raw codes")
    for name, bits in (("archives", totals), ("payloads", payloads)):
        for bandwidth in model.config.target_bandwidths:
            kbps = {mode: bits[bandwidth, mode] / total_seconds / 1000 for mode in ("raw", "static", "lm")}
            paper = PAPER_LM_KBPS.get(bandwidth)
            paper_text = (f" (paper: {bandwidth:g} → {paper:g} kbps, {100 * (1 - paper / bandwidth):.0f} %)"
                          if paper else "")
            print(f"{name} {bandwidth:>5g} kbps: raw {kbps['raw']:.2f}, static {kbps['static']:.2f}, "
                  f"lm {kbps['lm']:.2f}; saving {100 * (1 - kbps['lm'] / kbps['raw']):.1f} %{paper_text}")
    step_speeds(lm, model.num_quantizers_for_bandwidth(6.0))
    archive_costs(model, lm, files[0], segments=args.segments)


def archive_costs(model: EncodecModel, lm: EntropyLM, path: Path, hour_seconds: float = 3600.0,
                  segments: list[float] = (SEGMENT_SECONDS,)) -> None:
    """Version 3's overhead bytes per archive (header, framing, index: all but the payloads), transcoding
    against compressing at the lower bandwidth, and decoding 10 s from the middle of a one-hour archive
    (the LM's at each segment length of `segments`)."""
    from encodec_fx.compress import decode_range, transcode_file
    from entropy.describe import describe_archive
    bandwidths = model.config.target_bandwidths
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        print(f"\n{path.name}: overhead bytes (header, framing, index) and transcode {bandwidths[2]:g} → "
              f"{bandwidths[0]:g} kbps against compressing at {bandwidths[0]:g}, one thread:")
        for mode in ("raw", "static", "lm"):
            high, low, out = (directory / f"{name}.ecfx" for name in ("high", "low", "out"))
            options = dict(model_name="encodec-fx-24khz", mode=mode, lm=lm if mode == "lm" else None,
                           lm_name="encodec-fx-24khz-lm", overwrite=True, progress=False)
            compress_file(path, high, model, bandwidth=bandwidths[2], **options)
            start = time.perf_counter()
            compress_file(path, low, model, bandwidth=bandwidths[0], **options)
            compress_time = time.perf_counter() - start
            start = time.perf_counter()
            transcode_file(high, out, bandwidth=bandwidths[0], mode=mode, lm=options["lm"],
                           lm_name=options["lm_name"], source_lm=options["lm"], overwrite=True)
            transcode_time = time.perf_counter() - start
            described = describe_archive(low)
            print(f"  {mode:<6}: {described['overhead_bytes']} overhead + {described['payload_bytes']} payload bytes; "
                  f"compress {compress_time:.2f} s, transcode {transcode_time:.3f} s "
                  f"({compress_time / transcode_time:.0f}× faster, same bytes: {out.read_bytes() == low.read_bytes()})")
        # a range decodes only the segments it needs, so its cost does not grow with the archive: the LM's is
        # measured on 2 minutes (coding an hour with the LM would take an hour), the static one's on an hour
        runs = [("raw", hour_seconds, SEGMENT_SECONDS), ("static", hour_seconds, SEGMENT_SECONDS)]
        for mode, seconds, segment in runs + [("lm", 120.0, segment) for segment in segments]:
            audio, archive = directory / f"{seconds:.0f}.wav", directory / f"long-{mode}.ecfx"
            if not audio.exists():
                synthetic_audio(audio, seconds=seconds, rate=model.config.sampling_rate)
            start = time.perf_counter()
            compress_file(audio, archive, model, bandwidth=6.0, model_name="codec", mode=mode,
                          lm=lm if mode == "lm" else None, overwrite=True, progress=False, segment_seconds=segment)
            made = time.perf_counter() - start
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                decode_range(archive, model, lm=lm, start=seconds / 2, duration=10.0)
                timings.append(time.perf_counter() - start)
            print(f"  {seconds / 60:.0f}-min archive, {mode} at 6 kbps, {segment:g} s segments "
                  f"({archive.stat().st_size} bytes, made in {made:.0f} s): 10 s from the middle decoded in "
                  f"{min(timings):.2f} s (best of 3)")


def segment_costs(model: EncodecModel, lm: EntropyLM, files: list[Path], segments: list[float]) -> None:
    """LM archives' bytes (payload and overhead) over `files` at 1.5 and 6 kbps per segment length: what
    shorter segments, which decode time ranges faster, cost. Each channel coded alone (no stereo split),
    so that the lengths differ only in their segments."""
    from entropy.describe import describe_archive
    print(f"\nLM archives of {len(files)} file(s) per segment length (payload + overhead bytes):")
    base: dict[float, int] = {}
    with tempfile.TemporaryDirectory() as directory:
        archive = Path(directory) / "a.ecfx"
        for segment in segments:
            cells = []
            for bandwidth in (1.5, 6.0):
                payload = overhead = 0
                for path in files:
                    compress_file(path, archive, model, bandwidth=bandwidth, model_name="codec", mode="lm", lm=lm,
                                  overwrite=True, progress=False, channels="independent", segment_seconds=segment)
                    described = describe_archive(archive)
                    payload, overhead = payload + described["payload_bytes"], overhead + described["overhead_bytes"]
                    total = payload + overhead
                base.setdefault(bandwidth, total)
                change = 100 * (total / base[bandwidth] - 1)
                cells.append(f"{bandwidth:g} kbps {payload} + {overhead} = {total} ({change:+.1f} %)")
            print(f"  {segment:g} s: " + "; ".join(cells))


if __name__ == "__main__":
    main()
