"""Inputs that share outputs: a sharded job (tokenize) puts each input's row into a shard of `shard_rows`
rows, because 10,000 inputs should make a few large files that data loaders read well, not 10,000 small ones.

Inputs are taken in their stable order (`inputs.find_inputs`) and cut into shards: inputs 0 to N-1 go to
shard 0 as rows 0 to N-1, and so on; shard names come from their numbers (`job.shard_name`). A shard is
written at once, atomically, when its last input comes back, and only then are its inputs journaled as
done, each with its shard ("output") and "row". So after a crash or Ctrl-C, the shards on disk are whole
and the journal says what they hold. A rerun keeps the rows of inputs that are done, unchanged and in a
shard that is still whole (read back from it, not recoded), codes the rest, and rewrites only the shards
that change; inputs added or removed move later inputs to other shards, which are then coded again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from .inputs import WorkItem
from .journal import DONE, FAILED, Journal

if TYPE_CHECKING:
    from .run import Summary


class ShardedJob(Protocol):
    """A job whose inputs become rows of shared shard files; `run` returns the input's row under "row"."""

    shard_rows: int

    def options(self) -> dict[str, Any]: ...

    def shard_name(self, number: int) -> str:
        """The file name of shard `number`, the same in every run."""

    def write_shard(self, destination: Path, rows: list[tuple[str, Any]]) -> None:
        """Write `destination` atomically from rows ("new", row) and ("old", row number in the
        destination as it is now), in that order."""

    def shard_row_count(self, path: Path) -> int:
        """Rows in a shard file (raises when it cannot be read)."""


def is_sharded(job: object) -> TypeGuard[ShardedJob]:
    """Whether `job` writes its inputs' rows into shards (it has a `shard_rows`: tokenize); `ShardSink` checks
    the count."""
    return getattr(job, "shard_rows", None) is not None


@dataclass
class _Shard:
    key: str
    output: Path
    items: list[WorkItem]
    reused: dict[str, int] = field(default_factory=dict)  # input key → its row in the shard on disk
    waiting: set[str] = field(default_factory=set)  # input keys still out with the workers
    new: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # input key → (row, journal fields)


class ShardSink:
    """Plans shards, collects rows as inputs come back, writes each shard when it is complete."""

    def __init__(self, job: ShardedJob, found: list[tuple[Path, Path]], output_dir: Path, overwrite: bool):
        if isinstance(job.shard_rows, bool) or not isinstance(job.shard_rows, int) or job.shard_rows < 1:
            raise ValueError(f"shard rows must be a whole number of at least 1, got {job.shard_rows!r}")
        self.job, self.overwrite = job, overwrite
        self.options = job.options()
        keys: dict[str, Path] = {}
        for source, relative in found:
            key = relative.as_posix()
            if key in keys:
                if keys[key].resolve() == source.resolve():
                    raise ValueError(f"{source} is listed twice")
                raise ValueError(f"{keys[key]} and {source} are both {key} in their trees, which names an input "
                                 "in the journal: rename one or run them to different output folders")
            keys[key] = source
        items = list(keys.items())
        self.shards: dict[str, _Shard] = {}
        for number, start in enumerate(range(0, len(items), job.shard_rows)):
            name = job.shard_name(number)
            output = Path(output_dir) / name
            chunk = [WorkItem(source, output, key) for key, source in items[start:start + job.shard_rows]]
            self.shards[name] = _Shard(name, output, chunk)

    def plan(self, summary: Summary, journal: Journal) -> list[WorkItem]:
        """The inputs to code. Rows kept from whole shards count as skipped; shards the journal did not
        write are refused (their inputs fail) unless overwriting; shards of an earlier run that this one
        no longer has are removed, so the folder holds this run's dataset and nothing else."""
        self.summary, self.journal = summary, journal
        ours = {record.get("output") for record in self.journal.records.values() if "input" in record}
        # and the one-file-per-input Parquet files tokenize wrote before it wrote shards
        earlier = {record.get("output") for record in self.journal.records.values()
                   if "input" not in record and (record.get("options") or {}).get("command") == "tokenize"}
        suffix = Path(self.job.shard_name(0)).suffix
        # a journal line may hold anything as its output (one edited by hand): only names are sorted and removed
        for name in sorted(name for name in (ours | earlier) - set(self.shards) if isinstance(name, str)):
            if name.endswith(suffix) and ".." not in Path(name).parts:
                (self.journal.path.parent / name).unlink(missing_ok=True)
        todo: list[WorkItem] = []
        for shard in self.shards.values():
            if shard.output.exists() and shard.key not in ours and not self.overwrite:
                error = (f"{shard.output} exists and this folder's journal did not write it: "
                         "pass overwrite=True to replace it")
                for item in shard.items:
                    self._fail(item, {"source": {"path": str(item.source)}, "error": error})
                continue
            shard.reused = self._reusable(shard)
            summary.skipped += len(shard.reused)
            if list(shard.reused) == [item.key for item in shard.items] and \
                    list(shard.reused.values()) == list(range(len(shard.items))):
                continue  # whole, and exactly these rows in this order
            shard.waiting = {item.key for item in shard.items if item.key not in shard.reused}
            todo += [item for item in shard.items if item.key in shard.waiting]
            if not shard.waiting:
                self._write(shard)  # rows to drop or move, nothing to code
        return todo

    def _reusable(self, shard: _Shard) -> dict[str, int]:
        """Input key → row, for the inputs whose rows in the shard on disk can be kept."""
        try:
            size, rows = shard.output.stat().st_size, self.job.shard_row_count(shard.output)
        except Exception:  # missing or unreadable: every input of it is coded again
            return {}
        reused = {}
        for item in shard.items:
            record = self.journal.finished(item.key, item.source, self.options)
            if record is not None and record.get("output") == shard.key and record.get("output_bytes") == size \
                    and isinstance(record.get("row"), int) and 0 <= record["row"] < rows:
                reused[item.key] = record["row"]
        return reused

    def _fail(self, item: WorkItem, fields: dict[str, Any]) -> None:
        record = {"input": item.key, "output": item.output.name, "status": FAILED, "options": self.options} | fields
        self.journal.append(record)
        self.summary.count(record)

    def accept(self, item: WorkItem, status: str, fields: dict[str, Any]) -> None:
        shard = self.shards[item.output.name]
        if status == DONE:
            fields = dict(fields)
            shard.new[item.key] = (fields.pop("row"), fields)
        else:
            self._fail(item, fields)
        shard.waiting.discard(item.key)
        if not shard.waiting:
            self._write(shard)

    def _write(self, shard: _Shard) -> None:
        """Write the shard from its new rows and the rows kept from its file, then journal every row."""
        placed = [item for item in shard.items if item.key in shard.new or item.key in shard.reused]
        if not placed:  # every input failed: no shard, and none left of an earlier run
            shard.output.unlink(missing_ok=True)
            return
        if not shard.new and list(shard.reused.values()) == list(range(len(shard.reused))) \
                and self.job.shard_row_count(shard.output) == len(shard.reused):
            return  # the file holds exactly the rows kept (only failures were retried): leave it be
        self.job.write_shard(shard.output, [("new", shard.new[item.key][0]) if item.key in shard.new
                                            else ("old", shard.reused[item.key]) for item in placed])
        size = shard.output.stat().st_size
        for row, item in enumerate(placed):
            if item.key in shard.new:
                record = {"input": item.key, "output": shard.key, "row": row, "status": DONE,
                          "options": self.options} | shard.new[item.key][1] | {"output_bytes": size}
                self.journal.append(record)
                self.summary.count(record)
            else:  # kept: the same record, at its new place
                old = {name: value for name, value in self.journal.records[item.key].items() if name != "time"}
                self.journal.append(old | {"row": row, "output_bytes": size})
        shard.new.clear()

    def abandon(self, items: set[WorkItem]) -> None:
        """Nothing to clean: workers write no shard; rows of shards not yet written are simply lost."""
