"""The package's layout is its architecture: the parts import downwards only, and no module or class grows past the
size a reader can hold, unless the reason is written down here.

Layers, bottom to top: ``core`` < ``scoring`` < ``analysis`` < ``feedback`` < ``app``; ``integrations`` sit on the
public API. A module-level import may only point to its own layer or below. An import inside a function may point
up only where :data:`DEFERRED_UPWARD` says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hardmine"
LAYERS = {"core": 0, "scoring": 1, "analysis": 2, "feedback": 3, "app": 4, "integrations": 5}

# (importing module, imported module) -> why a function-level import points up a layer.
DEFERRED_UPWARD: dict[tuple[str, str], str] = {
    ("hardmine.scoring.streamed", "hardmine.analysis.bigtable"): (
        "a streamed pass returns the out-of-core table (ScoreDataset) over the files it wrote"
    ),
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _imports(tree: ast.Module) -> list[tuple[str, ast.stmt, bool]]:
    """Every hardmine import that runs: (module, node, at module level); ``if TYPE_CHECKING`` imports are left out."""
    top = set()
    typing_only = set()
    for node in tree.body:
        top.add(node)
        if isinstance(node, ast.Try):
            top.update(node.body)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(ast.walk(node))  # for type checkers only: never imported at run time
    found = []
    for node in ast.walk(tree):
        if node in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hardmine"):
            if node.module == "hardmine":
                names = [f"hardmine.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "hardmine"]
        else:
            continue
        found.extend((name, node, node in top) for name in names)
    return found


def test_every_part_is_a_subpackage():
    flat = sorted(p.name for p in ROOT.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "_compat.py", "functional.py"], flat
    assert sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS)


def test_imports_point_down():
    wrong = []
    seen_deferred = set()
    for name, path in _modules():
        mine = _layer(name)
        if mine is None:
            continue
        for target, node, module_level in _imports(ast.parse(path.read_text())):
            theirs = _layer(target)
            if theirs is None or theirs <= mine:
                continue
            if not module_level and (name, target) in DEFERRED_UPWARD:
                seen_deferred.add((name, target))
                continue
            where = "module level" if module_level else "in a function"
            wrong.append(f"{name}:{node.lineno} imports {target} ({where})")
    assert wrong == []
    assert seen_deferred == set(DEFERRED_UPWARD), "a reason is written for an import that no longer exists"


def test_the_core_needs_no_torch_and_the_parts_below_plot_no_matplotlib():
    for name, path in _modules():
        imported = {t for t, _, top in _imports(ast.parse(path.read_text())) if top}
        text = path.read_text()
        if name.startswith("hardmine.core.columns") or name.startswith("hardmine.core.validate"):
            assert "import torch" not in text, name  # the CLI's parser reads them without torch
        if _layer(name) is not None and "plot" not in name and "interactive" not in name:
            assert "import matplotlib" not in text.split('"""', 2)[-1] or name.startswith("hardmine.app"), name
        if _layer(name) is not None and _layer(name) < LAYERS["app"]:
            assert not {t for t in imported if t.startswith("hardmine.app")}, name


@pytest.mark.parametrize("module", ["hardmine.core.columns", "hardmine.core.validate"])
def test_core_modules_import_without_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:1])"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


MODULE_LINES = 500
CLASS_LINES = 300
# Modules and classes over the limits, each with the most lines it may have and why it is one piece. A new entry needs
# a reason a reviewer accepts; an entry that is no longer over the limit fails, so the list cannot go stale.
LARGER: dict[str, tuple[int, str]] = {
    "hardmine/feedback/sampling.py": (
        540,
        "HardSampler (one class: its draw plan, epochs and state) and the weight checks it shares with the sharded "
        "sampler; splitting the class's methods across modules would scatter one state machine",
    ),
    "hardmine/analysis/dynamics.py": (
        540,
        "Dynamics: every method reads the same (N, epochs) buffers; its regions and joins already live in "
        "analysis/cartography.py; the last lines are the checks of ids, device, logits' shape and class count, and "
        "the placement of a loaded state on the device of the next update",
    ),
    "hardmine/feedback/miner.py": (
        515,
        "HardMiner and its 29-keyword signature, with one docstring line or more per argument for the API reference; "
        "its parts (settings, apply modes, draws, re-weighting, label policy, history) are modules of their own",
    ),
    "hardmine/feedback/miner.py::HardMiner": (
        435,
        "about 190 of its lines are the public docstrings of the miner's API and 37 the unchanged 29-keyword "
        "signature users call; the code is about 225 lines: the epoch loop, re-scoring and state, with the settings, "
        "apply modes, label policy, history, draws and re-weighting in their own modules",
    ),
    "hardmine/analysis/dynamics.py::Dynamics": (
        395,
        "one buffer layout shared by update, statistics, summary, regions and state_dict; a third is docstrings, and "
        "the checks that refuse bad ids, devices, logit shapes and class counts up front",
    ),
    "hardmine/analysis/bigtable.py::ScoreDataset": (
        340,
        "the out-of-core table's verbs (split, summary, sweep, export, weights) as thin methods over bigtable_sql, "
        "bigtable_report and bigtable_weights; a third is docstrings",
    ),
}


def _sizes() -> dict[str, int]:
    sizes = {}
    for _, path in _modules():
        rel = path.relative_to(ROOT.parent).as_posix()
        text = path.read_text()
        sizes[rel] = text.count("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                sizes[f"{rel}::{node.name}"] = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    return sizes


def test_no_module_or_class_past_its_size_without_a_reason():
    sizes = _sizes()
    over = {
        name: n
        for name, n in sizes.items()
        if n > (CLASS_LINES if "::" in name else MODULE_LINES) and n > LARGER.get(name, (0, ""))[0]
    }
    assert over == {}, "split these, or write down in LARGER why they are one piece"
    stale = [name for name in LARGER if sizes.get(name, 0) <= (CLASS_LINES if "::" in name else MODULE_LINES)]
    assert stale == [], "no longer over the limit: remove from LARGER"


def test_every_cuda_test_carries_the_shared_marks():
    """A test that needs CUDA takes ``CUDA_MARKS`` from ``tests/reference.py`` (``@needs_cuda``, ``DEVICES``), so that
    ``pytest -m cuda`` and ``.ci/gpu`` run all of them; a test file with a CUDA skip of its own would be left out."""
    tests = Path(__file__).resolve().parent
    probe = "cuda" + ".is_available("  # split, so that this file does not match itself
    own = [p.name for p in sorted(tests.glob("*.py")) if p.name != "reference.py" and probe in p.read_text()]
    assert own == [], f"use reference.CUDA_MARKS instead of a skip of their own in {own}"
