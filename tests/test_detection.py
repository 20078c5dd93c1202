"""Detection tables (hardmine.scoring.detection) against a brute-force matcher, with torchvision's detection models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

import hardmine as hm
from hardmine.scoring.detection import match_image, score_detection


def collate(batch: list) -> tuple:
    return tuple(zip(*batch, strict=True))


def brute_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def brute_match(pb: Tensor, pl: Tensor, ps: Tensor, gb: Tensor, gl: Tensor, iou_t: float, score_t: float) -> dict:
    """Greedy by score, pure Python loops: each confident prediction takes the best free same-class box."""
    preds = sorted([(float(s), i) for i, s in enumerate(ps.tolist()) if s >= score_t], key=lambda x: (-x[0], x[1]))
    taken: set[int] = set()
    ious: list[float] = []
    for _, i in preds:
        best, best_j = -1.0, -1
        for j in range(len(gb)):
            if j in taken or int(gl[j]) != int(pl[i]):
                continue
            v = brute_iou(pb[i].tolist(), gb[j].tolist())
            if v > best:
                best, best_j = v, j
        if best_j >= 0 and best >= iou_t:
            taken.add(best_j)
            ious.append(best)
    n_gt, n_p, tp = len(gb), len(preds), len(ious)
    return {
        "gt_boxes": n_gt,
        "predictions": n_p,
        "det_recall": tp / n_gt if n_gt else 1.0,
        "det_precision": tp / n_p if n_p else 1.0,
        "missed": n_gt - tp,
        "false_pos": n_p - tp,
        "mean_iou": sum(ious) / tp if tp else math.nan,
        "mistakenness": 1 - 2 * sum(ious) / (n_gt + n_p) if n_gt + n_p else 0.0,
    }


def random_boxes(g: torch.Generator, n: int) -> Tensor:
    xy = torch.rand(n, 2, generator=g) * 40
    wh = torch.rand(n, 2, generator=g) * 20 + 2
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", range(6))
def test_match_image_equals_brute_force(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    gb = random_boxes(g, seed % 4 + (0 if seed == 5 else 2))
    gl = torch.randint(1, 3, (len(gb),), generator=g)
    # predictions near the ground truth, plus some noise boxes
    pb = torch.cat([gb + torch.randn(len(gb), 4, generator=g) * 3, random_boxes(g, 4)])
    pb[:, 2:] = torch.maximum(pb[:, 2:], pb[:, :2] + 1)
    pl = torch.cat([gl, torch.randint(1, 3, (4,), generator=g)])
    ps = torch.rand(len(pb), generator=g)
    for iou_t, score_t in ((0.5, 0.3), (0.3, 0.0), (0.75, 0.5)):
        ours = match_image(pb, pl, ps, gb, gl, iou_threshold=iou_t, score_threshold=score_t)
        ref = brute_match(pb, pl, ps, gb, gl, iou_t, score_t)
        for key, value in ref.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(ours[key]), key
            else:
                assert ours[key] == pytest.approx(value, abs=1e-5), key


def synthetic(n: int = 5) -> list[tuple[Tensor, dict[str, Tensor]]]:
    g = torch.Generator().manual_seed(0)
    data = []
    for i in range(n):
        k = i % 3  # image 0 and 3 have no ground truth
        boxes = random_boxes(g, k)
        data.append((torch.rand(3, 64, 64, generator=g), {"boxes": boxes, "labels": torch.ones(k, dtype=torch.long)}))
    return data


def tiny_fasterrcnn() -> nn.Module:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    torch.manual_seed(0)
    return fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64
    )


def test_fasterrcnn_rows_equal_brute_force_and_the_model_comes_back_as_it_was(tmp_path: Path) -> None:
    model = tiny_fasterrcnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = synthetic()
    loader = DataLoader(data, batch_size=2, collate_fn=collate, shuffle=True)
    table, boxes = score_detection(model, loader, score_threshold=0.05, progress=False, return_boxes=True)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        preds = model([im for im, _ in data])
    assert int(table["predictions"].sum()) > 0  # the check below compares real matches
    for i, (p, (_, t)) in enumerate(zip(preds, data, strict=True)):
        ref = brute_match(p["boxes"], p["labels"], p["scores"], t["boxes"], t["labels"], 0.5, 0.05)
        for key, value in ref.items():
            got = table[key].iloc[i]
            assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value, abs=1e-5), (i, key)
    # images without ground truth: their false positives still count
    assert table["gt_boxes"][0] == 0 and table["false_pos"][0] == table["predictions"][0]
    assert (boxes["kind"] == "missed").sum() == table["missed"].sum()
    assert (boxes["kind"] == "false_pos").sum() == table["false_pos"].sum()
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    back = pd.read_csv(tmp_path / "boxes.csv")
    assert list(back.columns) == list(boxes.columns) and len(back) == len(boxes)
    via_score = hm.score(model, loader, task="detection", progress=False)
    pd.testing.assert_frame_equal(via_score, score_detection(model, loader, progress=False, batch_size=5))
    with pytest.raises(ValueError, match=r"\['amp', 'loss_fn'\] do not apply to task='detection'"):
        hm.score(model, loader, task="detection", amp=True, loss_fn=nn.MSELoss())
    split = hm.split(table, hard_fraction=0.4)
    assert split.attrs["hardmine"]["by"] == "mistakenness"
    hard = split["difficulty"] == "hard"
    assert table["mistakenness"][hard].min() >= table["mistakenness"][~hard].max()
    w = hm.sample_weights(split).numpy()
    assert w[hard.to_numpy()].min() > w[~hard.to_numpy()].max()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large"])
def test_other_torchvision_detectors(name: str) -> None:
    import torchvision.models.detection as det

    torch.manual_seed(0)
    kwargs = {} if name.startswith("ssd") else {"min_size": 64, "max_size": 64}
    model = getattr(det, name)(weights=None, weights_backbone=None, num_classes=3, **kwargs)
    table = score_detection(model, DataLoader(synthetic(3), batch_size=2, collate_fn=collate), progress=False)
    assert len(table) == 3 and table["gt_boxes"].tolist() == [0, 1, 2]
    assert ((table["mistakenness"] >= 0) & (table["mistakenness"] <= 1)).all()


class Oracle(nn.Module):
    """Predicts the boxes it was built with; returns losses when ``losses`` is set (a broken eval mode)."""

    def __init__(self, preds: list[dict[str, Tensor]], losses: bool = False) -> None:
        super().__init__()
        self.preds, self.losses, self.calls = preds, losses, 0

    def forward(self, images: list[Tensor]) -> object:
        if self.losses:
            return {"loss_classifier": torch.tensor(1.0), "loss_box_reg": torch.tensor(0.5)}
        out = self.preds[self.calls : self.calls + len(images)]
        self.calls += len(images)
        return out


def test_bad_input_is_a_clear_error() -> None:
    im = torch.zeros(3, 8, 8)
    good = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "labels": torch.tensor([1])}
    flipped = {"boxes": torch.tensor([[5.0, 0.0, 4.0, 4.0]]), "labels": torch.tensor([1])}
    pred = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}
    with pytest.raises(ValueError, match=r"x2 >= x1.*image 1 \(batch 0\)"):
        score_detection(Oracle([pred] * 2), DataLoader([(im, good), (im, flipped)], batch_size=2, collate_fn=collate))
    with pytest.raises(ValueError, match="returned losses"):
        score_detection(Oracle([], losses=True), DataLoader([(im, good)], batch_size=1, collate_fn=collate))
    with pytest.raises(ValueError, match="at least one image"):
        score_detection(Oracle([]), DataLoader([0], batch_size=1, collate_fn=lambda b: ([], [])))
    with pytest.raises(ValueError, match="one label per"):
        bad = {"boxes": torch.zeros(2, 4), "labels": torch.tensor([1])}
        score_detection(Oracle([pred]), DataLoader([(im, bad)], batch_size=1, collate_fn=collate))
    with pytest.raises(TypeError, match="list of dicts"):
        score_detection(Oracle([pred]), DataLoader([(im, good)], batch_size=1, collate_fn=lambda b: (b[0][0], 3)))
    with pytest.raises(ValueError, match="empty"):
        score_detection(Oracle([]), DataLoader([], batch_size=1, collate_fn=collate))


def test_no_ground_truth_and_no_predictions_is_a_perfect_row() -> None:
    im = torch.zeros(3, 8, 8)
    empty_t = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    empty_p = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}
    table = score_detection(Oracle([empty_p]), DataLoader([(im, empty_t)], batch_size=1, collate_fn=collate))
    row = table.iloc[0]
    assert (row["det_recall"], row["det_precision"], row["mistakenness"]) == (1.0, 1.0, 0.0)
    assert np.isnan(row["mean_iou"])


def test_detection_gallery_colours_misses_and_false_positives() -> None:
    pytest.importorskip("matplotlib")
    im = torch.zeros(3, 16, 16)
    t = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0], [8.0, 8.0, 12.0, 12.0]]), "labels": torch.tensor([1, 1])}
    p = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 9.0, 5.0, 15.0]]), "labels": torch.tensor([1, 1])}
    p["scores"] = torch.tensor([0.9, 0.8])
    data = [(im, t)]
    table, boxes = score_detection(
        Oracle([p]), DataLoader(data, batch_size=1, collate_fn=collate), return_boxes=True, progress=False
    )
    fig = hm.plot_dense.detection_gallery(table, boxes, data, k=1)
    colors = [patch.get_edgecolor()[:3] for patch in fig.get_axes()[0].patches]
    from matplotlib.colors import to_rgb

    assert colors.count(to_rgb("limegreen")) == 2 and colors.count(to_rgb("red")) == 1
    assert colors.count(to_rgb("orange")) == 1


def test_hardminer_draws_images_with_mistakes_more_often() -> None:
    data = synthetic(6)
    miner = hm.HardMiner(
        tiny_fasterrcnn(),
        DataLoader(data, batch_size=2, collate_fn=collate),
        hard_fraction=0.5,
        progress=False,
        score_kwargs={"task": "detection"},
    )
    table = miner.rescore()
    assert table.attrs["hardmine"]["task"] == "detection" and table.attrs["hardmine"]["by"] == "mistakenness"
    hard = (table["difficulty"] == "hard").to_numpy()
    assert hard.sum() == 3
    assert table["mistakenness"][hard].min() >= table["mistakenness"][~hard].max()
    batches = list(miner)
    assert len(batches) == 3 and isinstance(batches[0][1][0], dict)  # detection batches, as collated
