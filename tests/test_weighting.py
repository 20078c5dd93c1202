import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_sampling import reference_balanced_weights, reference_hardness, reference_score_weights

from hardmine.feedback.weighting import HardSetCollapseWarning, hardness, sample_weights


def score_table(n: int = 40, *, seed: int = 0, num_classes: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label_prob = rng.uniform(0.01, 0.99, n).astype(np.float32)
    return pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [str(i) for i in range(n)],
            "label": np.arange(n, dtype=np.int64) % num_classes,
            "label_prob": label_prob,
            "confidence": np.maximum(label_prob, 1 - label_prob).astype(np.float32),
            "margin": (2 * label_prob - 1).astype(np.float32),
            "entropy": rng.uniform(0.0, 1.3, n).astype(np.float32),
            "loss": (-np.log(label_prob)).astype(np.float32),
        }
    )


def split_table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    t = score_table(n, seed=seed)
    hard = t["label_prob"].to_numpy() < 0.5
    positive = t["label"].to_numpy() == 1
    t["polarity"] = np.where(positive, "positive", "negative")
    t["difficulty"] = np.where(hard, "hard", "easy")
    t["group"] = [f"{d}_{p}" for d, p in zip(t["difficulty"], t["polarity"], strict=True)]
    return t


# ------------------------------------------------------------------------------------------------ split tables
def test_group_weights_hard_and_easy():
    t = split_table()
    got = sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance=None)
    expected = torch.tensor([1.0 if d == "hard" else 0.25 for d in t["difficulty"]])
    torch.testing.assert_close(got, expected)
    assert got.dtype == torch.float32


def test_group_weights_default_hard_is_four():
    t = split_table()
    torch.testing.assert_close(
        sample_weights(t, balance=None), sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance=None)
    )


@pytest.mark.parametrize(
    ("hard", "easy"),
    [
        ({"positive": 8.0, "negative": 2.0}, 1.0),
        ({"hard_positive": 8.0, "hard_negative": 2.0}, {"easy_positive": 1.0, "easy_negative": 0.5}),
    ],
    ids=str,
)
def test_group_weights_by_polarity_or_group(hard, easy):
    t = split_table()

    def lookup(values, difficulty, polarity):
        if not isinstance(values, dict):
            return values
        return values.get(polarity, values.get(f"{difficulty}_{polarity}"))

    raw = [lookup(hard if d == "hard" else easy, d, p) for d, p in zip(t["difficulty"], t["polarity"], strict=True)]
    expected = torch.tensor([max(r / max(raw), 0.05) for r in raw])
    torch.testing.assert_close(sample_weights(t, hard_weight=hard, easy_weight=easy, balance=None), expected)


def test_zero_easy_weight_is_floored():
    t = split_table()
    got = sample_weights(t, hard_weight=1.0, easy_weight=0.0, floor=0.1, balance=None)
    assert float(got.min()) == pytest.approx(0.1)
    assert float(sample_weights(t, hard_weight=1.0, easy_weight=0.0, floor=0.0, balance=None).min()) == 0.0


# ------------------------------------------------------------------------------------------------ score weights
@pytest.mark.parametrize("by", ["label_prob", "confidence", "margin", "loss", "entropy"])
@pytest.mark.parametrize(
    ("mode", "gamma"), [("power", 1.0), ("power", 2.0), ("softmax", 1.0), ("rank", 1.0), ("rank", 3.0)], ids=str
)
def test_score_weights_match_the_formula(by, mode, gamma):
    t = score_table()
    h = [reference_hardness(by, float(v)) for v in t[by].to_numpy(dtype=np.float64)]
    expected = reference_score_weights(h, mode=mode, gamma=gamma, temperature=0.3, floor=0.05)
    got = sample_weights(t, by=by, mode=mode, gamma=gamma, temperature=0.3, dtype=torch.float64, balance=None)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_rank_mode_ties_share_their_weight():
    got = sample_weights(torch.tensor([0.5, 0.1, 0.5, 0.9]), mode="rank", dtype=torch.float64, balance=None)
    torch.testing.assert_close(got, torch.tensor([2.5 / 4, 1 / 4, 2.5 / 4, 1.0], dtype=torch.float64))


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=30))
def test_rank_mode_is_scale_free(values):
    loss = torch.tensor(values, dtype=torch.float64)
    a = sample_weights(loss, mode="rank", balance=None)
    b = sample_weights(loss**2 * 7.0 + 3.0, mode="rank", balance=None)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_tensor_hardness_keeps_device_and_gives_dtype(dtype):
    h = torch.tensor([0.0, 0.5, 1.0])
    got = sample_weights(h, dtype=dtype, floor=0.1, balance=None)
    assert got.dtype == dtype and got.device == h.device
    torch.testing.assert_close(got, torch.tensor([0.1, 0.5, 1.0], dtype=dtype))


def test_numpy_and_list_hardness():
    torch.testing.assert_close(
        sample_weights(np.array([1.0, 3.0]), balance=None), sample_weights([1.0, 3.0], balance=None)
    )


# ------------------------------------------------------------------------------------------------ floor, cap, EMA
@settings(deadline=None, max_examples=25)
@given(
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=30).filter(lambda v: max(v) > 1e-6),
    st.floats(0.0, 1.0),
    st.one_of(st.none(), st.floats(1.0, 1000.0)),
)
def test_floor_and_max_ratio_bound_the_weights(values, floor, max_ratio):
    w = sample_weights(
        torch.tensor(values, dtype=torch.float64), floor=floor, max_ratio=max_ratio, dtype=torch.float64, balance=None
    )
    lo = max(floor, 1.0 / max_ratio if max_ratio else 0.0)
    assert float(w.max()) == pytest.approx(1.0)
    assert float(w.min()) >= lo - 1e-12
    if lo > 0:
        assert float(w.max() / w.min()) <= 1.0 / lo + 1e-9


def test_default_floor_means_no_sample_starves():
    w = sample_weights(score_table(), by="label_prob", gamma=4.0, balance=None)
    assert float(w.min()) == pytest.approx(0.05)


def test_momentum_smooths_with_previous():
    new_h = torch.tensor([0.0, 1.0, 0.5])
    previous = torch.tensor([2.0, 1.0, 2.0])  # normalised to [1, 0.5, 1]
    got = sample_weights(new_h, previous=previous, momentum=0.25, floor=0.0, dtype=torch.float64, balance=None)
    mixed = [0.25 * p + 0.75 * n for p, n in zip([1.0, 0.5, 1.0], [0.0, 1.0, 0.5], strict=True)]
    torch.testing.assert_close(got, torch.tensor([m / max(mixed) for m in mixed], dtype=torch.float64))
    torch.testing.assert_close(
        sample_weights(new_h, previous=previous, momentum=1.0, floor=0.0, dtype=torch.float64, balance=None),
        torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64),
    )


# ------------------------------------------------------------------------------------------------ balance
@pytest.mark.parametrize("balance", ["label", "polarity"])
@pytest.mark.parametrize("source", ["groups", "loss", "label_prob"])
def test_balance_matches_the_per_class_reference(balance, source):
    t = split_table(60, seed=4)
    t = t.assign(label=np.where(np.arange(60) < 48, t["label"].to_numpy() % 2, 2))  # classes 0, 1 and a small 2
    t["polarity"] = np.where(t["label"].to_numpy() == 1, "positive", "negative")
    if source == "groups":
        got = sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance=balance, dtype=torch.float64)
        raw = [4.0 if d == "hard" else 1.0 for d in t["difficulty"]]
    else:
        got = sample_weights(t, by=source, balance=balance, dtype=torch.float64)
        raw = [reference_hardness(source, float(v)) for v in t[source]]
    key = t["label"] if balance == "label" else t["polarity"]
    groups = [sorted(set(key)).index(k) for k in key]
    expected = reference_balanced_weights(raw, groups, floor=0.05)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    sums = [float(got[torch.tensor(np.asarray(groups) == g)].sum()) for g in set(groups)]
    assert max(sums) == pytest.approx(min(sums), rel=1e-12)  # every class (polarity) carries the same weight


def test_balance_keeps_the_hard_to_easy_ratio_within_a_class():
    t = split_table(200, seed=1)
    t.loc[t["label"] == 3, "difficulty"] = "easy"  # a class with no hard samples
    w = sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance="label", dtype=torch.float64).numpy()
    hard = (t["difficulty"] == "hard").to_numpy()
    for c in range(4):
        in_c = t["label"].to_numpy() == c
        if (in_c & hard).any():
            np.testing.assert_allclose(w[in_c & hard] / w[in_c & ~hard].max(), 4.0)
        assert w[in_c].sum() == pytest.approx(w[t["label"].to_numpy() == 0].sum())
    assert w.max() == 1.0


def test_balance_is_a_class_balanced_sampler_for_equal_weights():
    labels = torch.tensor([0] * 90 + [1] * 10)
    got = sample_weights(torch.ones(100), labels=labels, balance="label", dtype=torch.float64)
    counts = torch.bincount(labels).double()
    expected = (1.0 / counts)[labels]  # WeightedRandomSampler's class-balanced weights, up to scale
    torch.testing.assert_close(got, expected / expected.max())


def test_balance_with_momentum_and_shuffled_rows():
    t = split_table(40, seed=2)
    previous = torch.linspace(0.1, 2.0, 40, dtype=torch.float64)
    got = sample_weights(t, by="loss", balance="label", previous=previous, momentum=0.3, dtype=torch.float64)
    raw = [float(v) for v in t["loss"]]
    expected = reference_balanced_weights(raw, t["label"].tolist(), previous=previous.tolist(), momentum=0.3)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    shuffled = t.sample(frac=1.0, random_state=0)
    torch.testing.assert_close(
        sample_weights(shuffled, by="loss", balance="label", previous=previous, momentum=0.3, dtype=torch.float64), got
    )


@pytest.mark.parametrize(("floor", "expected"), [(0.05, [1.0, 1.0, 1.0, 1.0]), (0.0, [0.0, 0.0, 1.0, 1.0])])
def test_balance_an_all_zero_class(floor, expected):
    got = sample_weights(
        torch.tensor([0.0, 0.0, 0.5, 0.5]),
        labels=torch.tensor([0, 0, 1, 1]),
        balance="label",
        floor=floor,
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.filterwarnings("error::hardmine.feedback.weighting.HardSetCollapseWarning")
def test_balance_by_label_never_warns_of_collapse():
    t = split_table(100)
    t["difficulty"] = np.where(t["label"] == 1, "hard", "easy")  # the setting that warns without balance
    w = sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance="label")
    assert w[torch.tensor(t["label"].to_numpy() == 1)].sum() == pytest.approx(float(w[:4].sum() / 4 * 25), rel=1e-5)


# ------------------------------------------------------------------------------------------------ ordering
def test_rows_are_put_in_dataset_index_order():
    t = split_table()
    shuffled = t.sample(frac=1.0, random_state=3)
    torch.testing.assert_close(sample_weights(shuffled, balance=None), sample_weights(t, balance=None))
    torch.testing.assert_close(
        sample_weights(shuffled, by="loss", balance=None), sample_weights(t, by="loss", balance=None)
    )


def test_previous_is_in_dataset_order_for_a_shuffled_table():
    t = split_table()
    previous = torch.linspace(0.1, 2.0, len(t), dtype=torch.float64)  # dataset order, as weights returns it
    shuffled = t.sample(frac=1.0, random_state=5)
    got = sample_weights(
        shuffled, by="loss", previous=previous, momentum=0.5, floor=0.0, dtype=torch.float64, balance=None
    )
    raw = torch.tensor(t["loss"].to_numpy(), dtype=torch.float64)
    mixed = 0.5 * previous / previous.max() + 0.5 * raw / raw.max()
    torch.testing.assert_close(got, mixed / mixed.max())


def test_filtered_table_raises():
    t = split_table()
    with pytest.raises(ValueError, match="permutation of 0..9"):
        sample_weights(t.iloc[:10].assign(index=np.arange(5, 15)), by="loss", balance=None)


# ------------------------------------------------------------------------------------------------ collapse warning
def test_collapse_warning_when_hard_set_is_one_minor_class():
    n = 100
    labels = np.arange(n) % 5  # each class 20 %
    difficulty = np.where((labels == 3) & (np.arange(n) < 90), "hard", "easy")
    difficulty[:2] = "hard"  # two hard samples elsewhere
    t = pd.DataFrame({"index": np.arange(n), "label": labels, "difficulty": difficulty})
    with pytest.warns(HardSetCollapseWarning, match=r"class\(es\) \[3\]"):
        sample_weights(t, balance=None)


def test_collapse_warning_from_tensor_hardness_and_labels():
    labels = torch.arange(200) % 10
    h = (labels == 7).double()  # the heaviest 10 % are all class 7
    with pytest.warns(HardSetCollapseWarning, match=r"\[7\]"):
        sample_weights(h, labels=labels, balance=None)


def test_no_collapse_warning_for_a_spread_hard_set():
    t = split_table(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_weights(t, balance=None)
        sample_weights(t, by="loss", balance=None)
        sample_weights(torch.rand(50), labels=torch.arange(50) % 5, balance=None)


def test_no_collapse_warning_when_the_class_is_the_majority():
    labels = np.array([0] * 80 + [1] * 20)
    t = pd.DataFrame({"label": labels, "difficulty": ["hard"] * 60 + ["easy"] * 40})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_weights(t, balance=None)


# ------------------------------------------------------------------------------------------------ errors
def test_hardness_directions():
    t = pd.DataFrame({"aum": [1.0, -2.0], "my_score": [0.2, 0.9]})
    torch.testing.assert_close(hardness(t, "my_score"), torch.tensor([0.8, 0.1], dtype=torch.float64))
    torch.testing.assert_close(
        hardness(t, "my_score", hard_when="higher"), torch.tensor([0.2, 0.9], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: sample_weights(t.assign(loss=np.nan), by="loss", balance=None), ValueError, "finite"),
        (lambda t: sample_weights(t, by="nope", balance=None), ValueError, "`by` to name a column"),
        (lambda t: sample_weights(t, by="id", balance=None), ValueError, "hold numbers"),
        (lambda t: sample_weights(t.drop(columns="difficulty"), balance=None), ValueError, "neither"),
        (lambda t: sample_weights(t, by="loss", hard_weight=3.0, balance=None), ValueError, "`hard_weight` only"),
        (lambda t: sample_weights(t, mode="square", by="loss", balance=None), ValueError, "`mode` must be one of"),
        (lambda t: sample_weights(t, by="loss", gamma=0.0, balance=None), ValueError, r"`gamma` must be > 0, got 0.0"),
        (
            lambda t: sample_weights(t, by="loss", mode="softmax", temperature=-1.0, balance=None),
            ValueError,
            r"`temperature` must be > 0, got -1.0",
        ),
        (lambda t: sample_weights(t, floor=1.5, balance=None), ValueError, r"`floor` must be in \[0, 1\], got 1.5"),
        (lambda t: sample_weights(t, max_ratio=0.5, balance=None), ValueError, r"`max_ratio` must be >= 1, got 0.5"),
        (
            lambda t: sample_weights(t, momentum=2.0, balance=None),
            ValueError,
            r"`momentum` must be in \[0, 1\], got 2.0",
        ),
        (
            lambda t: sample_weights(t, dtype=torch.int64, balance=None),
            TypeError,
            "`dtype` must be a floating torch dtype",
        ),
        (
            lambda t: sample_weights(t, hard_weight=-1.0, balance=None),
            ValueError,
            r"`hard_weight` must be >= 0, got -1.0",
        ),
        (
            lambda t: sample_weights(t, easy_weight=True, balance=None),
            TypeError,
            r"`easy_weight` must be a real number",
        ),
        (lambda t: sample_weights(t, gamma="2", by="loss", balance=None), TypeError, r"`gamma` must be a real number"),
        (lambda t: sample_weights(t, hard_weight=1.0, hard=2.0, balance=None), TypeError, "both `hard_weight` and"),
        (lambda t: sample_weights(t, heavy=2.0, balance=None), TypeError, "unexpected keyword argument 'heavy'"),
        (
            lambda t: sample_weights(t, hard_weight=0.0, easy_weight=0.0, balance=None),
            ValueError,
            "all weights are zero",
        ),
        (lambda t: sample_weights(t, hard_weight={"sideways": 1.0}, balance=None), ValueError, "keys of `hard_weight`"),
        (lambda t: sample_weights(t, hard_weight={"positive": 1.0}, balance=None), ValueError, "cover every polarity"),
        (
            lambda t: sample_weights(t.drop(columns="polarity"), hard_weight={"positive": 1.0}, balance=None),
            ValueError,
            "`polarity` column",
        ),
        (lambda t: sample_weights(t.assign(difficulty="medium"), balance=None), ValueError, "'hard' or 'easy'"),
        (
            lambda t: sample_weights(t.assign(aum=np.linspace(-1, 3, len(t))), by="aum", balance=None),
            ValueError,
            "mode='rank'",
        ),
        (lambda t: sample_weights(t, by="loss", previous=torch.ones(3), balance=None), ValueError, "`previous`"),
        (
            lambda t: sample_weights(t, by="loss", previous=-torch.ones(len(t)), balance=None),
            ValueError,
            "non-negative",
        ),
        (lambda t: sample_weights(t.iloc[:0], balance=None), ValueError, "empty"),
        (lambda t: sample_weights(torch.zeros(5), balance=None), ValueError, "all weights are zero"),
        (lambda t: sample_weights(torch.tensor([0.5, -0.1]), balance=None), ValueError, r"rows \[1\]"),
        (lambda t: sample_weights(torch.tensor([0.5, float("nan")]), balance=None), ValueError, "finite"),
        (lambda t: sample_weights(torch.ones(2, 2), balance=None), ValueError, r"shape \(N,\)"),
        (lambda t: sample_weights(torch.ones(3), by="loss", balance=None), ValueError, "DataFrame"),
        (
            lambda t: sample_weights(torch.ones(3), labels=torch.ones(4, dtype=torch.long), balance=None),
            ValueError,
            "`labels`",
        ),
        (lambda t: sample_weights({"a": 1}, balance=None), TypeError, "`source`"),
        (
            lambda t: sample_weights(t, balance="class"),
            ValueError,
            "`balance` must be one of 'label', 'polarity', 'auto', None",
        ),
        (lambda t: sample_weights(t.drop(columns="label"), balance="label"), ValueError, "balance='label'"),
        (lambda t: sample_weights(torch.ones(3), balance="label"), ValueError, "balance='label'"),
        (lambda t: sample_weights(t.drop(columns="polarity"), balance="polarity"), ValueError, "`polarity` column"),
        (lambda t: sample_weights(torch.ones(3), balance="polarity"), ValueError, "got no table"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(split_table())


def test_old_keywords_hard_and_easy_still_work_with_a_warning():
    t = split_table()
    with pytest.warns(DeprecationWarning, match=r"`hard=` of hardmine.sample_weights is deprecated.*`hard_weight=`"):
        old = sample_weights(t, hard=6.0, balance=None)
    with pytest.warns(DeprecationWarning, match=r"`easy=`.*use `easy_weight=`") as record:
        old_easy = sample_weights(t, easy=2.0, balance=None)
    assert record[0].filename == __file__  # the warning points at the caller
    assert torch.equal(old, sample_weights(t, hard_weight=6.0, balance=None))
    assert torch.equal(old_easy, sample_weights(t, easy_weight=2.0, balance=None))
    hard = torch.from_numpy(t["difficulty"].to_numpy() == "hard")
    assert torch.allclose(old[hard], torch.ones(int(hard.sum()))) and torch.allclose(old[~hard], torch.tensor(1 / 6))


def test_zero_weights_switch_a_group_off_before_the_floor():
    # The rule shared with HardMiner: hard_weight and easy_weight are finite and >= 0.
    t = split_table()
    hard = torch.from_numpy(t["difficulty"].to_numpy() == "hard")
    w = sample_weights(t, hard_weight=0.0, easy_weight=1.0, floor=0.1, balance=None)
    assert torch.allclose(w[hard], torch.tensor(0.1)) and torch.allclose(w[~hard], torch.tensor(1.0))


def test_weights_feed_the_sampler():
    from hardmine.feedback.sampling import HardSampler

    t = split_table(100)
    s = HardSampler(sample_weights(t, hard_weight=4.0, easy_weight=1.0, balance=None), 300, mode="cover", seed=0)
    counts = torch.bincount(s.indices(0), minlength=100)
    hard = torch.tensor((t["difficulty"] == "hard").to_numpy())
    assert bool((counts >= 1).all())
    assert float(counts[hard].double().mean()) > 2 * float(counts[~hard].double().mean())
    assert int(counts.sum()) == 300


def test_default_balance_is_label_when_labels_are_known():
    t = split_table(100)
    torch.testing.assert_close(sample_weights(t), sample_weights(t, balance="label"))
    h = torch.rand(30, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample_weights(h), sample_weights(h, balance=None))  # no labels: nothing to balance
    labels = torch.arange(30) % 3
    torch.testing.assert_close(sample_weights(h, labels=labels), sample_weights(h, labels=labels, balance="label"))
    per_class = torch.zeros(3, dtype=torch.float64).index_add_(0, labels, sample_weights(h, labels=labels).double())
    torch.testing.assert_close(per_class, per_class.mean().expand(3))  # every class the same total weight
