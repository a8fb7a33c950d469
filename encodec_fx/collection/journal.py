"""The run journal: one JSON line per finished input, appended as each finishes, in the output folder.

It makes runs resumable (an input whose record says done, whose size and modification time are
unchanged, whose options are the same and whose output is still whole is skipped) and auditable
(source fingerprint and sha256, audio properties, output size and bitrate, codec and LM identities,
status, and the one-line error of a failure). Later lines win over earlier ones for the same output
(for the same input, where inputs share an output: tokenize's shards).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

JOURNAL_NAME = "journal.jsonl"
DONE, FAILED = "done", "failed"


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
    """Reads the records of earlier runs and appends new ones, each flushed to disk as it is written."""

    def __init__(self, output_dir: Path):
        self.path = output_dir / JOURNAL_NAME
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
        self._file = None

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
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z")} | record
        self._file.write(json.dumps(record, sort_keys=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records[record_key(record)] = record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
