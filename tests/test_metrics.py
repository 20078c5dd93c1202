import json

import numpy as np
import pandas as pd
import pytest
from reference import GROUP_NAMES, reference_counts, reference_prf, reference_threshold_sweep
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from hardmine.analysis.metrics import Summary, confusion, positive_prob, precision_recall_f1, summary, threshold_sweep
from hardmine.analysis.splitting import split


def _table(n: int = 80, num_classes: int = 2, *, seed: int = 0, keep_probs: bool = False) -> pd.DataFrame:
    """A self-consistent score table: probabilities from random logits, pred their arg-max."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, num_classes)) * 2
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, num_classes, n)
    table = pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [str(i) for i in range(n)],
            "label": labels.astype(np.int64),
            "pred": probs.argmax(axis=1).astype(np.int64),
            "confidence": probs.max(axis=1).astype(np.float32),
            "label_prob": probs[np.arange(n), labels].astype(np.float32),
            "loss": -np.log(probs[np.arange(n), labels]).astype(np.float32),
        }
    )
    if keep_probs:
        for c in range(num_classes):
            table[f"prob_{c}"] = probs[:, c].astype(np.float32)
    table.attrs["hardmine"] = {"num_classes": num_classes}
    return table


# ---------------------------------------------------------------------------------- precision, recall, F1
@pytest.mark.parametrize(("num_classes", "positive"), [(2, None), (2, 0), (5, 3), (5, [1, 4])])
@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_f1_against_counting_loop_and_sklearn(num_classes, positive, seed):
    table = _table(num_classes=num_classes, seed=seed)
    classes = [1] if positive is None else [positive] if isinstance(positive, int) else positive
    m = precision_recall_f1(table, positive=positive)
    counts = reference_counts(table["label"].tolist(), table["pred"].tolist(), classes)
    assert {k: m[k] for k in counts} == counts
    precision, recall, f1 = reference_prf(counts["tp"], counts["fp"], counts["fn"])
    np.testing.assert_allclose([m["precision"], m["recall"], m["f1"]], [precision, recall, f1], rtol=1e-12)
    np.testing.assert_allclose(m["accuracy"], (counts["tp"] + counts["tn"]) / len(table), rtol=1e-12)
    assert m["support"] == counts["tp"] + counts["fn"]
    y_true = table["label"].isin(classes).to_numpy()
    y_pred = table["pred"].isin(classes).to_numpy()
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=True, zero_division=0)
    np.testing.assert_allclose([m["precision"], m["recall"], m["f1"]], [p, r, f], rtol=1e-12)


def test_zero_denominators_give_zero():
    never_called = pd.DataFrame({"label": [1, 1, 0], "pred": [0, 0, 0]})
    m = precision_recall_f1(never_called)
    assert (m["precision"], m["recall"], m["f1"], m["tp"], m["fn"]) == (0.0, 0.0, 0.0, 0, 2)
    no_positives = pd.DataFrame({"label": [0, 0], "pred": [0, 0]})
    m = precision_recall_f1(no_positives)
    assert (m["recall"], m["accuracy"], m["support"]) == (0.0, 1.0, 0)


def test_positive_defaults_to_the_split_settings():
    table = split(_table(num_classes=4, seed=2), threshold=0.5, positive=[2])
    assert precision_recall_f1(table) == precision_recall_f1(table, positive=2)
    with pytest.raises(ValueError, match=r"positive="):
        precision_recall_f1(_table(num_classes=4, seed=2))


# --------------------------------------------------------------------------------------------------- confusion
@pytest.mark.parametrize(("num_classes", "positive"), [(2, None), (5, 3), (5, [0, 2])])
def test_confusion_2x2_against_sklearn(num_classes, positive):
    table = _table(num_classes=num_classes, seed=3)
    classes = [1] if positive is None else [positive] if isinstance(positive, int) else positive
    got = confusion(table, positive=positive)
    y_true = table["label"].isin(classes).to_numpy()
    y_pred = table["pred"].isin(classes).to_numpy()
    expected = confusion_matrix(y_true, y_pred, labels=[True, False])
    np.testing.assert_array_equal(got.to_numpy(), expected)
    assert got.to_numpy().dtype == np.int64
    assert list(got.index) == ["positive", "negative"] and list(got.columns) == ["positive", "negative"]
    assert got.index.name == "ground truth" and got.columns.name == "predicted"


def test_confusion_by_class_against_sklearn():
    table = _table(n=120, num_classes=6, seed=4)
    table.loc[table["label"] == 5, "label"] = 9  # classes need not be 0..C-1
    got = confusion(table, by_class=True)
    classes = sorted(set(table["label"]) | set(table["pred"]))
    expected = confusion_matrix(table["label"], table["pred"], labels=classes)
    np.testing.assert_array_equal(got.to_numpy(), expected)
    assert list(got.index) == classes and list(got.columns) == classes
    assert got.to_numpy().sum() == len(table)


# --------------------------------------------------------------------------------------------- threshold sweep
def _check_sweep(sweep: pd.DataFrame, ref: list[dict]) -> None:
    assert list(sweep.columns) == ["threshold", "precision", "recall", "f1", "tp", "fp", "fn", "tn", "best"]
    expected = pd.DataFrame(ref)
    for col in ("tp", "fp", "fn", "tn"):
        np.testing.assert_array_equal(sweep[col].to_numpy(), expected[col].to_numpy(), err_msg=col)
        assert sweep[col].dtype == np.int64
    for col in ("threshold", "precision", "recall", "f1"):
        np.testing.assert_allclose(sweep[col].to_numpy(), expected[col].to_numpy(), rtol=1e-12, err_msg=col)
    best = int(np.argmax(expected["f1"].to_numpy()))  # the first (lowest threshold) of the best
    assert sweep["best"].tolist() == [i == best for i in range(len(ref))]
    assert sweep.attrs["best_threshold"] == pytest.approx(ref[best]["threshold"])
    assert sweep.attrs["best_f1"] == pytest.approx(ref[best]["f1"])


def test_threshold_sweep_binary_from_label_prob_against_loop():
    table = _table(n=90, seed=5)
    sweep = threshold_sweep(table)
    assert len(sweep) == 101
    p1 = np.where(table["label"] == 1, table["label_prob"], 1 - table["label_prob"].astype(np.float64))
    ref = reference_threshold_sweep(p1.tolist(), (table["label"] == 1).tolist(), sweep["threshold"].tolist())
    _check_sweep(sweep, ref)
    np.testing.assert_allclose(sweep["threshold"].to_numpy(), np.arange(101) / 100, atol=1e-12)
    assert sweep.attrs["positive"] == [1]


def test_threshold_sweep_multiclass_from_probs_against_loop():
    table = _table(n=100, num_classes=4, seed=6, keep_probs=True)
    thresholds = [0.9, 0.1, 0.5, 0.3, 0.0, 1.0]
    sweep = threshold_sweep(table, positive=[1, 3], thresholds=thresholds)
    p = (table["prob_1"].astype(np.float64) + table["prob_3"].astype(np.float64)).tolist()
    ref = reference_threshold_sweep(p, table["label"].isin([1, 3]).tolist(), sorted(thresholds))
    _check_sweep(sweep, ref)
    even = threshold_sweep(table, positive=2, thresholds=5)
    np.testing.assert_allclose(even["threshold"].to_numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])
    ref = reference_threshold_sweep(
        table["prob_2"].astype(np.float64).tolist(), (table["label"] == 2).tolist(), [0.0, 0.25, 0.5, 0.75, 1.0]
    )
    _check_sweep(even, ref)


def test_best_threshold_on_a_hand_made_case():
    # p(positive): positives 0.9 and 0.6, negatives 1 - 0.3 = 0.7 and 1 - 0.8 = 0.2.
    # t=0.1: TP 2 FP 2 -> F1 2/3; t=0.5: TP 2 FP 1 -> 0.8; t=0.65: TP 1 FP 1 -> 0.5; t=0.95: nothing called -> 0.
    table = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.6, 0.3, 0.8]})
    sweep = threshold_sweep(table, thresholds=[0.65, 0.1, 0.95, 0.5])
    assert sweep["threshold"].tolist() == [0.1, 0.5, 0.65, 0.95]
    np.testing.assert_allclose(sweep["f1"].to_numpy(), [2 / 3, 0.8, 0.5, 0.0], rtol=1e-12)
    assert sweep.attrs["best_threshold"] == 0.5 and sweep["best"].tolist() == [False, True, False, False]
    # On a tie the lowest threshold wins.
    tie = threshold_sweep(table, thresholds=[0.45, 0.5, 0.55])
    assert tie.attrs["best_threshold"] == 0.45 and tie["best"].tolist() == [True, False, False]


def test_positive_prob_and_sweep_errors():
    binary = _table(n=10, seed=7)
    np.testing.assert_allclose(
        positive_prob(binary, positive=1),
        np.where(binary["label"] == 1, binary["label_prob"], 1 - binary["label_prob"]),
        rtol=1e-6,
    )
    multi = _table(n=10, num_classes=3, seed=7)
    with pytest.raises(ValueError, match=r"keep_probs=True"):
        threshold_sweep(multi, positive=2)
    with pytest.raises(ValueError, match=r"keep_probs=True"):
        positive_prob(binary, positive=0)  # class 0's probability needs the prob columns
    with_probs = _table(n=10, num_classes=3, seed=7, keep_probs=True).drop(columns="prob_2")
    with pytest.raises(ValueError, match=r"positive classes \[2\] have no prob_<class> column"):
        positive_prob(with_probs, positive=2)
    for bad in (1, [], [0.5, float("nan")]):
        with pytest.raises(ValueError, match=r"`thresholds`"):
            threshold_sweep(binary, thresholds=bad)
    with pytest.raises(ValueError, match=r"threshold_sweep needs the columns \['label'\]"):
        threshold_sweep(binary.drop(columns="label"))
    with pytest.raises(TypeError, match=r"pandas DataFrame for confusion, but got list"):
        confusion([1, 2])
    with pytest.raises(ValueError, match=r"confusion needs the columns \['pred'\]"):
        confusion(binary.drop(columns="pred"))


# ------------------------------------------------------------------------------------------------------ summary
def test_summary_counts_confusion_and_metrics():
    table = split(_table(n=70, seed=8), threshold=0.6)
    s = summary(table)
    assert isinstance(s, Summary)
    assert list(s.groups.index) == list(GROUP_NAMES)
    counts = {g: int((table["group"] == g).sum()) for g in GROUP_NAMES}
    assert s.groups["count"].to_dict() == counts
    assert s.groups["count"].sum() == 70 and all(c > 0 for c in counts.values())
    np.testing.assert_allclose(s.groups["fraction"].to_numpy(), np.array(list(counts.values())) / 70)
    for g in GROUP_NAMES:
        rows = table[table["group"] == g]
        np.testing.assert_allclose(s.groups.loc[g, "mean_label_prob"], rows["label_prob"].mean(), rtol=1e-6)
        np.testing.assert_allclose(s.groups.loc[g, "mean_loss"], rows["loss"].mean(), rtol=1e-6)
    pd.testing.assert_frame_equal(s.confusion, confusion(table))
    assert s.metrics == precision_recall_f1(table)
    assert s.settings["by"] == "label_prob" and s.settings["threshold"] == 0.6 and s.settings["positive"] == [1]
    json.dumps(s.to_dict())  # plain Python, JSON-ready


def test_summary_text_and_html():
    table = split(_table(n=50, seed=9), threshold=0.6)
    s = summary(table)
    m = s.metrics
    text = str(s)
    assert text == repr(s)
    assert text.startswith("hardmine summary: 50 samples; hard = label_prob below 0.6; positive class(es) = [1]")
    for g in GROUP_NAMES:
        assert g in text
    assert f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}" in text
    html = s._repr_html_()
    assert html.startswith("<div><b>hardmine summary</b>: 50 samples") and html.count("<table") == 3
    assert f"{m['f1']:.3f}" in html and "hard_positive" in html
    by_fraction = str(summary(split(_table(n=50, seed=9), by="loss", hard_fraction=0.2)))
    assert "hard = the 20% with the highest loss" in by_fraction
    per_class = str(summary(split(_table(n=50, seed=9), threshold="per_class")))
    assert "per-class thresholds" in per_class


def test_summary_with_empty_groups_and_positive_override():
    table = split(_table(n=30, seed=10), threshold=0.0)  # nothing is hard
    s = summary(table)
    assert s.groups.loc["hard_positive", "count"] == 0 and s.groups.loc["hard_negative", "count"] == 0
    assert np.isnan(s.groups.loc["hard_positive", "mean_label_prob"])
    other = summary(table, positive=0)
    assert other.metrics == precision_recall_f1(table, positive=0)
    with pytest.raises(ValueError, match=r"call hm.split first.*\['group'\]"):
        summary(_table(n=5, seed=11))


def test_summary_renders_empty_groups_with_a_dash_not_nan():
    t = split(
        pd.DataFrame({"index": [0, 1, 2], "label": [1, 0, 0], "pred": [1, 0, 0], "label_prob": [0.9, 0.8, 0.3]}),
        threshold=0.5,
    )
    s = summary(t)
    assert s.groups.loc["hard_positive", "count"] == 0
    row = next(line for line in str(s).splitlines() if line.startswith("hard_positive"))
    assert row.split()[-1] == "-" and "nan" not in str(s).lower()
    assert "<td>-</td>" in s._repr_html_() and "NaN" not in s._repr_html_()


def _multiclass_table(n: int = 200, classes: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.6, label, rng.integers(0, classes, n))
    pred[pred == classes - 1] = 0  # the last class is never predicted: zero division in its precision
    t = pd.DataFrame(
        {
            "index": np.arange(n),
            "label": label,
            "pred": pred,
            "label_prob": rng.random(n).astype(np.float32),
            "confidence": rng.random(n).astype(np.float32),
            "loss": rng.random(n).astype(np.float32) * 3,
        }
    )
    t.attrs["hardmine"] = {"num_classes": classes}
    return t


def test_multiclass_summary_equals_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, classification_report, confusion_matrix

    table = split(_multiclass_table(), threshold=0.3)
    names = ["ant", "bee", "cat", "dog", "eel"]
    s = summary(table, classes=names)
    assert s.kind == "multiclass" and s.settings["positive"] is None
    ref = classification_report(table["label"], table["pred"], output_dict=True, zero_division=0)
    for c, name in enumerate(names):
        row = s.per_class.loc[name]
        assert row["support"] == ref[str(c)]["support"]
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert row[ours] == pytest.approx(ref[str(c)][theirs], abs=1e-12)
        rows = table["label"] == c
        assert row["hard"] == int((table.loc[rows, "difficulty"] == "hard").sum())
        assert row["mean_label_prob"] == pytest.approx(table.loc[rows, "label_prob"].mean(), rel=1e-6)
    for avg in ("macro", "weighted"):
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert s.metrics[f"{avg}_{ours}"] == pytest.approx(ref[f"{avg} avg"][theirs], abs=1e-12)
    assert s.metrics["accuracy"] == pytest.approx(ref["accuracy"])
    assert s.metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(table["label"], table["pred"]))
    np.testing.assert_array_equal(s.confusion.to_numpy(), confusion_matrix(table["label"], table["pred"]))
    assert list(s.confusion.index) == names and s.confusion.index.name == "ground truth"
    assert s.groups["count"].tolist() == [
        int((table["difficulty"] == "hard").sum()),
        int((table["difficulty"] == "easy").sum()),
    ]
    text = str(s)
    assert "per class" in text and "ant" in text and f"balanced_accuracy {s.metrics['balanced_accuracy']:.3f}" in text
    page = s._repr_html_()
    assert "<table" in page and "eel" in page


def test_to_dict_confusion_is_ground_truth_first_and_strict_json():
    import json

    # Issue 11: to_dict()["confusion"] was transposed and held NaN for empty groups.
    t = pd.DataFrame(
        {"index": range(5), "label": [1, 1, 1, 0, 0], "pred": [1, 1, 0, 0, 0], "label_prob": [0.9, 0.8, 0.3, 0.9, 0.9]}
    )
    d = summary(split(t, threshold=0.1)).to_dict()  # nothing is hard: empty groups, NaN means
    assert d["confusion"]["positive"] == {"positive": 2, "negative": 1}  # ground truth positive: 2 found, 1 missed
    assert d["confusion"]["negative"] == {"positive": 0, "negative": 2}
    assert d["groups"][0]["group"] == "hard_positive" and d["groups"][0]["mean_label_prob"] is None
    json.loads(json.dumps(d, allow_nan=False))
    m = summary(split(_multiclass_table(n=50), threshold=0.3), classes=list("abcde")).to_dict()
    json.loads(json.dumps(m, allow_nan=False))
    table = _multiclass_table(n=50)
    assert m["confusion"]["a"]["b"] == int(((table["label"] == 0) & (table["pred"] == 1)).sum())
