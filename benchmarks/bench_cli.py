"""How long the ``hardmine`` command takes to answer ``--help`` and ``--version`` (issue 16's target: under 0.5 s).

Each command runs as a fresh process, as a user runs it: ``python -m hardmine --help``, ``python -m hardmine
--version``, ``python -m hardmine completion bash``, and for comparison ``python -c "import hardmine"`` (the whole
package, torch included) and ``python -c pass`` (the interpreter alone). The processes run on at most 2 cores (the
benchmark pins itself with ``os.sched_setaffinity`` where the platform has it) with ``OMP_NUM_THREADS=1``. Each row
is the median (and the fastest) of ``--repeats`` runs; the first run of each command is a warm-up and not counted
(it fills the operating system's file cache).

Run ``python benchmarks/bench_cli.py`` (about a minute) or ``--quick`` (a smoke run: one repeat, no warm-up, no
``import hardmine`` row). Results go to ``benchmarks/results/bench_cli[_quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import save_results

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass (the interpreter alone)", ["-c", "pass"]),
    ("hardmine --help", ["-m", "hardmine", "--help"]),
    ("hardmine --version", ["-m", "hardmine", "--version"]),
    ("hardmine score --help", ["-m", "hardmine", "score", "--help"]),
    ("hardmine completion bash", ["-m", "hardmine", "completion", "bash"]),
    ("python -c 'import hardmine' (torch included)", ["-c", "import hardmine"]),
]


def _time(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: one repeat, no warm-up")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:2]
        os.sched_setaffinity(0, cores)  # inherited by the child processes
    else:
        cores = list(range(min(2, os.cpu_count() or 1)))
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}
    commands = COMMANDS[:-1] if args.quick else COMMANDS
    rows = []
    for name, command in commands:
        if not args.quick:
            _time(command, env)
        times = [_time(command, env) for _ in range(repeats)]
        rows.append({"command": name, "seconds": statistics.median(times), "fastest": min(times), "runs": repeats})
        print(f"{name:48s} median {rows[-1]['seconds']:.3f} s  fastest {rows[-1]['fastest']:.3f} s", flush=True)
    lines = [
        f"Wall time of a fresh process for each command, on {len(cores)} core(s), OMP_NUM_THREADS=1; median and "
        f"fastest of {repeats} run(s){'' if args.quick else ' after one warm-up run'}. Target: `hardmine --help` "
        "under 0.5 s.",
        "",
        "| command | median (s) | fastest (s) |",
        "|---|---:|---:|",
        *[f"| `{r['command']}` | {r['seconds']:.3f} | {r['fastest']:.3f} |" for r in rows],
    ]
    stem = "bench_cli_quick" if args.quick else "bench_cli"
    paths = save_results(Path(args.out), stem, rows, "\n".join(lines) + "\n", cores=len(cores), repeats=repeats)
    print("wrote", *paths)
    return rows


if __name__ == "__main__":
    main()
