"""A collection run: plan the outputs, skip what an earlier run finished, run the rest on an engine,
journal every result as it comes, and sum up."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from entropy.atomic import temporary_pattern

from .engines import Job, check_ray, default_workers, run_local, run_ray, run_serial
from .inputs import WorkItem, check_output_dir, find_inputs, plan
from .journal import DONE, FAILED, JOURNAL_NAME, QUEUED, Journal
from .shards import ShardSink, is_sharded

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
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def count(self, record: dict[str, Any]) -> None:
        """Add one journal record to the counts."""
        if record["status"] == DONE:
            self.done += 1
            self.audio_seconds += float(record.get("duration_seconds", 0.0))
        else:
            self.failures.append((record.get("input", record["output"]), record["error"]))
        self.records.append(record)  # this run's records (skipped inputs have none)

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
                   gpus_per_worker: float = 0.0, overwrite: bool = False, progress: bool = True,
                   explain: Callable[[str], str] = str) -> Summary:
    """Run `job` over every input of `sources` into `output_dir` (see `collection.inputs`).

    `workers`: parallel workers (default one per core); 1 with the local engine runs in this process.
    `engine`: "local" (worker processes) or "ray" (actors on the cluster at `address`, on a Ray
    already initialised in this process, or on a local one started for the run). An output that exists
    but that this folder's journal did not write is replaced only with `overwrite`. A job with a
    `shard_rows` (tokenize) writes its inputs' rows into shards of that many rows (see `shards`).
    Interrupted (Ctrl-C), the run stops its workers, removes the outputs they were making and records
    those inputs as failed, so the journal says what is on disk and the next run does only the rest.
    `explain` words a failure for the progress lines (the command line names its options); the journal
    keeps the library's words."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
    if address is not None and engine != "ray":
        raise ValueError("the `address` argument names a Ray cluster: use it with engine='ray'")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus per worker must be 0 or more, got {gpus_per_worker:g}")
    if gpus_per_worker and engine != "ray":
        raise ValueError("the `gpus_per_worker` argument reserves GPUs for Ray actors: use it with engine='ray' "
                         "(local workers use the job's device)")
    output_dir = check_output_dir(output_dir, sources)
    found = find_inputs(sources, job.input_suffixes)
    workers = workers or default_workers()
    # what can be refused is refused before the output folder is made
    sink: ShardSink | FileSink
    if is_sharded(job):
        sink = ShardSink(job, found, output_dir, overwrite)
    else:
        sink = FileSink(job, plan(found, output_dir, job.suffix), overwrite)
    if engine == "ray":
        check_ray(address)
    journal = Journal(output_dir)
    summary = Summary(journal=str(output_dir / JOURNAL_NAME))
    todo = sink.plan(summary, journal)
    for record in summary.records:  # refused while planning (an output that the journal did not write)
        if record["status"] == FAILED:
            tqdm.write(f"failed: {record['source']['path']}: {explain(record['error'])}")
    started = time.monotonic()
    in_flight: set[WorkItem] = set()
    if engine == "ray":
        results = run_ray(job, todo, workers, address, gpus_per_worker, in_flight=in_flight)
    elif workers == 1 or len(todo) <= 1:
        results = run_serial(job, todo, in_flight=in_flight)
    else:
        results = run_local(job, todo, workers, in_flight=in_flight)
    bar = tqdm(total=len(todo), unit="file", disable=not progress or not todo, dynamic_ncols=True)
    try:
        for item, status, fields in results:
            if status == FAILED:
                bar.write(f"failed: {item.source}: {explain(fields['error'])}")
            sink.accept(item, status, fields)
            elapsed = time.monotonic() - started
            bar.set_postfix_str(f"{duration(summary.audio_seconds)} of audio, "
                                f"{summary.audio_seconds / max(elapsed, 1e-9):.1f}× real time")
            bar.update()
    finally:
        bar.close()
        results.close()  # the workers stop before what they were making is cleaned up
        try:
            sink.abandon(in_flight)
        finally:
            journal.close()
    summary.wall_seconds = time.monotonic() - started
    return summary


class FileSink:
    """Each input makes its own output (compress, decompress, fx, verify): recorded as it comes back."""

    def __init__(self, job: Job, items: list[WorkItem], overwrite: bool):
        self.job, self.items, self.overwrite = job, items, overwrite
        self.options = job.options()

    def plan(self, summary: Summary, journal: Journal) -> list[WorkItem]:
        """The items to run; skipped ones and outputs the journal did not write are counted in `summary`."""
        self.summary, self.journal = summary, journal
        todo: list[WorkItem] = []
        for item in self.items:
            record = self.journal.finished(item.key, item.source, self.options)
            if record is not None and self.job.is_whole(item, record):
                summary.skipped += 1
            elif item.output.exists() and item.key not in self.journal.records and not self.overwrite:
                error = (f"{item.output} exists and this folder's journal did not write it: "
                         "pass overwrite=True to replace it")
                self._record(item, FAILED, {"source": {"path": str(item.source)}, "error": error})
            else:
                todo.append(item)
        # Ahead of the work: a run killed between a worker's finished output and its "done" line leaves an
        # output that this journal names, which the next run then redoes instead of refusing.
        self.journal.append_many([{"output": item.key, "status": QUEUED, "options": self.options,
                                   "source": {"path": str(item.source)}} for item in todo])
        return todo

    def _record(self, item: WorkItem, status: str, fields: dict[str, Any], count: bool = True) -> None:
        record: dict[str, Any] = {"output": item.key, "status": status, "options": self.options} | fields
        self.journal.append(record)
        if count:
            self.summary.count(record)

    def accept(self, item: WorkItem, status: str, fields: dict[str, Any]) -> None:
        self._record(item, status, fields)

    def abandon(self, items: set[WorkItem]) -> None:
        """Items an interrupt cut off: whatever their workers left is removed, and they are recorded as
        failed (so that an output finished but not yet recorded is neither kept nor taken for another's)."""
        for item in sorted(items, key=lambda item: item.key):
            remove_output(item.output)
            self._record(item, FAILED, {"source": {"path": str(item.source)},
                                        "error": "interrupted before it finished"}, count=False)


def remove_output(output: Path) -> None:
    """An output and the temporaries `entropy.atomic.replacing` and the archive writer make beside it (a
    killed Ray actor cannot remove its own)."""
    output.unlink(missing_ok=True)
    patterns = [temporary_pattern(output),
                re.compile(rf"\.{re.escape(output.stem)}\.[A-Za-z0-9_]{{8}}{re.escape(output.suffix)}"),  # earlier
                re.compile(rf"\.{re.escape(output.name)}\.[0-9a-f]{{32}}\.tmp")]  # versions' temporaries
    if output.parent.is_dir():
        for path in output.parent.iterdir():
            if any(pattern.fullmatch(path.name) for pattern in patterns):
                path.unlink(missing_ok=True)
