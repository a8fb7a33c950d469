"""The entropy-coding LM by the name the command line or an archive gives it: a shipped LM's name
("encodec-fx-24khz-lm") or a file. `entropy` loads LM files only; which names are shipped is the
package's business, kept here so that `entropy` needs nothing from `encodec_fx`."""

from __future__ import annotations

import os
from pathlib import Path

from entropy.lm import EntropyLM, load_lm as load_lm_file

from .pretrained import DEFAULT_MODEL, LM_SUFFIX, is_shipped_lm, shipped_lm_path


def load_lm(source: str | os.PathLike) -> EntropyLM:
    """A shipped LM by its archive name, or an LM file written by `encodec-fx train-lm`; in eval mode."""
    path = shipped_lm_path(source) if is_shipped_lm(source) else Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no LM file at {source}: pass an LM written by `encodec-fx train-lm`, or the "
                                f"name of a shipped one such as {DEFAULT_MODEL}{LM_SUFFIX}")
    return load_lm_file(path)
