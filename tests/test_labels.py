import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from hardmine.analysis.dynamics import Dynamics
from hardmine.analysis.labels import (
    LABEL_ISSUE_METHODS,
    confident_thresholds,
    cross_val_scores,
    label_issues,
    label_quality,
)
from hardmine.analysis.splitting import split


def _probs(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    labels = rng.integers(0, c, n)
    labels[:c] = np.arange(c)  # every class is present
    return p, labels


def _reference_cl(p, labels):
    """The per-sample loop from cleanlab's compute_confident_joint docstring, returning the off-diagonal samples."""
    c = p.shape[1]
    t = np.array([np.mean([p[i, j] for i in range(len(labels)) if labels[i] == j]) for j in range(c)])
    issues, guesses = [], []
    for i, row in enumerate(p):
        bins = row >= t - 1e-6
        if bins.sum() == 0:
            guesses.append(None)
            continue
        guess = int(np.argmax(bins)) if bins.sum() == 1 else int(np.argmax(row))
        guesses.append(guess)
        if guess != labels[i]:
            issues.append(i)
    return t, issues, guesses


@settings(deadline=None, max_examples=20)
@given(n=st.integers(4, 40), c=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_confident_learning_matches_loop_reference(n, c, seed):
    p, labels = _probs(max(n, c), c, seed)
    t_ref, issues_ref, guesses = _reference_cl(p, labels)
    np.testing.assert_allclose(confident_thresholds(p, labels), t_ref, rtol=1e-12)
    out = label_issues(p, labels, method="confident_learning")
    assert sorted(out.loc[out["is_issue"], "index"].tolist()) == issues_ref
    flagged = out[out["is_issue"]]
    for i, s in zip(flagged["index"], flagged["suggested_label"], strict=True):
        assert s == guesses[i]
    # Flagged first, each part by self-confidence ascending.
    assert out["is_issue"].tolist() == sorted(out["is_issue"].tolist(), reverse=True)
    for part in (out[out["is_issue"]], out[~out["is_issue"]]):
        assert part["score"].is_monotonic_increasing


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin"])
def test_quality_scores_match_loop_reference(method):
    p, labels = _probs(30, 4, 3)
    ref = []
    for i in range(30):
        others = [p[i, k] for k in range(4) if k != labels[i]]
        ref.append(p[i, labels[i]] if method == "self_confidence" else (p[i, labels[i]] - max(others) + 1) / 2)
    np.testing.assert_allclose(label_quality(p, labels, method=method), ref, rtol=1e-12)
    out = label_issues(p, labels, method=method)
    assert "is_issue" not in out.columns
    assert out["index"].tolist() == sorted(range(30), key=lambda i: (ref[i], i))
    np.testing.assert_allclose(out["score"], np.sort(ref), rtol=1e-12)
    for i, s in zip(out["index"], out["suggested_label"], strict=True):
        row = p[i].copy()
        row[labels[i]] = -1
        assert s == int(np.argmax(row))
    assert out.attrs["hardmine"]["method"] == method


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_inputs_table_tensor_and_array_agree(dtype):
    p, labels = _probs(20, 3, 5)
    table = pd.DataFrame(
        {
            "index": np.arange(20) + 100,
            "id": [f"s{i}" for i in range(20)],
            "label": labels,
            **{f"prob_{k}": p[:, k].astype(np.float32) for k in range(3)},
        }
    )
    from_table = label_issues(table, method="normalized_margin")
    from_tensor = label_issues(torch.tensor(p, dtype=dtype), torch.tensor(labels), method="normalized_margin")
    assert list(from_table.columns) == ["index", "id", "label", "suggested_label", "score"]
    assert list(from_tensor.columns) == ["index", "label", "suggested_label", "score"]
    assert (from_table["index"] - 100).tolist() == from_tensor["index"].tolist()
    assert from_table["id"].tolist() == [f"s{i - 100}" for i in from_table["index"]]
    np.testing.assert_allclose(from_table["score"], from_tensor["score"], atol=1e-6)


def test_ties_broken_by_index_and_default_method():
    p = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    out = label_issues(p, np.array([1, 0, 1]))
    assert out["index"].tolist() == [2, 0, 1]
    assert out.attrs["hardmine"]["method"] == "self_confidence"


def _dyn_summary():
    dyn = Dynamics(num_samples=4)
    for _ in range(3):
        logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.0]])
        dyn.update(torch.tensor([0, 1, 2]), logits[:3], torch.tensor([0, 0, 2]))
        dyn.end_epoch()
    return dyn


def test_from_dynamics_aum_and_confidence():
    dyn = _dyn_summary()
    out = label_issues(dyn)
    assert out["index"].tolist() == [1, 2, 0]  # sample 3 never seen: dropped, reported in attrs
    assert out["score"].tolist() == [-3.0, 1.0, 4.0]
    assert out["is_issue"].tolist() == [True, False, False]
    assert out["suggested_label"].tolist()[0] == 1
    assert out.attrs["hardmine"]["unseen_dropped"] == 1
    same = label_issues(dyn.summary(), method="aum", aum_threshold=2.0)
    assert same["is_issue"].tolist() == [True, True, False]
    conf = label_issues(dyn.summary(), method="self_confidence")
    assert conf["index"].tolist() == [1, 2, 0]
    assert "is_issue" not in conf.columns
    np.testing.assert_allclose(conf["score"], dyn.summary().set_index("index").loc[[1, 2, 0], "mean_label_prob"])


def test_results_go_through_split():
    p, labels = _probs(40, 3, 1)
    out = label_issues(p, labels)
    table = split(out, by="score", hard_fraction=0.25, positive=0)
    hard = table.loc[table["difficulty"] == "hard", "index"].tolist()
    assert hard == out["index"].tolist()[:10]


def test_label_issues_errors():
    p, labels = _probs(10, 3, 0)
    with pytest.raises(ValueError, match="one of"):
        label_issues(p, labels, method="bogus")
    with pytest.raises(ValueError, match="needs training dynamics"):
        label_issues(p, labels, method="aum")
    with pytest.raises(ValueError, match="needs out-of-sample probabilities"):
        label_issues(_dyn_summary(), method="confident_learning")
    with pytest.raises(ValueError, match="`labels`"):
        label_issues(p)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*rows \[1\]"):
        label_issues(p, np.array([0, 3, 0, 0, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        label_issues(p, labels.astype(float))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        label_issues(p, labels[:5])
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        label_issues(p[:, 0], labels)
    bad = p.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"rows \[4\]"):
        label_issues(bad, labels)
    with pytest.raises(ValueError, match="prob_0"):
        label_issues(pd.DataFrame({"label": [0], "x": [1.0]}))
    with pytest.raises(ValueError, match="without gaps"):
        label_issues(pd.DataFrame({"label": [0], "prob_0": [1.0], "prob_2": [0.0]}))
    with pytest.raises(TypeError, match="Dynamics, a DataFrame"):
        label_issues("probs.csv", labels)
    with pytest.raises(ValueError, match="`label` column"):
        label_issues(pd.DataFrame({"index": [0], "aum": [1.0]}))
    with pytest.raises(ValueError, match="'self_confidence' or 'normalized_margin'"):
        label_quality(p, labels, method="aum")
    assert set(LABEL_ISSUE_METHODS) == {"aum", "self_confidence", "normalized_margin", "confident_learning"}


def _dataset(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) * 0.5 + torch.nn.functional.one_hot(y, 4).float() * 2
    return TensorDataset(x, y)


def _train(seen):
    def train_fn(model, loader):
        seen.append(sorted(loader.dataset.indices))
        opt = torch.optim.SGD(model.parameters(), lr=0.3)
        for _ in range(5):
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

    return train_fn


def test_cross_val_scores_out_of_sample_stratified_and_deterministic():
    ds = _dataset()
    seen = []
    state = torch.get_rng_state()
    table = cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train(seen), folds=3, batch_size=16, seed=4)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone
    assert table["index"].tolist() == list(range(60))
    assert table["id"].tolist() == [str(i) for i in range(60)]
    assert table["label"].tolist() == (torch.arange(60) % 3).tolist()
    assert [c for c in table.columns if c.startswith("prob_")] == ["prob_0", "prob_1", "prob_2"]
    np.testing.assert_allclose(table[["prob_0", "prob_1", "prob_2"]].sum(axis=1), 1.0, atol=1e-5)
    for k, train_idx in enumerate(seen):
        held = table.loc[table["fold"] == k, "index"].tolist()
        assert not set(held) & set(train_idx)
        assert sorted(held + train_idx) == list(range(60))
        counts = table.loc[table["fold"] == k, "label"].value_counts()
        assert counts.max() - counts.min() <= 1
    again = cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), folds=3, batch_size=16, seed=4)
    pd.testing.assert_frame_equal(table, again)
    other = cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), folds=3, batch_size=16, seed=5)
    assert not table["fold"].equals(other["fold"])
    issues = label_issues(table, method="confident_learning")
    assert set(issues["index"]) == set(range(60))


def test_cross_val_scores_held_out_probs_equal_rescoring_fold_model():
    ds = _dataset(30, seed=1)
    models = []

    def make():
        m = torch.nn.Linear(4, 3)
        models.append(m)
        return m

    table = cross_val_scores(
        make, ds, train_fn=_train([]), folds=2, batch_size=8, seed=0, labels=(torch.arange(30) % 3).tolist()
    )
    for k, model in enumerate(models):
        held = table.loc[table["fold"] == k]
        with torch.no_grad():
            p = torch.softmax(model(ds.tensors[0][torch.tensor(held["index"].tolist())]), 1).numpy()
        np.testing.assert_allclose(held[["prob_0", "prob_1", "prob_2"]].to_numpy(), p, atol=1e-6)


def test_cross_val_scores_errors():
    ds = _dataset(10)
    with pytest.raises(ValueError, match="folds"):
        cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), folds=1)
    with pytest.raises(ValueError, match=r"`folds` must be <= 10 \(the number of samples\), got 11"):
        cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), folds=11)
    with pytest.raises(ValueError, match="batch_size"):
        cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), batch_size=0)
    with pytest.raises(ValueError, match=r"labels.*\(10,\)"):
        cross_val_scores(lambda: torch.nn.Linear(4, 3), ds, train_fn=_train([]), labels=[0, 1])


def test_cross_val_scores_without_readable_labels_uses_plain_split():
    class Plain(torch.utils.data.Dataset):
        def __init__(self, base):
            self.base = base

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            return self.base[i]

    table = cross_val_scores(
        lambda: torch.nn.Linear(4, 3), Plain(_dataset(20)), train_fn=_train([]), folds=4, batch_size=8
    )
    assert table["fold"].value_counts().tolist() == [5, 5, 5, 5]
    assert table["index"].tolist() == list(range(20))


def test_issue_indices():
    from hardmine.analysis.labels import issue_indices

    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])
    ranked = label_issues(p, labels)  # self-confidence: 1 (0.2), 3 (0.55), 2 (0.6), 0 (0.9)
    assert issue_indices(ranked, top=2).tolist() == [1, 3]
    assert issue_indices(ranked, top=0.5).tolist() == [1, 3]
    assert issue_indices(ranked, top=0).tolist() == []
    cl = label_issues(p, labels, method="confident_learning")
    assert issue_indices(cl).tolist() == sorted(cl.loc[cl["is_issue"], "index"].tolist())
    assert issue_indices(cl).tolist() == [1]
    with pytest.raises(ValueError, match="flags nothing"):
        issue_indices(ranked)
    with pytest.raises(ValueError, match="`top`"):
        issue_indices(ranked, top=1.5)
    with pytest.raises(ValueError, match="`top`"):
        issue_indices(ranked, top=-1)
    with pytest.raises(ValueError, match="`index` column"):
        issue_indices(pd.DataFrame({"score": [1.0]}))


def test_summary_and_issues_round_trip_through_csv(tmp_path):
    from hardmine.analysis.io import read_csv, to_csv

    dyn = _dyn_summary()
    summary = dyn.summary()
    back = read_csv(to_csv(summary, tmp_path / "dyn.csv"))
    pd.testing.assert_frame_equal(summary, back, check_dtype=False, check_like=False)
    for col in ("index", "label", "forgetting", "epochs"):
        assert back[col].dtype == np.int64, col
    np.testing.assert_array_equal(back["aum"].to_numpy(np.float32), summary["aum"].to_numpy())
    issues = label_issues(dyn)
    back = read_csv(to_csv(issues, tmp_path / "issues.csv"))
    pd.testing.assert_frame_equal(issues, back, check_dtype=False)
    assert back["suggested_label"].dtype == np.int64
