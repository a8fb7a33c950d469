"""The run journal: one JSON line per finished input, appended as each finishes, in the output folder.

It makes runs resumable (an input whose record says done, whose size and modification time are
unchanged, whose options are the same and whose output is still whole is skipped) and auditable
(source fingerprint and sha256, audio properties, output size and bitrate, codec and LM identities,
status, and the one-line error of a failure). Later lines win over earlier ones for the same output
(for the same input, where inputs share an output: tokenize's shards).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from entropy.atomic import remove_stale_in, write_error

JOURNAL_NAME = "journal.jsonl"
DONE, FAILED = "done", "failed"
QUEUED = "queued"  # written for each input before any worker takes it: its output, if any, is this run's


def fingerprint(path: Path) -> dict[str, int]:
    """What tells a changed input from an unchanged one without reading it: size and mtime (ns)."""
    status = path.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_key(record: dict[str, Any]) -> Any:
    """What a record is about: its output, or, where inputs share one output (a shard), its "input"."""
    return record.get("input", record.get("output"))


class Journal:
    """Reads the records of earlier runs and appends new ones, each flushed to disk as it is written. It holds
    its folder while open (`hold_folder`): one run at a time writes into a folder."""

    def __init__(self, output_dir: Path):
        self.path = output_dir / JOURNAL_NAME
        self._folder: int | None = hold_folder(Path(output_dir))
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as file:
                for line in file:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a crash: that input is redone
                        continue
                    if isinstance(record, dict) and isinstance(record_key(record), str):
                        self.records[record_key(record)] = record
        self._file: TextIO | None = None

    def finished(self, key: str, source: Path, options: dict) -> dict[str, Any] | None:
        """The earlier record of a successful run with these options on this unchanged input, if any."""
        record = self.records.get(key)
        if record is None or record.get("status") != DONE or record.get("options") != options:
            return None
        try:
            unchanged = {name: record["source"].get(name) for name in ("size", "mtime_ns")} == fingerprint(source)
        except (OSError, AttributeError):
            return None
        return record if unchanged else None

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: list[dict[str, Any]]) -> None:
        """Records on disk before this returns (one sync for all of them)."""
        if not records:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        records = [{"time": stamp} | record for record in records]
        try:
            self._file.write("".join(json.dumps(record, sort_keys=False) + "\n" for record in records))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:  # a full disk: named as such
            raise write_error(error, self.path) or error from None
        for record in records:
            self.records[record_key(record)] = record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._folder is not None:
            os.close(self._folder)
            self._folder = None

    def __del__(self) -> None:  # a run that failed before its end lets go of the folder all the same
        folder: int | None = getattr(self, "_folder", None)  # none where __init__ failed before it held one
        if folder is not None:
            os.close(folder)


def hold_folder(output_dir: Path) -> int:
    """Lock `output_dir` for one run (an exclusive flock on the folder itself, let go by `Journal.close` or when
    the process dies, however): a second run into it fails at once in one line, instead of both writing the
    same outputs. Temporaries that killed runs left in it are removed (`entropy.atomic.remove_stale_in`)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise FileExistsError(f"another run is writing into {output_dir}: wait for it to end, or choose another "
                              "output folder") from None
    for folder, _, _ in os.walk(output_dir):
        remove_stale_in(folder)
    return descriptor
