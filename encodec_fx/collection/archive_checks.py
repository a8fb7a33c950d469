"""Whole-archive checks without audio: every segment's CRC, the header's segment count, and optionally
the entropy decoding of every frame's codes (what `verify` runs on a schedule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entropy.archive import ArchiveError, ArchiveHeader, ArchiveReader


def check_segments(path: Path) -> tuple[ArchiveHeader, list[str]]:
    """The header, and one line per problem: damaged segments by number, a truncation, a count that
    is not the header's. Raises `ArchiveError` when not even the header can be read."""
    problems = []
    with ArchiveReader(path) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        whole = 0
        for segment in reader.scan():
            if isinstance(segment, ArchiveError):
                problems.append(str(segment))
            else:
                whole += 1
        if whole + len(problems) < header.segments and not reader.truncated:
            problems.append(f"{header.segments - whole - len(problems)} segment(s) missing")
    return header, problems


def archive_is_whole(path: Path, record: dict[str, Any]) -> bool:
    """The archive an earlier run recorded: there, the recorded size, and every segment's CRC passes."""
    try:
        if path.stat().st_size != record.get("output_bytes"):
            return False
        return not check_segments(path)[1]
    except (OSError, ArchiveError):
        return False


def container_problem(path: Path) -> str | None:
    """What is wrong with the archive's index or footer, if anything, in one line. A reader does without
    them (it scans for the segments), but an archive that has lost them is damaged all the same. A
    truncated archive has lost them too: its lost segments say so, and this says nothing more."""
    with ArchiveReader(path) as reader:
        if reader.indexed or reader.truncated:
            return None
        return reader.index_problem
