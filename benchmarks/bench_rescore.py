"""What each re-scoring schedule costs: seconds per training epoch, plain loader against HardMiner.

The task is the mnist example's (examples/mnist.py): its CNN on the 1,797 digits of scikit-learn's bundled set,
batch 64, Adadelta. Every schedule trains the same model from the same seed for the same epochs; an epoch's time
is the whole pass over the loader (drawing, training and, when the schedule says so, the miner's scoring pass at its
start). Schedules:

- ``plain``: the shuffled DataLoader, no mining.
- ``warmup only``: ``HardMiner(warmup_epochs=epochs)``, never scores: the cost of the weighted draw itself.
- ``rescore_every=1``, ``2``, ``5``: a scoring pass at the start of every 1st, 2nd, 5th mining epoch (after the
  default warm-up epoch).
- ``rescore_every=1, score batch 512``: the scoring pass with ``score_kwargs={"batch_size": 512}`` (inference needs
  no small batches).

In-batch "online" mining from the training step's own losses (``HardMiner.observe``) is not part of this branch.

    python benchmarks/bench_rescore.py            # 6 epochs, best of 7 runs per schedule
    python benchmarks/bench_rescore.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from hardmine import HardMiner

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "examples")]  # _common, and the mnist example's network

from _common import save_results  # noqa: E402

SCHEDULES: tuple[str, ...] = (
    "plain",
    "warmup only",
    "rescore_every=1",
    "rescore_every=2",
    "rescore_every=5",
    "rescore_every=1, score batch 512",
)


def digits(n: int) -> TensorDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (torch.tensor(d.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0 - 0.3) / 0.4
    return TensorDataset(x, torch.tensor(d.target[:n]))


def run(schedule: str, epochs: int, n: int, seed: int) -> dict[str, Any]:
    from mnist import Net  # the mnist example's network

    torch.manual_seed(seed)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    loader = DataLoader(digits(n), batch_size=64, shuffle=True)
    data: Any = loader
    if schedule != "plain":
        options: dict[str, Any] = {"threshold": 0.7, "progress": False, "seed": seed}
        if schedule == "warmup only":
            options["warmup_epochs"] = epochs
        else:
            options["rescore_every"] = int(schedule.split("=")[1].split(",")[0])
            if "512" in schedule:
                options["score_kwargs"] = {"batch_size": 512}
        data = HardMiner(model, loader, **options)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for x, y in data:
            optimizer.zero_grad()
            F.nll_loss(model(x), y).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    passes = 0 if schedule == "plain" else data.score_calls
    pass_seconds = [] if schedule == "plain" or passes == 0 else data.history["seconds"].tolist()
    return {"seconds": seconds, "scoring_passes": passes, "pass_seconds": pass_seconds}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=1797)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat, 200 samples")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.samples = 2, 1, 200
    torch.set_num_threads(1)
    per_epoch: dict[str, list[float]] = {s: [] for s in SCHEDULES}
    pass_seconds: dict[str, list[float]] = {s: [] for s in SCHEDULES}
    passes: dict[str, int] = {}
    for r in range(args.repeats):  # schedules interleaved, so that a busy moment of the machine hits them all
        for schedule in SCHEDULES:
            result = run(schedule, args.epochs, args.samples, seed=r)
            per_epoch[schedule].append(statistics.fmean(result["seconds"]))
            pass_seconds[schedule].extend(result["pass_seconds"])
            passes[schedule] = result["scoring_passes"]
    rows = []
    for schedule in SCHEDULES:
        runs = per_epoch[schedule]
        rows.append(
            {
                "schedule": schedule,
                "epochs": args.epochs,
                "samples": args.samples,
                "scoring_passes": passes[schedule],
                "s_per_epoch": min(runs),
                "s_per_epoch_median": statistics.median(runs),
                "s_per_epoch_min": min(runs),
                "s_per_epoch_max": max(runs),
                "s_per_pass": min(pass_seconds[schedule]) if pass_seconds[schedule] else 0.0,
            }
        )
    plain = rows[0]["s_per_epoch"]
    for row in rows:
        row["vs_plain"] = row["s_per_epoch"] / plain
    lines = [
        f"The mnist example's CNN on {args.samples} digits, batch 64, {args.epochs} epochs, {args.repeats} runs per "
        "schedule, interleaved. s / epoch: the best run's mean seconds per epoch (the run least disturbed by other "
        "work on the machine; the median and the slowest run follow). Seconds per epoch include the scoring pass of "
        "the epochs that start with one; the miner's default warm-up makes epoch 0 uniform. s / pass: the fastest "
        "scoring pass alone (`miner.history['seconds']`).",
        "",
        "| schedule | scoring passes | s / epoch (best run) | median, slowest run | × plain | s / pass |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['schedule']} | {row['scoring_passes']} | {row['s_per_epoch']:.3f} | "
            f"{row['s_per_epoch_median']:.3f}, {row['s_per_epoch_max']:.3f} | {row['vs_plain']:.2f} | "
            f"{row['s_per_pass']:.3f} |"
        )
    stem = "bench_rescore_quick" if args.quick else "bench_rescore"
    save_results(Path(args.out), stem, rows, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
