"""Big tables: time and peak memory of the steps after scoring, at 10**6 and 10**7 samples.

A scoring pass over ten million real samples is not needed to measure what comes after it, so the score table is
built directly from random per-sample arrays with ``build_table`` (exactly what ``hm.score`` does
at the end of its pass; binary labels, float32 measures). Steps:

- ``build``: the score table from the arrays (``index``, ``id``, ``label``, ``pred``, five float32 measures); also
  reports the table's own size in bytes per row (``DataFrame.memory_usage(deep=True)``).
- ``split``: :func:`hardmine.split` at ``threshold=0.5`` (adds polarity, difficulty, group).
- ``weights``: :func:`hardmine.weights` of the split table (torch, float32).
- ``weights_balanced``: the same with ``balance="label"``, as :class:`hardmine.HardMiner` computes them by default.
- ``sampler``: one epoch of :class:`hardmine.HardSampler` with replacement, ``N`` draws, as a tensor.
- ``csv``: :func:`hardmine.to_csv` of the split table (streams 100,000 rows at a time).
- ``parquet``: :func:`hardmine.to_parquet` of the split table (needs pyarrow).

Every (size, step) runs in a fresh subprocess, which first builds what the step needs (the table, and the split table
and weights for later steps) and then runs the timed step: ``peak RSS`` is that process's ``ru_maxrss`` at the end,
``before`` its high-water mark just before the step, so ``peak - before`` is what the step itself added. Python and
torch/pandas imports take about 0.3-0.4 GB of the RSS.

Run ``python benchmarks/bench_table.py`` (10**6 and 10**7 rows; a few minutes, about 3 GB of memory at 10**7),
``--sizes 1000000`` for one size, or ``--quick`` for a smoke run (20,000 rows, every step in this process, so its
peak RSS column is cumulative). Results go to
``benchmarks/results/bench_table.{json,md}`` (or ``--out DIR``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import save_results

STEPS = ("build", "split", "weights", "weights_balanced", "sampler", "csv", "parquet")


def _peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def make_scores(n: int, *, seed: int = 0) -> Any:
    """A score table of ``n`` rows from random arrays, built as ``hm.score`` builds it."""
    import numpy as np

    from hardmine.core.frames import build_table

    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    label_prob = rng.random(n, dtype=np.float32)
    pred = np.where(label_prob >= 0.5, label, 1 - label)
    confidence = np.maximum(label_prob, 1 - label_prob)
    columns = {
        "index": np.arange(n, dtype=np.int64),
        "label": label,
        "pred": pred,
        "confidence": confidence,
        "label_prob": label_prob,
        "margin": (2 * label_prob - 1).astype(np.float32),
        "entropy": rng.random(n, dtype=np.float32),
        "loss": -np.log(np.maximum(label_prob, 1e-7)).astype(np.float32),
    }
    return build_table(columns, None)


def child(n: int, step: str, out: Path) -> None:
    """Run one step at one size in this (fresh) process and write its result as JSON."""
    import torch

    from hardmine.analysis.io import to_csv, to_parquet
    from hardmine.analysis.splitting import split
    from hardmine.feedback.sampling import HardSampler
    from hardmine.feedback.weighting import weights

    result: dict[str, Any] = {"n": n, "step": step}
    t0 = time.perf_counter()
    before = _peak_rss_bytes()
    table = make_scores(n)
    built = time.perf_counter() - t0
    if step == "build":
        result["seconds"] = built
        result["table_bytes_per_row"] = float(table.memory_usage(deep=True, index=True).sum()) / n
        result["id_bytes_per_row"] = float(table["id"].memory_usage(deep=True, index=False)) / n
        result["before_bytes"] = before
    else:
        parts = table if step == "split" else split(table, threshold=0.5)
        w = weights(parts) if step == "sampler" else None
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            before = _peak_rss_bytes()
            t0 = time.perf_counter()
            if step == "split":
                done = split(parts, threshold=0.5)
                result["table_bytes_per_row"] = float(done.memory_usage(deep=True, index=True).sum()) / n
            elif step == "weights":
                weights(parts, balance=None)
            elif step == "weights_balanced":
                weights(parts, balance="label")
            elif step == "sampler":
                draws = HardSampler(w, num_samples=n, replacement=True, seed=0).indices(0)
                if draws.numel() != n:
                    raise RuntimeError(f"sampler drew {draws.numel()} indices, expected {n}")
            elif step == "csv":
                path = to_csv(parts, Path(tmp) / "table.csv")
                result["file_bytes"] = path.stat().st_size
            elif step == "parquet":
                path = to_parquet(parts, Path(tmp) / "table.parquet")
                result["file_bytes"] = path.stat().st_size
            else:
                raise ValueError(f"Expected a step in {STEPS}, but got {step!r}.")
            result["seconds"] = time.perf_counter() - t0
        result["before_bytes"] = before
    result["peak_bytes"] = _peak_rss_bytes()
    result["torch_threads"] = torch.get_num_threads()
    out.write_text(json.dumps(result))


def run(n: int, step: str, out_dir: Path, *, in_process: bool = False) -> dict[str, Any]:
    """One (size, step) in a subprocess (or in this process, for a smoke run); returns its result."""
    out = out_dir / f".bench_table_{n}_{step}.json"
    if in_process:
        child(n, step, out)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), step, str(out)]
        subprocess.run(cmd, check=True)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def markdown(rows: list[dict[str, Any]]) -> str:
    """The result table as Markdown (``save_results`` adds the machine line)."""
    lines = [
        "| rows | step | time (s) | peak RSS (GB) | added by the step (GB) | notes |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        notes = []
        if "table_bytes_per_row" in r:
            notes.append(f"table {r['table_bytes_per_row']:.0f} B/row")
        if "id_bytes_per_row" in r:
            notes.append(f"of which id {r['id_bytes_per_row']:.0f} B/row")
        if "file_bytes" in r:
            notes.append(f"file {r['file_bytes'] / 1e6:,.0f} MB")
        added = (r["peak_bytes"] - r["before_bytes"]) / 1e9
        lines.append(
            f"| {r['n']:,} | {r['step']} | {r['seconds']:.2f} | {r['peak_bytes'] / 1e9:.2f} | {added:.2f} "
            f"| {', '.join(notes)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument(
        "--quick", action="store_true", help="smoke run at 20,000 rows, in this process (peak RSS is then cumulative)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--child", nargs=3, metavar=("N", "STEP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(int(args.child[0]), args.child[1], Path(args.child[2]))
        return []
    steps = list(args.steps)
    if "parquet" in steps:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            print("pyarrow is not installed: skipping the Parquet step (pip install 'hardmine[parquet]').")
            steps.remove("parquet")
    sizes = [20_000] if args.quick else args.sizes
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        for step in steps:
            rows.append(run(n, step, args.out, in_process=args.quick))
            r = rows[-1]
            print(f"{n:>12,} {step:<16} {r['seconds']:8.2f} s  peak {r['peak_bytes'] / 1e9:6.2f} GB", flush=True)
    suffix = "_quick" if args.quick else ""
    paths = save_results(args.out, f"bench_table{suffix}", rows, markdown(rows))
    print(paths[1].read_text())
    return rows


if __name__ == "__main__":
    main()
