"""A collection run: plan the outputs, skip what an earlier run finished, run the rest on an engine,
journal every result as it comes, and sum up."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from .engines import Job, default_workers, run_local, run_ray, run_serial
from .inputs import WorkItem, check_output_dir, find_inputs, plan
from .journal import DONE, FAILED, JOURNAL_NAME, Journal

ENGINES = ("local", "ray")


@dataclass
class Summary:
    """What a run did; `failures` pairs each failed output with its one-line error."""

    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    journal: str = ""

    @property
    def failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        text = f"{self.done:,} done, {self.skipped:,} already done, {self.failed:,} failed"
        text += f" ({duration(self.audio_seconds)} of audio in {duration(self.wall_seconds)})"
        return text + (f": see {self.journal}" if self.failures and self.journal else "")


def duration(seconds: float) -> str:
    """Seconds, minutes or hours, whichever reads best."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def run_collection(job: Job, sources: Sequence[str | os.PathLike], output_dir: str | os.PathLike, *,
                   workers: int | None = None, engine: str = "local", address: str | None = None,
                   gpus_per_worker: float = 0.0, overwrite: bool = False, progress: bool = True) -> Summary:
    """Run `job` over every input of `sources` into `output_dir` (see `collection.inputs`).

    `workers`: parallel workers (default one per core); 1 with the local engine runs in this process.
    `engine`: "local" (worker processes) or "ray" (actors on the cluster at `address`, on a Ray
    already initialised in this process, or on a local one started for the run). An output that exists
    but that this folder's journal did not write is replaced only with `overwrite`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
    if address is not None and engine != "ray":
        raise ValueError("--address names a Ray cluster: use it with --engine ray")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus per worker must be 0 or more, got {gpus_per_worker:g}")
    output_dir = check_output_dir(output_dir, sources)
    items = plan(find_inputs(sources, job.input_suffixes), output_dir, job.suffix)
    workers = workers or default_workers()
    journal = Journal(output_dir)
    options = job.options()
    summary = Summary(journal=str(output_dir / JOURNAL_NAME))
    todo: list[WorkItem] = []
    foreign: list[WorkItem] = []
    for item in items:
        record = journal.finished(item.key, item.source, options)
        if record is not None and job.is_whole(item, record):
            summary.skipped += 1
        elif item.output.exists() and item.key not in journal.records and not overwrite:
            foreign.append(item)
        else:
            todo.append(item)
    for item in foreign:
        error = f"{item.output} exists and this folder's journal did not write it: pass --force to replace it"
        journal.append({"output": item.key, "status": FAILED, "options": options,
                        "source": {"path": str(item.source)}, "error": error})
        summary.failures.append((item.key, error))
    started = time.monotonic()
    if engine == "ray":
        results = run_ray(job, todo, workers, address, gpus_per_worker)
    elif workers == 1 or len(todo) <= 1:
        results = run_serial(job, todo)
    else:
        results = run_local(job, todo, workers)
    bar = tqdm(total=len(todo), unit="file", disable=not progress or not todo, dynamic_ncols=True)
    try:
        for item, status, fields in results:
            record: dict[str, Any] = {"output": item.key, "status": status, "options": options} | fields
            journal.append(record)
            if status == DONE:
                summary.done += 1
                summary.audio_seconds += float(fields.get("duration_seconds", 0.0))
            else:
                summary.failures.append((item.key, fields["error"]))
                bar.write(f"failed: {item.source}: {fields['error']}")
            elapsed = time.monotonic() - started
            bar.set_postfix_str(f"{duration(summary.audio_seconds)} of audio, "
                                f"{summary.audio_seconds / max(elapsed, 1e-9):.1f}× real time")
            bar.update()
    finally:
        bar.close()
        journal.close()
        results.close()
    summary.wall_seconds = time.monotonic() - started
    return summary
