"""Straightforward, loop-based references that the tests compare hardmine against.

Each ``reference_<fn>`` does the obvious thing one sample (or one threshold) at a time, in float64 Python arithmetic,
the way the classic tutorial does it: ``model(x.unsqueeze(0))``, a softmax, and hand-written formulas. They are slow
on purpose and share no code with hardmine.

Also the shared parametrization lists: ``DEVICES`` (CUDA skipped when absent) and ``DTYPES``, and ``CUDA_MARKS``, the
marks of every test that needs a CUDA device: ``pytest -m cuda`` selects them all, and with ``HARDMINE_REQUIRE_CUDA=1``
(``.ci/gpu`` sets it) they run instead of skipping, so that a machine without a working GPU fails them.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

#: The marks of a test that needs a CUDA device: selected by ``-m cuda``, skipped without one unless
#: ``HARDMINE_REQUIRE_CUDA=1``. Use as ``pytest.param(..., marks=CUDA_MARKS)`` or ``@needs_cuda``.
CUDA_MARKS = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available() and os.environ.get("HARDMINE_REQUIRE_CUDA") != "1",
        reason="needs a CUDA device (HARDMINE_REQUIRE_CUDA=1 runs it anyway)",
    ),
]


def needs_cuda(test: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a test that needs a CUDA device with :data:`CUDA_MARKS`."""
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=CUDA_MARKS)]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
MEASURE_NAMES = ("confidence", "label_prob", "margin", "entropy", "loss")
GROUP_NAMES = ("hard_positive", "easy_positive", "hard_negative", "easy_negative")
LOWER_IS_HARDER = {"confidence": True, "label_prob": True, "margin": True, "entropy": False, "loss": False}


# ---------------------------------------------------------------------------------------------------- measures
def tiny_bert(num_labels: int, max_length: int, **config: Any) -> torch.nn.Module:
    """A 1-layer, 16-wide ``BertForSequenceClassification`` over 50 token ids, built from a config (no download).

    ``config`` adds or overrides ``BertConfig`` fields (``initializer_range=0.5``...). Seed torch before calling.
    """
    from transformers import BertConfig, BertForSequenceClassification

    settings: dict[str, Any] = {
        "vocab_size": 50,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": max_length,
        "num_labels": num_labels,
    }
    return BertForSequenceClassification(BertConfig(**{**settings, **config}))


def class_logits_of(row: Sequence[float]) -> list[float]:
    """One sample's logits as a list of class logits: a single binary logit ``z`` is the two classes ``(0, z)``."""
    row = [float(v) for v in row]
    return [0.0, row[0]] if len(row) == 1 else row


def reference_sample_measures(row: Sequence[float], label: int) -> dict[str, float]:
    """Every measure of one sample from its logits (a list) and label, by hand in float64.

    A single logit is read as binary with ``p(1) = sigmoid(z)``; several as a softmax.
    """
    row = [float(v) for v in row]
    if len(row) == 1:
        p1 = 1.0 / (1.0 + math.exp(-row[0])) if row[0] >= 0 else math.exp(row[0]) / (1.0 + math.exp(row[0]))
        probs = [1.0 - p1, p1]
        z = [0.0, row[0]]
    else:
        z = row
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        probs = [e / total for e in exps]
    top = max(z)
    log_sum_exp = top + math.log(sum(math.exp(v - top) for v in z))
    pred = max(range(len(probs)), key=lambda c: (probs[c], -c))  # the first of the largest
    others = [probs[c] for c in range(len(probs)) if c != label]
    return {
        "pred": pred,
        "confidence": max(probs),
        "label_prob": probs[label],
        "margin": probs[label] - max(others),
        "entropy": -sum(p * math.log(p) for p in probs if p > 0),
        "loss": log_sum_exp - z[label],
        "probs": probs,
    }


def reference_measures(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """:func:`reference_sample_measures` for every row: lists of per-sample values, plus ``probs`` ``(N, C)``."""
    rows = logits.detach().cpu().double().reshape(logits.shape[0], -1).tolist()
    ys = [int(v) for v in labels.detach().cpu().reshape(-1).tolist()]
    out: dict[str, list[Any]] = {k: [] for k in ("pred", *MEASURE_NAMES, "probs")}
    for row, y in zip(rows, ys, strict=True):
        m = reference_sample_measures(row, y)
        for k in out:
            out[k].append(m[k])
    return out


def has_tie(row: Sequence[float]) -> bool:
    """True when the two largest class logits are equal (argmax is then ambiguous)."""
    z = sorted(class_logits_of(row), reverse=True)
    return z[0] == z[1]


# ------------------------------------------------------------------------------------------------------ scoring
def reference_score(
    model: torch.nn.Module,
    dataset: Any,
    *,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    output: Callable[[Any], torch.Tensor] | None = None,
) -> dict[str, list[Any]]:
    """The tutorial loop: for each dataset index, ``model(x.unsqueeze(0))``, softmax, the measures by hand.

    Works on a deep copy of ``model`` in eval mode, so the caller's model is not touched. ``unpack(sample)`` gives
    ``(x, y)`` for one sample (default: ``sample[0], sample[1]``); ``output(out)`` gives the logits from the model's
    output (default: the output itself).
    """
    net = copy.deepcopy(model).eval()
    out: dict[str, list[Any]] = {k: [] for k in ("index", "label", "pred", *MEASURE_NAMES, "probs")}
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            x, y = unpack(sample) if unpack is not None else (sample[0], sample[1])
            o = net(x.unsqueeze(0))
            logits = output(o) if output is not None else o
            row = logits.double().reshape(-1).tolist()  # (1,), (1, 1), (1, C) -> one row
            label = int(float(y))
            m = reference_sample_measures(row, label)
            out["index"].append(i)
            out["label"].append(label)
            for k in ("pred", *MEASURE_NAMES, "probs"):
                out[k].append(m[k])
    return out


# -------------------------------------------------------------------------------------------------------- split
def reference_split(
    values: Sequence[float],
    labels: Sequence[int],
    *,
    positive: Sequence[int],
    threshold: float | None = None,
    per_class: bool = False,
    hard_fraction: float | None = None,
    lower_is_harder: bool = True,
) -> dict[str, list[str]]:
    """Polarity, difficulty and group of each sample, one sample at a time.

    Exactly one of ``threshold`` (hard strictly beyond it), ``per_class`` (each class's threshold is the mean score
    of its samples) or ``hard_fraction`` (the ``round(q * N)`` hardest, ties broken by index) applies.
    """
    n = len(values)
    hard: list[bool] = []
    if hard_fraction is not None:
        k = int(round(hard_fraction * n))
        # Harder first; on equal scores the lower index first.
        key = (lambda i: (values[i], i)) if lower_is_harder else (lambda i: (-values[i], i))
        chosen = set(sorted(range(n), key=key)[:k])
        hard = [i in chosen for i in range(n)]
    else:
        cuts: list[float] = []
        if per_class:
            for i in range(n):
                same = [values[j] for j in range(n) if labels[j] == labels[i]]
                cuts.append(sum(same) / len(same))
        else:
            if threshold is None:
                raise ValueError("reference_split needs one of `threshold`, `per_class` or `hard_fraction`.")
            cuts = [threshold] * n
        for i in range(n):
            hard.append(values[i] < cuts[i] if lower_is_harder else values[i] > cuts[i])
    polarity = ["positive" if labels[i] in positive else "negative" for i in range(n)]
    difficulty = ["hard" if h else "easy" for h in hard]
    group = [f"{d}_{p}" for d, p in zip(difficulty, polarity, strict=True)]
    return {"polarity": polarity, "difficulty": difficulty, "group": group}


# ------------------------------------------------------------------------------------------------------ metrics
def reference_counts(labels: Sequence[int], preds: Sequence[int], positive: Sequence[int]) -> dict[str, int]:
    """TP, FP, FN, TN of the positive classes (one-vs-rest), counted one sample at a time."""
    tp = fp = fn = tn = 0
    for y, p in zip(labels, preds, strict=True):
        actual, called = y in positive, p in positive
        if actual and called:
            tp += 1
        elif called:
            fp += 1
        elif actual:
            fn += 1
        else:
            tn += 1
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def reference_prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts, a zero denominator giving 0.0."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def reference_threshold_sweep(
    positive_probs: Sequence[float], actual: Sequence[bool], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Precision, recall, F1 and counts at each threshold (called positive when ``p >= t``), one threshold at a time."""
    rows = []
    for t in thresholds:
        tp = fp = fn = tn = 0
        for p, a in zip(positive_probs, actual, strict=True):
            called = p >= t
            tp += a and called
            fp += (not a) and called
            fn += a and not called
            tn += (not a) and not called
        precision, recall, f1 = reference_prf(tp, fp, fn)
        rows.append(
            {"threshold": t, "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        )
    return rows
