"""Every ```python block in README.md and docs/*.md runs as written (project rule), so the docs cannot rot.

Each block is a standalone script: a reader copies it into a file in an empty folder and runs it, and so
does this test (a fresh temporary working directory, `python block.py` in a subprocess). A block must
therefore import what it uses and make the small input files it reads. Blocks that start worker
processes need no `if __name__ == "__main__":` guard (workers never import the calling script).
Shell blocks (```sh, plain ```) are not run here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT_S = 300

# A fence opens with ```python (nothing else on the line) and closes with the next line of ``` alone;
# fences are not indented in these pages.
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# A block that imports Ray or runs encodec-fx's Ray engine starts a cluster (ray_turn: one at a time).
STARTS_RAY = re.compile(r"^\s*(import|from)\s+ray\b|^\s*import\b.*,\s*ray\b|engine=[\"']ray|--engine\W+ray",
                        re.MULTILINE)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The page's python blocks as (line of the opening fence, code)."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


BLOCKS = [pytest.param(page, line, code, id=f"{page.relative_to(ROOT).as_posix()}-block{number}")
          for page in PAGES for number, (line, code) in enumerate(python_blocks(page), start=1)]


def test_the_pages_have_python_blocks():
    """The extraction finds what it should: a broken pattern would otherwise pass by running nothing."""
    assert len(python_blocks(ROOT / "README.md")) >= 2
    assert len(python_blocks(ROOT / "docs" / "effects.md")) >= 3
    assert sum(bool(STARTS_RAY.search(code)) for _, code in python_blocks(ROOT / "docs" / "collections.md")) >= 2


@pytest.mark.parametrize("page, line, code", BLOCKS)
def test_python_block_runs(page: Path, line: int, code: str, tmp_path: Path, request: pytest.FixtureRequest):
    if STARTS_RAY.search(code):
        request.getfixturevalue("ray_turn")
    (tmp_path / "block.py").write_text(code, encoding="utf-8")  # the reader's script, in an empty folder
    try:
        result = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
        pytest.fail(f"{page.name} line {line}: the block ran past {TIMEOUT_S} s\n--- stderr ---\n{stderr[-6000:]}")
    assert result.returncode == 0, (f"{page.name} line {line}: the block exits with status {result.returncode}\n"
                                    f"--- block ---\n{code}--- stderr ---\n{result.stderr[-6000:]}")
