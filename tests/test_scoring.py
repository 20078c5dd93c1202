import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CountingDataset, DictDataset, NoLength, Stream, make_dataset, make_model
from reference import DEVICES, DTYPES, MEASURE_NAMES, reference_score
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SubsetRandomSampler,
    TensorDataset,
)

from hardmine.scoring.engine import score, score_tensors

SCORE_COLUMNS = ["index", "id", "label", "pred", *MEASURE_NAMES]
# (out_features, flat, num_classes): (B,), (B, 1), (B, 2) and (B, K) logits.
OUTPUTS = {"flat": (1, True, 2), "column": (1, False, 2), "two": (2, False, 2), "multi": (5, False, 5)}


def _assert_matches_reference(table: pd.DataFrame, ref: dict, *, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    n = len(ref["index"])
    assert list(table.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    np.testing.assert_array_equal(table["index"].to_numpy(), np.arange(n))
    np.testing.assert_array_equal(table["label"].to_numpy(), np.array(ref["label"]))
    for name in MEASURE_NAMES:
        np.testing.assert_allclose(table[name].to_numpy(), np.array(ref[name]), atol=atol, rtol=rtol, err_msg=name)
    # pred: the reference's arg-max wherever the two top probabilities are not within rounding of each other.
    probs = np.array(ref["probs"])
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    np.testing.assert_array_equal(table["pred"].to_numpy()[clear], np.array(ref["pred"])[clear])


def _task(kind: str, n: int = 90, seed: int = 0):
    out, flat, num_classes = OUTPUTS[kind]
    return make_model(out, seed=seed, flat=flat), make_dataset(n, num_classes, seed=seed + 10)


# ------------------------------------------------------------------------------------ against the tutorial loop
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_scores_equal_a_per_sample_loop(kind, device):
    model, ds = _task(kind)
    loader = DataLoader(ds, batch_size=16, shuffle=True, drop_last=True)
    table = score(model, loader, device=device, progress=False)
    _assert_matches_reference(table, reference_score(model, ds))
    assert table.attrs["hardmine"]["num_classes"] == OUTPUTS[kind][2]
    assert next(model.parameters()).device.type == "cpu"  # moved back after the pass


@pytest.mark.parametrize("kind", ["column", "multi"])
def test_scores_equal_a_per_sample_loop_with_two_workers(kind):
    model, ds = _task(kind, n=77, seed=1)
    loader = DataLoader(
        ds, batch_size=8, shuffle=True, drop_last=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    _assert_matches_reference(score(model, loader, progress=False), reference_score(model, ds))


def test_columns_and_dtypes():
    model, ds = _task("multi", n=20)
    table = score(model, DataLoader(ds, batch_size=8), progress=False)
    assert list(table.columns) == SCORE_COLUMNS
    assert isinstance(table.index, pd.RangeIndex) and len(table) == 20
    expected = {"index": np.int64, "label": np.int64, "pred": np.int64, **{m: np.float32 for m in MEASURE_NAMES}}
    for col, dtype in expected.items():
        assert table[col].dtype == dtype, col
    assert pd.api.types.is_string_dtype(table["id"]) and table["id"].tolist() == [str(i) for i in range(20)]


def test_score_tensors_returns_cpu_tensors_in_index_order():
    model, ds = _task("multi", n=30)
    out = score_tensors(model, DataLoader(ds, batch_size=7, shuffle=True), progress=False, keep_probs=True)
    torch.testing.assert_close(out["index"], torch.arange(30))
    torch.testing.assert_close(out["label"], ds.tensors[1])
    assert out["probs"].shape == (30, 5) and out["probs"].dtype == torch.float32
    torch.testing.assert_close(out["probs_shape"], torch.tensor([30, 5]))
    ref = reference_score(model, ds)
    torch.testing.assert_close(out["loss"], torch.tensor(ref["loss"], dtype=torch.float32), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------- every row exactly once
@pytest.mark.parametrize("batch_size", [1, 101 // 4, 101 + 100])
def test_batch_size_invariance(batch_size):
    model, ds = _task("multi", n=101, seed=2)
    loader = DataLoader(ds, batch_size=10, shuffle=True)
    expected = score(model, loader, progress=False)
    got = score(model, loader, progress=False, batch_size=batch_size)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-5, atol=1e-6)
    _assert_matches_reference(got, reference_score(model, ds))


class EveryThirdSampler(Sampler[int]):
    """A custom sampler that shows only a third of the data, backwards."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        return iter(range(self.n - 1, -1, -3))

    def __len__(self) -> int:
        return len(range(self.n - 1, -1, -3))


def _loaders(ds: Dataset):
    n = len(ds)
    return {
        "shuffle": DataLoader(ds, batch_size=8, shuffle=True),
        "drop_last": DataLoader(ds, batch_size=8, drop_last=True),
        "custom_sampler": DataLoader(ds, batch_size=8, sampler=EveryThirdSampler(n)),
        "subset_sampler": DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler([1, 5, 9])),
        "batch_sampler": DataLoader(ds, batch_sampler=BatchSampler(EveryThirdSampler(n), 5, drop_last=True)),
        "list_batch_sampler": DataLoader(ds, batch_sampler=[[3, 1], [2]]),
    }


@pytest.mark.parametrize("which", list(_loaders(TensorDataset(torch.zeros(1)))))
def test_every_sample_exactly_once_in_index_order_whatever_the_loader_does(which):
    model, base = _task("multi", n=45, seed=3)
    ds = CountingDataset(base)
    table = score(model, _loaders(ds)[which], progress=False)
    assert ds.calls == [1] * 45
    _assert_matches_reference(table, reference_score(model, base))


# ------------------------------------------------------------------------------------------ batches and outputs
def test_dict_batches_with_default_and_named_keys():
    model, base = _task("multi", n=25, seed=4)
    expected = score(model, DataLoader(base, batch_size=6), progress=False)
    default_keys = DataLoader(DictDataset(base, "image", "label"), batch_size=6, shuffle=True)
    pd.testing.assert_frame_equal(score(model, default_keys, progress=False), expected)
    named = DataLoader(DictDataset(base, "pixels", "cls"), batch_size=6, shuffle=True)
    pd.testing.assert_frame_equal(score(model, named, progress=False, input_key="pixels", target_key="cls"), expected)
    # Unknown keys go to the model as keyword arguments (issue 13); a model that takes none says which they were.
    with pytest.raises(TypeError, match=r"keyword arguments \['pixels', 'cls'\].*input_key="):
        score(model, named, progress=False)


class ReversedPairs(Dataset):
    """Samples as ``(label, {"features": x})``: a layout only a custom ``unpack`` understands."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        x, y = self.base[index]
        return y, {"features": x}


class KeywordModel(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *, features):
        return self.inner(features)


def test_custom_unpack_and_keyword_inputs():
    model, base = _task("multi", n=25, seed=5)
    expected = score(model, DataLoader(base, batch_size=6), progress=False)
    loader = DataLoader(ReversedPairs(base), batch_size=6, shuffle=True)
    got = score(KeywordModel(model), loader, progress=False, unpack=lambda b: (b[1], b[0]))
    pd.testing.assert_frame_equal(got, expected)


class Wrapped(nn.Module):
    """Returns the inner model's logits inside another structure."""

    def __init__(self, inner: nn.Module, how: str) -> None:
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x):
        z = self.inner(x)
        if self.how == "attr":
            return SimpleNamespace(logits=z, hidden_states=None)
        if self.how == "dict":
            return {"logits": z, "features": x}
        return (z, x)


@pytest.mark.parametrize("how", ["attr", "dict", "tuple"])
def test_model_outputs_with_logits_inside(how):
    model, ds = _task("two", n=30, seed=6)
    expected = score(model, DataLoader(ds, batch_size=7), progress=False)
    pd.testing.assert_frame_equal(score(Wrapped(model, how), DataLoader(ds, batch_size=7), progress=False), expected)


class Cast(nn.Module):
    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, z):
        return z.to(self.dtype)


@pytest.mark.parametrize("kind", ["flat", "multi"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logits_of_every_dtype_give_float32_scores(dtype, kind):
    model, ds = _task(kind, n=40, seed=14)
    cast = nn.Sequential(model, Cast(dtype))
    table = score(cast, DataLoader(ds, batch_size=16), progress=False, keep_probs=True)
    for name in MEASURE_NAMES:
        assert table[name].dtype == np.float32
    # The reference sees the same (rounded) logits, in float64.
    _assert_matches_reference(table, reference_score(cast, ds))


@pytest.mark.parametrize("labels_as", ["float", "column"])
def test_float_and_column_binary_labels(labels_as):
    model = make_model(1, seed=7)
    x, y = make_dataset(40, 2, seed=7).tensors
    labels = y.float() if labels_as == "float" else y[:, None]
    table = score(model, DataLoader(TensorDataset(x, labels), batch_size=9, shuffle=True), progress=False)
    assert table["label"].dtype == np.int64
    np.testing.assert_array_equal(table["label"].to_numpy(), y.numpy())
    _assert_matches_reference(table, reference_score(model, TensorDataset(x, y)))


def test_keep_probs_columns_equal_softmax():
    model, ds = _task("multi", n=33, seed=8)
    table = score(model, DataLoader(ds, batch_size=10, shuffle=True), progress=False, keep_probs=True)
    cols = [f"prob_{c}" for c in range(5)]
    assert list(table.columns) == SCORE_COLUMNS + cols
    assert all(table[c].dtype == np.float32 for c in cols)
    ref = reference_score(model, ds)
    np.testing.assert_allclose(table[cols].to_numpy(), np.array(ref["probs"]), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(table[cols].to_numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_keep_probs_of_a_single_logit_gives_two_columns():
    model, ds = _task("flat", n=20, seed=9)
    table = score(model, DataLoader(ds, batch_size=6), progress=False, keep_probs=True)
    with torch.no_grad():
        p1 = torch.sigmoid(copy.deepcopy(model).eval()(ds.tensors[0])).numpy()
    np.testing.assert_allclose(table["prob_1"].to_numpy(), p1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["prob_0"].to_numpy(), 1 - p1, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------------------------------- ids
def test_ids_argument_and_image_folder_paths(image_folder):
    root, ds = image_folder
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    table = score(model, loader, progress=False)
    assert table["id"].tolist() == [str(root / c / f"{c}_{i}.png") for c in ("cat", "dog") for i in range(3)]
    np.testing.assert_array_equal(table["label"].to_numpy(), [0, 0, 0, 1, 1, 1])
    _assert_matches_reference(table, reference_score(model, ds))
    named = score(model, loader, progress=False, ids=[f"img-{k}" for k in range(6)])
    assert named["id"].tolist() == [f"img-{k}" for k in range(6)]
    with pytest.raises(ValueError, match=r"`ids` to have one id per dataset sample \(6\), but got 2"):
        score(model, loader, progress=False, ids=["a", "b"])


# ---------------------------------------------------------------------------------- the model is left as it was
def test_model_state_and_training_flags_are_restored():
    model, ds = _task("multi", n=50, seed=10)
    model.train()
    model[1].eval()  # BatchNorm alone in eval mode
    before_state = copy.deepcopy(model.state_dict())
    before_modes = [m.training for m in model.modules()]
    before_grad = [p.requires_grad for p in model.parameters()]
    score(model, DataLoader(ds, batch_size=8, shuffle=True), progress=False)
    after = model.state_dict()
    assert list(after) == list(before_state)
    for key, value in before_state.items():
        assert torch.equal(after[key], value), key
    assert [m.training for m in model.modules()] == before_modes == [True, True, False, True, True, True]
    assert [p.requires_grad for p in model.parameters()] == before_grad
    assert all(p.grad is None for p in model.parameters())


def test_batchnorm_statistics_untouched_and_eval_model_stays_eval():
    model, ds = _task("two", n=50, seed=11)
    model.train()
    running = model[1].running_mean.clone(), model[1].running_var.clone(), model[1].num_batches_tracked.clone()
    score(model, DataLoader(ds, batch_size=50), progress=False)
    for before, after in zip(
        running, (model[1].running_mean, model[1].running_var, model[1].num_batches_tracked), strict=True
    ):
        assert torch.equal(before, after)
    assert all(m.training for m in model.modules())
    model.eval()
    score(model, DataLoader(ds, batch_size=50), progress=False)
    assert not any(m.training for m in model.modules())


def test_model_restored_after_an_error():
    model, ds = _task("multi", n=12, seed=12)
    model.train()
    bad = TensorDataset(ds.tensors[0], torch.full((12,), 9))
    with pytest.raises(ValueError):
        score(model, DataLoader(bad, batch_size=4), progress=False)
    assert all(m.training for m in model.modules())


def test_amp_bf16_on_cpu_is_close():
    model, ds = _task("multi", n=40, seed=13)
    loader = DataLoader(ds, batch_size=10)
    full = score(model, loader, progress=False)
    for amp in ("bf16", True, torch.bfloat16):
        low = score(model, loader, progress=False, amp=amp)
        assert low["label_prob"].dtype == np.float32
        for name in ("confidence", "label_prob", "margin"):
            np.testing.assert_allclose(low[name].to_numpy(), full[name].to_numpy(), atol=2e-2, err_msg=name)
        np.testing.assert_allclose(low["loss"].to_numpy(), full["loss"].to_numpy(), atol=5e-2, rtol=5e-2)


# ------------------------------------------------------------------------------------------------------ errors
class FixedLogits(nn.Module):
    """Returns logits looked up by the sample's index, which the input carries as x[:, 0]."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, x):
        return self.table[x[:, 0].long()]


def _index_data(labels: torch.Tensor) -> TensorDataset:
    n = len(labels)
    return TensorDataset(torch.arange(n, dtype=torch.float32)[:, None], labels)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_raise_naming_the_samples(bad):
    logits = torch.randn(30, 3)
    logits[7, 1] = bad
    logits[22, 0] = bad
    loader = DataLoader(_index_data(torch.zeros(30, dtype=torch.long)), batch_size=4, shuffle=True)
    with pytest.raises(ValueError, match=r"NaN or infinite logits for 2 sample\(s\), dataset indices \[7, 22\]"):
        score(FixedLogits(logits), loader, progress=False)


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_labels_outside_the_models_classes_raise_naming_the_samples(bad):
    labels = torch.zeros(20, dtype=torch.long)
    labels[[4, 15]] = bad
    loader = DataLoader(_index_data(labels), batch_size=6, shuffle=True)
    with pytest.raises(
        ValueError,
        match=rf"2 sample\(s\) have labels .* \[0, 3\): dataset indices \[4, 15\] with "
        rf"labels \[{bad}, {bad}\]",
    ):
        score(FixedLogits(torch.randn(20, 3)), loader, progress=False)


def test_non_integer_float_labels_raise():
    labels = torch.tensor([0.0, 1.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"dataset indices \[2\]"):
        score(FixedLogits(torch.randn(4)), DataLoader(_index_data(labels), batch_size=2), progress=False)


class DropsOne(nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0] - 1, 3)


def test_logits_and_labels_of_different_batch_size_raise_naming_the_batch():
    loader = DataLoader(_index_data(torch.zeros(10, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match=r"3 rows of logits for 4 targets in batch 0 \(samples 0..3\)"):
        score(DropsOne(), loader, progress=False)


def test_bad_loaders_and_arguments_raise():
    model = make_model(3)
    with pytest.raises(ValueError, match=r"empty dataset"):
        score(model, DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0)), batch_size=4), progress=False)
    with pytest.raises(TypeError, match=r"map-style dataset.*IterableDataset"):
        score(model, DataLoader(Stream(), batch_size=2), progress=False)
    with pytest.raises(TypeError, match=r"needs a dataset with __len__"):
        score(model, DataLoader(NoLength(), batch_size=2), progress=False)
    loader = DataLoader(make_dataset(8, 3), batch_size=4)
    with pytest.raises(TypeError, match=r"`model` to be a torch.nn.Module, but got function"):
        score(lambda x: x, loader, progress=False)
    with pytest.raises(ValueError, match=r"`batch_size` must be >= 1, got 0"):
        score(model, loader, progress=False, batch_size=0)
    with pytest.raises(ValueError, match=r"`amp` must be one of 'bf16', .*, got 'fp8'"):
        score(model, loader, progress=False, amp="fp8")
    with pytest.raises(ValueError, match=r"`amp` must be one of torch.float16, torch.bfloat16, got torch.float64"):
        score(model, loader, progress=False, amp=torch.float64)
    with pytest.raises(ValueError, match=r"`device` must name a torch device, got str 'gpu0'"):
        score(model, loader, progress=False, device="gpu0")


def test_unreadable_batches_and_outputs_raise():
    model = make_model(3)
    # Batches of inputs only are unlabeled data now (issue 14), no longer an error.
    unlabeled = score(model, DataLoader(torch.zeros(8, 6), batch_size=4), progress=False)
    assert "label" not in unlabeled.columns and unlabeled.attrs["hardmine"]["task"] == "unlabeled"
    loader = DataLoader(make_dataset(8, 3), batch_size=4)
    with pytest.raises(ValueError, match=r"shape \(B,\), \(B, 1\) or \(B, C\).*\(4, 3, 1\).*batch 0"):
        score(nn.Sequential(model, nn.Unflatten(1, (3, 1))), loader, progress=False)
    with pytest.raises(TypeError, match=r"float logits, but got torch.int64"):
        score(
            FixedLogits(torch.zeros(8, 3, dtype=torch.long)),
            DataLoader(_index_data(torch.zeros(8)), batch_size=4),
            progress=False,
        )
    # (B, C) targets beside (B, C) logits are multi-label or soft labels now (issue 14); other shapes fit no task.
    with pytest.raises(
        ValueError, match=r"fit no task: outputs of shape \(4, 3\) and targets of shape \(4, 5\) in batch 0"
    ):
        score(model, DataLoader(TensorDataset(torch.zeros(8, 6), torch.zeros(8, 5)), batch_size=4), progress=False)
