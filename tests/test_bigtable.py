"""The out-of-core ScoreDataset against the in-memory functions on the same rows (hm.split, summary, sweep, weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hardmine as hm
from hardmine.analysis.bigtable import ScoreDataset, open_scores
from hardmine.analysis.metrics import loss_quantiles
from hardmine.core.columns import GROUPS
from hardmine.core.frames import build_table

pytest.importorskip("duckdb")


def _scores(n: int, *, classes: int = 2, seed: int = 0, probs: bool = False, ties: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if ties:  # few distinct values, so hard_fraction must break ties by index
        p = np.round(p * 4) / 4
        p = p / p.sum(1, keepdims=True)
    p = p.astype(np.float32)
    label_prob = p[np.arange(n), label]
    pred = p.argmax(1)
    other = np.where(np.arange(classes)[None, :] == label[:, None], -1.0, p).max(1)
    cols = {
        "index": np.arange(n, dtype=np.int64),
        "label": label,
        "pred": pred,
        "confidence": p.max(1),
        "label_prob": label_prob,
        "margin": (label_prob - other).astype(np.float32),
        "entropy": (-(p * np.log(np.maximum(p, 1e-12))).sum(1)).astype(np.float32),
        "loss": (-np.log(np.maximum(label_prob, 1e-7))).astype(np.float32),
    }
    if probs:
        cols["probs"] = p
    table = build_table(cols, None)
    table.attrs["hardmine"] = {"num_classes": classes}
    return table


def _write(table: pd.DataFrame, folder: Path, parts: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(table), parts + 1).astype(int)
    for i in range(parts):
        part = table.iloc[bounds[i] : bounds[i + 1]].reset_index(drop=True)
        part.attrs = table.attrs
        hm.to_parquet(part, folder / f"part-{i:03d}.parquet")
    return folder


@pytest.fixture
def binary(tmp_path: Path) -> tuple[pd.DataFrame, ScoreDataset]:
    table = _scores(1000, ties=True)
    return table, open_scores(_write(table, tmp_path / "scores"), memory_limit="200MB", threads=1)


def _groups(t: pd.DataFrame) -> list[str]:
    return t["group"].astype(str).tolist()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"threshold": 0.3},
        {"threshold": 0.4, "by": "confidence"},
        {"threshold": 0.7, "by": "loss"},
        {"threshold": 0.0, "by": "margin"},
        {"hard_fraction": 0.1},
        {"hard_fraction": 0.37, "by": "loss"},
        {"hard_fraction": 0.0},
        {"hard_fraction": 1.0},
        {"threshold": "per_class"},
        {"threshold": "per_class", "by": "entropy"},
        {"threshold": 0.5, "hard_when": "higher"},
    ],
    ids=str,
)
def test_split_equals_in_memory(binary: tuple[pd.DataFrame, ScoreDataset], kwargs: dict) -> None:
    table, ds = binary
    expected = hm.split(table, **kwargs)
    got = ds.split(**kwargs)
    assert _groups(got.to_pandas()) == _groups(expected)
    assert got.counts() == expected["group"].value_counts().reindex(list(GROUPS)).to_dict()
    for key in ("by", "threshold", "hard_when", "positive", "hard_fraction"):
        assert got.settings.get(key) == expected.attrs["hardmine"].get(key), key


def test_hard_fraction_breaks_ties_by_index(binary: tuple[pd.DataFrame, ScoreDataset]) -> None:
    table, ds = binary
    assert table["label_prob"].nunique() < 20  # many ties
    got = ds.split(hard_fraction=0.25).to_pandas()
    assert (got["difficulty"] == "hard").sum() == 250
    assert _groups(got) == _groups(hm.split(table, hard_fraction=0.25))


def test_multiclass_split_summary_sweep(tmp_path: Path) -> None:
    table = _scores(600, classes=5, seed=3, probs=True)
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    with pytest.raises(ValueError, match="multi-class"):  # the metrics of a positive class need one
        ds.precision_recall_f1()
    with pytest.raises(ValueError, match="`positive`"):  # class 7 is not in the table: no positives
        ds.split(threshold=0.5, positive=7)
    for kwargs in ({"threshold": 0.3, "positive": [2, 4]}, {"threshold": "per_class", "positive": 3}):
        expected = hm.split(table, **kwargs)
        got = ds.split(**kwargs)
        assert _groups(got.to_pandas()) == _groups(expected)
        s, e = got.summary(), hm.summary(expected)
        pd.testing.assert_frame_equal(s.groups, e.groups, check_index_type=False, check_dtype=False, rtol=1e-6)
        pd.testing.assert_frame_equal(s.confusion, e.confusion)
        assert s.metrics == e.metrics
    pd.testing.assert_frame_equal(
        ds.threshold_sweep(positive=[1, 2], thresholds=33), hm.threshold_sweep(table, positive=[1, 2], thresholds=33)
    )


def test_summary_equals_in_memory(binary: tuple[pd.DataFrame, ScoreDataset]) -> None:
    table, ds = binary
    for kwargs in ({"threshold": 0.45}, {"hard_fraction": 0.2, "by": "loss"}):
        s = ds.split(**kwargs).summary()
        e = hm.summary(hm.split(table, **kwargs))
        pd.testing.assert_frame_equal(s.groups, e.groups, check_index_type=False, check_dtype=False, rtol=1e-6)
        pd.testing.assert_frame_equal(s.confusion, e.confusion)
        assert s.metrics == e.metrics
        assert s.settings["by"] == e.settings["by"] and s.settings["positive"] == e.settings["positive"]
        assert str(s).splitlines()[0] == str(e).splitlines()[0]
    # positive overrides the metrics only, as in hm.summary
    split = ds.split(threshold=0.5)
    assert split.summary(positive=0).metrics == hm.summary(hm.split(table, threshold=0.5), positive=0).metrics
    assert ds.precision_recall_f1() == hm.precision_recall_f1(table)


def test_threshold_sweep_equals_in_memory(binary: tuple[pd.DataFrame, ScoreDataset]) -> None:
    table, ds = binary
    for thresholds in (None, 7, [0.9, 0.1, 0.25, 0.5]):
        got = ds.threshold_sweep(thresholds=thresholds)
        expected = hm.threshold_sweep(table, thresholds=thresholds)
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs == expected.attrs


@pytest.mark.parametrize("only", ["hard", "easy", "positive", ["hard_negative", "easy_positive"], None])
def test_export_equals_in_memory_select(binary: tuple[pd.DataFrame, ScoreDataset], tmp_path: Path, only) -> None:
    table, ds = binary
    split = hm.split(table, hard_fraction=0.3)
    expected = hm.select(split, only).reset_index(drop=True)
    ds_split = ds.split(hard_fraction=0.3)
    pq = ds_split.export(tmp_path / "hard.parquet", only=only)
    csv = ds_split.export(tmp_path / "hard.csv", only=only)
    for got in (hm.read_parquet(pq), hm.read_csv(csv)):
        pd.testing.assert_frame_equal(got, expected, check_dtype=True)
    assert not list(tmp_path.glob("*.tmp"))


def test_export_and_to_pandas_need_a_split(binary: tuple[pd.DataFrame, ScoreDataset], tmp_path: Path) -> None:
    _, ds = binary
    with pytest.raises(ValueError, match="needs a split dataset"):
        ds.export(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="needs a split dataset"):
        ds.summary()
    with pytest.raises(ValueError, match="end in .csv or .parquet"):
        ds.split().export(tmp_path / "x.json")
    with pytest.raises(ValueError, match="Expected argument `only`"):
        ds.split().export(tmp_path / "x.csv", only="medium")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hard_weight": 8.0, "easy_weight": 0.5},
        {"hard_weight": {"positive": 5.0, "negative": 2.0}},
        {
            "hard_weight": {"hard_positive": 3.0, "hard_negative": 6.0},
            "easy_weight": {"easy_positive": 1.0, "easy_negative": 2.0},
        },
        {"by": "label_prob", "gamma": 2.0},
        {"by": "margin"},
        {"by": "loss", "mode": "softmax", "temperature": 0.5},
        {"by": "label_prob", "floor": 0.0},
        {"by": "label_prob", "max_ratio": 4.0},
    ],
    ids=str,
)
def test_weights_equal_in_memory(tmp_path: Path, kwargs: dict) -> None:
    table = _scores(500, seed=7)
    shuffled = table.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows out of index order
    shuffled.attrs = table.attrs
    ds = open_scores(_write(shuffled, tmp_path / "s"), threads=1).split(threshold=0.4)
    expected = hm.sample_weights(hm.split(table, threshold=0.4), balance=None, **kwargs).numpy()
    npy = ds.weights(tmp_path / "w.npy", balance=None, **kwargs)
    got = np.load(npy, mmap_mode="r")
    assert got.dtype == np.float32 and got.shape == (500,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    col = pd.read_parquet(ds.weights(tmp_path / "w.parquet", column="w", balance=None, **kwargs))
    assert col["index"].tolist() == shuffled["index"].tolist()
    np.testing.assert_allclose(col["w"].to_numpy(), expected[col["index"].to_numpy()], rtol=1e-6)


def test_weights_reject_what_needs_memory(binary: tuple[pd.DataFrame, ScoreDataset], tmp_path: Path) -> None:
    _, ds = binary
    with pytest.raises(ValueError, match="'rank' needs"):
        ds.weights(tmp_path / "w.npy", by="label_prob", mode="rank")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a split dataset"):
        ds.weights(tmp_path / "w.npy")
    with pytest.raises(ValueError, match="cover every polarity"):
        ds.split().weights(tmp_path / "w.npy", hard_weight={"positive": 2.0})


def test_weights_npy_needs_a_permutation(tmp_path: Path) -> None:
    table = _scores(50)
    table.loc[3, "index"] = 7  # 7 twice, 3 missing
    ds = open_scores(_write(table, tmp_path / "s", parts=1), threads=1)
    with pytest.raises(ValueError, match="3 is missing"):
        ds.weights(tmp_path / "w.npy", by="loss")
    assert not (tmp_path / "w.npy").exists()


def test_split_errors(binary: tuple[pd.DataFrame, ScoreDataset], tmp_path: Path) -> None:
    table, ds = binary
    with pytest.raises(ValueError, match="range of `label_prob`"):
        ds.split(threshold=1.5)
    with pytest.raises(ValueError, match="only one of"):
        ds.split(threshold=0.5, hard_fraction=0.1)
    with pytest.raises(ValueError, match="`hard_fraction`"):
        ds.split(hard_fraction=2.0)
    with pytest.raises(ValueError, match=r"needs the columns \['nope'\]"):
        ds.split(by="nope")
    nan = table.copy()
    nan.loc[[5, 9], "label_prob"] = np.nan
    nds = open_scores(_write(nan, tmp_path / "nan", parts=2), threads=1)
    with pytest.raises(ValueError, match=r"2 NaN value\(s\), at index \[5, 9\]"):
        nds.split()
    with pytest.raises(FileNotFoundError):
        open_scores(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found none"):
        open_scores(tmp_path / "empty")


def test_settings_and_len_come_from_the_files(binary: tuple[pd.DataFrame, ScoreDataset]) -> None:
    _, ds = binary
    assert len(ds) == 1000 and len(ds.files) == 3
    assert ds.settings == {"num_classes": 2}
    assert "1000 rows in 3 file(s)" in repr(ds)
    assert int(ds.split().relation().filter("difficulty = 'hard'").count("*").fetchall()[0][0]) == int(
        (ds.split().to_pandas()["difficulty"] == "hard").sum()
    )


# ---------------------------------------------------------------------- multi-class without a positive class


def _assert_summary_equal(got: hm.Summary, expected: hm.Summary) -> None:
    """Out-of-core and in-memory summaries agree: counts and confusions exactly, means and ratios to float error."""
    assert got.kind == expected.kind
    pd.testing.assert_frame_equal(got.groups, expected.groups, check_index_type=False, check_dtype=False, rtol=1e-6)
    pd.testing.assert_frame_equal(got.confusion, expected.confusion, check_index_type=False)
    assert got.metrics.keys() == expected.metrics.keys()
    for key, value in expected.metrics.items():
        rel = 1e-6 if key.startswith("mean_") else 1e-9  # pandas averages a float32 column in float32
        assert got.metrics[key] == pytest.approx(value, rel=rel, nan_ok=True), key
    if expected.per_class is None:
        assert got.per_class is None
    else:
        assert got.per_class is not None
        pd.testing.assert_frame_equal(got.per_class, expected.per_class, check_dtype=False, rtol=1e-6)
    for key in ("by", "threshold", "hard_when", "positive", "hard_fraction"):
        assert got.settings.get(key) == expected.settings.get(key), key


@pytest.mark.parametrize(
    "kwargs", [{}, {"threshold": 0.3}, {"hard_fraction": 0.25, "by": "loss"}, {"threshold": "per_class"}], ids=str
)
def test_multiclass_without_positive_is_easy_hard_only(tmp_path: Path, kwargs: dict) -> None:
    table = _scores(600, classes=5, seed=3, ties=True)
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    expected = hm.split(table, **kwargs)
    got = ds.split(**kwargs)
    assert "group" not in expected.columns and got.settings["positive"] is None
    frame = got.to_pandas()
    assert list(frame.columns) == list(expected.columns)  # difficulty only, last, as in memory
    assert frame["difficulty"].astype(str).tolist() == expected["difficulty"].astype(str).tolist()
    hard = int((expected["difficulty"] == "hard").sum())
    assert got.counts() == {"hard": hard, "easy": len(table) - hard}
    _assert_summary_equal(got.summary(), hm.summary(expected))
    names = [f"class{c}" for c in range(5)]
    _assert_summary_equal(got.summary(classes=names), hm.summary(expected, classes=names))
    for summarise in (lambda: got.summary(positive=2), lambda: hm.summary(expected, positive=2)):
        with pytest.raises(ValueError, match="group"):  # one-vs-rest metrics need a one-vs-rest split, both ways
            summarise()
    assert got.precision_recall_f1(positive=2) == hm.precision_recall_f1(table, positive=2)
    exported = hm.read_parquet(got.export(tmp_path / "h.parquet"))
    pd.testing.assert_frame_equal(exported, hm.select(expected, "hard").reset_index(drop=True))
    with pytest.raises(ValueError, match="no positive class"):
        got.export(tmp_path / "p.parquet", only="hard_positive")


def test_classification_report_equals_in_memory(tmp_path: Path) -> None:
    table = _scores(400, classes=4, seed=5)
    table.loc[table["label"] == 3, "pred"] = 0  # class 3 never predicted: zero precision, zero division
    table.attrs["hardmine"] = {"num_classes": 4, "classes": ["ant", "bee", "cat", "dog"]}
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    for got, expected in ((ds, table), (ds.split(threshold=0.4), hm.split(table, threshold=0.4))):
        per, conf, avg = got.classification_report()
        e_per, e_conf, e_avg = hm.classification_report(expected)
        assert "hard" in per.columns if got is not ds else "hard" not in per.columns
        pd.testing.assert_frame_equal(per, e_per, check_dtype=False, rtol=1e-9)
        pd.testing.assert_frame_equal(conf, e_conf)
        assert avg == pytest.approx(e_avg, rel=1e-12)
    assert per.index.tolist() == ["ant", "bee", "cat", "dog"] and per.loc["dog", "precision"] == 0.0
    # against scikit-learn, as hm.classification_report documents
    from sklearn.metrics import balanced_accuracy_score, f1_score

    assert avg["macro_f1"] == pytest.approx(f1_score(table["label"], table["pred"], average="macro"))
    assert avg["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(table["label"], table["pred"]))


# ---------------------------------------------------------------------- every task's table


def _task_table(task: str, n: int = 240) -> pd.DataFrame:
    """A real table of ``task`` from hm.score on a small model (the task is recorded in attrs)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.randn(n, 6)
    kwargs: dict = {"task": task}
    if task == "classification":
        model, data = torch.nn.Linear(6, 4), TensorDataset(x, torch.randint(0, 4, (n,)))
    elif task == "soft":
        model, data = torch.nn.Linear(6, 3), TensorDataset(x, torch.softmax(torch.randn(n, 3), dim=1))
    elif task == "multilabel":
        model, data = torch.nn.Linear(6, 3), TensorDataset(x, (torch.rand(n, 3) < 0.4).float())
    elif task == "regression":
        model, data = torch.nn.Linear(6, 1), TensorDataset(x, x[:, 0] + 0.5 * torch.randn(n))
    elif task == "regression_d":
        kwargs["task"] = "regression"
        model, data = torch.nn.Linear(6, 3), TensorDataset(x, torch.randn(n, 3))
    elif task == "unlabeled":
        model, data = torch.nn.Linear(6, 4), TensorDataset(x)
    elif task == "loss":
        model, data = torch.nn.Linear(6, 2), TensorDataset(x, torch.randn(n, 2))
        kwargs["loss_fn"] = torch.nn.L1Loss(reduction="none")
    else:  # segmentation: a row per image of 4 x 4 pixels
        model = torch.nn.Conv2d(2, 3, 1)
        data = TensorDataset(torch.randn(n, 2, 4, 4), torch.randint(0, 3, (n, 4, 4)))
    return hm.score(model, DataLoader(data, batch_size=64), progress=False, **kwargs)


_TASKS = ["classification", "soft", "multilabel", "regression", "regression_d", "unlabeled", "loss", "segmentation"]


@pytest.mark.parametrize("task", _TASKS)
def test_every_task_equals_in_memory(tmp_path: Path, task: str) -> None:
    table = _task_table(task)
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    assert ds.task == table.attrs["hardmine"]["task"]
    for kwargs in ({"hard_fraction": 0.2}, {"hard_fraction": 0.35, "by": "loss"} if "loss" in table else {}):
        expected = hm.split(table, **kwargs)
        got = ds.split(**kwargs)
        assert got.settings["by"] == expected.attrs["hardmine"]["by"]  # the task's default column
        frame = got.to_pandas()
        assert list(frame.columns) == list(expected.columns)
        assert frame["difficulty"].astype(str).tolist() == expected["difficulty"].astype(str).tolist()
        _assert_summary_equal(got.summary(), hm.summary(expected))
        exported = hm.read_parquet(got.export(tmp_path / "hard.parquet"))
        pd.testing.assert_frame_equal(exported, hm.select(expected, "hard").reset_index(drop=True))
        w = np.load(got.weights(tmp_path / "w.npy"))  # balance="auto", as in memory
        np.testing.assert_allclose(w, hm.sample_weights(expected).numpy(), rtol=1e-6)
    if "label" not in table.columns:
        with pytest.raises(ValueError, match=f"task '{ds.task}'"):
            ds.threshold_sweep()
        with pytest.raises(ValueError, match=f"task '{ds.task}'"):
            ds.split(threshold="per_class")
        with pytest.raises(ValueError, match="`positive`"):
            ds.split(hard_fraction=0.1, positive=1)
        with pytest.raises(ValueError, match="balance='label'"):
            ds.weights(tmp_path / "w.npy", by="loss" if "loss" in table else "confidence", balance="label")
    _assert_quantiles_equal(ds.loss_quantiles(), loss_quantiles(table))


def _assert_quantiles_equal(got: dict, expected: dict) -> None:
    """Quantiles and maximum exactly (the same order statistics, numpy's interpolation); the mean to float error."""
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if k != "loss_mean"} == {k: v for k, v in expected.items() if k != "loss_mean"}
    if expected:
        assert got["loss_mean"] == pytest.approx(expected["loss_mean"], rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 1001])
def test_loss_quantiles_are_exact(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    loss = rng.exponential(size=n).astype(np.float32)
    loss[: n // 3] = loss[0]  # ties
    table = pd.DataFrame({"index": np.arange(n), "loss": loss})
    ds = open_scores(_write(table, tmp_path / "s", parts=min(n, 3)), threads=1, memory_limit="50MB")
    _assert_quantiles_equal(ds.loss_quantiles(), loss_quantiles(table))
    values = np.sort(loss.astype(np.float64))  # by hand: linear interpolation between order statistics
    v = 0.9 * (n - 1)
    low, high = values[int(v)], values[min(int(v) + 1, n - 1)]
    assert ds.loss_quantiles()["loss_q90"] == pytest.approx(low + (high - low) * (v - int(v)), rel=1e-12)


def test_regression_metrics_and_default_threshold(tmp_path: Path) -> None:
    table = _task_table("regression")
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    expected = hm.regression_metrics(table)
    assert set(expected) >= {"mae", "rmse", "r2", "loss_q99"}
    assert ds.regression_metrics() == pytest.approx(expected, rel=1e-9)
    err = table["prediction"].to_numpy(np.float64) - table["target"].to_numpy(np.float64)  # by hand
    assert ds.regression_metrics()["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
    with pytest.raises(ValueError, match="no default threshold"):  # loss has none, in memory too
        ds.split()
    got, e = ds.split(threshold=1.0), hm.split(table, threshold=1.0)
    assert got.to_pandas()["difficulty"].astype(str).tolist() == e["difficulty"].astype(str).tolist()


def test_multilabel_report_equals_in_memory(tmp_path: Path) -> None:
    table = _task_table("multilabel")
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    for got, expected in ((ds, table), (ds.split(hard_fraction=0.3), hm.split(table, hard_fraction=0.3))):
        per, avg = got.multilabel_report(classes=["a", "b", "c"])
        e_per, e_avg = hm.multilabel_report(expected, classes=["a", "b", "c"])
        pd.testing.assert_frame_equal(per, e_per, check_dtype=False)
        assert avg == pytest.approx(e_avg, rel=1e-12)
    with pytest.raises(ValueError, match="multi-label table"):
        open_scores(_write(_scores(50), tmp_path / "c")).multilabel_report()


# ---------------------------------------------------------------------- balanced weights


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hard_weight": 8.0, "easy_weight": 0.5, "floor": 0.0},
        {"by": "label_prob", "gamma": 2.0},
        {"by": "loss", "mode": "softmax", "temperature": 0.5, "max_ratio": 10.0},
        {"balance": "polarity"},
        {"balance": "polarity", "by": "margin", "floor": 0.2},
        {"balance": "label", "by": "entropy", "floor": 0.0},
    ],
    ids=str,
)
def test_balanced_weights_equal_in_memory(tmp_path: Path, kwargs: dict) -> None:
    table = _scores(700, classes=4, seed=11)
    table.loc[table["label"] == 3, "label"] = 2  # imbalanced: class 2 twice as frequent, class 3 absent
    table.loc[:40, "label"] = 3
    shuffled = table.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled.attrs = table.attrs
    ds = open_scores(_write(shuffled, tmp_path / "s"), threads=1).split(threshold=0.4, positive=[1, 3])
    expected = hm.sample_weights(hm.split(table, threshold=0.4, positive=[1, 3]), **kwargs).numpy()
    got = np.load(ds.weights(tmp_path / "w.npy", **kwargs))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # the defining property, checked by hand: every class (or polarity) carries the same total weight
    key = table["label"] if kwargs.get("balance", "label") == "label" else table["label"].isin([1, 3])
    totals = pd.Series(got.astype(np.float64)).groupby(key.to_numpy()).sum()
    np.testing.assert_allclose(totals, totals.iloc[0], rtol=1e-5)
    assert got.max() == 1.0


def test_balanced_weights_zero_class(tmp_path: Path) -> None:
    """A class whose raw weights are all zero: uniform with a floor, zero without one (as in memory)."""
    table = _scores(300, classes=3, seed=2)
    table.loc[table["label"] == 0, "loss"] = 0.0
    ds = open_scores(_write(table, tmp_path / "s"), threads=1)
    for floor in (0.05, 0.0):
        expected = hm.sample_weights(table, by="loss", floor=floor).numpy()
        got = np.load(ds.weights(tmp_path / "w.npy", by="loss", floor=floor))
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert (got[table["label"] == 0] == (0.0 if floor == 0 else got[table["label"] == 0][0])).all()
    with pytest.raises(ValueError, match="balance='polarity'"):
        ds.weights(tmp_path / "w.npy", by="loss", balance="polarity")
    with pytest.raises(ValueError, match="`balance`"):
        ds.weights(tmp_path / "w.npy", by="loss", balance="class")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`gamma`"):
        ds.weights(tmp_path / "w.npy", by="loss", gamma="2")  # type: ignore[arg-type]


def test_an_exported_split_reopens_and_splits_again(binary: tuple[pd.DataFrame, ScoreDataset], tmp_path: Path) -> None:
    """An export carries its split columns and settings; splitting it again recomputes them, as hm.split does."""
    table, ds = binary
    (tmp_path / "all").mkdir()
    ds.split(threshold=0.5).export(tmp_path / "all" / "scores.parquet", only=None)
    again = open_scores(tmp_path / "all", threads=1)
    assert again.settings["positive"] == [1] and "group" in again.columns
    expected = hm.split(hm.split(table, threshold=0.5), hard_fraction=0.2)
    got = again.split(hard_fraction=0.2).to_pandas()
    assert sorted(got.columns) == sorted(expected.columns)  # (in memory a re-split keeps `group` where it was)
    assert got.columns.tolist()[-3:] == ["polarity", "difficulty", "group"]
    assert _groups(got) == _groups(expected)


def test_weights_old_keywords_warn_and_still_work(tmp_path: Path) -> None:
    table = _scores(120, seed=3)
    ds = open_scores(_write(table, tmp_path / "s"), threads=1).split(threshold=0.4)
    new = np.load(ds.weights(tmp_path / "new.npy", hard_weight=6.0, easy_weight=0.5, balance=None))
    with pytest.warns(DeprecationWarning, match=r"`hard=` of ScoreDataset.weights is deprecated.*use `hard_weight=`"):
        old = np.load(ds.weights(tmp_path / "old.npy", hard=6.0, easy=0.5, balance=None))
    np.testing.assert_array_equal(old, new)
    with pytest.raises(TypeError, match="both `hard_weight` and its old name `hard`"):
        ds.weights(tmp_path / "x.npy", hard_weight=2.0, hard=3.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'hardness'"):
        ds.weights(tmp_path / "x.npy", hardness=3.0)
