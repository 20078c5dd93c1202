"""Past one machine's memory: out-of-core score tables and the sharded sampler, time and peak RSS.

Two parts, every measurement in a fresh subprocess (``peak RSS`` is that process's ``ru_maxrss``; Python with torch,
pandas and DuckDB imported is about 0.35 GB of it):

- ``table``: a synthetic binary score dataset (hardmine's nine columns, random scores, ``rows_per_file`` rows per
  Parquet file) and the steps ``split`` (fixed threshold) + ``summary`` + export of the hard rows to Parquet, by
  engine:

  - ``duckdb``: :func:`hardmine.open_scores` (the out-of-core path; ``memory_limit="1GB"``), plus a
    ``hard_fraction=0.1`` split and a ``threshold_sweep`` (101 thresholds) timed separately;
  - ``arrow``: the same three steps hand-streamed with pyarrow.dataset record batches and numpy (the engine
    candidate without a query planner);
  - ``pandas``: the in-memory path, ``pd.read_parquet`` of the folder, :func:`hardmine.split`,
    :func:`hardmine.summary`, :func:`hardmine.to_parquet` with ``only="hard"``.

- ``tasks``: the steps of the other tasks' tables, out of core only (``memory_limit="1GB"``): a 10-class table
  (labels imbalanced 1:10, nine score columns) split without a positive class (easy/hard only) + the per-class
  summary (one ``GROUP BY label, pred``) + class-balanced weights written to a ``.npy``; and a regression table
  (``target, prediction, loss, abs_error``) split by ``hard_fraction=0.1`` of its default column ``loss`` + its
  summary (MAE, RMSE, R^2, exact loss quantiles) + score weights ``by="loss"``.

- ``sampler``: a float32 weights memmap of ``N`` samples and one epoch (``N`` draws) of
  :class:`hardmine.ShardedSampler` for each of 8 ranks, one process per rank: construction (one pass summing the
  shard weights) and ``indices()`` of the epoch, seconds and peak RSS per rank.

Run ``nice python benchmarks/bench_big.py`` (table at 10**7 rows, tasks at 10**6, sampler at 10**8),
``--table-sizes``/``--task-sizes``/``--sampler-sizes`` for others (an empty list skips that part; 10**9 writes a
4 GB memmap), ``--engines`` for some engines only, or ``--quick`` for a smoke run (tiny sizes, every step in this
process, so its peak RSS is cumulative). Big files go to ``--work`` (default a temporary folder, removed
afterwards). Results: ``benchmarks/results/bench_big.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import save_results

ENGINES = ("duckdb", "arrow", "pandas")
RANKS = 8


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads): the work done, whatever else shares the cores."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return float(r.ru_utime + r.ru_stime)


def _anon_rss_bytes() -> int:
    """This process's private resident memory now (``RssAnon``: no file pages, so no page-cached memmap), Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def make_dataset(folder: Path, n: int, *, rows_per_file: int = 1_000_000, seed: int = 0) -> Path:
    """A binary score dataset of ``n`` rows in Parquet files, written a file at a time (memory: one file's rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    meta = {b"PANDAS_ATTRS": json.dumps({"hardmine": {"num_classes": 2}}).encode()}
    for part, lo in enumerate(range(0, n, rows_per_file)):
        hi = min(lo + rows_per_file, n)
        m = hi - lo
        label = rng.integers(0, 2, m)
        label_prob = rng.random(m, dtype=np.float32)
        pred = np.where(label_prob >= 0.5, label, 1 - label)
        index = np.arange(lo, hi, dtype=np.int64)
        columns = {
            "index": index,
            "id": pa.array(index.astype(str)),
            "label": label.astype(np.int64),
            "pred": pred.astype(np.int64),
            "confidence": np.maximum(label_prob, 1 - label_prob),
            "label_prob": label_prob,
            "margin": (2 * label_prob - 1).astype(np.float32),
            "entropy": rng.random(m, dtype=np.float32),
            "loss": -np.log(np.maximum(label_prob, 1e-7)).astype(np.float32),
        }
        table = pa.table(columns).replace_schema_metadata(meta)
        pq.write_table(table, folder / f"part-{part:05d}.parquet")
    return folder


TASKS = ("multiclass", "regression")
NUM_CLASSES = 10


def make_task_dataset(folder: Path, n: int, task: str, *, rows_per_file: int = 1_000_000, seed: int = 0) -> Path:
    """A ``"multiclass"`` (10 classes, imbalanced) or ``"regression"`` score dataset of ``n`` rows, a file at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    settings = {"num_classes": NUM_CLASSES, "task": "classification"} if task == "multiclass" else {"task": task}
    meta = {b"PANDAS_ATTRS": json.dumps({"hardmine": settings}).encode()}
    freq = np.linspace(1.0, 10.0, NUM_CLASSES)
    for part, lo in enumerate(range(0, n, rows_per_file)):
        hi = min(lo + rows_per_file, n)
        m = hi - lo
        index = np.arange(lo, hi, dtype=np.int64)
        columns: dict[str, Any] = {"index": index, "id": pa.array(index.astype(str))}
        if task == "multiclass":
            label = rng.choice(NUM_CLASSES, size=m, p=freq / freq.sum())
            label_prob = rng.random(m, dtype=np.float32)
            other = rng.integers(0, NUM_CLASSES - 1, m)
            pred = np.where(label_prob >= 0.5, label, (label + 1 + other) % NUM_CLASSES)
            columns.update(
                label=label.astype(np.int64),
                pred=pred.astype(np.int64),
                confidence=np.maximum(label_prob, 1 - label_prob),
                label_prob=label_prob,
                margin=(2 * label_prob - 1).astype(np.float32),
                entropy=rng.random(m, dtype=np.float32) * np.float32(np.log(NUM_CLASSES)),
                loss=-np.log(np.maximum(label_prob, 1e-7)).astype(np.float32),
            )
        else:
            target = rng.normal(size=m).astype(np.float32)
            prediction = (target + rng.normal(scale=0.5, size=m)).astype(np.float32)
            err = prediction.astype(np.float64) - target
            columns.update(
                target=target,
                prediction=prediction,
                loss=(err**2).astype(np.float32),
                abs_error=np.abs(err).astype(np.float32),
            )
        pq.write_table(pa.table(columns).replace_schema_metadata(meta), folder / f"part-{part:05d}.parquet")
    return folder


def task_child(task: str, folder: Path, out: Path) -> dict[str, Any]:
    """One task's out-of-core steps (split, summary, weights) on the dataset in ``folder``, in this process."""
    import hardmine as hm

    before = _peak_rss_bytes()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = hm.open_scores(folder, memory_limit="1GB")
    times["open"] = time.perf_counter() - t0  # imports DuckDB and the analysis modules on first use
    t = time.perf_counter()
    split = ds.split() if task == "multiclass" else ds.split(hard_fraction=0.1)
    times["split"] = time.perf_counter() - t
    t = time.perf_counter()
    s = split.summary()
    times["summary"] = time.perf_counter() - t
    t = time.perf_counter()
    if task == "multiclass":
        split.weights(out / "w.npy")  # balance="auto": every class the same total weight
    else:
        ds.weights(out / "w.npy", by="loss")
    times["weights"] = time.perf_counter() - t
    return {
        "task": task,
        "kind": s.kind,
        "hard": int(s.groups.loc["hard", "count"]),
        "seconds": times,
        "cpu_seconds": _cpu_seconds(),
        "before_rss_bytes": before,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def make_weights(path: Path, n: int, *, seed: int = 0) -> Path:
    """A float32 ``.npy`` memmap of ``n`` weights in ``[0.05, 1]``, written in blocks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n,))
    block = 1 << 24
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        arr[lo:hi] = np.maximum(rng.random(hi - lo, dtype=np.float32) ** 2, 0.05)
    arr.flush()
    del arr
    return path


def _arrow_steps(folder: Path, out: Path) -> dict[str, float]:
    """split (threshold 0.5 on label_prob) + group counts + hard-row export, streamed with pyarrow and numpy."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    ds = pads.dataset(folder, format="parquet")
    counts = np.zeros(4, dtype=np.int64)
    writer = None
    for batch in ds.to_batches(batch_size=1 << 20):
        lp = batch.column("label_prob").to_numpy()
        hard = lp < 0.5
        pos = batch.column("label").to_numpy() == 1
        counts += np.bincount(np.where(pos, 0, 2) + np.where(hard, 0, 1), minlength=4)
        rows = batch.filter(pa.array(hard))
        if writer is None:
            writer = pq.ParquetWriter(out, rows.schema)
        writer.write_batch(rows)
    if writer is not None:
        writer.close()
    return {"split+summary+export": time.perf_counter() - t0}


def pq_rows(path: Path) -> int:
    """The number of rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def table_child(engine: str, folder: Path, out: Path) -> dict[str, Any]:
    """One engine's steps on the dataset in ``folder``, in this (fresh) process."""
    import pandas as pd

    import hardmine as hm

    before = _peak_rss_bytes()  # Python, torch, pandas and hardmine imported
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if engine == "duckdb":
        ds = hm.open_scores(folder, memory_limit="1GB")
        split = ds.split(threshold=0.5)
        times["split"] = time.perf_counter() - t0  # lazy: only checks NaN and the range
        t = time.perf_counter()
        s = split.summary()
        times["summary"] = time.perf_counter() - t
        t = time.perf_counter()
        split.export(out / "hard.parquet", only="hard")
        times["export"] = time.perf_counter() - t
        core_peak = _peak_rss_bytes()
        t = time.perf_counter()
        frac = ds.split(hard_fraction=0.1)
        times["hard_fraction_split"] = time.perf_counter() - t
        t = time.perf_counter()
        frac.threshold_sweep()
        times["threshold_sweep"] = time.perf_counter() - t
        hard = int(s.groups["count"].iloc[[0, 2]].sum())
    elif engine == "arrow":
        times.update(_arrow_steps(folder, out / "hard.parquet"))
        core_peak = _peak_rss_bytes()
        hard = int(pq_rows(out / "hard.parquet"))
    elif engine == "pandas":
        table = pd.read_parquet(folder)
        times["read"] = time.perf_counter() - t0
        t = time.perf_counter()
        split_table = hm.split(table, threshold=0.5)
        times["split"] = time.perf_counter() - t
        t = time.perf_counter()
        s = hm.summary(split_table)
        times["summary"] = time.perf_counter() - t
        t = time.perf_counter()
        hm.to_parquet(split_table, out / "hard.parquet", only="hard")
        times["export"] = time.perf_counter() - t
        core_peak = _peak_rss_bytes()
        hard = int(s.groups["count"].iloc[[0, 2]].sum())
    else:
        raise ValueError(f"Expected argument `engine` to be one of {ENGINES}, but got {engine!r}.")
    return {
        "engine": engine,
        "seconds": times,
        "cpu_seconds": _cpu_seconds(),
        "hard": hard,
        "before_rss_bytes": before,
        "peak_rss_bytes": core_peak,
        "final_rss_bytes": _peak_rss_bytes(),
    }


def sampler_child(path: Path, rank: int, ranks: int) -> dict[str, Any]:
    """One rank's epoch of ShardedSampler over the weights memmap at ``path``, in this (fresh) process."""
    import torch

    from hardmine.feedback.sharded import ShardedSampler

    torch.set_num_threads(1)
    before = _peak_rss_bytes()
    t0 = time.perf_counter()
    s = ShardedSampler(path, num_replicas=ranks, rank=rank, seed=0)
    build = time.perf_counter() - t0
    t = time.perf_counter()
    idx = s.indices(0)
    epoch = time.perf_counter() - t
    return {
        "rank": rank,
        "draws": int(idx.numel()),
        "build_seconds": build,
        "epoch_seconds": epoch,
        "cpu_seconds": _cpu_seconds(),
        "anon_rss_bytes": _anon_rss_bytes(),  # with the epoch's draws still alive
        "before_rss_bytes": before,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def _run_child(args: list[str], *, here: bool = False) -> dict[str, Any]:
    if here:  # --quick: in this process (fast; peak RSS is then cumulative)
        if args[0] == "table":
            return table_child(args[1], Path(args[2]), Path(args[3]))
        if args[0] == "task":
            return task_child(args[1], Path(args[2]), Path(args[3]))
        return sampler_child(Path(args[1]), int(args[2]), int(args[3]))
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and save its results; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--table-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--pandas-max", type=int, default=10_000_000, help="largest N the pandas engine runs at")
    parser.add_argument("--sampler-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--task-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs="+", default=None)
    args = parser.parse_args(argv)
    if args.child:
        kind = args.child[0]
        if kind == "table":
            result = table_child(args.child[1], Path(args.child[2]), Path(args.child[3]))
        elif kind == "task":
            result = task_child(args.child[1], Path(args.child[2]), Path(args.child[3]))
        else:
            result = sampler_child(Path(args.child[1]), int(args.child[2]), int(args.child[3]))
        print(json.dumps(result))
        return [result]

    table_sizes = args.table_sizes if args.table_sizes is not None else ([20_000] if args.quick else [10_000_000])
    sampler_sizes = (
        args.sampler_sizes if args.sampler_sizes is not None else ([50_000] if args.quick else [100_000_000])
    )
    task_sizes = args.task_sizes if args.task_sizes is not None else ([20_000] if args.quick else [1_000_000])
    rows_per_file = 5_000 if args.quick else args.rows_per_file
    work = Path(tempfile.mkdtemp(prefix="bench_big-", dir=args.work))
    rows: list[dict[str, Any]] = []
    try:
        for n in table_sizes:
            t = time.perf_counter()
            folder = make_dataset(work / f"scores-{n}", n, rows_per_file=rows_per_file)
            gen = time.perf_counter() - t
            disk = sum(f.stat().st_size for f in folder.iterdir())
            for engine in args.engines:
                if engine == "pandas" and n > args.pandas_max:
                    continue
                out = work / f"out-{engine}-{n}"
                out.mkdir()
                r = _run_child(["table", engine, str(folder), str(out)], here=args.quick)
                r.update(part="table", n=n, dataset_bytes=disk, generate_seconds=gen)
                r["hard_file_bytes"] = (out / "hard.parquet").stat().st_size
                rows.append(r)
                shutil.rmtree(out)
            shutil.rmtree(folder)
        for n in task_sizes:
            for task in TASKS:
                folder = make_task_dataset(work / f"{task}-{n}", n, task, rows_per_file=rows_per_file)
                out = work / f"out-{task}-{n}"
                out.mkdir()
                r = _run_child(["task", task, str(folder), str(out)], here=args.quick)
                r.update(part="task", n=n, dataset_bytes=sum(f.stat().st_size for f in folder.iterdir()))
                rows.append(r)
                shutil.rmtree(out)
                shutil.rmtree(folder)
        for n in sampler_sizes:
            path = make_weights(work / f"weights-{n}.npy", n)
            ranks = 2 if args.quick else RANKS
            for rank in range(ranks):
                r = _run_child(["sampler", str(path), str(rank), str(ranks)], here=args.quick)
                r.update(part="sampler", n=n, ranks=ranks, weights_bytes=path.stat().st_size)
                rows.append(r)
            path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stem = "bench_big_quick" if args.quick else "bench_big"
    save_results(args.out or Path(__file__).resolve().parent / "results", stem, rows, _markdown(rows), threads=1)
    return rows


def _cpu(r: dict[str, Any]) -> str:
    return f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else "-"


def _gb(b: float) -> str:
    return f"{b / 1e9:.2f}"


def _step_rows(rows: list[dict[str, Any]], part: str, keys: tuple[str, ...]) -> list[str]:
    """Markdown rows of a part's runs: N, the ``keys`` columns, size on disk, seconds per step, CPU, peak RSS."""
    lines = []
    for r in (r for r in rows if r["part"] == part):
        steps = ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items())
        named = " | ".join(str(r[k]) for k in keys)
        lines.append(
            f"| {r['n']:,} | {named} | {_gb(r['dataset_bytes'])} | {steps} | {_cpu(r)} | {_gb(r['peak_rss_bytes'])} |"
        )
    return lines


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## Out-of-core table: split + summary + hard-row export",
        "",
        "| N | engine | dataset on disk (GB) | wall seconds per step | process CPU seconds | peak RSS (GB) |",
        "|---|---|---|---|---|---|",
    ]
    lines += _step_rows(rows, "table", ("engine",))
    lines += [
        "",
        "Peak RSS is measured after split + summary + export; for duckdb the hard_fraction split and the sweep run "
        "after that point (their RSS is `final_rss_bytes` in the JSON). Wall seconds are on 2 cores shared with other "
        "jobs (niced); the process CPU seconds (user + system, all threads, the whole process including imports) are "
        "the work done. A sampler rank's peak RSS counts the pages of the weights memmap it read (page cache, shared "
        "by the ranks of a machine); its private RSS (`RssAnon`, imports included) is measured after the epoch.",
        "",
        "## Other tasks out of core: split + summary + weights",
        "",
        "| N | table | summary | dataset on disk (GB) | wall seconds per step | process CPU seconds | peak RSS (GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += _step_rows(rows, "task", ("task", "kind"))
    lines += [
        "",
        "## ShardedSampler: one epoch (N draws over all ranks) per rank",
        "",
        "| N | ranks | rank | draws | build (s) | epoch (s) | process CPU seconds | peak RSS (GB) | private RSS (GB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["part"] == "sampler"):
        lines.append(
            f"| {r['n']:,} | {r['ranks']} | {r['rank']} | {r['draws']:,} | {r['build_seconds']:.1f} | "
            f"{r['epoch_seconds']:.1f} | {_cpu(r)} | {_gb(r['peak_rss_bytes'])} | "
            f"{_gb(r['anon_rss_bytes']) if r.get('anon_rss_bytes', -1) > 0 else '-'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
