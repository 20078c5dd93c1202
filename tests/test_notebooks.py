"""The notebooks run top to bottom without an error, write only where they are told, and stay small.

Each notebook is executed in a fresh ``python3`` kernel with nbclient, in a temporary folder that is also its output
folder (``HARDMINE_NOTEBOOK_DIR``). The kernel runs torch on one thread (``OMP_NUM_THREADS=1``): on a shared 2-core
machine, two threads per process fight the other jobs and run several times slower.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb"))


def _build_module():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebooks_exist_and_match_their_source():
    build = _build_module()
    assert (
        NAMES
        == sorted(build.NOTEBOOKS)
        == [
            "01_quickstart.ipynb",
            "02_precision_recall.ipynb",
            "03_hard_example_training.ipynb",
            "04_images_on_disk.ipynb",
            "05_hard_images_dense.ipynb",
        ]
    )
    for name in NAMES:
        assert (NOTEBOOKS / name).read_text() == build.build(name), f"run `python notebooks/_build.py` ({name})"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("HARDMINE_NOTEBOOK_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was displayed"
    # Small outputs: figures and short tables, no huge embedded tensors.
    assert len(nbformat.writes(nb)) < 2_000_000
    # Nothing written beside the notebook's working folder except its own output folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out").is_dir()
