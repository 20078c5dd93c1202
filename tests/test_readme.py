"""The README's Python examples run as they are written (all but the blocks marked as sketches)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"(<!-- sketch[^>]*-->\n)?```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[int, str]]:
    found = [(i, m.group(2)) for i, m in enumerate(_BLOCK.finditer(README.read_text())) if not m.group(1)]
    return found


def test_readme_has_runnable_examples():
    # The test below would pass vacuously if the pattern stopped matching. The README keeps one example, the quick
    # start; the other examples moved to docs/ (run by tests/test_docs.py).
    blocks = _blocks()
    assert len(blocks) >= 1
    assert "hm.HardMiner(" in blocks[0][1] and "hm.score(" in blocks[0][1]


def test_readme_fits_on_a_page():
    # What hardmine is, the two set-up commands, a quick start, the demo, the measured table and links: the rest is
    # on the docs site.
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.slow
@pytest.mark.parametrize("number,code", _blocks(), ids=lambda v: f"block{v}" if isinstance(v, int) else "")
def test_readme_python_block_runs(number, code, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, f"README Python block {number} failed:\n{result.stderr[-3000:]}"
