"""How close is ``hm.score`` to a bare forward pass, and how far ahead of the per-sample tutorial loop?

For the same model and the same loader in one run, three timings:

- ``bare``: ``with torch.inference_mode(): for x, y in loader: model(x)`` over a sequential loader with the same
  dataset, batch size, workers and pinning as the one ``hm.score`` rebuilds (``hm.score`` always scores in dataset
  order, so the floor must iterate in order too). Inputs are moved to the device the same way (``non_blocking`` when
  the loader pins), and under ``--amp`` / ``--channels-last`` the bare loop uses the same autocast and memory format.
- ``hm.score``: ``hardmine.scoring.engine.score(model, loader, progress=False)``: the forward pass plus the per-sample
  measures (confidence, label probability, margin, entropy, loss), the index/id bookkeeping and the pandas table.
- ``per-sample``: the tutorial loop, one sample at a time: ``model(x.unsqueeze(0))``, softmax, ``.item()`` for the
  confidence and the label probability. It is timed on the first ``--per-sample-n`` samples (it is slow) and reported
  as samples per second.

Each timing is the median of ``--repeats`` runs, interleaved (bare, score, bare, score, ...) so that noise from other
jobs hits both alike; one warm-up pass of each (not timed) comes first. The model is in eval mode throughout. Besides
wall-clock throughput the table gives the same ratios in process CPU time (``time.process_time``), which other jobs on
a shared machine disturb far less; on a CPU with ``--threads 1`` and ``--workers 0`` all the work is in this process,
so the CPU-time ratio is the honest one there. On a GPU read the wall-clock ratios.

Cases: ``resnet18`` (torchvision ``resnet18(weights=None, num_classes=10)`` on random 3x32x32 images: the forward
pass dominates, as it does for real image models) and ``mlp`` (a 64-256-256-10 MLP on random features: a tiny
model where any per-batch overhead of the scoring loop shows). Three more cases time ``hm.score(..., loss_fn=fn)``
against a bare loop that computes and keeps the same per-sample losses (``fn(model(x), y)`` per batch, concatenated
and moved to the host at the end): ``resnet18_loss_fn`` and ``mlp_loss_fn`` (the two models with a label-smoothed
cross-entropy, ``nn.CrossEntropyLoss(reduction="none", label_smoothing=0.1)``; hm.score also computes its
classification measures) and ``mlp_regression`` (a 64-256-256-1 MLP on float targets with
``nn.MSELoss(reduction="none")``: the regression table).

Run ``python benchmarks/bench_score.py`` (CPU), ``python benchmarks/bench_score.py --device cuda`` on a GPU, or
``--quick`` for a smoke run of a few seconds. Results go to ``benchmarks/results/bench_score_<device>.{json,md}`` (or
``--out DIR``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
from _common import save_results
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardmine.scoring.engine import score

CASES = ("resnet18", "mlp", "resnet18_loss_fn", "mlp_loss_fn", "mlp_regression")


def case_loss(name: str) -> nn.Module | None:
    """The per-sample ``loss_fn`` of a case (both loops compute it), or ``None`` for the plain cases."""
    if name in ("resnet18_loss_fn", "mlp_loss_fn"):
        return nn.CrossEntropyLoss(reduction="none", label_smoothing=0.1)
    if name == "mlp_regression":
        return nn.MSELoss(reduction="none")
    return None


def make_case(name: str, n: int, *, seed: int = 0) -> tuple[nn.Module, TensorDataset]:
    """A model (eval mode) and a dataset of ``n`` random samples with labels in ``[0, 10)``."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if name in ("resnet18", "resnet18_loss_fn"):
        from torchvision.models import resnet18

        model: nn.Module = resnet18(weights=None, num_classes=10)
        x = torch.randn(n, 3, 32, 32, generator=g)
    elif name in ("mlp", "mlp_loss_fn", "mlp_regression"):
        out = 1 if name == "mlp_regression" else 10
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, out))
        x = torch.randn(n, 64, generator=g)
        if name == "mlp_regression":
            return model.eval(), TensorDataset(x, torch.randn(n, 1, generator=g))
    else:
        raise ValueError(f"Expected argument `case` to be one of {CASES}, but got {name!r}.")
    y = torch.randint(0, 10, (n,), generator=g)
    return model.eval(), TensorDataset(x, y)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(amp: str | None, device: torch.device) -> Any:
    if amp is None:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class PassOptions(NamedTuple):
    """How a timed pass runs: mixed precision (``None``, ``"bf16"``, ``"fp16"``), channels-last input, loss."""

    amp: str | None
    channels_last: bool
    loss_fn: nn.Module | None = None


@contextmanager
def _stopwatch(device: torch.device) -> Iterator[list[float]]:
    """Time the block, the device synchronised at both ends; the list yielded receives ``[wall, CPU]`` seconds."""
    took: list[float] = []
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    yield took
    _sync(device)
    took.extend((time.perf_counter() - t0, time.process_time() - c0))


def bare_loop(model: nn.Module, loader: DataLoader, device: torch.device, opts: PassOptions) -> tuple[float, float]:
    """The floor: a plain inference loop over the loader (and ``loss_fn``), nothing kept. Returns (wall, CPU) s."""
    non_blocking = bool(loader.pin_memory) and device.type == "cuda"
    kept: list[torch.Tensor] = []
    with _stopwatch(device) as took, torch.inference_mode(), _autocast(opts.amp, device):
        for x, y in loader:
            x = x.to(device, non_blocking=non_blocking)
            if opts.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            out = model(x)
            if opts.loss_fn is not None:  # the per-sample losses, kept on the device as hm.score keeps them
                kept.append(opts.loss_fn(out, y.to(device, non_blocking=non_blocking)))
        if kept:
            torch.cat(kept).cpu()
    return took[0], took[1]


def score_pass(model: nn.Module, loader: DataLoader, device: torch.device, opts: PassOptions) -> tuple[float, float]:
    """``hm.score`` over the loader (with ``loss_fn``), table included. Returns (wall, CPU) seconds."""
    with _stopwatch(device) as took:
        table = score(
            model,
            loader,
            device=device,
            amp=opts.amp or False,
            progress=False,
            channels_last=opts.channels_last,
            loss_fn=opts.loss_fn,
        )
    if len(table) != len(loader.dataset):  # type: ignore[arg-type]
        raise RuntimeError(f"hm.score returned {len(table)} rows for {len(loader.dataset)} samples.")  # type: ignore[arg-type]
    return took[0], took[1]


def per_sample_loop(
    model: nn.Module, dataset: TensorDataset, count: int, device: torch.device, loss_fn: nn.Module | None = None
) -> tuple[float, float]:
    """The tutorial loop: one sample at a time, softmax, ``.item()``. Returns (wall, CPU) seconds for ``count``."""
    confidences: list[float] = []
    label_probs: list[float] = []
    with _stopwatch(device) as took, torch.no_grad():
        for i in range(count):
            x, y = dataset[i]
            out = model(x.unsqueeze(0).to(device))
            if loss_fn is not None:
                label_probs.append(loss_fn(out, y.unsqueeze(0).to(device)).sum().item())
                continue
            probs = torch.softmax(out, dim=1)
            confidences.append(probs.max().item())
            label_probs.append(probs[0, int(y)].item())
    return took[0], took[1]


def run_case(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """All three timings for one case; returns a result row."""
    default_n = {"resnet18": 4000, "resnet18_loss_fn": 4000, "mlp": 100_000, "mlp_loss_fn": 100_000}.get(name, 100_000)
    n = args.n if args.n is not None else (args.quick_n if args.quick else default_n)
    model, dataset = make_case(name, n)
    model.to(device)
    if args.channels_last and name.startswith("resnet18"):
        model.to(memory_format=torch.channels_last)
    pin = device.type == "cuda"
    # The user's training loader (shuffled) goes to hm.score; the bare loop gets the sequential loader that hm.score
    # rebuilds from it: same dataset, batch size, workers, pinning.
    train_loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, pin_memory=pin
    )
    seq_loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers, pin_memory=pin
    )
    amp = args.amp
    opts = PassOptions(amp, args.channels_last, case_loss(name))
    # Warm-up (not timed): one pass of each, so allocator, kernels and caches are hot for both.
    bare_loop(model, seq_loader, device, opts)
    score_pass(model, train_loader, device, opts)
    bare_times: list[tuple[float, float]] = []
    score_times: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        bare_times.append(bare_loop(model, seq_loader, device, opts))
        score_times.append(score_pass(model, train_loader, device, opts))
    ps_count = min(n, args.per_sample_n)
    fn = case_loss(name)
    per_sample_loop(model, dataset, min(ps_count, 10), device, fn)  # warm-up
    ps_times = [per_sample_loop(model, dataset, ps_count, device, fn) for _ in range(max(1, min(args.repeats, 3)))]

    def med(times: list[tuple[float, float]], which: int) -> float:
        return statistics.median(t[which] for t in times)

    bare_t, score_t, ps_t = med(bare_times, 0), med(score_times, 0), med(ps_times, 0)
    bare_rate, score_rate, ps_rate = n / bare_t, n / score_t, ps_count / ps_t
    bare_cpu, score_cpu, ps_cpu = med(bare_times, 1), med(score_times, 1), med(ps_times, 1)
    return {
        "case": name,
        "n": n,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "amp": amp or "off",
        "bare_s": bare_t,
        "score_s": score_t,
        "bare_per_s": bare_rate,
        "score_per_s": score_rate,
        "per_sample_per_s": ps_rate,
        "per_sample_n": ps_count,
        "score_vs_bare": score_rate / bare_rate,
        "score_vs_per_sample": score_rate / ps_rate,
        "bare_cpu_s": bare_cpu,
        "score_cpu_s": score_cpu,
        "per_sample_cpu_s": ps_cpu,
        "score_vs_bare_cpu": bare_cpu / score_cpu,
        "score_vs_per_sample_cpu": (ps_cpu / ps_count) / (score_cpu / n),
        "bare_times": bare_times,
        "score_times": score_times,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The result table as Markdown (``save_results`` adds the machine line)."""
    lines = [
        "| case | N | batch | amp | bare loop (samples/s) | hm.score (samples/s) | per-sample loop (samples/s) "
        "| hm.score / bare | hm.score / per-sample | CPU-time ratios: hm.score / bare, / per-sample |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']} | {r['batch_size']} | {r['amp']} | {r['bare_per_s']:,.0f} "
            f"| {r['score_per_s']:,.0f} | {r['per_sample_per_s']:,.0f} | {r['score_vs_bare']:.3f} "
            f"| {r['score_vs_per_sample']:.1f}x | {r['score_vs_bare_cpu']:.3f}, {r['score_vs_per_sample_cpu']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    parser.add_argument("--n", type=int, default=None, help="samples (default: 4000 for resnet18, 100000 for mlp)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-sample-n", type=int, default=500, help="samples timed in the per-sample loop")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="autocast for both loops")
    parser.add_argument("--channels-last", action="store_true", help="channels_last inputs and model (resnet18)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (a few seconds)")
    parser.add_argument("--quick-n", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.per_sample_n = min(args.per_sample_n, 4)
        args.batch_size = min(args.batch_size, 16)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch.cuda.is_available() is False")
    cases = CASES if args.case == "all" else (args.case,)
    rows = [run_case(name, args, device) for name in cases]
    suffix = f"_{device.type}" + ("_quick" if args.quick else "")
    paths = save_results(args.out, f"bench_score{suffix}", rows, markdown(rows), device=device)
    print(paths[1].read_text())
    return rows


if __name__ == "__main__":
    main()
