"""mkdocs hook: the benchmark pages take their tables from ``benchmarks/results/*.md`` at build time.

Two things happen on every ``mkdocs build`` / ``mkdocs serve``:

- a line ``<!-- results: STEM -->`` in any page is replaced by the table in ``benchmarks/results/STEM.md`` (its
  headings moved down to level 4 so they nest under the page's own); a missing file fails the build;
- one page per result file, ``benchmarks/results/STEM.md``, and an index of them, ``benchmarks/results/index.md``, are
  generated, so a new result file shows up on the site without anyone editing the docs.

The result files are written by the benchmark scripts (``benchmarks/_common.py``'s ``save_results``); the docs only
read them, so a page can never disagree with its results file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

_MARKER = re.compile(r"^<!-- results: ([A-Za-z0-9_.-]+) -->[ \t]*$", re.M)
_HEADING = re.compile(r"^(#{1,6}) ", re.M)


def results_dir(config: Any) -> Path:
    """``benchmarks/results`` of the repository that holds ``mkdocs.yml``."""
    return Path(config["config_file_path"]).resolve().parent / "benchmarks" / "results"


def result_table(folder: Path, stem: str, *, level: int = 4) -> str:
    """The markdown of ``folder/<stem>.md`` with its headings moved down to ``level`` (``#`` becomes ``####``).

    Raises:
        PluginError: when the file does not exist (a page names a result that no benchmark wrote).
    """
    path = folder / f"{stem}.md"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.md")))
        raise PluginError(f"benchmarks/results/{stem}.md does not exist (result files: {known})")
    text = path.read_text()
    shift = level - 1
    return _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + shift) + " ", text).strip() + "\n"


def _title(stem: str, text: str) -> str:
    first = next((line for line in text.splitlines() if line.startswith("# ")), None)
    return f"{first[2:].strip()} ({stem})" if first else stem


def on_files(files: Files, config: Any) -> Files:
    """Add one generated page per result file and an index of them."""
    folder = results_dir(config)
    stems = sorted(p.stem for p in folder.glob("*.md"))
    rows = []
    for stem in stems:
        text = (folder / f"{stem}.md").read_text()
        title = _title(stem, text)
        json_note = (
            f"The same numbers, with every setting and the machine, are in `benchmarks/results/{stem}.json`."
            if (folder / f"{stem}.json").is_file()
            else ""
        )
        page = f"# {title}\n\nFrom `benchmarks/results/{stem}.md`. {json_note}\n\n{result_table(folder, stem, level=2)}"
        files.append(File.generated(config, f"benchmarks/results/{stem}.md", content=page))
        rows.append(f"| [{stem}]({stem}.md) | {title} |")
    index = (
        "# Every result file\n\n"
        "Each page below is generated at build time from a file in `benchmarks/results/`, written by a script in "
        "`benchmarks/` (see [the overview](../index.md) for which script writes which file and how to rerun it).\n\n"
        "| file | title |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    files.append(File.generated(config, "benchmarks/results/index.md", content=index))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace every ``<!-- results: STEM -->`` line by the table in ``benchmarks/results/STEM.md``."""
    folder = results_dir(config)
    return _MARKER.sub(lambda m: result_table(folder, m.group(1)), markdown)
