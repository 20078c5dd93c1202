import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import GROUP_NAMES, LOWER_IS_HARDER, MEASURE_NAMES, reference_split

from hardmine.analysis.splitting import positive_classes, split
from hardmine.core.columns import COLUMNS, default_threshold, harder_when, value_range

CATEGORIES = {
    "polarity": ["positive", "negative"],
    "difficulty": ["hard", "easy"],
    "group": list(GROUP_NAMES),
}


def _scores(n: int = 60, num_classes: int = 2, *, seed: int = 0) -> pd.DataFrame:
    """A score table with values in each measure's range (not a consistent model output, which split never needs)."""
    rng = np.random.default_rng(seed)
    lp = rng.random(n).astype(np.float32)
    table = pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [f"s{i}" for i in range(n)],
            "label": rng.integers(0, num_classes, n).astype(np.int64),
            "pred": rng.integers(0, num_classes, n).astype(np.int64),
            "confidence": np.maximum(lp, rng.random(n).astype(np.float32)),
            "label_prob": lp,
            "margin": (rng.random(n) * 2 - 1).astype(np.float32),
            "entropy": (rng.random(n) * math.log(num_classes)).astype(np.float32),
            "loss": -np.log(lp),
        }
    )
    table.attrs["hardmine"] = {"num_classes": num_classes}
    return table


def _check_against(table: pd.DataFrame, ref: dict) -> None:
    for col in ("polarity", "difficulty", "group"):
        assert table[col].tolist() == ref[col], col


THRESHOLDS = {"confidence": 0.7, "label_prob": 0.5, "margin": 0.1, "entropy": 0.4, "loss": 0.9}


@pytest.mark.parametrize("by", MEASURE_NAMES)
def test_threshold_against_reference(by):
    scores = _scores(seed=1)
    table = split(scores, threshold=THRESHOLDS[by], by=by)
    ref = reference_split(
        scores[by].tolist(),
        scores["label"].tolist(),
        positive=[1],
        threshold=THRESHOLDS[by],
        lower_is_harder=LOWER_IS_HARDER[by],
    )
    _check_against(table, ref)
    assert 0 < (table["difficulty"] == "hard").sum() < len(table)
    settings_ = table.attrs["hardmine"]
    assert settings_["by"] == by and settings_["threshold"] == THRESHOLDS[by]
    assert settings_["hard_when"] == ("lower" if LOWER_IS_HARDER[by] else "higher")
    assert settings_["positive"] == [1] and settings_["num_classes"] == 2  # the score table's attrs are kept


def test_direction_higher_is_harder_for_loss_and_entropy():
    scores = pd.DataFrame({"label": [0, 1, 0, 1], "loss": [0.1, 2.0, 0.7, 0.7], "entropy": [0.6, 0.1, 0.3, 0.2]})
    assert split(scores, threshold=0.7, by="loss")["difficulty"].tolist() == ["easy", "hard", "easy", "easy"]
    assert split(scores, threshold=0.25, by="entropy")["difficulty"].tolist() == ["hard", "easy", "hard", "easy"]
    # hard_when overrides the direction.
    got = split(scores, threshold=0.7, by="loss", hard_when="lower")["difficulty"].tolist()
    assert got == ["hard", "easy", "easy", "easy"]


def test_score_equal_to_the_threshold_is_easy_and_defaults():
    scores = pd.DataFrame({"label": [1, 0, 1], "label_prob": [0.5, 0.49, 0.51], "margin": [0.0, -0.1, 0.2]})
    assert split(scores)["difficulty"].tolist() == ["easy", "hard", "easy"]  # label_prob default 0.5
    assert split(scores, by="margin")["difficulty"].tolist() == ["easy", "hard", "easy"]  # margin default 0.0
    assert split(scores).attrs["hardmine"]["threshold"] == 0.5


@pytest.mark.parametrize("by", MEASURE_NAMES)
@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.33, 0.5, 0.65, 1.0])
def test_hard_fraction_against_reference(by, q):
    scores = _scores(n=150, seed=2)
    scores[by] = np.round(scores[by] * 4) / 4  # many ties, broken by dataset index
    table = split(scores, hard_fraction=q, by=by)
    ref = reference_split(
        scores[by].tolist(),
        scores["label"].tolist(),
        positive=[1],
        hard_fraction=q,
        lower_is_harder=LOWER_IS_HARDER[by],
    )
    _check_against(table, ref)
    assert (table["difficulty"] == "hard").sum() == round(q * 150)
    assert table.attrs["hardmine"]["hard_fraction"] == q and table.attrs["hardmine"]["threshold"] is None


@pytest.mark.parametrize("by", ["label_prob", "loss", "margin"])
def test_per_class_against_reference(by):
    scores = _scores(n=50, num_classes=4, seed=3)
    table = split(scores, threshold="per_class", by=by, positive=[0, 3])
    ref = reference_split(
        scores[by].tolist(),
        scores["label"].tolist(),
        positive=[0, 3],
        per_class=True,
        lower_is_harder=LOWER_IS_HARDER[by],
    )
    _check_against(table, ref)
    cuts = table.attrs["hardmine"]["per_class_thresholds"]
    assert sorted(cuts) == [0, 1, 2, 3]
    for c, t in cuts.items():
        np.testing.assert_allclose(t, scores.loc[scores["label"] == c, by].astype(np.float64).mean(), rtol=1e-12)


def test_positive_as_int_and_list():
    scores = _scores(n=40, num_classes=5, seed=4)
    one = split(scores, threshold=0.5, positive=3)
    assert (one["polarity"] == "positive").tolist() == (scores["label"] == 3).tolist()
    assert one.attrs["hardmine"]["positive"] == [3]
    many = split(scores, threshold=0.5, positive=[4, 0, np.int64(4)])
    assert (many["polarity"] == "positive").tolist() == scores["label"].isin([0, 4]).tolist()
    assert many.attrs["hardmine"]["positive"] == [0, 4]
    ref = reference_split(scores["label_prob"].tolist(), scores["label"].tolist(), positive=[0, 4], threshold=0.5)
    _check_against(many, ref)


def test_binary_default_positive_is_one_and_multiclass_splits_easy_hard_only():
    # Behaviour changed on purpose (issue 14): a multi-class table without `positive` is split easy/hard only.
    binary = _scores(n=10, seed=5)
    assert (split(binary, threshold=0.5)["polarity"] == "positive").tolist() == (binary["label"] == 1).tolist()
    multi = _scores(n=30, num_classes=3, seed=5)
    plain = split(multi, threshold=0.5)
    assert list(plain.columns) == [*multi.columns, "difficulty"]
    assert plain.attrs["hardmine"]["positive"] is None
    assert (plain["difficulty"] == "hard").tolist() == (multi["label_prob"] < 0.5).tolist()
    with pytest.raises(ValueError, match=r"multi-class table \(labels \[0, 1, 2\]\).*positive="):
        positive_classes(multi, required=True)
    # A 10-class model whose sample happens to hold only labels 0 and 1 is still multi-class.
    two_labels = _scores(n=10, seed=6)
    two_labels.attrs["hardmine"] = {"num_classes": 10}
    assert "polarity" not in split(two_labels, threshold=0.5).columns
    assert positive_classes(pd.DataFrame({"label": [0, 1]})) == [1]
    # Re-splitting a one-vs-rest table without `positive` keeps its positive class.
    ovr = split(multi, threshold=0.5, positive=2)
    assert split(ovr, threshold=0.3).attrs["hardmine"]["positive"] == [2]


def test_positive_class_the_table_does_not_hold_raises():
    # Issue 11: positive=7 on labels 0..4 gave zero positives without a word; "cat" was read as 'c'.
    scores = _scores(n=40, num_classes=5, seed=3)
    scores.attrs["hardmine"] = {"num_classes": 5}
    with pytest.raises(ValueError, match=r"\[7\] is not among its classes \[0, 1, 2, 3, 4\].*0..4"):
        split(scores, threshold=0.5, positive=7)
    with pytest.raises(ValueError, match=r"\[7, 9\] are not"):
        split(scores, threshold=0.5, positive=[1, 7, 9])
    with pytest.raises(TypeError, match=r"got the string 'cat'"):
        split(scores, threshold=0.5, positive="cat")
    # A class of the model that this sample happens not to hold is fine.
    small = scores[scores["label"] != 4].copy()
    small.attrs = scores.attrs
    small["pred"] = small["label"]
    assert (split(small, threshold=0.5, positive=4)["polarity"] == "negative").all()


def test_categorical_columns_and_input_untouched():
    scores = _scores(n=12, seed=7)
    before = scores.copy()
    table = split(scores, threshold=0.5)
    pd.testing.assert_frame_equal(scores, before)
    assert list(table.columns) == list(scores.columns) + ["polarity", "difficulty", "group"]
    for col, cats in CATEGORIES.items():
        assert isinstance(table[col].dtype, pd.CategoricalDtype), col
        assert list(table[col].cat.categories) == cats and not table[col].cat.ordered
    # Every group's categories exist even when empty: value_counts lists all four.
    assert list(table["group"].value_counts(sort=False).index) == list(GROUP_NAMES)


def test_nan_scores_raise_naming_the_rows():
    scores = _scores(n=10, seed=8)
    scores.loc[[2, 7], "loss"] = np.nan
    with pytest.raises(ValueError, match=r"Column `loss` has 2 NaN value\(s\), in rows \[2, 7\]"):
        split(scores, threshold=1.0, by="loss")
    split(scores, threshold=0.5)  # other columns are fine


@pytest.mark.parametrize(
    ("by", "threshold"),
    [
        ("label_prob", 1.5),
        ("label_prob", -0.1),
        ("confidence", 2.0),
        ("margin", -1.5),
        ("margin", 1.01),
        ("loss", -0.5),
        ("entropy", -0.1),
        ("entropy", 0.7),
    ],  # log(2) = 0.693
)
def test_threshold_outside_the_scores_range_raises(by, threshold):
    with pytest.raises(ValueError, match=rf"`threshold` must be in \[.*\], got {threshold} \(the range of `{by}`\)"):
        split(_scores(n=10, seed=9), threshold=threshold, by=by)


def test_other_bad_arguments_raise():
    scores = _scores(n=10, seed=10)
    with pytest.raises(ValueError, match=r"`threshold` must be a finite number, got nan"):
        split(scores, threshold=float("nan"))
    with pytest.raises(ValueError, match=r"`threshold` must be a finite number, got inf"):
        split(scores, threshold=float("inf"), by="loss")
    with pytest.raises(ValueError, match=r"`threshold` must be one of 'per_class', got 'median'"):
        split(scores, threshold="median")
    with pytest.raises(TypeError, match=r"`threshold` must be a real number, got list \[0.5\]"):
        split(scores, threshold=[0.5])
    with pytest.raises(ValueError, match=r"only one of `threshold` and `hard_fraction`"):
        split(scores, threshold=0.5, hard_fraction=0.1)
    for q in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"`hard_fraction` must be (in \[0, 1\]|a finite number), got"):
            split(scores, hard_fraction=q)
    with pytest.raises(ValueError, match=r"Expected a `aum` column in `scores`"):
        split(scores, threshold=0.5, by="aum")
    with pytest.raises(ValueError, match=r"Expected a `label` column to tell positives"):
        split(scores.drop(columns="label"), threshold=0.5, positive=1)
    with pytest.raises(ValueError, match=r"Column `loss` has no default threshold"):
        split(scores, by="loss")
    with pytest.raises(ValueError, match=r"`hard_when` must be one of 'lower', 'higher', got 'up'"):
        split(scores, threshold=0.5, hard_when="up")
    with pytest.raises(TypeError, match=r"pandas DataFrame \(from hm.score\), but got dict"):
        split({"label": [0]}, threshold=0.5)
    with pytest.raises(ValueError, match=r"at least one class, but got an empty list"):
        split(scores, threshold=0.5, positive=[])
    with pytest.raises(TypeError, match=r"`positive` must be an integer, got str 'cat'"):
        split(scores, threshold=0.5, positive=["cat"])


# ------------------------------------------------------------------------------------------------ properties
@st.composite
def score_tables(draw):
    n = draw(st.integers(0, 40))
    values = draw(st.lists(st.floats(0, 1, allow_nan=False, width=32), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "label": np.array(labels, dtype=np.int64),
            "label_prob": np.array(values, dtype=np.float32),
        }
    )


@settings(deadline=None, max_examples=40)
@given(score_tables(), st.floats(0, 1), st.sampled_from(["threshold", "hard_fraction", "per_class"]))
def test_easy_and_hard_partition_the_samples(scores, value, mode):
    kwargs = (
        {"threshold": value}
        if mode == "threshold"
        else {"hard_fraction": value}
        if mode == "hard_fraction"
        else {"threshold": "per_class"}
    )
    table = split(scores, **kwargs)
    n = len(scores)
    hard = set(np.flatnonzero(table["difficulty"] == "hard"))
    easy = set(np.flatnonzero(table["difficulty"] == "easy"))
    assert hard.isdisjoint(easy) and hard | easy == set(range(n))
    if mode == "hard_fraction":
        assert len(hard) == round(value * n)
        # Every hard sample scores at most every easy one.
        if hard and easy:
            assert scores["label_prob"].iloc[sorted(hard)].max() <= scores["label_prob"].iloc[sorted(easy)].min()
    groups = table["group"].astype(str)
    expected = table["difficulty"].astype(str) + "_" + table["polarity"].astype(str)
    assert groups.tolist() == expected.tolist()
    assert (table["polarity"] == "positive").tolist() == (scores["label"] == 1).tolist()


# ------------------------------------------------------------------------------------------------ the registry
_SCORE_COLUMNS = sorted(name for name, c in COLUMNS.items() if c.harder_when is not None)


def _inside(col: str) -> float:
    """A value inside the registry range of ``col`` (its midpoint, or just above an unbounded range's start)."""
    bounds = value_range(col)
    if bounds is None:
        return 0.25
    lo, hi = bounds
    return lo + 0.5 if math.isinf(hi) else (lo + hi) / 2


@pytest.mark.parametrize("col", _SCORE_COLUMNS)
def test_split_reads_default_threshold_direction_and_range_from_the_registry(col):
    table = pd.DataFrame({"index": [0, 1, 2], "label": [0, 1, 1], col: [_inside(col)] * 3})
    if default_threshold(col) is None:
        with pytest.raises(ValueError, match=rf"Column `{col}` has no default threshold"):
            split(table, by=col)
    else:
        settings = split(table, by=col).attrs["hardmine"]
        assert settings["threshold"] == default_threshold(col) == COLUMNS[col].default_threshold
    settings = split(table, by=col, hard_fraction=0.5).attrs["hardmine"]
    assert settings["hard_when"] == harder_when(col) == COLUMNS[col].harder_when
    bounds = value_range(col)
    if bounds is None:  # no range: any finite threshold
        split(table, by=col, threshold=-1e9)
        return
    lo, hi = bounds
    split(table, by=col, threshold=lo)  # the ends are inside
    with pytest.raises(ValueError, match=rf"`threshold` must be in \[.*\], got .* \(the range of `{col}`\)"):
        split(table, by=col, threshold=lo - 0.5)
    if math.isfinite(hi):
        split(table, by=col, threshold=hi)
        with pytest.raises(ValueError, match=rf"\(the range of `{col}`\)"):
            split(table, by=col, threshold=hi + 0.5)


def test_entropy_range_uses_the_class_count_of_the_registry():
    table = pd.DataFrame({"label": [0, 1, 2], "entropy": [0.1, 0.2, 0.3]})
    table.attrs["hardmine"] = {"num_classes": 3}
    top = value_range("entropy", num_classes=3)[1]
    assert top == pytest.approx(math.log(3))
    assert split(table, by="entropy", threshold=top).attrs["hardmine"]["threshold"] == top
    with pytest.raises(ValueError, match=r"the range of `entropy`"):
        split(table, by="entropy", threshold=top + 0.01)
