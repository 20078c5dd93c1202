"""``hardmine score --task segmentation|detection`` on tiny folders, compared with hm.score / hm.score_detection.

The folders are written to tmp_path (generated shapes, no download); the models are torchvision's with random weights
saved as the user's checkpoint. The reference runs the library functions on tensors made here from the same files.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import functional as F

import hardmine as hm
from hardmine.analysis.io import read_csv
from hardmine.app.cli import main
from hardmine.app.html_report import read_skipped

SEG_ARCH = "lraspp_mobilenet_v3_large"
DET_ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _image(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    """images/{a,b,sub/c}.png with masks (classes 0-2, a row of 255), one image without a mask, one corrupt."""
    root = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    (root / "images" / "sub").mkdir(parents=True)
    (root / "masks" / "sub").mkdir(parents=True)
    names = ["a", "b", "sub/c"]
    for i, name in enumerate(names):
        Image.fromarray(_image(rng)).save(root / "images" / f"{name}.png")
        mask = np.zeros((32, 32), np.uint8)
        mask[4 : 12 + 4 * i, 6:20] = 1 + i % 2
        mask[0] = 255
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    Image.fromarray(_image(rng)).save(root / "images" / "no_mask.png")
    (root / "images" / "broken.png").write_bytes(b"not a png")
    (root / "images" / "notes.txt").write_text("ignored")
    torch.manual_seed(0)
    model = torchvision.models.get_model(SEG_ARCH, weights=None, weights_backbone=None, num_classes=3)
    torch.save({"model": model.state_dict()}, root / "seg.pt")
    return root, names, model


def test_segmentation_folder_matches_hm_score(seg, tmp_path, capsys):
    root, names, model = seg
    out = tmp_path / "seg.csv"
    argv = ["score", str(root), "--task", "segmentation", "--arch", SEG_ARCH, "--weights", str(root / "seg.pt")]
    code = main([*argv, "-o", str(out), "--image-size", "32", "--resize-size", "32", "--hard-fraction", "0.34"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no mask" in captured.err and "broken.png" in captured.err
    table = read_csv(out)
    # the reference: the same files as tensors, through hm.score with the same model
    data = []
    for name in names:
        image = F.normalize(F.to_tensor(Image.open(root / "images" / f"{name}.png").convert("RGB")), MEAN, STD)
        data.append((image, torch.tensor(np.asarray(Image.open(root / "masks" / f"{name}.png")), dtype=torch.long)))
    ref = hm.score(model, DataLoader(data, batch_size=2), task="segmentation", progress=False)
    assert table["id"].tolist() == [str(root / "images" / f"{n}.png") for n in names]
    assert table["index"].tolist() == [0, 1, 2]
    for col in ("loss", "label_prob", "pixel_accuracy", "miou"):
        assert_allclose(table[col].to_numpy(), ref[col].to_numpy(), rtol=1e-5, atol=1e-6, err_msg=col)
    for col in ("valid_pixels", "inter_1", "union_2"):
        assert_array_equal(table[col].to_numpy(), ref[col].to_numpy())
    assert table["valid_pixels"].tolist() == [31 * 32] * 3  # the 255 row is ignored
    hardest = int(np.argmin(ref["label_prob"].to_numpy()))
    assert table["difficulty"].tolist() == ["hard" if i == hardest else "easy" for i in range(3)]
    assert table.attrs["hardmine"]["image_root"] == str(root / "images")
    skipped = dict(read_skipped(out))
    assert set(skipped) == {str(root / "images" / "broken.png"), str(root / "images" / "no_mask.png")}
    assert "1 of 3 images hard by label_prob" in captured.out


def test_segmentation_json_only_hard_and_usage_errors(seg, tmp_path, capsys):
    root, _, _ = seg
    base = ["score", str(root), "--task", "segmentation", "--arch", SEG_ARCH, "--weights", str(root / "seg.pt")]
    out = tmp_path / "hard.csv"
    assert main([*base, "-o", str(out), "--image-size", "32", "--by", "miou", "--threshold", "0.9", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    table = read_csv(out)
    assert report["task"] == "segmentation" and report["summary"]["by"] == "miou"
    assert report["summary"]["hard"] == int((table["miou"] < 0.9).sum()) == int((table["difficulty"] == "hard").sum())
    assert report["images"] == {"found": 5, "scored": 3, "skipped": 2}
    for extra, message in (
        (["--positive", "1"], "--positive is for classification"),
        (["--by", "mistakenness"], "--by mistakenness is not a column of segmentation tables"),
        (["--threshold", "1.5"], r"--threshold 1.5 is outside the range of label_prob, \[0.0, 1.0\]"),
        (["--num-classes", "2"], "--num-classes 2 is too few: the largest mask value"),
    ):
        with pytest.raises(SystemExit) as exc:
            main([*base, "-o", str(tmp_path / "x.csv"), *extra])
        assert exc.value.code == 2
        assert __import__("re").search(message, capsys.readouterr().err), extra
    with pytest.raises(SystemExit):
        main([*base[:5], "fcn_resnet5", *base[6:], "-o", str(tmp_path / "x.csv")])
    assert "not a torchvision segmentation architecture; did you mean fcn_resnet50" in capsys.readouterr().err
    # a folder without images/ is a one-line data error
    assert main(["score", str(tmp_path), *base[2:], "-o", str(tmp_path / "x.csv")]) == 1
    assert "to hold an `images` folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    """images/{0,1,2}.png (bright boxes on noise) and boxes.csv with named labels; image 1 has no box."""
    root = tmp_path_factory.mktemp("det")
    (root / "images").mkdir()
    rng = np.random.default_rng(1)
    boxes = {"0.png": [(2, 2, 12, 12, "cat"), (14, 14, 30, 30, "dog")], "2.png": [(5, 5, 25, 25, "cat")]}
    for i in range(3):
        img = _image(rng) // 4
        for x1, y1, x2, y2, _ in boxes.get(f"{i}.png", []):
            img[y1:y2, x1:x2] += 150
        Image.fromarray(img).save(root / "images" / f"{i}.png")
    lines = ["file,x1,y1,x2,y2,label"] + [f"{f},{a},{b},{c},{d},{k}" for f, bs in boxes.items() for a, b, c, d, k in bs]
    (root / "boxes.csv").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    model = torchvision.models.get_model(DET_ARCH, weights=None, weights_backbone=None, num_classes=3)
    torch.save(model.state_dict(), root / "det.pt")
    return root, boxes, model


def test_detection_folder_matches_hm_score_detection(det, tmp_path, capsys):
    root, boxes, model = det
    out = tmp_path / "det.csv"
    argv = ["score", str(root), "--task", "detection", "--arch", DET_ARCH, "--weights", str(root / "det.pt")]
    assert main([*argv, "-o", str(out), "--score-threshold", "0.05", "--batch-size", "2"]) == 0
    text = capsys.readouterr().out
    table, per_box = read_csv(out), pd.read_csv(f"{out}.boxes.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.csv", "det.csv.boxes.csv", "det.csv.hardmine.json"]
    names = {"cat": 1, "dog": 2}  # sorted names, after the background
    data = []
    for i in range(3):
        image = F.to_tensor(Image.open(root / "images" / f"{i}.png").convert("RGB"))
        mine = boxes.get(f"{i}.png", [])
        target = {
            "boxes": torch.tensor([b[:4] for b in mine], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([names[b[4]] for b in mine], dtype=torch.int64),
        }
        data.append((image, target))
    loader = DataLoader(data, batch_size=2, collate_fn=lambda b: tuple(zip(*b, strict=True)))
    ref, ref_boxes = hm.score_detection(model, loader, score_threshold=0.05, return_boxes=True, progress=False)
    assert table["id"].tolist() == [str(root / "images" / f"{i}.png") for i in range(3)]
    assert table["gt_boxes"].tolist() == [2, 0, 1]
    for col in ("gt_boxes", "predictions", "missed", "false_pos"):
        assert_array_equal(table[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    for col in ("det_recall", "det_precision", "mistakenness", "mean_iou"):
        assert_allclose(table[col].to_numpy(), ref[col].to_numpy(), rtol=1e-5, equal_nan=True, err_msg=col)
    assert len(per_box) == len(ref_boxes) and per_box["kind"].tolist() == ref_boxes["kind"].tolist()
    cols = ["index", "label", "x1", "y1", "x2", "y2", "score"]
    assert_allclose(per_box[cols].to_numpy(np.float64), ref_boxes[cols].to_numpy(np.float64), rtol=1e-5, equal_nan=True)
    assert table.attrs["hardmine"]["classes"] == ["__background__", "cat", "dog"]
    assert (table["difficulty"] == "hard").tolist() == (ref["mistakenness"] > 0.5).tolist()
    assert f"ground-truth boxes 3, missed {int(ref['missed'].sum())}" in text


def test_detection_folder_errors(det, tmp_path, capsys):
    root, _, _ = det
    base = ["score", str(root), "--task", "detection", "--arch", DET_ARCH, "--weights", str(root / "det.pt")]
    for extra, message in (
        (["--by", "miou"], "--by miou is not a column of detection tables"),
        (["--resume"], "--resume is not available for --task detection"),
        (["--iou-threshold", "2"], r"--iou-threshold must be in \[0, 1\]"),
    ):
        with pytest.raises(SystemExit) as exc:
            main([*base, "-o", str(tmp_path / "x.csv"), *extra])
        assert exc.value.code == 2 and __import__("re").search(message, capsys.readouterr().err), extra
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bad / "images" / "a.png")
    for content, message in (
        (None, "boxes.csv"),
        ("file,x,y,w,h,label\n", "Expected the header file,x1,y1,x2,y2,label"),
        ("file,x1,y1,x2,y2,label\nb.png,0,0,1,1,1\n", "line 2 names 'b.png', which is not an image"),
        ("file,x1,y1,x2,y2,label\na.png,5,0,1,1,1\n", "x2 >= x1 and y2 >= y1 in .* line 2"),
    ):
        if content is not None:
            (bad / "boxes.csv").write_text(content)
        assert main(["score", str(bad), *base[2:], "-o", str(tmp_path / "x.csv")]) == 1
        err = capsys.readouterr().err
        assert __import__("re").search(message, err) and "Traceback" not in err, err
    assert not list(tmp_path.glob("x.csv*"))


def test_by_columns_of_each_task_are_columns_of_its_tables():
    from hardmine.app._cli_score import _BY_CHOICES, _BY_FOR_TASK
    from hardmine.core.columns import COLUMNS, MEASURES
    from hardmine.scoring.detection import DETECTION_COLUMNS

    assert _BY_FOR_TASK["classification"] == tuple(MEASURES)
    assert set(_BY_FOR_TASK["detection"]) <= set(DETECTION_COLUMNS)
    seg = hm.score(
        torch.nn.Conv2d(3, 2, 1),
        DataLoader([(torch.zeros(3, 4, 4), torch.zeros(4, 4, dtype=torch.long))]),
        task="segmentation",
        progress=False,
    )
    assert set(_BY_FOR_TASK["segmentation"]) <= set(seg.columns)
    assert all(COLUMNS[c].harder_when is not None for c in _BY_CHOICES)
    assert pd.Index(_BY_CHOICES).is_unique
