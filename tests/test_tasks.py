"""Every task hm.score reads (issue 14): against per-sample loops with the same loss and against scikit-learn.

Classification with any loss_fn, soft labels, multi-label, regression, unlabeled data and any per-sample loss; dict
batches to keyword arguments (a tiny Hugging Face BERT built from a config); the probability-output warning; bad
input naming the batch and the samples; and, per task, the whole chain score -> split -> weights -> HardMiner epoch.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import hardmine as hm
from hardmine.scoring.tasks import ProbabilityOutputWarning, resolve_task


def _loop(model: nn.Module, dataset: Dataset, fn) -> list:
    """The reference: one sample at a time, ``fn(output_row, target_row)``."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            x = item[0] if isinstance(item, (tuple, list)) else item
            y = item[1] if isinstance(item, (tuple, list)) and len(item) > 1 else None
            o = model(x[None])
            out.append(fn(o, None if y is None else y[None]))
    return out


def _classifier(d: int = 6, c: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, c))


def _class_data(n: int = 40, d: int = 6, c: int = 4, seed: int = 1) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g))


# ---------------------------------------------------------------------------------------------- any loss_fn
@pytest.mark.parametrize(
    "loss_fn",
    [
        nn.CrossEntropyLoss(reduction="none", label_smoothing=0.1),
        nn.CrossEntropyLoss(reduction="none", weight=torch.tensor([1.0, 2.0, 0.5, 3.0])),
        lambda o, y: hm.focal_loss(o, y, gamma=2.0, reduction="none"),
    ],
    ids=["label_smoothing", "class_weights", "focal"],
)
def test_loss_fn_column_equals_a_per_sample_loop(loss_fn):
    model, ds = _classifier(), _class_data()
    table = hm.score(model, DataLoader(ds, batch_size=7, shuffle=True), loss_fn=loss_fn, progress=False)
    ref = torch.cat(_loop(model, ds, lambda o, y: loss_fn(o, y)))
    np.testing.assert_allclose(table["loss"], ref.numpy(), rtol=1e-5, atol=1e-6)
    plain = hm.score(model, DataLoader(ds, batch_size=7), progress=False)
    pd.testing.assert_frame_equal(table.drop(columns="loss"), plain.drop(columns="loss"))
    assert table.attrs["hardmine"]["task"] == "classification"


def test_unreduced_loss_is_averaged_over_all_but_the_batch_dimension():
    model, ds = _classifier(), _class_data()

    def unreduced(o, y):
        return (o - F.one_hot(y, 4).float()) ** 2  # (B, C)

    table = hm.score(model, DataLoader(ds, batch_size=8), loss_fn=unreduced, progress=False)
    ref = torch.cat(_loop(model, ds, lambda o, y: unreduced(o, y).mean(dim=1)))
    np.testing.assert_allclose(table["loss"], ref.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- unlabeled
class OnlyInputs(Dataset):
    def __init__(self, x: torch.Tensor, kind: str) -> None:
        self.x, self.kind = x, kind

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        if self.kind == "tensor":
            return self.x[i]
        if self.kind == "tuple":
            return (self.x[i],)
        return {"x": self.x[i], "meta": i}


@pytest.mark.parametrize("kind", ["tensor", "tuple", "dict", "targets_false"])
def test_unlabeled_table_equals_a_per_sample_loop(kind, tmp_path):
    model, ds = _classifier(c=5), _class_data(c=5)
    data = ds if kind == "targets_false" else OnlyInputs(ds.tensors[0], kind)
    table = hm.score(
        model, DataLoader(data, batch_size=6), targets=kind != "targets_false", keep_probs=True, progress=False
    )
    assert list(table.columns) == ["index", "id", "pred", "confidence", "margin", "entropy"] + [
        f"prob_{c}" for c in range(5)
    ]
    p = torch.cat(_loop(model, ds, lambda o, y: torch.softmax(o, dim=1)))
    top = p.topk(2, dim=1).values
    np.testing.assert_array_equal(table["pred"], p.argmax(1).numpy())
    np.testing.assert_allclose(table["confidence"], top[:, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(table["margin"], (top[:, 0] - top[:, 1]).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["entropy"], (-(p * p.log()).sum(1)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table[[f"prob_{c}" for c in range(5)]], p.numpy(), rtol=1e-5, atol=1e-7)
    # The most uncertain 10 %: the highest entropy, the lowest confidence or margin.
    for by, ascending in (("entropy", False), ("confidence", True), ("margin", True)):
        split = hm.split(table, by=by, hard_fraction=0.1)
        expected = table.sort_values(by, ascending=ascending, kind="stable")["index"].head(4).tolist()
        assert sorted(split.loc[split["difficulty"] == "hard", "index"]) == sorted(expected)
        assert "polarity" not in split.columns
    hard = hm.split(table, by="entropy", hard_fraction=0.1)
    path = hm.to_csv(hard, tmp_path / "to_label.csv", only="hard")
    back = hm.read_csv(path)
    assert len(back) == 4 and "label" not in back.columns
    s = hm.summary(hard)
    assert s.kind == "unlabeled" and s.metrics["mean_entropy"] == pytest.approx(table["entropy"].mean())
    with pytest.raises(ValueError, match=r"Expected targets for `loss_fn`.*inputs only"):
        hm.score(
            model, DataLoader(OnlyInputs(ds.tensors[0], "tensor"), batch_size=6), loss_fn=nn.MSELoss(), progress=False
        )


# ---------------------------------------------------------------------------------------------- regression
def _regression(n: int = 48, d: int = 20, seed: int = 3) -> tuple[nn.Module, TensorDataset]:
    torch.manual_seed(seed)
    model = nn.Linear(d, 1)
    x = torch.randn(n, d)
    y = x[:, 0] * 2 + 0.3 * torch.randn(n)
    return model, TensorDataset(x, y)


@pytest.mark.parametrize(
    "loss_fn",
    [None, nn.MSELoss(reduction="none"), nn.L1Loss(reduction="none"), nn.HuberLoss(reduction="none", delta=0.5)],
    ids=["default", "mse", "l1", "huber"],
)
def test_regression_table_equals_a_per_sample_loop_and_scikit_learn(loss_fn):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    model, ds = _regression()
    table = hm.score(model, DataLoader(ds, batch_size=10, shuffle=True), loss_fn=loss_fn, progress=False)
    assert list(table.columns) == ["index", "id", "target", "prediction", "loss", "abs_error"]
    assert table.attrs["hardmine"]["task"] == "regression"
    fn = loss_fn or nn.MSELoss(reduction="none")
    ref = torch.cat(_loop(model, ds, lambda o, y: fn(o.reshape(-1), y)))
    pred = torch.cat(_loop(model, ds, lambda o, y: o.reshape(-1)))
    np.testing.assert_allclose(table["loss"], ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["prediction"], pred.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["target"], ds.tensors[1].numpy())
    np.testing.assert_allclose(table["abs_error"], (pred - ds.tensors[1]).abs().numpy(), rtol=1e-5, atol=1e-6)
    split = hm.split(table, hard_fraction=0.25)  # by the task's column: loss, higher is harder
    assert split.attrs["hardmine"]["by"] == "loss"
    expected = table.sort_values("loss", ascending=False, kind="stable")["index"].head(12)
    assert sorted(split.loc[split["difficulty"] == "hard", "index"]) == sorted(expected)
    s = hm.summary(split)
    y, p = table["target"].to_numpy(np.float64), table["prediction"].to_numpy(np.float64)
    assert s.kind == "regression"
    assert s.metrics["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-6)
    assert s.metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-6)
    assert s.metrics["r2"] == pytest.approx(r2_score(y, p), rel=1e-6)
    assert s.metrics["loss_q90"] == pytest.approx(np.quantile(table["loss"].to_numpy(np.float64), 0.9))
    json.loads(json.dumps(s.to_dict(), allow_nan=False))
    thresholded = hm.split(table, threshold=0.5)
    assert (thresholded["difficulty"] == "hard").tolist() == (table["loss"] > 0.5).tolist()


def test_multi_output_regression_and_float_class_labels_stay_classification():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(20, 5), torch.randn(20, 3)
    t = hm.score(model, DataLoader(TensorDataset(x, y), batch_size=8), task="regression", progress=False)
    assert list(t.columns) == ["index", "id", "loss", "abs_error"]
    with torch.no_grad():
        ref = ((model(x) - y) ** 2).mean(1)
    np.testing.assert_allclose(t["loss"], ref.numpy(), rtol=1e-5)
    # Whole-number float labels beside one logit are still binary classification, as before.
    labels = torch.tensor([0.0, 1.0] * 10)
    binary = hm.score(nn.Linear(5, 1), DataLoader(TensorDataset(x, labels), batch_size=8), progress=False)
    assert binary.attrs["hardmine"]["task"] == "classification"


# ---------------------------------------------------------------------------------------------- multi-label
def _multilabel(n: int = 60, d: int = 8, c: int = 5, seed: int = 4) -> tuple[nn.Module, TensorDataset]:
    torch.manual_seed(seed)
    model = nn.Linear(d, c)
    x = torch.randn(n, d)
    y = (torch.rand(n, c) < 0.4).float()
    return model, TensorDataset(x, y)


@pytest.mark.parametrize("explicit", [False, True])
def test_multilabel_table_equals_a_loop_and_the_summary_equals_scikit_learn(explicit):
    from sklearn.metrics import precision_recall_fscore_support

    model, ds = _multilabel()
    table = hm.score(model, DataLoader(ds, batch_size=16), task="multilabel" if explicit else None, progress=False)
    assert table.attrs["hardmine"]["task"] == "multilabel"
    p = torch.cat(_loop(model, ds, lambda o, y: torch.sigmoid(o)))
    y = ds.tensors[1]
    bce = F.binary_cross_entropy(p, y, reduction="none").mean(1)
    np.testing.assert_allclose(table["loss"], bce.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table["label_prob"], torch.where(y == 1, p, 1 - p).mean(1).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(table["wrong"], ((p >= 0.5).float() != y).sum(1).numpy())
    np.testing.assert_array_equal(table[[f"target_{c}" for c in range(5)]].to_numpy(), y.numpy())
    s = hm.summary(hm.split(table, threshold=0.5))
    assert s.kind == "multilabel"
    pred = (p >= 0.5).numpy().astype(int)
    for avg in ("micro", "macro"):
        ref = precision_recall_fscore_support(y.numpy(), pred, average=avg, zero_division=0)
        assert [s.metrics[f"{avg}_{k}"] for k in ("precision", "recall", "f1")] == pytest.approx(ref[:3])
    per = precision_recall_fscore_support(y.numpy(), pred, average=None, zero_division=0)
    np.testing.assert_allclose(s.per_class["f1"], per[2])
    np.testing.assert_array_equal(s.per_class["support"], per[3])
    assert "per label" in str(s)


def test_multilabel_targets_outside_0_1_raise_naming_the_samples_and_batch():
    model, ds = _multilabel(n=20)
    y = ds.tensors[1].clone()
    y[13, 2] = 2.0
    loader = DataLoader(TensorDataset(ds.tensors[0], y), batch_size=4)
    with pytest.raises(
        ValueError,
        match=r"1 sample\(s\) have multi-label targets outside \{0, 1\}: dataset indices "
        r"\[13\] \(first in batch 3, samples 12..15\)",
    ):
        hm.score(model, loader, task="multilabel", progress=False)


# ---------------------------------------------------------------------------------------------- soft labels
def test_soft_labels_cross_entropy_against_the_distribution():
    model, ds = _classifier(), _class_data()
    g = torch.Generator().manual_seed(5)
    soft = torch.softmax(torch.randn(40, 4, generator=g) * 2, dim=1)
    data = TensorDataset(ds.tensors[0], soft)
    table = hm.score(model, DataLoader(data, batch_size=9), progress=False)
    assert table.attrs["hardmine"]["task"] == "soft"
    logp = torch.cat(_loop(model, data, lambda o, y: torch.log_softmax(o, dim=1)))
    np.testing.assert_allclose(table["loss"], (-(soft * logp).sum(1)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table["label"], soft.argmax(1).numpy())
    np.testing.assert_allclose(
        table["label_prob"], logp.exp().gather(1, soft.argmax(1)[:, None])[:, 0].numpy(), rtol=1e-5
    )
    # One-hot rows are soft labels too: the same table as class indices.
    onehot = TensorDataset(ds.tensors[0], F.one_hot(ds.tensors[1], 4).float())
    hot = hm.score(model, DataLoader(onehot, batch_size=9), progress=False)
    plain = hm.score(model, DataLoader(ds, batch_size=9), progress=False)
    pd.testing.assert_frame_equal(hot, plain, check_exact=False, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- any per-sample loss
def test_loss_task_for_dense_outputs():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    x, y = torch.randn(12, 1, 6, 6), torch.randn(12, 1, 6, 6)
    fn = nn.SmoothL1Loss(reduction="none")
    table = hm.score(model, DataLoader(TensorDataset(x, y), batch_size=5), loss_fn=fn, task="loss", progress=False)
    assert list(table.columns) == ["index", "id", "loss"]
    ref = torch.stack(_loop(model, TensorDataset(x, y), lambda o, t: fn(o, t).mean())).reshape(-1)
    np.testing.assert_allclose(table["loss"], ref.numpy(), rtol=1e-5)
    detected = hm.score(model, DataLoader(TensorDataset(x, y), batch_size=5), loss_fn=fn, progress=False)
    assert detected.attrs["hardmine"]["task"] == "regression"  # a regression loss marks regression
    s = hm.summary(hm.split(table, hard_fraction=0.25))
    assert s.kind == "loss" and s.metrics["loss_max"] == pytest.approx(table["loss"].max())


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_loss_fn_shapes_and_nan_losses_name_the_batch_and_samples():
    model, ds = _classifier(), _class_data(n=20)
    loader = DataLoader(ds, batch_size=8)
    with pytest.raises(ValueError, match=r"returned a scalar in batch 0 \(samples 0..7\).*reduction='none'"):
        hm.score(model, loader, loss_fn=nn.CrossEntropyLoss(), progress=False)
    with pytest.raises(ValueError, match=r"shape \(8,\) or \(8, ...\), but it returned shape \(4,\) in batch 0"):
        hm.score(model, loader, loss_fn=lambda o, y: F.cross_entropy(o, y, reduction="none")[:4], progress=False)

    class Indexed(nn.Module):  # the logits carry each sample's index in column 0
        def forward(self, x):
            return torch.cat([x[:, :1], torch.zeros(x.shape[0], 3)], dim=1)

    def poisoned(o, y):
        loss = F.cross_entropy(o, y, reduction="none")
        return torch.where(o[:, 0] == 11, torch.full_like(loss, float("nan")), loss)

    indexed = TensorDataset(torch.arange(20.0)[:, None], ds.tensors[1])
    with pytest.raises(
        ValueError,
        match=r"`loss_fn` returned NaN or infinite losses for 1 sample\(s\), dataset "
        r"indices \[11\] \(first in batch 1, samples 8..15\)",
    ):
        hm.score(Indexed(), DataLoader(indexed, batch_size=8, shuffle=True), loss_fn=poisoned, progress=False)
    with pytest.raises(ValueError, match=r"fit no task.*\(8, 4\).*\(8, 2, 2\) in batch 0 \(samples 0..7\)"):
        hm.score(model, DataLoader(TensorDataset(ds.tensors[0], torch.zeros(20, 2, 2)), batch_size=8), progress=False)
    with pytest.raises(ValueError, match=r"`task` must be one of"):
        hm.score(model, loader, task="keypoints", progress=False)
    with pytest.raises(ValueError, match=r"`outputs` must be one of 'logits', 'probs', None"):
        hm.score(model, loader, outputs="softmax", progress=False)


# ---------------------------------------------------------------------------------------------- probabilities
def test_probability_outputs_warn_and_outputs_probs_gives_the_logits_table():
    base, ds = _classifier(), _class_data()
    probs_model = nn.Sequential(base, nn.Softmax(dim=1))
    loader = DataLoader(ds, batch_size=8)
    with pytest.warns(ProbabilityOutputWarning, match=r"look like probabilities.*outputs='probs'"):
        hm.score(probs_model, loader, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProbabilityOutputWarning)
        from_probs = hm.score(probs_model, loader, outputs="probs", progress=False)
        from_logits = hm.score(base, loader, progress=False)
        hm.score(probs_model, loader, outputs="logits", progress=False)  # said so: no warning
    pd.testing.assert_frame_equal(from_probs, from_logits, check_exact=False, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------- dict batches, HF
class TextData(Dataset):
    def __init__(self, n: int = 12, length: int = 10, vocab: int = 50, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, length), generator=g)
        lengths = torch.randint(3, length + 1, (n,), generator=g)
        self.mask = (torch.arange(length)[None] < lengths[:, None]).long()
        self.ids = self.ids * self.mask  # padding id 0 after each sentence
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


class MaskedMean(nn.Module):
    """A keyword-argument model like a Hugging Face one: mean of the unmasked token embeddings, logits in `.logits`."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.head = nn.Embedding(50, 8), nn.Linear(8, 3)

    def forward(self, input_ids, attention_mask):
        m = attention_mask[..., None].float()
        pooled = (self.embed(input_ids) * m).sum(1) / m.sum(1)
        return type("Output", (), {"logits": self.head(pooled)})()


def test_dict_batches_go_to_the_model_as_keyword_arguments():
    model, data = MaskedMean(), TextData()
    table = hm.score(model, DataLoader(data, batch_size=5, shuffle=True), progress=False)
    with torch.no_grad():
        logits = model(data.ids, data.mask).logits
    np.testing.assert_allclose(table["loss"], F.cross_entropy(logits, data.labels, reduction="none"), rtol=1e-5)
    np.testing.assert_array_equal(table["label"], data.labels.numpy())


@pytest.mark.slow
def test_hugging_face_dict_batches_keep_the_attention_mask():
    from reference import tiny_bert

    torch.manual_seed(0)
    model = tiny_bert(num_labels=3, max_length=16, initializer_range=0.5)
    data = TextData()
    table = hm.score(model, DataLoader(data, batch_size=5, shuffle=True), progress=False)
    model.eval()
    with torch.no_grad():
        ref = torch.stack(
            [model(**{k: v[None] for k, v in data[i].items()}).loss for i in range(len(data))]
        )  # the model's own loss, one sample at a time
        no_mask = model(input_ids=data.ids).logits
    np.testing.assert_allclose(table["loss"], ref.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(table["label"], data.labels.numpy())
    # Dropping the attention mask would change the scores of the padded sentences.
    no_mask_loss = F.cross_entropy(no_mask, data.labels, reduction="none")
    assert np.abs(table["loss"].to_numpy() - no_mask_loss.numpy()).max() > 1e-2


# ---------------------------------------------------------------------------------------------- ImageFolder classes
def test_class_names_recorded_at_scoring_name_the_report():
    class Named(TensorDataset):
        classes = ["ant", "bee", "cat", "dog"]

    model, ds = _classifier(), _class_data()
    table = hm.score(model, DataLoader(Named(*ds.tensors), batch_size=8), progress=False)
    assert table.attrs["hardmine"]["classes"] == Named.classes
    s = hm.summary(hm.split(table))
    assert list(s.per_class.index) == [Named.classes[c] for c in s.per_class["class"]]
    assert s.confusion.index.name == "ground truth"


# ---------------------------------------------------------------------------------------------- the whole chain
def _chain(model: nn.Module, dataset: Dataset, *, by: str | None, **score_kwargs) -> pd.DataFrame:
    loader = DataLoader(dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    table = hm.score(model, loader, progress=False, **score_kwargs)
    split = hm.split(table, by=by, hard_fraction=0.25)
    w = hm.sample_weights(
        split, hard_weight=4.0, easy_weight=1.0, balance=None
    )  # the plain group weights (no class balancing)
    hard = torch.from_numpy((split["difficulty"] == "hard").to_numpy(copy=True))
    torch.testing.assert_close(w[hard], torch.ones(int(hard.sum()), dtype=w.dtype))
    torch.testing.assert_close(w[~hard], torch.full((int((~hard).sum()),), 0.25, dtype=w.dtype))
    sampler = hm.HardSampler(w, num_samples=len(dataset), seed=0)
    assert len(list(sampler)) == len(dataset)
    miner = hm.HardMiner(
        model, loader, by=by, hard_fraction=0.25, warmup_epochs=0, progress=False, score_kwargs=score_kwargs
    )
    seen = 0
    for batch in miner:
        seen += len(batch[0]) if not isinstance(batch[0], dict) else len(next(iter(batch[0].values())))
    assert seen == len(dataset)
    mined = miner.table
    assert mined is not None and "weight" in mined.columns and "polarity" not in mined.columns
    pd.testing.assert_series_equal(mined["difficulty"].astype(str), split["difficulty"].astype(str), check_names=False)
    return mined


def test_chain_multiclass_without_positive():
    mined = _chain(_classifier(), _class_data(), by=None)
    assert hm.summary(mined).kind == "multiclass"


def test_chain_regression():
    model, ds = _regression()
    mined = _chain(model, ds, by=None, loss_fn=nn.L1Loss(reduction="none"))
    assert hm.summary(mined).kind == "regression"


def test_chain_multilabel():
    model, ds = _multilabel()
    mined = _chain(model, ds, by="loss", task="multilabel")
    assert hm.summary(mined).kind == "multilabel"


def test_chain_soft_labels():
    model, ds = _classifier(), _class_data()
    soft = torch.softmax(torch.randn(40, 4, generator=torch.Generator().manual_seed(2)), dim=1)
    mined = _chain(model, TensorDataset(ds.tensors[0], soft), by="loss")
    assert mined.attrs["hardmine"]["task"] == "soft"


def test_chain_unlabeled():
    model, ds = _classifier(), _class_data()
    mined = _chain(model, TensorDataset(ds.tensors[0]), by="entropy")
    assert hm.summary(mined).kind == "unlabeled"


def test_chain_any_loss():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    data = TensorDataset(torch.randn(24, 1, 6, 6), torch.randn(24, 1, 6, 6))
    mined = _chain(model, data, by="loss", task="loss", loss_fn=nn.MSELoss(reduction="none"))
    assert hm.summary(mined).kind == "loss"


def test_resolve_task_detection_rules():
    z = torch.zeros(4, 3)
    assert resolve_task(None, z, torch.tensor([0, 1, 2, 0])).name == "classification"
    assert resolve_task(None, z, None).name == "unlabeled"
    assert resolve_task(None, z, torch.tensor([[0.2, 0.3, 0.5]] * 4)).name == "soft"
    assert resolve_task(None, z, torch.tensor([[1.0, 1.0, 0.0]] * 4)).name == "multilabel"
    assert resolve_task(None, z[:, :1], torch.tensor([0.5, 1.0, 2.0, 3.0])).name == "regression"
    assert resolve_task(None, z[:, :1], torch.tensor([0.0, 1.0, 1.0, 0.0]), loss_fn=nn.MSELoss()).name == "regression"
    assert resolve_task(None, z, torch.randn(4, 3), loss_fn=lambda o, y: (o - y).abs()).name == "loss"
    with pytest.raises(ValueError, match="fit no task"):
        resolve_task(None, z, torch.randn(4, 3))


class _FailsOnce(Dataset):
    """Raises once at sample ``bad`` (an interrupted pass), then reads normally."""

    def __init__(self, base: TensorDataset, bad: int) -> None:
        self.base, self.bad, self.failed = base, bad, False
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        self.reads.append(i)
        if i == self.bad and not self.failed:
            self.failed = True
            raise OSError("interrupted")
        return self.base[i]


@pytest.mark.parametrize("kind", ["regression", "multilabel", "unlabeled"])
def test_a_resumed_pass_of_another_task_equals_an_uninterrupted_one(kind, tmp_path):
    if kind == "regression":
        model, ds = _regression(n=40)
        kwargs = {"loss_fn": nn.L1Loss(reduction="none")}
    elif kind == "multilabel":
        model, ds = _multilabel(n=40)
        kwargs = {"task": "multilabel", "keep_probs": True}
    else:
        model, ds = _classifier(), _class_data()
        kwargs = {"targets": False}
    expected = hm.score(model, DataLoader(ds, batch_size=4), progress=False, **kwargs)
    flaky = _FailsOnce(ds, bad=30)  # not one of the samples the fingerprint hashes (0, 10, 20, 29, 39)
    loader = DataLoader(flaky, batch_size=4)
    with pytest.raises(OSError, match="interrupted"):
        hm.score(model, loader, progress=False, checkpoint_dir=tmp_path / "ck", checkpoint_every=2, **kwargs)
    flaky.reads.clear()
    resumed = hm.score(model, loader, progress=False, checkpoint_dir=tmp_path / "ck", checkpoint_every=2, **kwargs)
    pd.testing.assert_frame_equal(resumed, expected)
    assert set(range(24, 40)) <= set(flaky.reads) and len([i for i in flaky.reads if i < 24]) <= 5  # resumed at 24
    assert resumed.attrs == expected.attrs
