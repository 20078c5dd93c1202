"""The same bad value gets the same error everywhere: one table of public arguments, checked with the same bad values.

Each row of :data:`ARGS` names a public callable, one of its arguments and the kind of value it takes (the checker of
:mod:`hardmine.core.validate` it goes through). Every row is called with the bad values of its kind (a list, a bool,
NaN, a float for an integer, a string for a flag) and with its own out-of-range value, and must raise the error type
and message shape of that kind: ``TypeError`` for a wrong type, ``ValueError`` for a bad value, the message naming
the argument, what was expected and what came in. Add a row for each new public argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import hardmine as hm
from hardmine.analysis.dynamics import Dynamics, dynamics_regions
from hardmine.analysis.labels import cross_val_scores, issue_indices, label_issues
from hardmine.analysis.metrics import threshold_sweep
from hardmine.analysis.plot_dense import hardest_rows
from hardmine.analysis.splitting import split
from hardmine.app.demo import run_demo
from hardmine.app.html_report import hardest, report_html, report_text
from hardmine.app.images import eval_transform

SCORES = pd.DataFrame(
    {
        "index": np.arange(6),
        "id": [str(i) for i in range(6)],
        "label": [1, 1, 1, 0, 0, 0],
        "pred": [1, 0, 1, 0, 1, 0],
        "label_prob": np.array([0.9, 0.3, 0.8, 0.7, 0.2, 0.6], dtype=np.float32),
        "loss": np.array([0.1, 1.2, 0.2, 0.4, 1.6, 0.5], dtype=np.float32),
    }
)
SPLIT = split(SCORES, threshold=0.5)
SUMMARY = pd.DataFrame(
    {"mean_label_prob": [0.9, 0.2], "variability": [0.05, 0.1], "correctness": [1.0, 0.0], "aum": [1.0, -1.0]}
)
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
ISSUES = label_issues(PROBS, np.array([0, 0, 0]))
IMAGES = [(torch.rand(1, 4, 4), 0) for _ in range(6)]
DATASET = torch.utils.data.TensorDataset(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
MODEL = torch.nn.Linear(4, 3)
LOADER = torch.utils.data.DataLoader(DATASET, batch_size=4)
LOGITS = torch.randn(6, 3)
TARGETS = torch.tensor([0, 1, 2, 0, 1, 2])


@dataclass(frozen=True)
class Arg:
    """One public argument: ``call(**{name: value})`` calls the public function with that value and good others."""

    where: str
    call: Callable[..., Any]
    name: str
    kind: str  # "number", "fraction", "integer", "boolean" or "choice": the checker of hardmine.core.validate
    out_of_range: tuple[Any, str] | None = None  # a value of the right type outside the range, and its message


def _score(**kw: Any) -> Any:
    return hm.score(MODEL, LOADER, **{"progress": False, **kw})


def _plot() -> Any:
    pytest.importorskip("matplotlib")
    return hm.plot


ARGS: list[Arg] = [
    # hardmine.analysis: split, select, export
    Arg("split", lambda **kw: split(SCORES, **kw), "threshold", "number", (1.5, r"must be in \[0, 1\], got 1.5")),
    Arg("split", lambda **kw: split(SCORES, **kw), "hard_fraction", "fraction", (-0.1, r"must be in \[0, 1\]")),
    Arg("split", lambda **kw: split(SCORES, threshold=0.5, **kw), "hard_when", "choice", ("up", r"'lower', 'higher'")),
    Arg(
        "to_csv",
        lambda tmp, **kw: hm.to_csv(SPLIT, tmp / "t.csv", **kw),
        "chunksize",
        "integer",
        (0, r"must be >= 1, got 0"),
    ),
    Arg("threshold_sweep", lambda **kw: threshold_sweep(SCORES, **kw), "thresholds", "count", (1, r">= 2, got 1")),
    # training dynamics and label issues
    Arg("Dynamics", lambda **kw: Dynamics(**{"num_samples": 3, **kw}), "num_samples", "integer", (0, r">= 1, got 0")),
    Arg("Dynamics", lambda **kw: Dynamics(num_samples=3, **kw), "keep_history", "boolean"),
    Arg(
        "dynamics_regions",
        lambda **kw: dynamics_regions(SUMMARY, **kw),
        "mean_label_prob_threshold",
        "fraction",
        (1.5, r"must be in \[0, 1\], got 1.5"),
    ),
    Arg(
        "dynamics_regions",
        lambda **kw: dynamics_regions(SUMMARY, **kw),
        "variability_threshold",
        "number",
        (0.6, r"must be in \[0, 0.5\], got 0.6"),
    ),
    Arg(
        "label_issues",
        lambda **kw: label_issues(SUMMARY.assign(index=[0, 1], label=0), **kw),
        "aum_threshold",
        "number",
    ),
    Arg(
        "label_issues", lambda **kw: label_issues(PROBS, np.array([0, 0, 0]), **kw), "method", "choice", ("x", "'aum'")
    ),
    Arg("issue_indices", lambda **kw: issue_indices(ISSUES, **kw), "top", "number", (1.5, r"in \(0, 1\), got 1.5")),
    Arg(
        "cross_val_scores",
        lambda **kw: cross_val_scores(lambda: torch.nn.Linear(4, 3), DATASET, train_fn=lambda m, d: None, **kw),
        "folds",
        "integer",
        (1, r">= 2, got 1"),
    ),
    Arg(
        "cross_val_scores",
        lambda **kw: cross_val_scores(lambda: torch.nn.Linear(4, 3), DATASET, train_fn=lambda m, d: None, **kw),
        "batch_size",
        "integer",
        (0, r">= 1, got 0"),
    ),
    # plots
    Arg("label_prob_histogram", lambda **kw: _plot().label_prob_histogram(SPLIT, **kw), "bins", "integer", (0, ">= 1")),
    Arg("label_prob_histogram", lambda **kw: _plot().label_prob_histogram(SPLIT, **kw), "log", "boolean"),
    Arg("label_prob_histogram", lambda **kw: _plot().label_prob_histogram(SPLIT, **kw), "threshold", "number"),
    Arg("confusion plot", lambda **kw: _plot().confusion(SPLIT, **kw), "normalize", "boolean"),
    Arg("pr_curve", lambda **kw: _plot().pr_curve(SCORES, **kw), "kind", "choice", ("roc", r"'threshold', 'pr'")),
    Arg("gallery", lambda **kw: _plot().gallery(SPLIT, IMAGES, **kw), "n", "integer", (0, r">= 1, got 0")),
    Arg("gallery", lambda **kw: _plot().gallery(SPLIT, IMAGES, **kw), "ncols", "integer", (0, r">= 1, got 0")),
    Arg(
        "data_map",
        lambda **kw: _plot().data_map(SUMMARY, **kw),
        "mean_label_prob_threshold",
        "fraction",
        (-0.5, r"must be in \[0, 1\], got -0.5"),
    ),
    Arg("hardest_rows", lambda **kw: hardest_rows(SCORES, **{"k": 2, **kw}), "k", "integer", (0, r">= 1, got 0")),
    # the application
    Arg("hardest", lambda **kw: hardest(SCORES, **kw), "n", "integer", (-1, r">= 0, got -1")),
    Arg("report_text", lambda **kw: report_text(SPLIT, **kw), "top", "integer", (-1, r">= 0, got -1")),
    Arg("report_html", lambda **kw: report_html(SPLIT, **kw), "top", "integer", (-1, r">= 0, got -1")),
    Arg("report_html", lambda **kw: report_html(SPLIT, **kw), "thumbnail_size", "integer", (0, r">= 1, got 0")),
    Arg("eval_transform", lambda **kw: eval_transform(**{"image_size": 8, **kw}), "image_size", "integer", (0, ">= 1")),
    Arg("run_demo", lambda tmp, **kw: run_demo(tmp / "demo", **kw), "noise", "fraction", (1.0, r"in \[0, 1\), got 1")),
    Arg(
        "run_demo", lambda tmp, **kw: run_demo(tmp / "demo", **kw), "positive", "integer", (10, r"in \[0, 9\], got 10")
    ),
    Arg("run_demo", lambda tmp, **kw: run_demo(tmp / "demo", **kw), "progress", "boolean"),
    # the scoring pass
    Arg("score", lambda **kw: _score(**kw), "batch_size", "integer", (0, ">= 1, got 0")),
    Arg("score", lambda **kw: _score(**kw), "keep_probs", "boolean"),
    Arg("score", lambda **kw: hm.score(MODEL, LOADER, **kw), "progress", "boolean"),
    Arg("ScoreOptions", lambda **kw: hm.ScoreOptions(**kw), "checkpoint_every", "integer", (0, ">= 1, got 0")),
    # feeding back: weights, samplers, the miner, losses, selection
    Arg("sample_weights", lambda **kw: hm.sample_weights(SPLIT, **kw), "hard_weight", "number", (-3, ">= 0, got -3")),
    Arg("sample_weights", lambda **kw: hm.sample_weights(SPLIT, **kw), "floor", "fraction", (1.5, r"in \[0, 1\]")),
    Arg("HardSampler", lambda **kw: hm.HardSampler(torch.ones(6), **kw), "num_samples", "integer", (0, ">= 1, got 0")),
    Arg("HardMiner", lambda **kw: hm.HardMiner(MODEL, LOADER, **kw), "hard_weight", "number", (-3, ">= 0, got -3")),
    Arg(
        "HardMiner",
        lambda **kw: hm.HardMiner(MODEL, LOADER, by="label_prob", **kw),
        "threshold",
        "number",
        (1.5, r"must be in \[0, 1\], got 1.5 \(the range of `label_prob`\)"),
    ),
    Arg("HardMiner", lambda **kw: hm.HardMiner(MODEL, LOADER, **kw), "floor", "fraction", (1.5, r"in \[0, 1\]")),
    Arg("HardMiner", lambda **kw: hm.HardMiner(MODEL, LOADER, **kw), "warmup_epochs", "integer", (-1, ">= 0, got -1")),
    Arg("HardMiner", lambda **kw: hm.HardMiner(MODEL, LOADER, **kw), "indices", "boolean"),
    Arg("focal_loss", lambda **kw: hm.focal_loss(LOGITS, TARGETS, **kw), "gamma", "number", (-1, ">= 0, got -1")),
    Arg(
        "select_batch",
        lambda **kw: hm.select_batch(MODEL, DATASET.tensors[0], TARGETS, **{"keep": 2, **kw}),
        "beta",
        "number",
        (0, "> 0, got 0"),
    ),
    Arg("LossHistory", lambda **kw: hm.LossHistory(**kw), "size", "integer", (0, ">= 1, got 0")),
    Arg("PrioritySampler", lambda **kw: hm.PrioritySampler(10, **kw), "pressure", "number", (0.5, ">= 1, got 0.5")),
    Arg(
        "PrioritySampler",
        lambda **kw: hm.PrioritySampler(10, **kw),
        "exclude",
        "number",
        (1.0, r"in \[0, 1\), got 1.0"),
    ),
    Arg("PrioritySampler", lambda **kw: hm.PrioritySampler(10, **kw), "draws", "integer", (0, ">= 1, got 0")),
    Arg("PrioritySampler", lambda **kw: hm.PrioritySampler(10, **kw), "refresh", "integer", (0, ">= 1, got 0")),
    Arg("PrioritySampler", lambda **kw: hm.PrioritySampler(10, **kw), "warmup_epochs", "integer", (-1, ">= 0, got -1")),
    Arg(
        "ObservedScores",
        lambda **kw: hm.ObservedScores(**{"num_samples": 4, **kw}),
        "half_life",
        "number",
        (0, "> 0, got 0"),
    ),
    Arg("SegmentationTask", lambda **kw: hm.SegmentationTask(**kw), "ignore_index", "integer"),
    Arg(
        "SegmentationTask",
        lambda **kw: hm.SegmentationTask(**kw),
        "hard_threshold",
        "fraction",
        (0.0, r"in \(0, 1\], got 0.0"),
    ),
    Arg("report", lambda **kw: hm.report(SPLIT, **kw), "thumbnail_size", "integer", (4, ">= 8, got 4")),
    Arg("report", lambda **kw: hm.report(SPLIT, **kw), "max_images", "integer", (-1, ">= 0, got -1")),
    Arg("ohem_loss", lambda **kw: hm.ohem_loss(LOGITS, TARGETS, **kw), "min_kept", "integer", (-1, ">= 1, got -1")),
]

#: The bad values of each kind, the error they raise and the message after the argument's name.
BAD: dict[str, list[tuple[Any, type[Exception], str]]] = {
    "number": [
        ([0.5], TypeError, r"must be a real number, got list \[0.5\]"),
        (True, TypeError, r"must be a real number, got bool True"),
        (math.nan, ValueError, r"must be a finite number, got nan"),
    ],
    "integer": [
        ([1], TypeError, r"must be an integer, got list \[1\]"),
        (True, TypeError, r"must be an integer, got bool True"),
        (2.5, TypeError, r"must be an integer, got float 2.5"),
    ],
    "count": [(True, TypeError, r"must be an integer, got bool True")],  # an int count, or a sequence of values
    "boolean": [
        ("yes", TypeError, r"must be True or False, got str 'yes'"),
        (1, TypeError, r"must be True or False, got int 1"),
        (None, TypeError, r"must be True or False, got NoneType None"),
    ],
    "choice": [([1], ValueError, r"must be one of .*, got \[1\]")],
}
BAD["fraction"] = BAD["number"]


def _call(arg: Arg, tmp_path: Any, value: Any) -> Any:
    needs_tmp = arg.call.__code__.co_varnames[:1] == ("tmp",)
    return arg.call(tmp_path, **{arg.name: value}) if needs_tmp else arg.call(**{arg.name: value})


CASES = [
    pytest.param(arg, value, error, message, id=f"{arg.where}-{arg.name}-{value!r}")
    for arg in ARGS
    for value, error, message in BAD[arg.kind]
]
RANGES = [pytest.param(arg, id=f"{arg.where}-{arg.name}-{arg.out_of_range[0]!r}") for arg in ARGS if arg.out_of_range]


@pytest.mark.parametrize(("arg", "value", "error", "message"), CASES)
def test_a_bad_value_gets_the_error_of_its_kind(arg: Arg, value: Any, error: type[Exception], message: str, tmp_path):
    with pytest.raises(error, match=rf"^`{arg.name}` {message}"):
        _call(arg, tmp_path, value)


@pytest.mark.parametrize("arg", RANGES)
def test_a_value_out_of_range_is_a_value_error_naming_the_argument(arg: Arg, tmp_path):
    assert arg.out_of_range is not None
    value, message = arg.out_of_range
    with pytest.raises(ValueError, match=rf"^`{arg.name}` must .*{message.removeprefix('must ')}"):
        _call(arg, tmp_path, value)


def test_the_issue_examples_agree():
    """The issue's example: a list threshold is a TypeError in split, as the same value is anywhere else."""
    with pytest.raises(TypeError, match=r"^`threshold` must be a real number, got list \[0.5\]$"):
        split(SCORES, threshold=[0.5])
    with pytest.raises(TypeError, match=r"^`threshold` must be a real number, got list \[0.5\]$"):
        _plot().label_prob_histogram(SPLIT, threshold=[0.5])


def test_every_kind_has_bad_values_and_every_row_a_known_kind():
    assert {arg.kind for arg in ARGS} <= set(BAD)
    assert all(BAD[kind] for kind in BAD)
