"""Collection runs side by side: one process, local workers and Ray actors on the same synthetic collection.

    python benchmarks/corpus.py [--files 200] [--workers 2] [--engines serial local ray]

Writes a collection of FILES files of 5–30 s (tones and noise, 16 / 22.05 / 24 / 44.1 / 48 kHz, mono
and stereo) into a temporary folder, compresses it at 6 kbps with the shipped model and LM once per
engine, and prints per engine: wall time, files/s, hours of audio per hour, scaling efficiency against
one process on one thread (one worker), the workers' peak RSS, and the per-file overhead (wall time per
file in one process beyond the coding itself: planning, hashing, journaling, model loading spread over
the files), with the journal's own share timed apart (appending, flushing and syncing each record). Then
it reruns a finished run to time a resume, and checks that every engine wrote the same bytes. Targets
(issue 17): 2 workers ≥ 1.8× one worker on 2 cores; Ray within 15 % of local workers; per-file overhead
< 50 ms; resume < 5 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pedalboard.io import AudioFile

from encodec_fx import DEFAULT_MODEL
from encodec_fx.collection import CompressJob, run_collection
from encodec_fx.collection.journal import JOURNAL_NAME, Journal
from encodec_fx.pretrained import default_lm

RATES = (16_000, 22_050, 24_000, 44_100, 48_000)


def synthetic_collection(folder: Path, files: int, seed: int = 0) -> float:
    """FILES files of 5–30 s in a two-level tree; returns their total seconds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for number in range(files):
        rate, channels, seconds = int(rng.choice(RATES)), int(rng.integers(1, 3)), float(rng.uniform(5, 30))
        time_axis = np.arange(int(rate * seconds)) / rate
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * time_axis)
        audio = tone[None] + 0.02 * rng.standard_normal((channels, len(time_axis)))
        path = folder / f"set{number % 4}" / f"clip{number:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with AudioFile(str(path), "w", samplerate=rate, num_channels=channels) as file:
            file.write(audio.astype(np.float32))
        total += seconds
    return total


def measure(engine: str, workers: int, source: Path, output: Path) -> dict:
    """One engine's run. "serial" is one worker as the others' workers are: this process on one thread (torch
    would take every core, and the speed-up would compare one process on all cores with workers on one each)."""
    job = CompressJob(model=DEFAULT_MODEL, bandwidth=6.0, lm=default_lm(DEFAULT_MODEL))
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if engine == "serial" else threads)
    started = time.perf_counter()
    try:
        summary = run_collection(job, [source], output, workers=1 if engine == "serial" else workers,
                                 engine="ray" if engine == "ray" else "local", progress=False)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (output / JOURNAL_NAME).read_text().splitlines()]
    done = [r for r in records if r["status"] == "done"]
    return {"engine": engine, "wall": wall, "files": summary.done, "failed": summary.failed,
            "audio": summary.audio_seconds, "job_seconds": sum(r["job_seconds"] for r in done),
            "peak_rss_mb": max(r["worker_peak_rss_mb"] for r in done)}


def journal_overhead(finished: Path, scratch: Path) -> float:
    """Milliseconds per record to journal a finished run's records again into a fresh journal, on the
    same disk: what the journal costs each file."""
    records = [json.loads(line) for line in (finished / JOURNAL_NAME).read_text().splitlines()]
    scratch.mkdir()
    journal = Journal(scratch)
    started = time.perf_counter()
    for record in records:
        journal.append({name: value for name, value in record.items() if name != "time"})
    journal.close()
    return (time.perf_counter() - started) * 1000 / len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="files in the collection (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="local workers and Ray actors (default 2)")
    parser.add_argument("--engines", nargs="*", default=["serial", "local", "ray"],
                        choices=["serial", "local", "ray"], help="default: all three")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "in"
        seconds = synthetic_collection(source, args.files)
        print(f"{args.files} files, {seconds / 3600:.2f} h of audio; {args.workers} workers\n")
        print("| engine | wall s | files/s | h audio / h | speed-up | efficiency | peak RSS / worker MB |")
        print("|---|---|---|---|---|---|---|", flush=True)
        results: dict[str, dict] = {}
        for engine in args.engines:  # each row as its engine finishes: a long run cut short keeps its rows
            r = results[engine] = measure(engine, args.workers, source, Path(workdir) / engine)
            base = results.get("serial")
            speedup = base["wall"] / r["wall"] if base else float("nan")
            workers = 1 if engine == "serial" else args.workers
            print(f"| {engine} | {r['wall']:.1f} | {r['files'] / r['wall']:.2f} | {r['audio'] / r['wall']:.0f} | "
                  f"{speedup:.2f}× | {speedup / workers:.0%} | {r['peak_rss_mb']:.0f} |", flush=True)
        if base:
            overhead = (base["wall"] - base["job_seconds"]) / base["files"]
            print(f"\nper-file overhead in one process, beyond the coding: {overhead * 1000:.0f} ms "
                  "(model loading included once)")
        journal_ms = journal_overhead(Path(workdir) / next(iter(results)), Path(workdir) / "journal-timing")
        print(f"journal: {journal_ms:.2f} ms per record (append, flush, fsync)")
        if "local" in results and "ray" in results:
            print(f"Ray against local workers: {results['ray']['wall'] / results['local']['wall']:.2f}× the time")
        resumed_dir = Path(workdir) / next(iter(results))
        started = time.perf_counter()
        again = run_collection(CompressJob(model=DEFAULT_MODEL, bandwidth=6.0, lm=default_lm(DEFAULT_MODEL)),
                               [source], resumed_dir, workers=1, progress=False)
        print(f"resuming the finished run: {time.perf_counter() - started:.2f} s ({again.skipped} skipped)")
        outputs = {engine: {p.relative_to(Path(workdir) / engine): p.read_bytes()
                            for p in (Path(workdir) / engine).rglob("*.ecfx")} for engine in results}
        first, reference = next(iter(outputs.items()))
        differing = {engine: sorted(str(name) for name in set(reference) | set(output)
                                    if reference.get(name) != output.get(name))
                     for engine, output in outputs.items()}
        same = not any(differing.values())
        print(f"all engines wrote the same bytes: {'yes' if same else 'NO'}")
        for engine, names in differing.items():
            if names:
                print(f"  {engine} differs from {first} in {len(names)} file(s), e.g. {names[:3]}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
