"""The lint habit: `ruff check .` passes on the whole repository (rules and line length: pyproject.toml's
[tool.ruff]). The environment's ruff runs (`python -m ruff`, from the `test` extra), without its cache, so
that the check writes nothing into the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_check_passes():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"ruff check . failed (exit status {result.returncode}); fix the lines below "
                                    f"(imports: ruff check --select I --fix)\n{result.stdout}{result.stderr}")
