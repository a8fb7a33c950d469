"""Which files a collection run works on, and where each one's output goes.

Inputs are files, folders (searched recursively for audio, or for archives when the command reads
archives) and manifests (`.txt`: one path a line, `#` comments; `.jsonl`: objects with a "path").
Outputs mirror the inputs' tree under the output folder: a file found in folder `in/` as `a/b.wav`
becomes `OUT/a/b.<suffix>`; a file named directly, or listed by path in a manifest, goes to
`OUT/<its name>` unless it lies under the manifest's folder, whose tree it then mirrors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MANIFEST_SUFFIXES = {".txt", ".jsonl"}


@dataclass(frozen=True)
class WorkItem:
    """One input and the output it makes; `key` names it in the journal (the output's relative path)."""

    source: Path
    output: Path
    key: str


def find_inputs(sources: Sequence[str | os.PathLike], suffixes: set[str]) -> list[tuple[Path, Path]]:
    """(input file, its path relative to the tree it mirrors) for every input, in a stable order."""
    found: list[tuple[Path, Path]] = []
    for given in map(Path, sources):
        if given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not files:
                raise ValueError(f"{given} holds no input files ({', '.join(sorted(suffixes))})")
            found += [(path, path.relative_to(given)) for path in files]
        elif given.suffix.lower() in MANIFEST_SUFFIXES and given.is_file():
            found += _manifest(given)
        elif given.exists():
            found.append((given, Path(given.name)))
        else:
            raise FileNotFoundError(f"no file or folder at {given}")
    return found


def _manifest(manifest: Path) -> list[tuple[Path, Path]]:
    root = manifest.parent
    entries = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if manifest.suffix.lower() == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{manifest}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                raise ValueError(f"{manifest}:{number}: each line must be an object with a \"path\" string")
            line = record["path"]
        path = Path(line) if Path(line).is_absolute() else root / line
        try:
            relative = path.resolve().relative_to(root.resolve())
        except ValueError:
            relative = Path(path.name)
        entries.append((path, relative))
    if not entries:
        raise ValueError(f"manifest {manifest} lists no files")
    return entries


def plan(inputs: Iterable[tuple[Path, Path]], output_dir: str | os.PathLike, suffix: str) -> list[WorkItem]:
    """Work items with their outputs under `output_dir`. Refused before any work: two inputs that would
    write one output (both named), an input listed twice, and an output folder inside an input folder
    that is searched (a later run would take the outputs for inputs)."""
    output_dir = Path(output_dir)
    items: dict[str, WorkItem] = {}
    for source, relative in inputs:
        key = relative.with_suffix(suffix).as_posix()
        if key in items:
            other = items[key].source
            if other.resolve() == source.resolve():
                raise ValueError(f"{source} is listed twice")
            raise ValueError(f"{other} and {source} would both write {output_dir / key}: "
                             "rename one or run them to different output folders")
        items[key] = WorkItem(source, output_dir / key, key)
    return list(items.values())


def check_output_dir(output_dir: str | os.PathLike, sources: Sequence[str | os.PathLike]) -> Path:
    """The output folder, refused when it is an input folder or lies inside one, or is a file."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output folder {output_dir} is a file: name a folder (it is made if missing)")
    resolved = output_dir.resolve()
    for given in map(Path, sources):
        if given.is_dir() and (resolved == given.resolve() or given.resolve() in resolved.parents):
            raise ValueError(f"output folder {output_dir} is inside input folder {given}: "
                             "choose a folder outside it")
    return output_dir
