"""Whole collections: many inputs, one run, models loaded once per worker, resumable through a journal.

`run_collection(job, sources, output_dir, workers=, engine=)` runs a job (`CompressJob`, `TokenizeJob`)
over files, folders and manifests, on local worker processes or Ray actors, with byte-identical outputs
either way; see `inputs`, `journal`, `engines` and `run`.
"""

from .compress import CompressJob
from .run import Summary, run_collection
from .tokenize import TokenizeJob

__all__ = ["CompressJob", "Summary", "TokenizeJob", "run_collection"]
