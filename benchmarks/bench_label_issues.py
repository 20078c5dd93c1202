"""Finding flipped labels on scikit-learn's digits: hardmine's rankings against cleanlab and the naive confidence.

For each noise rate (10 % and 30 % of the training labels flipped to a different random class) and seed:

1. one training run of a small MLP (64 -> 128 -> 10, Adam) that records :class:`hardmine.Dynamics`;
2. 5-fold cross-validated probabilities of the same network (:func:`hardmine.cross_val_scores`);
3. rankings of the training samples, most suspicious first:
   - hardmine, from the one training run: area under the margin (``aum``) and mean label probability;
   - hardmine, from the 5-fold probabilities: self-confidence, normalised margin, confident learning;
   - cleanlab ``get_label_quality_scores`` and ``find_label_issues`` (defaults) on the SAME 5-fold probabilities;
   - the naive max-softmax confidence (of the 5-fold probabilities) and the in-sample label probability of the final
     model (one scoring pass of a model that has seen the labels);
   - for scale, cleanlab's self-confidence on 5-fold logistic-regression probabilities;
4. metrics against the truly flipped samples: AUROC, precision at k (k = number flipped), and for methods that flag
   (``is_issue``): how many they flag, precision and recall;
5. test accuracy after retraining without the flagged samples (ranking methods: their top k with k = the true number
   flipped; flagging methods: their own flags), next to no removal and oracle removal;
6. a memorisation run (200 epochs, lr 3e-3) after which the network agrees with almost every noisy training label:
   the final model's in-sample label probability against the dynamics recorded along the way.

Run ``python benchmarks/bench_label_issues.py`` (a few minutes on 2 cores) or ``--quick`` (seconds, a smoke run).
Results go to ``benchmarks/results/label_issues.json`` and ``.md``. cleanlab is a benchmark-only dependency
(``pip install cleanlab``); without it its rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One BLAS/OpenMP thread: the matrices are tiny, and spinning threads are slow on a shared machine. Set before numpy.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import describe, machine, save_results  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from hardmine.analysis.dynamics import Dynamics  # noqa: E402
from hardmine.analysis.labels import cross_val_scores, label_issues  # noqa: E402
from hardmine.core.data import with_indices  # noqa: E402
from hardmine.scoring.engine import score  # noqa: E402

try:
    import cleanlab
    from cleanlab.filter import find_label_issues as cl_find_label_issues
    from cleanlab.rank import get_label_quality_scores as cl_quality

    CLEANLAB = f"cleanlab {cleanlab.__version__}"
except ImportError:  # benchmark-only dependency
    CLEANLAB = None

RESULTS = Path(__file__).resolve().parent / "results"


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def make_train_fn(epochs: int, lr: float, dyn: Dynamics | None = None):
    def train_fn(model: nn.Module, loader) -> None:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            if dyn is None:
                for x, y in loader:
                    loss = nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            else:
                for idx, x, y in with_indices(loader):
                    logits = model(x)
                    loss = nn.functional.cross_entropy(logits, y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    dyn.update(idx, logits.detach(), y)
                dyn.end_epoch()

    return train_fn


def train_and_test(x, y, x_test, y_test, keep, *, epochs, lr, batch_size, seed) -> float:
    ds = TensorDataset(x[keep], y[keep])
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make_model()
        make_train_fn(epochs, lr)(model, loader)
    model.eval()
    with torch.no_grad():
        return float((model(x_test).argmax(1) == y_test).float().mean())


def flip_labels(y: np.ndarray, rate: float, rng: np.random.Generator, num_classes: int):
    n_flip = int(round(rate * len(y)))
    flipped = rng.choice(len(y), size=n_flip, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, num_classes, size=n_flip)) % num_classes  # a different class
    mask = np.zeros(len(y), dtype=bool)
    mask[flipped] = True
    return noisy, mask


def ranking_metrics(order: np.ndarray, quality: np.ndarray, is_flipped: np.ndarray) -> dict[str, float]:
    k = int(is_flipped.sum())
    return {"auroc": float(roc_auc_score(is_flipped, -quality)), "precision_at_k": float(is_flipped[order[:k]].mean())}


def flag_metrics(flags: np.ndarray, is_flipped: np.ndarray) -> dict[str, float]:
    tp = int((flags & is_flipped).sum())
    return {
        "flagged": int(flags.sum()),
        "precision": tp / max(int(flags.sum()), 1),
        "recall": tp / max(int(is_flipped.sum()), 1),
    }


def quality_by_index(table, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn a label_issues table (sorted) into (order, per-sample quality) arrays over range(n)."""
    q = np.full(n, np.inf)
    q[table["index"].to_numpy()] = table["score"].to_numpy()
    return table["index"].to_numpy(), q


def run_config(rate: float, seed: int, args) -> dict:
    digits = load_digits()
    x_all = digits.data.astype(np.float32) / 16.0
    y_all = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x_all, y_all, test_size=0.25, stratify=y_all, random_state=seed)
    if args.quick:
        x_tr, y_tr = x_tr[:300], y_tr[:300]
    rng = np.random.default_rng(1000 + seed)
    y_noisy, is_flipped = flip_labels(y_tr, rate, rng, 10)
    n, k = len(y_noisy), int(is_flipped.sum())
    x, y = torch.from_numpy(x_tr), torch.from_numpy(y_noisy)
    x_test, y_test = torch.from_numpy(x_te), torch.from_numpy(y_te)
    ds = TensorDataset(x, y)
    timings: dict[str, float] = {}

    # 1. One training run, recording the dynamics (what the user does anyway).
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng():  # warm-up, so that first-call costs do not land in either timing
        make_train_fn(1, args.lr, Dynamics(num_samples=n))(make_model(), loader)
    dyn = Dynamics(num_samples=n)
    t0 = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make_model()
        make_train_fn(args.epochs, args.lr, dyn)(model, loader)
    timings["train_with_dynamics_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        make_train_fn(args.epochs, args.lr)(make_model(), loader)
    timings["train_without_dynamics_s"] = time.perf_counter() - t0
    in_sample = score(model, DataLoader(ds, batch_size=256), keep_probs=True, progress=False)

    # 2. K-fold out-of-sample probabilities of the same network.
    t0 = time.perf_counter()
    cv = cross_val_scores(
        make_model,
        ds,
        train_fn=make_train_fn(args.epochs, args.lr),
        folds=args.folds,
        batch_size=args.batch_size,
        seed=seed,
    )
    timings["cross_val_s"] = time.perf_counter() - t0
    probs = cv[[f"prob_{c}" for c in range(10)]].to_numpy(np.float64)
    probs = probs / probs.sum(1, keepdims=True)

    rankings: dict[str, dict] = {}

    def add(name: str, table, *, flags: bool = False, group: str) -> None:
        order, q = quality_by_index(table, n)
        entry = {"group": group, **ranking_metrics(order, q, is_flipped)}
        if flags:
            f = np.zeros(n, dtype=bool)
            f[table.loc[table["is_issue"], "index"].to_numpy()] = True
            entry.update(flag_metrics(f, is_flipped))
            entry["_flags"] = f
        entry["_order"] = order
        rankings[name] = entry

    add("hardmine dynamics: aum", label_issues(dyn, method="aum"), flags=True, group="one run")
    add("hardmine dynamics: mean label_prob", label_issues(dyn, method="self_confidence"), group="one run")
    add("in-sample label_prob (final model)", label_issues(in_sample, method="self_confidence"), group="one run")
    add("hardmine cv: self_confidence", label_issues(cv, method="self_confidence"), group=f"{args.folds}-fold NN")
    add("hardmine cv: normalized_margin", label_issues(cv, method="normalized_margin"), group=f"{args.folds}-fold NN")
    add(
        "hardmine cv: confident_learning",
        label_issues(cv, method="confident_learning"),
        flags=True,
        group=f"{args.folds}-fold NN",
    )
    naive_table = pd.DataFrame({"index": np.arange(n), "score": probs.max(1)}).sort_values(
        ["score", "index"], kind="mergesort"
    )
    add("naive max-softmax (cv probs)", naive_table, group=f"{args.folds}-fold NN")
    if CLEANLAB is not None:
        q = cl_quality(y_noisy, probs)
        cl_table = pd.DataFrame({"index": np.arange(n), "score": q}).sort_values(["score", "index"], kind="mergesort")
        add("cleanlab get_label_quality_scores", cl_table, group=f"{args.folds}-fold NN")
        mask = cl_find_label_issues(y_noisy, probs)
        ranked = cl_find_label_issues(y_noisy, probs, return_indices_ranked_by="self_confidence")
        rest = np.setdiff1d(np.arange(n), ranked)
        rest = rest[np.lexsort((rest, probs[rest, y_noisy[rest]]))]
        cl_order = np.concatenate([ranked, rest])
        flag_table = pd.DataFrame({"index": cl_order, "score": q[cl_order], "is_issue": mask[cl_order]})
        add("cleanlab find_label_issues", flag_table, flags=True, group=f"{args.folds}-fold NN")
        # AUROC of find_label_issues: its ranking is flagged-first, then self-confidence.
        rankings["cleanlab find_label_issues"]["auroc"] = float(
            roc_auc_score(is_flipped, mask.astype(float) + (1 - q) * 1e-3)
        )
        t0 = time.perf_counter()
        lr_probs = cross_val_predict(
            LogisticRegression(max_iter=2000),
            x_tr,
            y_noisy,
            cv=StratifiedKFold(args.folds, shuffle=True, random_state=seed),
            method="predict_proba",
        )
        timings["logreg_cross_val_s"] = time.perf_counter() - t0
        q_lr = cl_quality(y_noisy, lr_probs)
        lr_table = pd.DataFrame({"index": np.arange(n), "score": q_lr}).sort_values(
            ["score", "index"], kind="mergesort"
        )
        add(f"cleanlab get_label_quality_scores ({args.folds}-fold logreg)", lr_table, group="reference")
        lr_mask = cl_find_label_issues(y_noisy, lr_probs)
        rankings[f"cleanlab get_label_quality_scores ({args.folds}-fold logreg)"].update(
            {f"logreg find_label_issues {m}": v for m, v in flag_metrics(lr_mask, is_flipped).items()}
        )

    # 6. A long run with a larger learning rate, until the network memorises the noisy labels: one scoring pass
    #    of the final model now sees the flipped labels as learned; the dynamics still remember.
    memorise: dict[str, dict] = {}
    if args.memorise_epochs > 0:
        dyn_long = Dynamics(num_samples=n)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            long_model = make_model()
            make_train_fn(args.memorise_epochs, args.memorise_lr, dyn_long)(long_model, loader)
        final = score(long_model, DataLoader(ds, batch_size=256), keep_probs=True, progress=False)
        train_acc = float((final["pred"].to_numpy() == y_noisy).mean())
        for name, table, flags in (
            ("hardmine dynamics: aum", label_issues(dyn_long, method="aum"), True),
            ("hardmine dynamics: mean label_prob", label_issues(dyn_long, method="self_confidence"), False),
            ("in-sample label_prob (final model)", label_issues(final, method="self_confidence"), False),
        ):
            order, q = quality_by_index(table, n)
            entry = ranking_metrics(order, q, is_flipped)
            if flags:
                f = np.zeros(n, dtype=bool)
                f[table.loc[table["is_issue"], "index"].to_numpy()] = True
                entry.update(flag_metrics(f, is_flipped))
            memorise[name] = entry
        memorise["_train_accuracy_on_noisy_labels"] = {"value": train_acc}

    # 5. Retrain without what each method flags.
    retrain = {"no removal": np.ones(n, dtype=bool), "oracle (remove the flipped)": ~is_flipped}
    for name, entry in rankings.items():
        if name in args.retrain_skip:
            continue
        if "_flags" in entry:
            retrain[f"{name} [own flags]"] = ~entry["_flags"]
        if entry["group"] != "reference" and not name.startswith("cleanlab find"):
            keep = np.ones(n, dtype=bool)
            keep[entry["_order"][:k]] = False
            retrain[f"{name} [top k]"] = keep
    if args.quick:
        retrain = dict(list(retrain.items())[:3])
    accuracy = {}
    t0 = time.perf_counter()
    for name, keep in retrain.items():
        accuracy[name] = {
            "removed": int((~keep).sum()),
            "test_accuracy": train_and_test(
                x,
                y,
                x_test,
                y_test,
                torch.from_numpy(keep),
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=seed,
            ),
        }
    timings["retraining_s"] = time.perf_counter() - t0
    for entry in rankings.values():
        entry.pop("_flags", None)
        entry.pop("_order", None)
    return {
        "noise_rate": rate,
        "seed": seed,
        "n_train": n,
        "n_flipped": k,
        "n_test": len(y_te),
        "rankings": rankings,
        "retrain": accuracy,
        "memorise": memorise,
        "timings": timings,
    }


def aggregate(runs: list[dict]) -> dict:
    out: dict = {}
    for rate in sorted({r["noise_rate"] for r in runs}):
        rs = [r for r in runs if r["noise_rate"] == rate]
        agg_rank: dict = {}
        for name in rs[0]["rankings"]:
            keys = [k for k in rs[0]["rankings"][name] if k != "group"]
            agg_rank[name] = {"group": rs[0]["rankings"][name]["group"]}
            for key in keys:
                vals = [r["rankings"][name][key] for r in rs]
                agg_rank[name][key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
        agg_acc = {}
        for name in rs[0]["retrain"]:
            accs = [r["retrain"][name]["test_accuracy"] for r in rs]
            rem = [r["retrain"][name]["removed"] for r in rs]
            agg_acc[name] = {
                "test_accuracy": {"mean": float(np.mean(accs)), "std": float(np.std(accs))},
                "removed": float(np.mean(rem)),
            }
        agg_mem: dict = {}
        for name in rs[0]["memorise"]:
            agg_mem[name] = {
                key: {
                    "mean": float(np.mean([r["memorise"][name][key] for r in rs])),
                    "std": float(np.std([r["memorise"][name][key] for r in rs])),
                }
                for key in rs[0]["memorise"][name]
            }
        out[str(rate)] = {
            "rankings": agg_rank,
            "retrain": agg_acc,
            "memorise": agg_mem,
            "n_flipped": rs[0]["n_flipped"],
            "n_train": rs[0]["n_train"],
        }
    return out


def fmt(d: dict | None, key: str, digits: int = 3) -> str:
    if d is None or key not in d:
        return ""
    v = d[key]
    return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}" if isinstance(v, dict) else f"{v:.{digits}f}"


def markdown(agg: dict, meta: dict) -> str:
    lines = [
        f"# Label-issue benchmark (digits, {meta['seeds']} seeds, {meta['epochs']} epochs, {meta['folds']} folds)",
        "",
        f"Machine: {meta['machine']}. {meta['cleanlab_note']}",
        "",
    ]
    for rate, a in agg.items():
        lines += [
            f"## {float(rate):.0%} of {a['n_train']} training labels flipped (k = {a['n_flipped']})",
            "",
            "| method | evidence | AUROC | precision@k | flagged | flag precision | flag recall |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in a["rankings"].items():
            flagged = f"{r['flagged']['mean']:.1f}" if "flagged" in r else ""
            lines.append(
                f"| {name} | {r['group']} | {fmt(r, 'auroc')} | {fmt(r, 'precision_at_k')} | {flagged} | "
                f"{fmt(r, 'precision')} | {fmt(r, 'recall')} |"
            )
            if "logreg find_label_issues precision" in r:
                lines.append(
                    f"| cleanlab find_label_issues ({meta['folds']}-fold logreg) | reference | | | "
                    f"{r['logreg find_label_issues flagged']['mean']:.1f} | "
                    f"{fmt(r, 'logreg find_label_issues precision')} | "
                    f"{fmt(r, 'logreg find_label_issues recall')} |"
                )
        lines += ["", "| retrained without | removed | test accuracy |", "|---|---|---|"]
        for name, r in a["retrain"].items():
            lines.append(f"| {name} | {r['removed']:.1f} | {fmt(r, 'test_accuracy')} |")
        lines.append("")
        mem = dict(a.get("memorise", {}))
        if mem:
            acc = mem.pop("_train_accuracy_on_noisy_labels")["value"]
            lines += [
                f"Memorisation run ({meta['memorise_epochs']} epochs, lr {meta['memorise_lr']}): the final "
                f"model agrees with {acc['mean']:.1%} ± {acc['std']:.1%} of the noisy training labels.",
                "",
                "| method (memorisation run) | AUROC | precision@k | flagged | flag precision | flag recall |",
                "|---|---|---|---|---|---|",
            ]
            for name, r in mem.items():
                flagged = f"{r['flagged']['mean']:.1f}" if "flagged" in r else ""
                lines.append(
                    f"| {name} | {fmt(r, 'auroc')} | {fmt(r, 'precision_at_k')} | {flagged} | "
                    f"{fmt(r, 'precision')} | {fmt(r, 'recall')} |"
                )
            lines.append("")
    lines += [
        "Timings (s, mean over runs; noisy, the machine was shared): "
        + ", ".join(f"{k} {v:.2f}" for k, v in meta["timings"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (300 samples, 1 seed)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--memorise-epochs",
        type=int,
        default=200,
        help="epochs of the extra long run that memorises the noisy labels (0: skip it)",
    )
    parser.add_argument("--memorise-lr", type=float, default=3e-3)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this tiny MLP)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for label_issues.json and .md")
    args = parser.parse_args(argv)
    args.retrain_skip = set()
    if args.quick:
        args.seeds, args.epochs, args.folds, args.rates, args.memorise_epochs = 1, 3, 2, [0.1], 4
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    runs = []
    try:
        for rate in args.rates:
            for seed in range(args.seeds):
                runs.append(run_config(rate, seed, args))
                print(f"noise {rate:.0%} seed {seed}: done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    finally:
        torch.set_num_threads(threads)  # main() may run inside another process (the smoke test)
    agg = aggregate(runs)
    timings = {k: float(np.mean([r["timings"][k] for r in runs])) for k in runs[0]["timings"]}
    timings["total_s"] = time.perf_counter() - t0
    meta = {
        "machine": describe(machine(threads=args.threads)),
        "cleanlab_note": (
            f"cleanlab rows computed with {CLEANLAB} on the same probabilities."
            if CLEANLAB
            else "cleanlab is not installed: its rows are skipped (pip install cleanlab to add them)."
        ),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "memorise_epochs": args.memorise_epochs,
        "memorise_lr": args.memorise_lr,
        "folds": args.folds,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "timings": timings,
    }
    result = {"meta": meta, "aggregate": agg, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "label_issues_quick" if args.quick else "label_issues"
    paths = save_results(args.out, name, runs, markdown(agg, meta), threads=args.threads, meta=meta, aggregate=agg)
    print(paths[1].read_text())
    return result


if __name__ == "__main__":
    main()
