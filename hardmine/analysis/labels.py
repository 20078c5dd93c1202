"""Hard or mislabelled? Rank samples by how likely their ground-truth label is wrong.

Two sources of evidence, one function, :func:`label_issues`:

- **training dynamics** (a :class:`hardmine.Dynamics` or its summary): the area under the margin (Pleiss et al.
  2020), recorded during the one training run the user does anyway, no K-fold retraining;
- **out-of-sample probabilities** (from :func:`cross_val_scores`, or any ``(N, C)`` held-out probabilities): the
  self-confidence, the normalised margin and confident learning's per-class thresholds, as cleanlab computes them.

Scores follow cleanlab's convention: a *label quality* where lower means more likely mislabelled. Results are tables
sorted most suspicious first, and go through :func:`hardmine.split` and :func:`hardmine.to_csv` like any table.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from hardmine.analysis._renames import mean_label_prob_column
from hardmine.core import validate
from hardmine.core.columns import prob_columns
from hardmine.core.data import dataset_ids

__all__ = [
    "LABEL_ISSUE_METHODS",
    "confident_thresholds",
    "cross_val_scores",
    "issue_indices",
    "label_issues",
    "label_quality",
]

Method = Literal["aum", "self_confidence", "normalized_margin", "confident_learning"]
#: The methods :func:`label_issues` knows.
LABEL_ISSUE_METHODS: tuple[str, ...] = ("aum", "self_confidence", "normalized_margin", "confident_learning")
_PROB_METHODS = ("self_confidence", "normalized_margin", "confident_learning")
_DYN_METHODS = ("aum", "self_confidence")


def confident_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Confident learning's per-class thresholds: ``t_j`` = mean of ``p_j`` over the samples labelled ``j``.

    Args:
        probs: float array ``(N, C)`` of out-of-sample class probabilities.
        labels: int array ``(N,)`` of given labels in ``[0, C)``.

    Returns:
        Float64 array ``(C,)``; a class no sample is labelled with gets threshold 1 (never confident).

    Example:
        >>> confident_thresholds(np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]]), np.array([0, 0, 1]))
        array([0.8, 0.8])
    """
    num_classes = probs.shape[1]
    sums = np.zeros(num_classes, dtype=np.float64)
    np.add.at(sums, labels, probs[np.arange(len(labels)), labels])
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, sums / np.maximum(counts, 1.0), 1.0)


def label_quality(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    method: Literal["self_confidence", "normalized_margin"] = "self_confidence",
) -> np.ndarray:
    """Per-sample label quality from out-of-sample probabilities (lower: more likely mislabelled), as in cleanlab.

    - ``self_confidence``: ``p[label]``.
    - ``normalized_margin``: ``p[label] - max_{k != label} p[k]``, mapped to ``[0, 1]`` as ``(x + 1) / 2``.

    Args:
        probs: float array ``(N, C)``.
        labels: int array ``(N,)`` in ``[0, C)``.
        method: ``"self_confidence"`` or ``"normalized_margin"``.

    Returns:
        Float64 array ``(N,)`` in ``[0, 1]``.

    Example:
        >>> label_quality(np.array([[0.7, 0.2, 0.1]]), np.array([1]), method="normalized_margin")
        array([0.25])
    """
    rows = np.arange(len(labels))
    p_label = probs[rows, labels].astype(np.float64)
    if method == "self_confidence":
        return p_label
    if method == "normalized_margin":
        others = probs.astype(np.float64, copy=True)
        others[rows, labels] = -np.inf
        return (p_label - others.max(axis=1) + 1.0) / 2.0
    raise ValueError(f"Expected argument `method` to be 'self_confidence' or 'normalized_margin', but got {method!r}.")


def _as_probs_and_labels(data: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    if isinstance(data, pd.DataFrame):
        cols = prob_columns(data)
        if not cols:
            raise ValueError(
                f"Expected a table with `prob_0 .. prob_<C-1>` columns (hm.score(..., keep_probs=True)) "
                f"or a dynamics summary with an `aum` column, but the columns are {list(data.columns)}."
            )
        if [int(c[5:]) for c in cols] != list(range(len(cols))):
            raise ValueError(f"Expected prob columns prob_0 .. prob_{len(cols) - 1} without gaps, but got {cols}.")
        probs = data[cols].to_numpy(dtype=np.float64)
        if labels is None:
            if "label" not in data.columns:
                raise ValueError("Expected a `label` column in the table, or pass `labels=`.")
            labels = data["label"].to_numpy()
        return probs, _check_labels(labels, probs), data
    if isinstance(data, Tensor):
        data = data.detach().cpu().double().numpy()
    probs = np.asarray(data, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"Expected argument `probs` of shape (N, C) with C >= 2, but got shape {probs.shape}.")
    if labels is None:
        raise ValueError("Expected argument `labels` (N,) together with a probability array.")
    return probs, _check_labels(labels, probs), None


def _check_labels(labels: Any, probs: np.ndarray) -> np.ndarray:
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != probs.shape[0]:
        raise ValueError(f"Expected argument `labels` of shape ({probs.shape[0]},), but got shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"Expected argument `labels` to hold integer class indices, but got dtype {y.dtype}.")
    bad = (y < 0) | (y >= probs.shape[1])
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ValueError(
            f"Expected `labels` to be class indices in [0, {probs.shape[1]}), but rows {rows} have "
            f"labels {y[rows].tolist()}."
        )
    if not np.isfinite(probs).all():
        rows = np.flatnonzero(~np.isfinite(probs).all(axis=1))[:10].tolist()
        raise ValueError(f"Expected finite probabilities, but rows {rows} have NaN or infinite values.")
    return y.astype(np.int64)


def _best_other(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return others.argmax(axis=1).astype(np.int64)


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["score", "index"]
    asc = [True, True]
    if "is_issue" in table.columns:
        keys, asc = ["is_issue", *keys], [False, *asc]
    out = table.sort_values(keys, ascending=asc, kind="mergesort").reset_index(drop=True)
    return out


def label_issues(
    data: Any,
    labels: Any = None,
    *,
    method: Method | None = None,
    aum_threshold: float = 0.0,
) -> pd.DataFrame:
    """Rank samples by how likely their label is wrong, most suspicious first.

    Accepted inputs:

    - a :class:`hardmine.Dynamics` or its :meth:`~hardmine.Dynamics.summary` (a table with ``aum`` and ``confidence``):
      methods ``"aum"`` (default: the area under the margin, Pleiss et al. 2020) and ``"self_confidence"`` (the mean
      over epochs of the label's probability);
    - a table with ``prob_0 .. prob_{C-1}`` and ``label`` columns (``hm.score(..., keep_probs=True)`` on held-out data,
      or :func:`cross_val_scores`), or an ``(N, C)`` probability array/tensor with ``labels`` ``(N,)``: methods
      ``"self_confidence"`` (default), ``"normalized_margin"`` and ``"confident_learning"``.

    Methods and their ``score`` (lower = more suspicious) and ``is_issue`` flag:

    - ``aum``: ``score`` = the area under the margin (mean over epochs of the label's logit minus the largest other
      logit); ``is_issue`` when ``aum < aum_threshold`` (default 0: on average the label lost to another class).
    - ``self_confidence``: ``score`` = probability of the label; no flag.
    - ``normalized_margin``: ``score`` = ``(p_label - max_other + 1) / 2``; no flag.
    - ``confident_learning``: per-class thresholds ``t_j`` = mean ``p_j`` over samples labelled ``j``; the classes a
      sample is *confidently* in are those with ``p_k >= t_k`` (minus 1e-6); its likely true class is that class
      (or, when several, the arg-max of ``p``); ``is_issue`` when a likely true class exists and differs from the
      label. This is cleanlab's ``filter_by="confident_learning"`` rule (the off-diagonal of the confident joint);
      ``score`` = self-confidence, and flagged samples come first.

    Args:
        data: a Dynamics, a dynamics summary, a table with prob columns, or probabilities ``(N, C)``.
        labels: int ``(N,)``; required with a probability array, optional with a table (default: its ``label``).
        method: one of :data:`LABEL_ISSUE_METHODS`; ``None`` picks ``"aum"`` for dynamics and
            ``"self_confidence"`` for probabilities.
        aum_threshold: the AUM below which ``method="aum"`` flags a sample.

    Returns:
        A DataFrame, most suspicious first (ties by index): ``index`` (int64), ``id`` (when the input has one),
        ``label`` (int64), ``suggested_label`` (int64: the most likely class other than the label; for
        ``confident_learning`` flagged samples, the likely true class), ``score`` (float64) and, for ``aum`` and
        ``confident_learning``, ``is_issue`` (bool). ``attrs["hardmine"]["method"]`` names the method.

    Raises:
        ValueError: for an unknown method, a method that does not fit the input, missing columns, labels outside
            ``[0, C)`` or non-finite probabilities.
        TypeError: for an input of another type.

    Example:
        >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.95, 0.05]])
        >>> label_issues(probs, np.array([0, 0, 1, 1]))[["index", "suggested_label", "score"]]
           index  suggested_label  score
        0      3                0   0.05
        1      2                0   0.70
        2      1                1   0.80
        3      0                1   0.90
    """
    validate.optional(validate.choice, "method", method, options=LABEL_ISSUE_METHODS)
    aum_threshold = validate.number("aum_threshold", aum_threshold)
    from hardmine.analysis.dynamics import (
        Dynamics,  # dynamics imports nothing from here; kept local to stay on one floor
    )

    if isinstance(data, Dynamics):
        data = data.summary()
    if isinstance(data, pd.DataFrame) and "aum" in data.columns and not prob_columns(data):
        return _dynamics_issues(data, method or "aum", aum_threshold)
    if not isinstance(data, (pd.DataFrame, np.ndarray, Tensor, list, tuple)):
        raise TypeError(
            f"Expected argument `data` to be a Dynamics, a DataFrame or an (N, C) array, but got {type(data).__name__}."
        )
    method = method or "self_confidence"
    if method not in _PROB_METHODS:
        raise ValueError(
            f"Method {method!r} needs training dynamics (a Dynamics or its summary); with probabilities "
            f"use one of {_PROB_METHODS}."
        )
    probs, y, table = _as_probs_and_labels(data, labels)
    index = (
        table["index"].to_numpy(dtype=np.int64)
        if table is not None and "index" in table.columns
        else np.arange(len(y), dtype=np.int64)
    )
    suggested = _best_other(probs, y)
    out: dict[str, Any] = {"index": index}
    if table is not None and "id" in table.columns:
        out["id"] = table["id"].to_numpy()
    out["label"] = y
    if method == "confident_learning":
        thresholds = confident_thresholds(probs, y)
        confident = probs >= thresholds - 1e-6
        n_conf = confident.sum(axis=1)
        guess = np.where(n_conf > 1, probs.argmax(axis=1), confident.argmax(axis=1))
        is_issue = (n_conf > 0) & (guess != y)
        out["suggested_label"] = np.where(is_issue, guess, suggested).astype(np.int64)
        out["score"] = label_quality(probs, y, method="self_confidence")
        out["is_issue"] = is_issue
        settings: dict[str, Any] = {"method": method, "thresholds": thresholds.tolist()}
    else:
        out["suggested_label"] = suggested
        out["score"] = label_quality(probs, y, method=method)  # type: ignore[arg-type]
        settings = {"method": method}
    result = _ranked(pd.DataFrame(out))
    result.attrs["hardmine"] = settings
    return result


def issue_indices(issues: pd.DataFrame, *, top: int | float | None = None) -> np.ndarray:
    """The dataset indices of suspected label issues, e.g. to keep them out of hard-example up-weighting.

    Args:
        issues: a table from :func:`label_issues` (sorted most suspicious first).
        top: ``None`` for the rows flagged ``is_issue`` (methods ``aum`` and ``confident_learning``); an int ``k``
            for the ``k`` most suspicious rows; a float in ``(0, 1)`` for that fraction of the rows (rounded).

    Returns:
        Int64 array of dataset indices, sorted ascending.

    Raises:
        ValueError: when ``top`` is None and the table has no ``is_issue`` column, or ``top`` is out of range.

    Example:
        >>> issue_indices(label_issues(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 0, 0])), top=1)
        array([1])
    """
    if not isinstance(issues, pd.DataFrame) or "index" not in issues.columns:
        raise ValueError("Expected argument `issues` to be a table from hm.label_issues with an `index` column.")
    if top is None:
        if "is_issue" not in issues.columns:
            method = issues.attrs.get("hardmine", {}).get("method")
            raise ValueError(
                f"Method {method!r} flags nothing (no `is_issue` column): pass `top=` (a count or a "
                "fraction), or use method 'aum' or 'confident_learning'."
            )
        chosen = issues.loc[issues["is_issue"].to_numpy(dtype=bool), "index"]
    elif isinstance(top, numbers.Integral) and not isinstance(top, bool):
        chosen = issues["index"].iloc[: validate.integer("top", top, min=0)]
    else:  # a fraction of the ranked samples; a bool, a string or a list is a TypeError here
        fraction = validate.number("top", top, min=0.0, max=1.0, min_open=True, max_open=True)
        chosen = issues["index"].iloc[: int(round(fraction * len(issues)))]
    return np.sort(chosen.to_numpy(dtype=np.int64))


def _dynamics_issues(summary: pd.DataFrame, method: str, aum_threshold: float) -> pd.DataFrame:
    if method not in _DYN_METHODS:
        raise ValueError(
            f"Method {method!r} needs out-of-sample probabilities (prob_ columns or an (N, C) array); "
            f"with training dynamics use one of {_DYN_METHODS}."
        )
    column = "aum" if method == "aum" else (mean_label_prob_column(summary, "label_issues") or "mean_label_prob")
    for col in ("index", "label", column):
        if col not in summary.columns:
            raise ValueError(
                f"Expected a `{col}` column in the dynamics summary, but the columns are {list(summary.columns)}."
            )
    score = summary[column].to_numpy(dtype=np.float64)
    seen = ~np.isnan(score)
    table = summary.loc[seen]
    out: dict[str, Any] = {"index": table["index"].to_numpy(dtype=np.int64)}
    if "id" in table.columns:
        out["id"] = table["id"].to_numpy()
    out["label"] = table["label"].to_numpy(dtype=np.int64)
    out["suggested_label"] = (
        table["runner_up"].to_numpy(dtype=np.int64)
        if "runner_up" in table.columns
        else np.full(len(table), -1, dtype=np.int64)
    )
    out["score"] = score[seen]
    if method == "aum":
        out["is_issue"] = score[seen] < aum_threshold
    result = _ranked(pd.DataFrame(out))
    result.attrs["hardmine"] = {"method": method, "source": "dynamics", "unseen_dropped": int((~seen).sum())}
    if method == "aum":
        result.attrs["hardmine"]["aum_threshold"] = aum_threshold
    return result


def _dataset_labels(dataset: Dataset) -> np.ndarray | None:
    targets = getattr(dataset, "targets", None)
    if targets is None and isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        targets = dataset.tensors[1]
    if targets is None and isinstance(dataset, Subset):
        inner = _dataset_labels(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    if targets is None:
        return None
    y = targets.detach().cpu().numpy() if isinstance(targets, Tensor) else np.asarray(targets)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return None
    return y.astype(np.int64)


def _fold_assignment(n: int, folds: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    if labels is None:
        order = rng.permutation(n)
        fold[order] = np.arange(n) % folds
        return fold
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return fold


def cross_val_scores(
    make_model: Callable[[], nn.Module],
    dataset: Dataset,
    *,
    train_fn: Callable[[nn.Module, DataLoader], Any],
    folds: int = 5,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    labels: Sequence[int] | np.ndarray | Tensor | None = None,
) -> pd.DataFrame:
    """Out-of-sample scores and class probabilities for every sample, by K-fold cross-validation.

    The dataset's indices are split into ``folds`` folds (stratified by label when the labels are readable: a
    ``targets`` attribute, a ``TensorDataset``'s second tensor, or ``labels=``; else a plain random split). For each
    fold, ``model = make_model()`` is trained with ``train_fn(model, train_loader)`` on the other folds, then
    :func:`hardmine.score` scores the held-out fold with ``keep_probs=True``. ``make_model`` and ``train_fn``
    (and the held-out scoring) run under a forked torch RNG seeded from ``seed`` and the fold, so the result is
    deterministic for a deterministic ``train_fn``, and the caller's global RNG is left as it was.

    Args:
        make_model: builds a fresh, untrained model (on the device ``train_fn`` uses).
        dataset: a map-style dataset of ``(input, label)`` samples.
        train_fn: trains the model in place on the given loader (shuffled, ``batch_size``); its return is ignored.
        folds: number of folds, ``>= 2``.
        batch_size: batch size of the training and held-out loaders.
        seed: seeds the fold split, the training loader's shuffle and the forked RNG.
        device: passed to :func:`hardmine.score`.
        labels: the labels ``(N,)`` for a stratified split when the dataset does not expose them.

    Returns:
        The score table of :func:`hardmine.score` over the whole dataset, in dataset index order, with
        ``prob_0 .. prob_{C-1}`` and a ``fold`` column (int64, the fold each sample was held out in). Feed it to
        :func:`label_issues`.

    Raises:
        ValueError: for ``folds`` < 2 or more folds than samples, or ``labels`` of the wrong length.
    """
    from hardmine.scoring.engine import score  # scoring is a floor-2 engine; imported where it is used

    n = len(dataset)  # type: ignore[arg-type]
    folds = validate.integer("folds", folds, min=2)
    if folds > n:
        raise ValueError(f"`folds` must be <= {n} (the number of samples), got {folds}")
    batch_size = validate.integer("batch_size", batch_size, min=1)
    seed = validate.integer("seed", seed)
    y: np.ndarray | None
    if labels is not None:
        y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        if y.shape != (n,):
            raise ValueError(f"Expected argument `labels` of shape ({n},), but got shape {y.shape}.")
        y = y.astype(np.int64)
    else:
        y = _dataset_labels(dataset)
    fold_of = _fold_assignment(n, folds, y, seed)
    ids = dataset_ids(dataset)
    tables = []
    for k in range(folds):
        held = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + k)
        train_loader = DataLoader(Subset(dataset, train.tolist()), batch_size=batch_size, shuffle=True, generator=gen)
        held_loader = DataLoader(Subset(dataset, held.tolist()), batch_size=batch_size, shuffle=False)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed * 1_000_003 + k)
            model = make_model()
            train_fn(model, train_loader)
            # Iterating a DataLoader draws its base seed from the global RNG: score inside the fork too.
            table = score(model, held_loader, keep_probs=True, progress=False, device=device)
        table["index"] = held[table["index"].to_numpy()]
        table["id"] = [str(i) for i in table["index"]] if ids is None else [ids[i] for i in table["index"]]
        table["fold"] = np.int64(k)
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    out = out.sort_values("index", kind="mergesort").reset_index(drop=True)
    out["id"] = out["id"].astype(object)
    out.attrs["hardmine"] = {"source": "cross_val_scores", "folds": folds, "seed": seed}
    return out
