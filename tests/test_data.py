from collections import namedtuple
from types import SimpleNamespace

import pytest
import torch
from conftest import DictDataset, NoLength, Stream
from reference import DEVICES
from torch import nn
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
)

from hardmine.core.data import (
    INPUT_KEYS,
    TARGET_KEYS,
    IndexedLoader,
    call_model,
    dataset_ids,
    move_to_device,
    rebuild_loader,
    unpack_batch,
    with_indices,
    wrap,
)


def _indexed_data(n: int = 23) -> TensorDataset:
    """x[i] == i, so a batch tells which samples it holds."""
    return TensorDataset(torch.arange(n, dtype=torch.float32), torch.arange(n) % 3)


def collate_with_tag(samples):
    x, y = default_collate(samples)
    return {"x": x, "y": y, "tag": "custom"}


def init_nothing(worker_id):
    return None


# ------------------------------------------------------------------------------------------------ unpack_batch
def test_unpack_tuple_and_list_batches_ignore_extra_items():
    x, y = torch.zeros(3, 2), torch.tensor([0, 1, 0])
    for batch in ((x, y), [x, y], (x, y, "extra", torch.ones(3))):
        got_x, got_y = unpack_batch(batch)
        assert got_x is x and got_y is y


@pytest.mark.parametrize("input_key", INPUT_KEYS)
@pytest.mark.parametrize("target_key", TARGET_KEYS)
def test_unpack_dict_with_usual_keys(input_key, target_key):
    x, y = torch.zeros(2, 2), torch.tensor([1, 0])
    got_x, got_y = unpack_batch({"meta": "ignored", input_key: x, target_key: y})
    assert got_x is x and got_y is y


def test_unpack_dict_with_named_keys_and_list_targets():
    batch = {"pixels": torch.ones(2, 2), "cls": [1, 0], "image": torch.zeros(2, 2), "label": torch.tensor([0, 0])}
    x, y = unpack_batch(batch, input_key="pixels", target_key="cls")
    torch.testing.assert_close(x, torch.ones(2, 2))
    torch.testing.assert_close(y, torch.tensor([1, 0]))


def test_unpack_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"targets in a dict batch with keys \['x', 'bar'\] \(batch 4\).*'cls'"):
        unpack_batch({"x": 1, "bar": torch.tensor([0])}, target_key="cls", batch_number=4)
    with pytest.raises(ValueError, match=r"inputs in a dict batch.*`input_key` is 'pixels'"):
        unpack_batch({"x": 1, "y": torch.tensor([0])}, input_key="pixels")
    with pytest.raises(ValueError, match=r"keys \['label'\].*holds only the targets"):
        unpack_batch({"label": torch.tensor([0])})
    with pytest.raises(ValueError, match=r"inputs only \(a tensor or a 1-tuple\) or a dict, but got int.*unpack="):
        unpack_batch(3)
    with pytest.raises(TypeError, match=r"targets \(batch 2\) to be a tensor.*but got str"):
        unpack_batch((torch.zeros(1), "cat"), batch_number=2)


def test_unpack_inputs_only_and_dicts_of_keyword_arguments():
    # Issue 14: unlabeled batches; issue 13: every non-label key goes to the model when no input key is known.
    x = torch.zeros(3, 2)
    assert unpack_batch(x) == (x, None)
    got, none = unpack_batch((x,))
    assert got is x and none is None
    assert unpack_batch((x, torch.tensor([0, 1, 0])), targets=False)[1] is None
    ids, mask, labels = torch.ones(2, 4), torch.ones(2, 4), torch.tensor([1, 0])
    inputs, y = unpack_batch({"input_ids": ids, "attention_mask": mask, "labels": labels})
    assert inputs.keys() == {"input_ids", "attention_mask"} and inputs["attention_mask"] is mask and y is labels
    inputs, y = unpack_batch({"input_ids": ids, "attention_mask": mask})
    assert inputs.keys() == {"input_ids", "attention_mask"} and y is None
    inputs, y = unpack_batch({"foo": 1, "label": torch.tensor([0])})
    assert inputs == {"foo": 1} and y.tolist() == [0]
    assert unpack_batch({"image": x, "label": labels}, targets=False) == (x, None)


# -------------------------------------------------------------------------------------------------- call_model
class _Out(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        z = x * 2
        if self.kind == "tensor":
            return z
        if self.kind == "attr":
            return SimpleNamespace(logits=z, hidden=None)
        if self.kind == "dict":
            return {"loss": None, "logits": z}
        if self.kind == "tuple":
            return (z, "aux")
        return "not logits"


@pytest.mark.parametrize("kind", ["tensor", "attr", "dict", "tuple"])
def test_call_model_finds_the_logits(kind):
    x = torch.randn(4, 3)
    torch.testing.assert_close(call_model(_Out(kind), x), x * 2)


def test_call_model_passes_dict_inputs_as_keywords_and_rejects_other_outputs():
    class KW(nn.Module):
        def forward(self, *, pixel_values, mask):
            return pixel_values * mask

    x = torch.randn(2, 3)
    torch.testing.assert_close(call_model(KW(), {"pixel_values": x, "mask": torch.zeros(2, 3)}), torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"return logits .* but it returned str"):
        call_model(_Out("other"), x)


# ------------------------------------------------------------------------------------------------ dataset_ids
def test_dataset_ids_of_image_folder_subset_and_concat(image_folder):
    root, ds = image_folder
    ids = dataset_ids(ds)
    expected = [str(root / cls / f"{cls}_{i}.png") for cls in ("cat", "dog") for i in range(3)]
    assert ids == expected
    assert dataset_ids(Subset(ds, [4, 0])) == [expected[4], expected[0]]
    assert dataset_ids(ConcatDataset([ds, Subset(ds, [1])])) == expected + [expected[1]]
    assert dataset_ids(TensorDataset(torch.zeros(3))) is None
    assert dataset_ids(ConcatDataset([ds, TensorDataset(torch.zeros(3))])) is None


# --------------------------------------------------------------------------------------------- move_to_device
@pytest.mark.parametrize("device", DEVICES)
def test_move_to_device_walks_nested_containers(device):
    Pair = namedtuple("Pair", ["a", "b"])
    obj = {"x": [torch.zeros(2), (torch.ones(1), "keep")], "p": Pair(torch.ones(2), 3)}
    out = move_to_device(obj, torch.device(device))
    assert out["x"][0].device.type == device and out["x"][1][0].device.type == device
    assert out["x"][1][1] == "keep" and isinstance(out["x"], list) and isinstance(out["x"][1], tuple)
    assert isinstance(out["p"], Pair) and out["p"].b == 3 and out["p"].a.device.type == device


# ---------------------------------------------------------------------------------------------- with_indices
def _check_indexed(loader_like, n):
    seen = []
    for idx, x, y in loader_like:
        assert idx.dtype == torch.int64
        torch.testing.assert_close(x, idx.float())
        torch.testing.assert_close(y, idx % 3)
        seen.extend(idx.tolist())
    return seen


def test_with_indices_follows_the_users_shuffle_and_drop_last():
    ds = _indexed_data(23)
    loader = DataLoader(ds, batch_size=5, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(3))
    indexed = with_indices(loader)
    assert isinstance(indexed, IndexedLoader) and len(indexed) == len(loader) == 4
    assert indexed.dataset is ds
    seen = _check_indexed(indexed, 23)
    assert len(seen) == 20 and len(set(seen)) == 20 and seen != sorted(seen)


def test_with_indices_reuses_a_custom_batch_sampler_and_keeps_dict_batches():
    ds = DictDataset(_indexed_data(10), input_key="x", target_key="y")
    batches = [[9, 1], [4], [0, 2, 3]]
    loader = DataLoader(ds, batch_sampler=batches)
    got = [(idx.tolist(), batch["x"].tolist()) for idx, batch in with_indices(loader)]
    assert got == [(b, [float(i) for i in b]) for b in batches]


def test_with_indices_keeps_a_loader_without_batching_and_its_sampler():
    ds = _indexed_data(6)
    order = [5, 0, 3, 3, 1]
    loader = DataLoader(ds, batch_size=None, sampler=order)  # one sample at a time, in the sampler's order
    got = list(with_indices(loader))
    assert [int(idx) for idx, *_ in got] == order
    assert all(idx.shape == () and idx.dtype == torch.int64 for idx, *_ in got)
    assert [(int(idx), x.tolist()) for idx, x, _y in got] == [(i, ds[i][0].tolist()) for i in order]
    assert len(with_indices(loader)) == len(loader) == 5
    rewrapped = wrap(loader, [2, 4])  # replaced sampling keeps the loader unbatched too
    assert [x.tolist() for x, _y in rewrapped] == [ds[2][0].tolist(), ds[4][0].tolist()]


def test_with_indices_with_two_workers_keeps_each_batchs_indices():
    ds = _indexed_data(40)
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
    assert sorted(_check_indexed(with_indices(loader), 40)) == list(range(40))


# ----------------------------------------------------------------------------------------- wrap and rebuilding
def test_wrap_carries_every_argument_and_uses_the_sampler():
    ds = _indexed_data(12)
    g = torch.Generator().manual_seed(1)
    loader = DataLoader(
        ds,
        batch_size=3,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_with_tag,
        timeout=0,
        worker_init_fn=init_nothing,
        generator=g,
    )
    order = [11, 0, 5, 5, 7, 2, 9]
    new = wrap(loader, order)
    assert isinstance(new, DataLoader) and new is not loader
    for key in (
        "batch_size",
        "drop_last",
        "collate_fn",
        "num_workers",
        "pin_memory",
        "timeout",
        "worker_init_fn",
        "generator",
        "dataset",
    ):
        assert getattr(new, key) is getattr(loader, key) or getattr(new, key) == getattr(loader, key), key
    batches = list(new)
    assert [b["x"].tolist() for b in batches] == [[11.0, 0.0, 5.0], [5.0, 7.0, 2.0]]  # drop_last kept
    assert all(b["tag"] == "custom" for b in batches)
    assert loader.sampler is not new.sampler and loader.batch_size == 3  # the user's loader is untouched


def test_wrap_with_batch_sampler_and_indices():
    ds = _indexed_data(8)
    loader = DataLoader(ds, batch_size=4)
    got = [idx.tolist() for idx, x, y in wrap(loader, batch_sampler=[[3, 1], [7]], indices=True)]
    assert got == [[3, 1], [7]]


def test_wrap_errors():
    ds = _indexed_data(8)
    loader = DataLoader(ds, batch_size=4)
    with pytest.raises(ValueError, match=r"exactly one of `sampler` and `batch_sampler`, but got neither"):
        wrap(loader)
    with pytest.raises(ValueError, match=r"but got both"):
        wrap(loader, [0], batch_sampler=[[0]])
    custom = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 3, False))
    with pytest.raises(ValueError, match=r"custom batch_sampler.*batch_size"):
        wrap(custom, [0, 1])
    with pytest.raises(TypeError, match=r"map-style dataset.*IterableDataset \(Stream\)"):
        wrap(DataLoader(Stream(), batch_size=2), [0])
    with pytest.raises(TypeError, match=r"`loader` must be a torch.utils.data.DataLoader, got list"):
        wrap([1, 2, 3], [0])


@pytest.mark.parametrize("fn", [with_indices, lambda loader: wrap(loader, [0])], ids=["with_indices", "wrap"])
def test_loaders_need_a_nonempty_map_style_dataset(fn):
    with pytest.raises(TypeError, match=r"needs a map-style dataset"):
        fn(DataLoader(Stream(), batch_size=2))
    with pytest.raises(TypeError, match=r"needs a dataset with __len__, but NoLength has none"):
        fn(DataLoader(NoLength(), batch_size=2))
    with pytest.raises(ValueError, match=r"empty dataset: `loader.dataset` has 0 samples"):
        fn(DataLoader(TensorDataset(torch.zeros(0)), batch_size=2))


def test_rebuild_loader_overrides():
    ds = _indexed_data(10)
    loader = DataLoader(ds, batch_size=4, drop_last=True, shuffle=True)
    new = rebuild_loader(loader, sampler=range(10), batch_size=3, drop_last=False)
    assert [len(b[0]) for b in new] == [3, 3, 3, 1]
    other = _indexed_data(5)
    assert rebuild_loader(loader, sampler=range(5), dataset=other).dataset is other
    custom = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 3, False))
    assert rebuild_loader(custom, sampler=range(10)).batch_size == 3


def test_wrap_indices_must_be_a_bool():
    loader = DataLoader(TensorDataset(torch.arange(4.0)), batch_size=2)
    with pytest.raises(TypeError, match=r"`indices` must be True or False, got int 1"):
        wrap(loader, [0, 1], indices=1)
