"""What a PrioritySampler refresh costs: the decay and ranking of ``N`` observed losses, on one CPU thread.

``PrioritySampler`` recomputes its draw probabilities from the latest losses 32 times an epoch. Each refresh decays
the stale losses toward their mean and ranks them; the ranking is a radix sort of the float32 losses
(``hardmine.core._sorting.descending_order``). This script times, for each ``N`` (losses drawn once from a fixed
seed, all observed, ages 0 to 3 epochs):

- ``refresh``: ``PrioritySampler.probabilities()``, the whole refresh (decay, rank, probabilities);
- ``refresh, exclude 0.4``: the same with ``exclude=0.4`` (the excluded are the first of the same ranking);
- ``rank: radix``: ``descending_order`` alone;
- ``rank: torch.sort``: ``torch.sort(keys, descending=True, stable=True)``, the same order, for comparison.

Each is the median of ``--repeats`` calls after one warm-up call. Usage::

    python benchmarks/bench_refresh.py            # N = 3e4, 1e6, 1e7; about a minute
    python benchmarks/bench_refresh.py --quick    # N = 3e4, a few repeats (the test suite's smoke run)

Results: ``benchmarks/results/bench_refresh.{json,md}`` (``bench_refresh_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, save_results

import hardmine as hm
from hardmine.core._sorting import descending_order


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def _sampler(n: int, exclude: float) -> hm.PrioritySampler:
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(n, generator=g) * 3.0
    ages = torch.randint(0, 4, (n,), generator=g)
    sampler = hm.PrioritySampler(n, exclude=exclude, seed=0)
    for epoch in range(4):  # observe each sample in one of 4 epochs, so the losses have ages 0 to 3 at epoch 4
        sampler.set_epoch(epoch)
        chosen = (ages == 3 - epoch).nonzero()[:, 0]
        sampler.observe(chosen, losses[chosen])
    sampler.set_epoch(4)
    return sampler


def measure(n: int, repeats: int) -> list[dict[str, Any]]:
    """The four timings for ``n`` losses, in ms."""
    plain, excluding = _sampler(n, 0.0), _sampler(n, 0.4)
    keys = plain.observed.scores(now=4)
    cases: dict[str, Callable[[], Any]] = {
        "refresh": plain.probabilities,
        "refresh, exclude 0.4": excluding.probabilities,
        "rank: radix": lambda: descending_order(keys),
        "rank: torch.sort": lambda: torch.sort(keys, descending=True, stable=True),
    }
    if not torch.equal(descending_order(keys), torch.sort(keys, descending=True, stable=True).indices):
        raise RuntimeError("the radix order differs from torch.sort's")  # never expected: tests pin it
    return [{"n": n, "case": case, "ms": _median_ms(fn, repeats)} for case, fn in cases.items()]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 3e4, 1e6, 1e7 (3e4 with --quick)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 repeats, N = 30,000 unless --sizes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 3
    if args.sizes is None:
        args.sizes = [30_000] if args.quick else [30_000, 1_000_000, 10_000_000]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = [row for n in args.sizes for row in measure(n, args.repeats)]
    finally:
        torch.set_num_threads(threads)
    lines = [
        "| N | case | ms per call | per epoch at 32 refreshes |",
        "|---|---|---|---|",
        *(f"| {r['n']:,} | {r['case']} | {r['ms']:.2f} | {32 * r['ms'] / 1000:.3f} s |" for r in rows),
    ]
    stem = "bench_refresh_quick" if args.quick else "bench_refresh"
    markdown = f"PrioritySampler refresh cost, median of {args.repeats} calls, 1 torch thread.\n\n" + "\n".join(lines)
    paths = save_results(args.out, stem, rows, markdown + "\n", threads=1, repeats=args.repeats)
    print(markdown)
    print("written:", ", ".join(str(p) for p in paths))
    return rows


if __name__ == "__main__":
    main()
