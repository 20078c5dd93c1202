"""What every benchmark shares: one description of the machine, and one way to write the result files.

Each ``benchmarks/bench_*.py`` script writes ``benchmarks/results/<stem>.json`` (the machine and the rows, for tools)
and ``benchmarks/results/<stem>.md`` (the table, for people and the docs site) through :func:`save_results`, so every
result file names its machine the same way.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> paths = save_results(out, "demo", [{"n": 1}], "| n |\\n|---|\\n| 1 |\\n")
    >>> sorted(p.name for p in paths)
    ['demo.json', 'demo.md']
    >>> json.loads((out / "demo.json").read_text())["rows"]
    [{'n': 1}]
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: Any = "cpu", *, threads: int | None = None) -> dict[str, Any]:
    """The machine a benchmark ran on, as a dict (``describe`` turns it into one line).

    Args:
        device: the torch device the benchmark measured (``"cpu"``, ``"cuda"``, a ``torch.device``).
        threads: the torch threads the measurement ran with, when that is not this process's setting now (a
            benchmark that measures in child processes, or restores the thread count before it saves).

    Returns:
        Keys ``device``, ``cpu``, ``cores``, ``torch_threads``, ``torch``, ``python``, ``platform`` and, on CUDA,
        ``gpu``.
    """
    import torch

    info: dict[str, Any] = {
        "device": str(device),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if threads is None else threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def describe(info: dict[str, Any]) -> str:
    """One line for a results table: ``"cpu: 2 cores (AMD EPYC ...), 1 torch thread, torch 2.14.1, Python 3.11.7"``."""
    where = info.get("gpu") or f"{info['cores']} cores ({info['cpu']})"
    threads = info["torch_threads"]
    return (
        f"{info['device']}: {where}, {threads} torch thread{'s' if threads != 1 else ''}, "
        f"torch {info['torch']}, Python {info['python']}, {info['platform']}"
    )


def save_results(
    out: Path,
    stem: str,
    rows: Any,
    markdown: str,
    /,
    *,
    device: Any = "cpu",
    threads: int | None = None,
    machine_info: dict[str, Any] | None = None,
    **extra: Any,
) -> list[Path]:
    """Write ``out/<stem>.json`` (``{"machine": ..., "rows": rows, **extra}``) and ``out/<stem>.md``.

    The markdown gets a ``Machine: ...`` line appended unless it already has one, so every table names where it ran.
    ``device`` and ``threads`` are passed to :func:`machine`; ``machine_info`` (a :func:`machine` dict) replaces it,
    for a file that combines results measured elsewhere (``--merge``). The first four arguments are positional, so
    ``extra`` may hold any key (``markdown=`` included).

    Returns:
        The two paths written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine(device, threads=threads) if machine_info is None else machine_info
    line = f"Machine: {describe(info)}"
    if "Machine:" not in markdown:
        markdown = markdown.rstrip("\n") + f"\n\n{line}\n"
    payload = {"machine": info, "machine_line": describe(info), "rows": rows, **extra}
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    paths[1].write_text(markdown)
    return paths
