"""Segmentation and sequence tables (scoring.dense) and ohem_pixel_loss, against per-image loops and real models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import hardmine as hm
from hardmine.feedback.losses import ohem_pixel_loss
from hardmine.scoring.dense import SegmentationTask, SequenceTask, segmentation_summary

C = 4


class TinySeg(nn.Module):
    """Conv + BatchNorm + conv: (B, 3, H, W) -> (B, C, H, W) logits, BatchNorm statistics moved off their defaults."""

    def __init__(self, num_classes: int = C) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1)
        )
        with torch.no_grad():
            self.net(torch.randn(4, 3, 6, 6) * 3)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": self.net(x) * 3}  # the torchvision segmentation layout


def seg_data(n: int = 7, size: tuple[int, int] = (6, 5)) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, *size, generator=g)
    y = torch.randint(0, C, (n, *size), generator=g)
    y[0, :2] = 255
    y[1, 0] = -100
    y[2] = 255  # no valid pixel
    return TensorDataset(x, y)


def reference_row(logits: Tensor, target: Tensor, thresh: float = 0.7) -> dict[str, float]:
    """One image, the straightforward way: boolean masks and per-class loops."""
    valid = (target != 255) & (target != -100)
    if not bool(valid.any()):
        return {"loss": 0.0, "label_prob": 1.0, "pixel_accuracy": 1.0, "hard_pixel_fraction": 0.0, "miou": 1.0}
    z = logits.permute(1, 2, 0)[valid].double()  # (P, C)
    t = target[valid]
    ce = F.cross_entropy(z, t, reduction="none")
    p = torch.softmax(z, dim=1)[torch.arange(len(t)), t]
    pred = z.argmax(dim=1)
    ious = []
    for c in range(logits.shape[0]):
        union = ((pred == c) | (t == c)).sum().item()
        if union:
            ious.append(((pred == c) & (t == c)).sum().item() / union)
    return {
        "loss": ce.mean().item(),
        "label_prob": p.mean().item(),
        "pixel_accuracy": (pred == t).double().mean().item(),
        "hard_pixel_fraction": (p < thresh).double().mean().item(),
        "miou": float(np.mean(ious)),
        "valid_pixels": int(valid.sum()),
    }


def test_segmentation_columns_equal_a_per_image_loop() -> None:
    model, ds = TinySeg(), seg_data()
    table = hm.score(model, DataLoader(ds, batch_size=3), progress=False)
    assert table.attrs["hardmine"]["task"] == "segmentation" and table.attrs["hardmine"]["num_classes"] == C
    assert list(table.columns[:9]) == [
        "index", "id", "loss", "label_prob", "pixel_accuracy", "hard_pixel_fraction", "miou", "valid_pixels", "inter_0"
    ]  # fmt: skip
    model.eval()
    with torch.no_grad():
        logits = model(ds.tensors[0])["out"]
    for i in range(len(ds)):
        ref = reference_row(logits[i], ds.tensors[1][i])
        for key, value in ref.items():
            assert table[key].iloc[i] == pytest.approx(value, abs=1e-5), (i, key)
    assert table["valid_pixels"].tolist()[:3] == [20, 25, 0]


def test_segmentation_summary_is_the_dataset_iou() -> None:
    model, ds = TinySeg(), seg_data()
    table = hm.score(model, DataLoader(ds, batch_size=4), progress=False)
    model.eval()
    with torch.no_grad():
        pred = model(ds.tensors[0])["out"].argmax(dim=1)
    t = ds.tensors[1]
    valid = (t != 255) & (t != -100)
    summary = segmentation_summary(table)
    for c in range(C):
        inter = ((pred == c) & (t == c) & valid).sum().item()
        union = (((pred == c) | (t == c)) & valid).sum().item()
        assert summary["iou"][c] == pytest.approx(inter / union)
    hard = hm.split(table, hard_fraction=0.5)
    sub = segmentation_summary(table[hard["difficulty"] == "hard"])
    assert sub["union"].sum() < summary["union"].sum()  # the summary of a subset sums that subset only


def test_segmentation_leaves_the_model_as_it_was_and_restores_train_mode() -> None:
    model = TinySeg().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hm.score(model, DataLoader(seg_data(), batch_size=3), progress=False)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_segmentation_bad_masks_raise() -> None:
    model, ds = TinySeg(), seg_data()
    wrong_size = TensorDataset(ds.tensors[0], ds.tensors[1][:, :, :4])
    with pytest.raises(ValueError, match=r"masks of shape \(3, 6, 4\).*batch 0"):
        hm.score(model, DataLoader(wrong_size, batch_size=3), progress=False, task="segmentation")
    y = ds.tensors[1].clone()
    y[4, 0, 0] = C  # not a class, not ignored
    with pytest.raises(ValueError, match=r"1 sample\(s\) have mask values outside the classes \[0, 4\).*indices \[4\]"):
        hm.score(model, DataLoader(TensorDataset(ds.tensors[0], y), batch_size=3), progress=False)
    with pytest.raises(TypeError, match="integer class-index targets"):
        hm.score(model, DataLoader(TensorDataset(ds.tensors[0], y.float()), batch_size=3), task="segmentation")


def test_segmentation_ignore_index_option_and_3d_volumes() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 2, 3, 4, generator=g)  # (B, C, D, H, W)
    target = torch.randint(0, 3, (2, 2, 3, 4), generator=g)
    target[0, 0] = 0
    task = SegmentationTask(ignore_index=0)
    task.check(logits, target, "batch 0")
    m = task.measures(logits, target)
    valid = target[0] != 0
    z = logits[0].permute(1, 2, 3, 0)[valid]
    assert m["loss"][0].item() == pytest.approx(F.cross_entropy(z, target[0][valid]).item(), abs=1e-6)


def test_split_weights_and_hardminer_draw_hard_images_more_often() -> None:
    model, ds = TinySeg(), seg_data(12)
    table = hm.split(hm.score(model, DataLoader(ds, batch_size=4), progress=False), hard_fraction=0.25)
    assert table.attrs["hardmine"]["by"] == "label_prob"
    w = hm.sample_weights(table).numpy()
    hard = (table["difficulty"] == "hard").to_numpy()
    assert w[hard].min() > w[~hard].max()
    miner = hm.HardMiner(model, DataLoader(ds, batch_size=4), hard_fraction=0.25, progress=False)
    miner.rescore()
    assert miner.table is not None and miner.table.attrs["hardmine"]["task"] == "segmentation"


def hrnet_ohem(logits: Tensor, target: Tensor, thresh: float, min_kept: int, ignore: int = 255) -> Tensor:
    """The OhemCrossEntropy of HRNet-Semantic-Segmentation, as published (boolean indexing, a sort)."""
    pixel_losses = F.cross_entropy(logits, target, ignore_index=ignore, reduction="none").contiguous().view(-1)
    mask = target.contiguous().view(-1) != ignore
    tmp = target.clone()
    tmp[tmp == ignore] = 0
    pred = F.softmax(logits, dim=1).gather(1, tmp.unsqueeze(1))
    pred, ind = pred.contiguous().view(-1)[mask].contiguous().sort()
    min_value = pred[min(min_kept, pred.numel() - 1)]
    threshold = max(min_value.item(), thresh)
    pixel_losses = pixel_losses[mask][ind]
    return pixel_losses[pred < threshold].mean()


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.7, 0), (0.7, 50), (0.3, 10), (0.95, 1000), (0.1, 5)])
def test_ohem_pixel_loss_equals_the_published_sampler(thresh: float, min_kept: int) -> None:
    g = torch.Generator().manual_seed(min_kept)
    logits = torch.randn(3, 5, 8, 9, generator=g) * 2
    target = torch.randint(0, 5, (3, 8, 9), generator=g)
    target[0, :3] = 255
    ours = ohem_pixel_loss(logits, target, thresh=thresh, min_kept=min_kept)
    assert ours.item() == pytest.approx(hrnet_ohem(logits, target, thresh, min_kept).item(), abs=1e-5)


def test_ohem_pixel_loss_grads_only_the_kept_pixels_and_checks_input() -> None:
    logits = torch.tensor([[[[4.0, 0.0, 0.0]], [[0.0, 0.0, 4.0]]]], requires_grad=True)
    target = torch.tensor([[[0, 0, 1]]])
    ohem_pixel_loss(logits, target, thresh=0.7, min_kept=0).backward()
    assert logits.grad is not None
    assert logits.grad[0, :, 0, 1].abs().sum() > 0 and logits.grad[0, :, 0, [0, 2]].abs().sum() == 0
    with pytest.raises(ValueError, match="targets"):
        ohem_pixel_loss(logits, target[..., :2])
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        ohem_pixel_loss(logits, torch.tensor([[[0, 5, 1]]]))
    empty = ohem_pixel_loss(logits, torch.full((1, 1, 3), 255))
    assert empty.item() == 0.0 and empty.requires_grad


# ------------------------------------------------------------------ sequences


class DictSeqs(Dataset):
    def __init__(self, ids: Tensor, mask: Tensor, labels: Tensor) -> None:
        self.ids, self.mask, self.labels = ids, mask, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=40, n_positions=16, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg)


def test_causal_lm_rows_equal_the_models_own_loss_with_padding() -> None:
    model = tiny_gpt2()
    g = torch.Generator().manual_seed(0)
    lengths = [8, 5, 3, 8, 6]
    ids = torch.randint(1, 40, (5, 8), generator=g)
    mask = torch.zeros(5, 8, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids.masked_fill(mask == 0, 0)  # right padding, labels left unmasked: the attention mask must exclude them
    table = hm.score(
        model, DataLoader(DictSeqs(ids, mask, ids.clone()), batch_size=2), task="causal_lm", progress=False
    )
    assert table.attrs["hardmine"]["task"] == "causal_lm"
    model.eval()
    with torch.no_grad():
        for i, n in enumerate(lengths):
            out = model(input_ids=ids[i : i + 1, :n], labels=ids[i : i + 1, :n])
            assert table["loss"][i] == pytest.approx(out.loss.item(), abs=1e-5)
            assert table["perplexity"][i] == pytest.approx(math.exp(out.loss.item()), rel=1e-5)
            z, t = out.logits[0, :-1], ids[i, 1:n]
            assert table["label_prob"][i] == pytest.approx(torch.softmax(z, 1)[range(n - 1), t].mean().item(), abs=1e-5)
            assert table["token_accuracy"][i] == pytest.approx((z.argmax(1) == t).float().mean().item(), abs=1e-6)
    assert table["tokens"].tolist() == [n - 1 for n in lengths]
    assert hm.split(table, hard_fraction=0.4).attrs["hardmine"]["by"] == "loss"


def test_token_classification_with_bert_equals_its_loss() -> None:
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=5
    )
    model = BertForTokenClassification(cfg)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 30, (4, 7), generator=g)
    labels = torch.randint(0, 5, (4, 7), generator=g)
    labels[:, 0] = -100  # [CLS]
    labels[1, 4:] = -100
    mask = torch.ones(4, 7, dtype=torch.long)
    table = hm.score(model, DataLoader(DictSeqs(ids, mask, labels), batch_size=3), progress=False)
    assert table.attrs["hardmine"]["task"] == "tokens"
    model.eval()
    with torch.no_grad():
        for i in range(4):
            out = model(input_ids=ids[i : i + 1], attention_mask=mask[i : i + 1], labels=labels[i : i + 1])
            assert table["loss"][i] == pytest.approx(out.loss.item(), abs=1e-5)
    assert table["tokens"].tolist() == [6, 3, 6, 6]


def test_plain_module_tokens_and_bad_labels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 3))
    x = torch.randint(0, 10, (5, 6))
    y = torch.randint(0, 3, (5, 6))
    y[3] = -100  # no counted token: the documented easy row
    table = hm.score(model, DataLoader(TensorDataset(x, y), batch_size=2), task="tokens", progress=False)
    with torch.no_grad():
        z = model(x)
    for i in (0, 1, 2, 4):
        assert table["loss"][i] == pytest.approx(F.cross_entropy(z[i], y[i]).item(), abs=1e-5)
    row = table.iloc[3]
    assert (row["loss"], row["perplexity"], row["label_prob"], row["tokens"]) == (0.0, 1.0, 1.0, 0)
    y[2, 1] = 7
    with pytest.raises(ValueError, match=r"labels outside the vocabulary/classes \[0, 3\).*indices \[2\]"):
        hm.score(model, DataLoader(TensorDataset(x, y), batch_size=2), task="tokens", progress=False)
    with pytest.raises(ValueError, match="fit both segmentation"):
        hm.score(model, DataLoader(TensorDataset(torch.randint(0, 10, (2, 3)), torch.zeros(2, 3).long())))


def test_sequence_task_mask_of_another_shape_raises() -> None:
    task = SequenceTask()
    task.see_inputs({"attention_mask": torch.ones(2, 5)})
    with pytest.raises(ValueError, match="attention_mask"):
        task.check(torch.zeros(2, 4, 3), torch.zeros(2, 4, dtype=torch.long), "batch 0")


def test_segmentation_summary_refuses_other_tables() -> None:
    with pytest.raises(ValueError, match="inter_<c>"):
        segmentation_summary(pd.DataFrame({"loss": [1.0]}))


def test_segmentation_gallery_draws_the_hardest_images() -> None:
    pytest.importorskip("matplotlib")
    model, ds = TinySeg().train(), seg_data()
    table = hm.score(model, DataLoader(ds, batch_size=4), progress=False)
    fig = hm.plot_dense.segmentation_gallery(table, ds, model, k=3)
    assert model.training
    axes = fig.get_axes()
    assert len(axes) == 9
    hardest = table.sort_values("label_prob").iloc[0]
    assert axes[0].get_title().startswith(f"#{int(hardest['index'])} label_prob=")
    pred = axes[2].get_images()[0].get_array()
    model.eval()
    with torch.no_grad():
        expected = model(ds.tensors[0][int(hardest["index"])][None])["out"].argmax(1)[0]
    np.testing.assert_array_equal(np.asarray(pred), expected.numpy())


def test_segmentation_results_are_per_image_whatever_the_image_size() -> None:
    from hardmine.scoring.engine import score_tensors

    model = TinySeg()
    small = score_tensors(model, DataLoader(seg_data(4, (6, 5)), batch_size=2), progress=False)
    large = score_tensors(model, DataLoader(seg_data(4, (24, 20)), batch_size=2), progress=False)
    assert {k: tuple(v.shape) for k, v in small.items()} == {k: tuple(v.shape) for k, v in large.items()}
    assert small["inter"].shape == (4, C)


def test_segmentation_loss_fn_replaces_the_loss_column_only() -> None:
    model, ds = TinySeg(), seg_data()
    loader = DataLoader(ds, batch_size=3)
    ce = nn.CrossEntropyLoss(reduction="none", ignore_index=255, label_smoothing=0.1)

    def smoothed(logits: Tensor, target: Tensor) -> Tensor:
        t = target.masked_fill(target == -100, 255)
        valid = (t != 255).flatten(1).sum(1).clamp_min(1)
        return ce(logits, t).flatten(1).sum(1) / valid  # per-image mean over valid pixels

    plain = hm.score(model, loader, progress=False)
    table = hm.score(model, loader, progress=False, task="segmentation", loss_fn=smoothed)
    model.eval()
    with torch.no_grad():
        logits = model(ds.tensors[0])["out"]
    expected = smoothed(logits, ds.tensors[1])
    np.testing.assert_allclose(table["loss"].to_numpy(), expected.numpy(), atol=1e-5)
    pd.testing.assert_series_equal(table["miou"], plain["miou"])


def test_ties_and_nan_logits() -> None:
    task = SegmentationTask()
    logits = torch.zeros(2, 3, 1, 4)  # every class ties: argmax is class 0
    logits[0, 2, 0, 1] = 1.0
    target = torch.tensor([[[0, 2, 1, 0]], [[1, 1, 0, 2]]])
    m = task.measures(logits, target)
    assert m["pixel_accuracy"].tolist() == [0.75, 0.25]
    assert m["inter"].tolist() == [[2, 0, 1], [1, 0, 0]]
    logits[1, 0, 0, 0] = float("nan")
    assert task.measures(logits, target)["finite"].tolist() == [True, False]
    with pytest.raises(ValueError, match=r"NaN or infinite outputs for 1 sample\(s\), dataset indices \[1\]"):
        hm.score(nn.Identity(), DataLoader(TensorDataset(logits, target), batch_size=2), progress=False)


@pytest.mark.parametrize("classes", [2, 21, 300])
def test_first_argmax_equals_torch_argmax_with_ties(classes: int) -> None:
    from hardmine.scoring.dense import _first_argmax

    g = torch.Generator().manual_seed(classes)
    z = torch.randint(0, 3, (3, classes, 40), generator=g).float()  # many ties between classes
    z[1] += torch.randn(classes, 40, generator=g)  # and an image without ties
    got = _first_argmax(z - z.amax(dim=1, keepdim=True))
    assert got.dtype == (torch.uint8 if classes <= 255 else torch.int32) and torch.equal(got.long(), z.argmax(dim=1))
    z[0, 1, 5] = float("nan")  # a NaN pixel matches no class: 0, in range for the per-class counts
    assert _first_argmax(z - z.amax(dim=1, keepdim=True))[0, 5].item() == 0


@pytest.mark.parametrize("joint", [True, False], ids=["bincount", "scatter"])
def test_pixel_counts_equal_a_per_image_confusion_matrix(joint: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from hardmine.scoring import dense

    if not joint:
        monkeypatch.setattr(dense, "_MAX_JOINT_BINS", 0)  # the path for many classes
    g = torch.Generator().manual_seed(3)
    c = 4
    target, pred = torch.randint(0, c, (3, 50), generator=g), torch.randint(0, c, (3, 50), generator=g)
    valid = torch.rand(3, 50, generator=g) > 0.3
    inter, union = dense._pixel_counts(target, pred, valid, c)
    for i in range(3):
        t, p = target[i][valid[i]], pred[i][valid[i]]
        for k in range(c):
            assert inter[i, k].item() == int(((t == k) & (p == k)).sum())
            assert union[i, k].item() == int(((t == k) | (p == k)).sum())


def test_masks_with_a_channel_dimension_are_read_as_masks() -> None:
    model, ds = TinySeg(), seg_data()
    plain = hm.score(model, DataLoader(ds, batch_size=3), progress=False)
    channel = TensorDataset(ds.tensors[0], ds.tensors[1].unsqueeze(1))
    table = hm.score(model, DataLoader(channel, batch_size=3), progress=False)
    pd.testing.assert_frame_equal(table, plain)
