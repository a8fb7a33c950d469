"""benchmarks/throughput.py, the GPU throughput script, run on the CPU: it must work before a GPU
is ever lent to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "throughput.py"


def test_throughput_script_runs_on_the_cpu():
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--presets", "24khz",
                             "--batch-sizes", "1", "2", "--seconds", "0.5", "--runs", "1"],
                            capture_output=True, text=True, cwd=SCRIPT.parent, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "24khz: codes on cpu equal to the CPU's: 100.00 %" in lines
    batch_lines = [line for line in lines if line.lstrip().startswith("batch")]
    assert len(batch_lines) == 2 and all("h/s" in line and "peak memory n/a" in line for line in batch_lines)
