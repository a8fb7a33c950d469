"""The type habit: `mypy` passes on the packages users import (configuration: pyproject.toml's [tool.mypy]:
every module of `encodec_fx` and `entropy`, incomplete hints refused). The environment's
mypy runs (`python -m mypy`, from the `test` extra) with its cache in the temporary folder, so that the check
writes nothing into the checkout and a rerun takes seconds."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_packages():
    cache = Path(tempfile.gettempdir()) / "encodec-fx-mypy-cache"
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (f"mypy failed (exit status {result.returncode}); fix the lines below "
                                    "(settings: [tool.mypy] in pyproject.toml)\n"
                                    f"{result.stdout}{result.stderr}")
