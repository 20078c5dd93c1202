"""Does hard-example mining help? Four tasks built from scikit-learn's bundled digits.

Every task splits the 1,797 digits 50/50 by a seeded permutation (898 training, 899 test samples) and changes only
the training half; the test set is always the untouched other half:

- ``rare`` (default): one digit (``--digit``, 8) is the positive class; in the training set it is subsampled to
  ``--rate`` (3 % by default) of the samples, as a rare disease is in a screening population. The test set keeps the
  natural rate of the digit (about 10 %), so every run is judged on the same, larger set of positives. Model: MLP
  64-64-2. Metrics: test precision, recall and F1 of the positive class at the 0.5 decision threshold.
- ``balanced``: the 10-class digits as they come (about 90 training samples a class). Model: MLP 64-64-10.
- ``longtail``: 10 classes, training class ``c`` kept at ``round(n_c * 0.6 ** c)`` of its ``n_c`` samples (at least
  3; ``--longtail-decay``), chosen with the seeded generator: about 90 zeros down to 3 nines, 220-240 in all.
- ``noisy``: 10 classes, 20 % of the training labels (``--noise``) replaced by a uniformly random class (seeded; a
  tenth of those land on the true class again, so about 18 % end up wrong); the test labels are clean.

For the three 10-class tasks the metrics are test accuracy and balanced accuracy (the mean per-class recall). Every
``--task`` writes its own table; ``--task all`` runs the four in turn. The same small MLP is trained with:

- ``uniform``: a plain shuffled DataLoader and cross-entropy.
- ``balanced``: torch's ``WeightedRandomSampler`` with class-balanced weights (1 / class count, over the classes
  present), cross-entropy.
- ``hardminer``: ``hm.HardMiner`` with its defaults, cross-entropy: ``balance="label"`` gives every class the same
  total sampling weight, and within a class a hard sample weighs ``hard_weight`` (4) against 1 for an easy one.
- ``hardminer-nobalance``: ``hm.HardMiner(balance=None)``, the old default: hard 4 vs easy 1 over the whole set, no
  class balancing; the difference to ``hardminer`` is what the balancing adds.
- ``hardminer+correct``: ``hm.HardMiner(apply="sample+correct")``, importance-corrected weighted loss (unbiased).
- ``hardminer+exclude``: ``hm.HardMiner(dynamics=Dynamics(N), exclude_label_issues="aum")``: the loop records the
  training dynamics, and samples whose area under the margin is below 0 (suspected label issues) get the easy weight
  instead of the hard one.
- ``hardminer+share`` (``rare`` only: it needs a positive class): ``hm.HardMiner(positive_share=0.25,
  hard_share=0.25, threshold=0.7)``: every batch holds at least a quarter positives and a quarter hard samples (the
  recipe of detection pipelines, with hardness on top).
- ``ohem``: uniform sampling, ``hm.ohem_loss`` (the hardest quarter of every batch).
- ``focal``: uniform sampling, ``hm.focal_loss(gamma=2)``.

Every method runs over the same seeds (data subsample or label noise, split, initialisation and sampling all follow
the seed); the tables report mean and standard deviation over seeds, and a paired comparison on the task's main
metric (F1 for ``rare``, balanced accuracy for the others) against a reference method run on the same seed:
``balanced`` for ``rare`` and ``longtail``, ``uniform`` for ``balanced`` and ``noisy``. The HardMiner settings of
``hardminer+share``, and the choice of ``balance="label"`` as HardMiner's default, were made on seeds 0-4; the
reported runs use seeds 100-109, which played no part in either.

Run ``python benchmarks/bench_training.py`` (``rare``, under a minute on 2 CPU cores), ``--task all`` (two to three
minutes) or ``--quick`` for a smoke run (2 seeds, 2 epochs; seconds even with ``--task all``). Results go to
``benchmarks/results/bench_training_<task>.{json,md}`` (``bench_training_<task>_quick.*`` with ``--quick``; or
``--out DIR``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import describe, machine, save_results
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from hardmine.analysis.dynamics import Dynamics
from hardmine.feedback.losses import focal_loss, ohem_loss, weighted_loss
from hardmine.feedback.miner import HardMiner
from hardmine.feedback.weighting import HardSetCollapseWarning

TASKS = ("rare", "balanced", "longtail", "noisy")
METHODS = (
    "uniform",
    "balanced",
    "hardminer",
    "hardminer-nobalance",
    "hardminer+correct",
    "hardminer+exclude",
    "hardminer+share",
    "ohem",
    "focal",
)
RARE_ONLY = ("hardminer+share",)  # needs a positive class
METRICS = {"rare": ("precision", "recall", "f1")} | dict.fromkeys(
    ("balanced", "longtail", "noisy"), ("accuracy", "balanced_accuracy")
)
MAIN_METRIC = {
    "rare": "f1",
    "balanced": "balanced_accuracy",
    "longtail": "balanced_accuracy",
    "noisy": "balanced_accuracy",
}
REFERENCE = {"rare": "balanced", "balanced": "uniform", "longtail": "balanced", "noisy": "uniform"}
HEADERS = {
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "accuracy": "accuracy",
    "balanced_accuracy": "bal. acc",
}
NUM_CLASSES = 10


def task_methods(task: str, methods: list[str] | tuple[str, ...] = METHODS) -> list[str]:
    """The methods that run on ``task``, in order (``hardminer+share`` only on ``rare``)."""
    return [m for m in methods if task == "rare" or m not in RARE_ONLY]


def _digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, np.random.Generator, np.ndarray, np.ndarray]:
    """Features, 10-class labels, the seeded generator and the 50/50 train/test indices."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    half = len(y) // 2
    return x, y, rng, order[:half], order[half:]


def make_data(seed: int, *, digit: int, rate: float) -> tuple[TensorDataset, TensorDataset]:
    """``rare``: train set with the positive digit kept to ``rate`` of its samples; test set at the natural rate."""
    x, digit_labels, rng, train, test = _digits(seed)
    y = (digit_labels == digit).to(torch.int64)
    y_train = y[train].numpy()
    neg, pos = train[y_train == 0], train[y_train == 1]
    n_pos = max(2, round(rate / (1 - rate) * len(neg)))
    keep = np.concatenate([neg, rng.choice(pos, size=n_pos, replace=False)])
    keep.sort()
    return TensorDataset(x[keep], y[keep]), TensorDataset(x[test], y[test])


def make_multiclass_data(
    task: str,
    seed: int,
    *,
    decay: float = 0.6,
    noise: float = 0.2,
) -> tuple[TensorDataset, TensorDataset, dict[str, int]]:
    """``balanced``, ``longtail`` or ``noisy``: 10-class train and test sets, and facts about the training labels."""
    x, y, rng, train, test = _digits(seed)
    facts: dict[str, int] = {}
    y_train = y[train].clone()
    if task == "longtail":
        labels = y_train.numpy()
        keep = []
        for c in range(NUM_CLASSES):
            members = train[labels == c]
            n = min(len(members), max(3, round(len(members) * decay**c)))
            keep.append(rng.choice(members, size=n, replace=False))
        train = np.sort(np.concatenate(keep))
        y_train = y[train].clone()
    elif task == "noisy":
        n_noisy = round(noise * len(train))
        where = torch.from_numpy(rng.choice(len(train), size=n_noisy, replace=False))
        y_train[where] = torch.from_numpy(rng.integers(0, NUM_CLASSES, size=n_noisy)).to(torch.int64)
        facts = {"train_relabelled": n_noisy, "train_wrong": int((y_train != y[train]).sum())}
    elif task != "balanced":
        raise ValueError(f"Expected a 10-class task ('balanced', 'longtail', 'noisy'), but got {task!r}.")
    return TensorDataset(x[train], y_train), TensorDataset(x[test], y[test]), facts


def make_model(seed: int, num_classes: int = 2) -> nn.Module:
    torch.manual_seed(seed)  # the benchmark owns this process; initialisation follows the seed
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_classes))


def train(
    method: str,
    train_set: TensorDataset,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    num_classes: int = 2,
    miner_kwargs: dict | None = None,
) -> nn.Module:
    model = make_model(seed, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    labels = train_set.tensors[1]
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy
    if method == "balanced":
        counts = torch.bincount(labels).double()  # a class absent from the set is never indexed
        sampler = WeightedRandomSampler((1.0 / counts)[labels], num_samples=len(labels), replacement=True, generator=g)
        batches = DataLoader(train_set, batch_size=batch_size, sampler=sampler)
    else:
        batches = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=g)
    if method == "ohem":
        loss_fn = lambda z, t: ohem_loss(z, t, keep=0.25)  # noqa: E731
    elif method == "focal":
        loss_fn = lambda z, t: focal_loss(z, t, gamma=2.0)  # noqa: E731
    miner = None
    dynamics: Dynamics | None = None
    kw = dict(miner_kwargs or {})
    kw.setdefault("warmup_epochs", 0)  # as the published results ran (HardMiner's default warm-up is now 1 epoch)
    if method == "hardminer":
        miner = HardMiner(model, batches, seed=seed, progress=False, **kw)
    elif method == "hardminer-nobalance":
        kw["balance"] = None
        miner = HardMiner(model, batches, seed=seed, progress=False, **kw)
    elif method == "hardminer+correct":
        miner = HardMiner(model, batches, apply="sample+correct", seed=seed, progress=False, **kw)
    elif method == "hardminer+exclude":
        dynamics = Dynamics(num_samples=len(labels))
        miner = HardMiner(
            model, batches, dynamics=dynamics, exclude_label_issues="aum", indices=True, seed=seed, progress=False, **kw
        )
    elif method == "hardminer+share":
        kw.setdefault("positive_share", 0.25)
        kw.setdefault("hard_share", 0.25)
        kw.setdefault("threshold", 0.7)
        miner = HardMiner(model, batches, seed=seed, progress=False, **kw)
    model.train()
    for _ in range(epochs):
        for batch in miner if miner is not None else batches:
            idx = None
            if dynamics is not None:
                idx, *batch = batch
            x, y = batch[0], batch[1]
            logits = model(x)
            if dynamics is not None:
                dynamics.update(idx, logits, y)
            if len(batch) == 3:
                loss = weighted_loss(logits, y, batch[2])
            else:
                loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dynamics is not None:
            dynamics.end_epoch()
    return model


@torch.no_grad()
def evaluate(model: nn.Module, test_set: TensorDataset) -> dict[str, float]:
    """``rare`` (binary): precision, recall and F1 of the positive class."""
    model.eval()
    x, y = test_set.tensors
    pred = model(x).argmax(1)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


@torch.no_grad()
def evaluate_multiclass(model: nn.Module, test_set: TensorDataset) -> dict[str, float]:
    """Accuracy and balanced accuracy (the mean recall over the classes of the test set)."""
    model.eval()
    x, y = test_set.tensors
    correct = model(x).argmax(1) == y
    recalls = [float(correct[y == c].double().mean()) for c in torch.unique(y).tolist()]
    return {"accuracy": float(correct.double().mean()), "balanced_accuracy": statistics.fmean(recalls)}


def miner_kwargs(args: argparse.Namespace) -> dict:
    """HardMiner settings given on the command line (the defaults when none are)."""
    kw: dict = {}
    for name in (
        "threshold",
        "hard_weight",
        "rescore_every",
        "warmup_epochs",
        "floor",
        "by",
        "momentum",
        "positive_share",
        "hard_share",
        "balance",
    ):
        value = getattr(args, name)
        if value is not None:
            kw[name] = value
    if args.weight_by is not None:
        kw["weight_kwargs"] = {"by": args.weight_by, "gamma": args.weight_gamma}
    return kw


def _data(task: str, seed: int, args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset, dict[str, int]]:
    """The task's train and test sets, and its sizes (the caption's facts) for this seed."""
    if task == "rare":
        train_set, test_set = make_data(seed, digit=args.digit, rate=args.rate)
        return (
            train_set,
            test_set,
            {
                "train": len(train_set),
                "train_pos": int(train_set.tensors[1].sum()),
                "test": len(test_set),
                "test_pos": int(test_set.tensors[1].sum()),
            },
        )
    train_set, test_set, facts = make_multiclass_data(task, seed, decay=args.longtail_decay, noise=args.noise)
    counts = torch.bincount(train_set.tensors[1], minlength=NUM_CLASSES)
    return (
        train_set,
        test_set,
        {
            "train": len(train_set),
            "train_min_class": int(counts.min()),
            "train_max_class": int(counts.max()),
            "test": len(test_set),
            **facts,
        },
    )


def run(args: argparse.Namespace, task: str = "rare") -> dict:
    torch.set_num_threads(1)
    # The hard set of a rare-positive task is mostly the positives: hm.sample_weights warns about exactly that.
    warnings.filterwarnings("ignore", category=HardSetCollapseWarning)
    methods = task_methods(task, args.methods)
    metrics, main_metric, ref = METRICS[task], MAIN_METRIC[task], REFERENCE[task]
    num_classes = 2 if task == "rare" else NUM_CLASSES
    evaluate_fn = evaluate if task == "rare" else evaluate_multiclass
    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
    data: list[dict[str, int]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        train_set, test_set, info = _data(task, seed, args)
        data.append(info)
        for method in methods:
            start = time.perf_counter()
            model = train(
                method,
                train_set,
                seed=seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                num_classes=num_classes,
                miner_kwargs=miner_kwargs(args),
            )
            seconds[method] += time.perf_counter() - start
            results[method].append(evaluate_fn(model, test_set))
    summary = {}
    for method, runs in results.items():
        row: dict[str, float] = {}
        for key in metrics:
            values = [r[key] for r in runs]
            row[f"{key}_mean"] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["seconds_per_run"] = seconds[method] / args.seeds
        if ref in results:  # paired by seed: same data, same initialisation
            diffs = [r[main_metric] - b[main_metric] for r, b in zip(runs, results[ref], strict=True)]
            row[f"{main_metric}_minus_{ref}_mean"] = statistics.fmean(diffs)
            row[f"{main_metric}_minus_{ref}_std"] = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            row[f"{main_metric}_wins_over_{ref}"] = sum(d > 0 for d in diffs)
        summary[method] = row
    return {
        "task": task,
        "metrics": list(metrics),
        "main_metric": main_metric,
        "reference": ref,
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"task": task, "methods": methods},
        "miner_settings": miner_kwargs(args),
        "data": data[-1],
        "data_per_seed": data,
        "summary": summary,
        "runs": results,
    }


def _span(data: list[dict[str, int]], key: str) -> str:
    """A size over the seeds: one number, or ``low–high`` when the seeds differ."""
    low, high = min(d[key] for d in data), max(d[key] for d in data)
    return f"{low}" if low == high else f"{low}–{high}"


def caption(result: dict) -> str:
    s, data, task = result["settings"], result["data_per_seed"], result["task"]
    seeds = f"{s['seeds']} seeds {s['first_seed']}..{s['first_seed'] + s['seeds'] - 1} (mean ± std)"
    training = f"Adam lr {s['lr']}, batch {s['batch_size']}, {s['epochs']} epochs, {seeds}."
    ref = result["reference"]
    if task == "rare":
        share = statistics.fmean(d["train_pos"] / d["train"] for d in data)
        return (
            f"Task rare: positive = digit {s['digit']}, {_span(data, 'train_pos')} of {_span(data, 'train')} "
            f"training samples ({100 * share:.1f} %); test set at the natural rate ({_span(data, 'test_pos')} of "
            f"{_span(data, 'test')}). MLP 64-64-2, {training} Metrics: test precision, recall and F1 of the "
            f"positive class at the 0.5 decision threshold; paired: F1 minus {ref} (WeightedRandomSampler) on "
            "the same seed."
        )
    sizes = (
        f"{_span(data, 'train')} training samples (smallest class {_span(data, 'train_min_class')}, largest "
        f"{_span(data, 'train_max_class')})"
    )
    if task == "balanced":
        what = f"the 10-class digits as they come, {sizes}"
    elif task == "longtail":
        what = (
            f"10 classes, training class c kept at round(n_c · {s['longtail_decay']}^c) samples (at least 3), {sizes}"
        )
    else:
        what = (
            f"10 classes, {100 * s['noise']:.0f} % of the training labels ({_span(data, 'train_relabelled')}) "
            f"replaced by a uniformly random class, {_span(data, 'train_wrong')} of them now wrong, {sizes}"
        )
    ref_name = "uniform (shuffled loader)" if ref == "uniform" else "balanced (WeightedRandomSampler)"
    return (
        f"Task {task}: {what}; test set untouched ({_span(data, 'test')} samples, clean labels, natural class "
        f"rates). MLP 64-64-10, {training} Metrics: test accuracy and balanced accuracy (mean per-class recall); "
        f"paired: balanced accuracy minus {ref_name} on the same seed. hardminer+share is not run on this task "
        "(it needs a positive class)."
    )


def markdown(result: dict) -> str:
    s, metrics, main, ref = result["settings"], result["metrics"], result["main_metric"], result["reference"]
    columns = [HEADERS[m] for m in metrics] + [f"{HEADERS[main]} − {ref} (paired)", f"seeds beating {ref}", "s / run"]
    # The machine goes on the caption line, so that the table's rows are the last lines of the file.
    where = f"Machine: {describe(machine())}."
    lines = [
        f"{caption(result)} {where}",
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for method, r in result["summary"].items():
        values = [f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in metrics]
        key = f"{main}_minus_{ref}"
        if f"{key}_mean" in r:
            values += [
                f"{r[f'{key}_mean']:+.3f} ± {r[f'{key}_std']:.3f}",
                f"{r[f'{main}_wins_over_{ref}']} / {s['seeds']}",
            ]
        else:
            values += ["–", "–"]
        values.append(f"{r['seconds_per_run']:.2f}")
        lines.append(f"| {method} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Run the benchmark; returns ``{task: result}`` (one entry, or four with ``--task all``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rare", choices=(*TASKS, "all"), help="which task (all: the four in turn)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (2 seeds, 2 epochs)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="seeds first_seed .. first_seed + seeds - 1 (the settings were tuned on seeds 0-4)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--digit", type=int, default=8, help="rare: the positive digit")
    parser.add_argument("--rate", type=float, default=0.03, help="rare: share of positives in the training set")
    parser.add_argument(
        "--longtail-decay",
        type=float,
        default=0.6,
        help="longtail: training class c keeps round(count_c * decay ** c) samples (at least 3)",
    )
    parser.add_argument(
        "--noise", type=float, default=0.2, help="noisy: share of training labels replaced by a uniformly random class"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="methods to run (hardminer+share runs on the rare task only)",
    )
    parser.add_argument("--threshold", type=float, default=None, help="HardMiner threshold (default: its own)")
    parser.add_argument("--hard-weight", type=float, default=None, help="HardMiner hard_weight (default: its own)")
    parser.add_argument("--rescore-every", type=int, default=None, help="HardMiner rescore_every (default: its own)")
    parser.add_argument("--warmup-epochs", type=int, default=None, help="HardMiner warmup_epochs (default: its own)")
    parser.add_argument("--floor", type=float, default=None, help="HardMiner floor (default: its own)")
    parser.add_argument("--by", default=None, help="HardMiner score column (default: its own)")
    parser.add_argument(
        "--weight-by",
        default=None,
        help="HardMiner continuous weights from this score column (weight_kwargs={'by': ...})",
    )
    parser.add_argument("--weight-gamma", type=float, default=1.0, help="exponent of the continuous weights")
    parser.add_argument(
        "--positive-share",
        type=float,
        default=None,
        help="HardMiner positive_share (hardminer+share uses 0.25 unless given)",
    )
    parser.add_argument("--hard-share", type=float, default=None, help="HardMiner hard_share")
    parser.add_argument(
        "--balance",
        default=None,
        choices=("label", "polarity"),
        help="HardMiner balance (default: its own; hardminer-nobalance always uses None)",
    )
    parser.add_argument("--momentum", type=float, default=None, help="HardMiner momentum (default: its own)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 2
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in TASKS if args.task == "all" else (args.task,):
        result = run(args, task)
        name = f"bench_training_{task}_quick" if args.quick else f"bench_training_{task}"
        rows = [{"method": method, **row} for method, row in result["summary"].items()]
        paths = save_results(args.out, name, rows, markdown(result), **result)
        print(paths[1].read_text())
        results[task] = result
    return results


if __name__ == "__main__":
    main()
