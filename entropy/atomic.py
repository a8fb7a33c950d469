"""Files that appear whole or not at all: each is written under a temporary name beside its
destination and moved into place only once every file of the write is complete, so a failure (a
full disk, an interrupt) leaves the old files as they were and no partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(*destinations: str | os.PathLike) -> Iterator[list[Path]]:
    """Temporary paths to write, one per destination (same folder and suffix); on success they replace
    the destinations together, with a new file's usual permissions; on failure they are removed."""
    temporaries: list[Path] = []
    try:
        for destination in (Path(each) for each in destinations):
            descriptor, name = tempfile.mkstemp(suffix=destination.suffix, prefix=f".{destination.stem}.",
                                                dir=destination.parent)
            os.close(descriptor)
            temporaries.append(Path(name))
        yield temporaries
        umask = os.umask(0)
        os.umask(umask)
        for temporary, target in zip(temporaries, destinations, strict=True):
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private
            os.replace(temporary, target)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
