"""Peak memory of a streamed scoring pass (``hm.score_to_parquet``) as N grows: it should stay flat.

Each size runs in a fresh child process that scores a synthetic map-style dataset (every sample computed from its
index, so the data itself takes no memory) with a small linear model into a Parquet folder, chunk by chunk, and
reports its peak resident memory (``ru_maxrss``) and its private memory at the end (``RssAnon``). Memory is bounded
by one chunk's table (``--chunk-size`` rows), not by N: the difference between the sizes is what this measures.

Run ``python benchmarks/bench_streamed.py`` (N = 10**6 and 10**7, about 10 minutes on 2 cores) or ``--quick``;
results go to ``benchmarks/results/bench_streamed.{json,md}`` through ``_common.save_results``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, save_results

CHILD = r"""
import json, resource, sys, time
import torch
from torch.utils.data import DataLoader, Dataset
import hardmine as hm

torch.set_num_threads(1)
n, chunk, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


class Synthetic(Dataset):
    # 8 features and a label computed from the index: the data costs no memory, whatever n is.
    def __len__(self):
        return n

    def __getitem__(self, i):
        return torch.sin(torch.arange(8.0) * (i % 9973 + 1) * 1e-3), i % 10


torch.manual_seed(0)
model = torch.nn.Linear(8, 10)
start = time.perf_counter()
ds = hm.score_to_parquet(model, DataLoader(Synthetic(), batch_size=4096), out, chunk_size=chunk, progress=False)
seconds = time.perf_counter() - start
anon = 0
for line in open("/proc/self/status"):
    if line.startswith("RssAnon:"):
        anon = int(line.split()[1]) * 1024
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"n": n, "rows": len(ds), "files": len(ds.files), "seconds": seconds, "peak_rss": peak,
                  "rss_anon_end": anon}))
"""


def run(n: int, chunk: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), str(chunk), str(Path(tmp) / "scores")],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict[str, Any]], chunk: int) -> str:
    lines = [
        f"Streamed scoring (`hm.score_to_parquet`, chunks of {chunk:,} rows, a `Linear(8, 10)` on computed samples): "
        "peak resident memory of the whole process (torch included) against N.",
        "",
        "| N | files | seconds | peak RSS (MB) | private RSS at the end (MB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['files']} | {r['seconds']:.1f} | {r['peak_rss'] / 1e6:.0f} | "
            f"{r['rss_anon_end'] / 1e6:.0f} |"
        )
    if len(rows) > 1:
        grow = (rows[-1]["peak_rss"] - rows[0]["peak_rss"]) / 1e6
        lines += ["", f"Peak RSS grew by {grow:.0f} MB from N = {rows[0]['n']:,} to N = {rows[-1]['n']:,}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--chunk-size", type=int, default=10**6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes, chunk = ([3000, 9000], 2000) if args.quick else (args.sizes, args.chunk_size)
    rows = []
    for n in sizes:
        t = time.perf_counter()
        rows.append(run(n, chunk))
        print(f"N={n:>12,}: peak {rows[-1]['peak_rss'] / 1e6:7.0f} MB ({time.perf_counter() - t:.0f} s)", flush=True)
    table = markdown(rows, chunk)
    print(table)
    save_results(args.out, "bench_streamed" + ("_quick" if args.quick else ""), rows, table)
    return rows


if __name__ == "__main__":
    main()
