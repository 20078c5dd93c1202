"""The docs site: its Python examples run as written, and its benchmark pages come from the result files.

Every ```python block in ``docs/**/*.md`` runs as a standalone script in an empty temporary folder, as
``tests/test_readme.py`` does for the README; a block preceded by a ``<!-- sketch -->`` line is skipped.
``mkdocs build --strict`` itself runs in CI (the README's test command), not here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"
_BLOCK = re.compile(r"(<!-- sketch[^>]*-->\n)?```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        name = page.relative_to(DOCS).as_posix()
        runnable = [m.group(2) for m in _BLOCK.finditer(page.read_text()) if not m.group(1)]
        found += [(f"{name}#{i}", code) for i, code in enumerate(runnable)]
    return found


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_benchmarks", DOCS / "gen_benchmarks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_have_runnable_examples():
    # The parametrized test below would pass vacuously if the pattern stopped matching.
    names = [name for name, _ in _blocks()]
    assert len(names) >= 8, names
    assert {"index.md#0", "guides/scoring.md#0", "guides/hardminer.md#0", "guides/label-issues.md#0"} <= set(names)


def test_sketch_blocks_are_skipped(tmp_path):
    page = "```python\nrun()\n```\n\n<!-- sketch -->\n```python\nskip()\n```\n"
    assert [m.group(2) for m in _BLOCK.finditer(page) if not m.group(1)] == ["run()\n"]


@pytest.mark.slow
@pytest.mark.parametrize("name,code", _blocks(), ids=[name for name, _ in _blocks()])
def test_docs_python_block_runs(name, code, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, f"docs/{name} failed:\n{result.stderr[-3000:]}"


# --------------------------------------------------------------------------- the benchmark pages


def test_every_results_marker_names_an_existing_result_file():
    markers = {
        (page.relative_to(DOCS).as_posix(), stem)
        for page in DOCS.rglob("*.md")
        for stem in re.findall(r"^<!-- results: (\S+) -->$", page.read_text(), re.M)
    }
    assert len(markers) >= 11
    missing = sorted((page, stem) for page, stem in markers if not (RESULTS / f"{stem}.md").is_file())
    assert not missing


def test_result_table_is_the_file_with_headings_moved_down(tmp_path):
    hook = _hook()
    (tmp_path / "x.md").write_text("# Title\n\n## Part\n\n| a |\n|---|\n| 1 |\n")
    assert hook.result_table(tmp_path, "x") == "#### Title\n\n##### Part\n\n| a |\n|---|\n| 1 |\n"
    assert hook.result_table(tmp_path, "x", level=2).startswith("## Title\n\n### Part")


def test_missing_result_file_fails_the_build(tmp_path):
    from mkdocs.exceptions import PluginError

    hook = _hook()
    (tmp_path / "there.md").write_text("| a |\n")
    with pytest.raises(PluginError, match=r"benchmarks/results/gone\.md does not exist \(result files: there\)"):
        hook.result_table(tmp_path, "gone")


def test_page_markers_are_replaced_by_the_result_files():
    hook = _hook()
    config = {"config_file_path": str(ROOT / "mkdocs.yml")}
    page = (DOCS / "benchmarks" / "training.md").read_text()
    out = hook.on_page_markdown(page, None, config, None)
    assert "<!-- results:" not in out
    rare = (RESULTS / "bench_training_rare.md").read_text().strip()
    assert rare in out  # no heading in that file, so it comes through byte for byte
    # A marker must stand alone on its line: in running text it is left as it is.
    inline = "see <!-- results: bench_table --> here"
    assert hook.on_page_markdown(inline, None, config, None) == inline


def test_every_result_file_gets_a_generated_page():
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

    hook = _hook()
    config = MkDocsConfig(config_file_path=str(ROOT / "mkdocs.yml"))
    config.load_dict({"site_name": "t", "docs_dir": str(DOCS), "site_dir": str(ROOT / "site")})
    assert config.validate() == ([], [])
    config.plugins._current_plugin = None  # set by mkdocs while it runs a plugin's event; File.generated reads it
    files = hook.on_files(Files([]), config)
    uris = {f.src_uri for f in files}
    stems = sorted(p.stem for p in RESULTS.glob("*.md"))
    assert uris == {f"benchmarks/results/{s}.md" for s in stems} | {"benchmarks/results/index.md"}
    index = files.get_file_from_path("benchmarks/results/index.md").content_string
    assert all(f"[{s}]({s}.md)" in index for s in stems)
    sampler = files.get_file_from_path("benchmarks/results/sampler.md").content_string
    assert sampler.startswith("# HardSampler vs WeightedRandomSampler (sampler)\n")
    assert "| 1e+07 | iterate | 5.193 | 1.311 | 4.0x |" in sampler
