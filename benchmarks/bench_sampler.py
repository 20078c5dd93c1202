"""HardSampler vs torch's WeightedRandomSampler: one epoch of indices, time and peak memory.

Every configuration runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its own. Both samplers
are built on the same float32 weights ``torch.rand(N)`` and timed the same way:

- ``iterate``: build the sampler and consume one epoch of ``N`` indices as Python ints (what a ``DataLoader`` does),
  with ``collections.deque(iter(sampler), maxlen=0)`` so that no list of ints is kept;
- ``tensor``: build the sampler and produce the epoch as one int64 tensor: ``HardSampler.indices()`` for ours,
  ``torch.multinomial(weights, N, replacement=True)`` (what ``WeightedRandomSampler.__iter__`` calls) for torch's.

``extra MB`` is the peak resident memory minus the resident memory once torch is imported and the weights exist, so
it is what sampling itself costs. ``WeightedRandomSampler`` cannot go past 2**24 samples (``torch.multinomial``'s
limit), so at 10**8 only HardSampler runs.

Usage::

    python benchmarks/bench_sampler.py            # 1e6 and 1e7 (both), 1e8 (ours); minutes on 2 cores
    python benchmarks/bench_sampler.py --quick    # 1e5 only, seconds (the test suite's smoke test)
    python benchmarks/bench_sampler.py --sizes 1000000 --threads 2 --out /tmp/sampler.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import save_results

RESULTS = Path(__file__).resolve().parent / "results"
TORCH_LIMIT = 2**24


def _child(sampler: str, n: int, how: str, mode: str, threads: int) -> dict:
    import collections

    import torch
    from torch.utils.data import WeightedRandomSampler

    from hardmine.feedback.sampling import HardSampler

    torch.set_num_threads(threads)
    weights = torch.rand(n, generator=torch.Generator().manual_seed(0))
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if sampler == "hardmine":
        s = HardSampler(weights, None if mode == "cover" else n, mode=mode, seed=0)  # cover: N + N weighted draws
        if how == "iterate":
            collections.deque(iter(s), maxlen=0)
        else:
            out = s.indices(0)
            assert out.numel() == len(s)
    else:
        s = WeightedRandomSampler(weights, n, replacement=True, generator=torch.Generator().manual_seed(0))
        if how == "iterate":
            collections.deque(iter(s), maxlen=0)
        else:
            out = torch.multinomial(s.weights, n, replacement=True, generator=torch.Generator().manual_seed(0))
            assert out.numel() == n
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mb": peak_kb / 1024, "extra_mb": (peak_kb - base_kb) / 1024}


def _run(sampler: str, n: int, how: str, mode: str, threads: int, timeout: float, in_process: bool = False) -> dict:
    if in_process:  # no memory isolation: for smoke tests only
        return _child(sampler, n, how, mode, threads)
    cmd = [sys.executable, __file__, "--child", sampler, str(n), how, mode, str(threads)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "peak_mb": None, "extra_mb": None, "error": f"timeout after {timeout:.0f} s"}
    except subprocess.CalledProcessError as err:
        return {"seconds": None, "peak_mb": None, "extra_mb": None, "error": err.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 samples only (a smoke test of a few seconds)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="numbers of samples N")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each run (default 2)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per configuration, best kept (default 3, 1 above 10**6 samples)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/sampler.json)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every configuration in this process (fast, but peak memory is then shared; for smoke tests)",
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        sampler, n, how, mode, threads = args.child
        print(json.dumps(_child(sampler, int(n), how, mode, int(threads))))
        return 0

    sizes = args.sizes or ([10**5] if args.quick else [10**6, 10**7, 10**8])
    out = args.out or (RESULTS / ("sampler-quick.json" if args.quick else "sampler.json"))
    rows = []
    for n in sizes:
        repeats = args.repeats or (3 if 10**5 < n <= 10**6 else 1)
        configs = [("hardmine", "replacement")]
        if n <= TORCH_LIMIT:
            configs.append(("torch", "replacement"))
        configs.append(("hardmine", "cover"))
        for sampler, mode in configs:
            for how in ("iterate", "tensor"):
                if mode == "cover" and how == "iterate" and n > 10**7:
                    continue  # 2 * 10**8 Python ints take minutes; the tensor path shows the cost
                runs = [
                    _run(sampler, n, how, mode, args.threads, args.timeout, args.in_process) for _ in range(repeats)
                ]
                ok = [r for r in runs if r.get("seconds") is not None]
                best = min(ok, key=lambda r: r["seconds"]) if ok else runs[-1]
                rows.append({"n": n, "sampler": sampler, "mode": mode, "how": how, **best})
                print(
                    f"N={n:>11,} {sampler:>8} {mode:>11} {how:>7}: {_fmt(best.get('seconds'), '.3f')} s, "
                    f"peak {_fmt(best.get('peak_mb'), '.0f')} MB, extra {_fmt(best.get('extra_mb'), '.0f')} MB",
                    file=sys.stderr,
                )

    def find(n: int, sampler: str, mode: str, how: str) -> dict | None:
        return next((r for r in rows if (r["n"], r["sampler"], r["mode"], r["how"]) == (n, sampler, mode, how)), None)

    lines = [
        "| N | path | WeightedRandomSampler s | HardSampler s | speed-up | WRS extra MB | ours extra MB | "
        "ours cover-mode s (2N draws) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for how in ("iterate", "tensor"):
            ours, theirs = find(n, "hardmine", "replacement", how), find(n, "torch", "replacement", how)
            cover = find(n, "hardmine", "cover", how)
            t_ours = ours.get("seconds") if ours else None
            t_theirs = theirs.get("seconds") if theirs else None
            ratio = f"{t_theirs / t_ours:.1f}x" if t_ours and t_theirs else "n/a"
            wrs_s = _fmt(t_theirs, ".3f") if theirs else "(over 2**24)"
            wrs_mb = _fmt(theirs.get("extra_mb") if theirs else None, ".0f")
            ours_mb = _fmt(ours.get("extra_mb") if ours else None, ".0f")
            cover_s = _fmt(cover.get("seconds") if cover else None, ".3f")
            ours_s = _fmt(t_ours, ".3f")
            lines.append(f"| {n:.0e} | {how} | {wrs_s} | {ours_s} | {ratio} | {wrs_mb} | {ours_mb} | {cover_s} |")
    table = "\n".join(lines)
    note = "timings on a shared machine are noisy; rerun on a quiet one"
    md = f"# HardSampler vs WeightedRandomSampler\n\n{table}\n\n{note}.\n"
    paths = save_results(out.parent, out.stem, rows, md, threads=args.threads, markdown=table, note=note, sizes=sizes)
    print(paths[1].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
