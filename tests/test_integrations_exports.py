"""Tables out to the tools people browse samples in: W&B Tables and TensorBoard (text and embedding projector)."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
from hardmine.integrations.tensorboard import log_embedding, log_table, markdown_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    torch.manual_seed(0)
    x = torch.randn(30, 3)
    y = (x[:, 0] > 0).long()
    scores = hm.score(nn.Linear(3, 2), DataLoader(TensorDataset(x, y), batch_size=8), keep_probs=True, progress=False)
    return hm.split(scores, threshold=0.5, positive=1)


def _expected_cell(value):
    return value.item() if hasattr(value, "item") else value


# ------------------------------------------------------------------ W&B


def test_wandb_table_holds_every_row_and_column(table):
    pytest.importorskip("wandb")
    from hardmine.integrations.wandb import to_wandb_table

    w = to_wandb_table(table)
    columns = [c for c in table.columns if not c.startswith("prob_")]
    assert w.columns == columns and len(w.data) == len(table)
    for row, (_, ref) in zip(w.data, table[columns].iterrows(), strict=True):
        assert [_expected_cell(v) for v in row] == [
            str(v) if isinstance(table[c].dtype, pd.CategoricalDtype) else _expected_cell(v) for c, v in ref.items()
        ]
    assert {row[columns.index("difficulty")] for row in w.data} <= {"hard", "easy"}

    hardest = to_wandb_table(table.sort_values("label_prob"), columns=["index", "label_prob", "group"], max_rows=5)
    assert hardest.columns == ["index", "label_prob", "group"]
    assert [r[0] for r in hardest.data] == table.sort_values("label_prob")["index"].head(5).tolist()
    assert to_wandb_table(table, probs=True).columns[: len(table.columns)] == list(table.columns)


def test_wandb_table_checks_its_arguments(table, monkeypatch):
    pytest.importorskip("wandb")
    from hardmine.integrations.wandb import log_table as wandb_log_table
    from hardmine.integrations.wandb import to_wandb_table

    with pytest.raises(ValueError, match=r"`columns`.*\['nope'\]"):
        to_wandb_table(table, columns=["index", "nope"])
    with pytest.raises(ValueError, match="`max_rows`"):
        to_wandb_table(table, max_rows=0)
    with pytest.raises(TypeError, match="`table`"):
        to_wandb_table([1, 2])

    class Run:
        def __init__(self):
            self.logged = []

        def log(self, data, step=None):
            self.logged.append((data, step))

    run = Run()
    w = wandb_log_table(run, table, key="hard", step=3, max_rows=4)
    assert run.logged == [({"hard": w}, 3)] and len(w.data) == 4
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'hardmine\[wandb\]'"):
        to_wandb_table(table)


@pytest.mark.slow
def test_wandb_offline_run_stores_the_table(table, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from hardmine.integrations.wandb import log_table as wandb_log_table

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(mode="offline", dir=tmp_path, project="hardmine-test")
    try:
        wandb_log_table(run, table, key="hardmine/table", step=0)
    finally:
        run.finish()
    (stored,) = tmp_path.glob("wandb/offline-run-*/files/media/table/hardmine/table_*.table.json")
    data = json.loads(stored.read_text())
    assert data["columns"] == [c for c in table.columns if not c.startswith("prob_")]
    assert [r[0] for r in data["data"]] == table["index"].tolist()
    assert [r[data["columns"].index("group")] for r in data["data"]] == table["group"].astype(str).tolist()


# ------------------------------------------------------------------ TensorBoard


def test_markdown_table_rows_and_escaping():
    t = pd.DataFrame({"index": [5, 2, 9], "id": ["a|b", "c\nd", "e"], "label_prob": [0.123456, 1.0, 0.5]})
    text = markdown_table(t, max_rows=2)
    assert text.splitlines() == [
        "| index | id | label_prob |",
        "|---|---|---|",
        r"| 5 | a\|b | 0.1235 |",
        "| 2 | c d | 1 |",
    ]
    with pytest.raises(ValueError, match="`max_rows`"):
        markdown_table(t, max_rows=0)
    with pytest.raises(ValueError, match=r"\['x'\]"):
        markdown_table(t, columns=["x"])


def test_log_table_to_tensorboard(table, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    hardest = table.sort_values("label_prob")
    assert log_table(tmp_path, hardest, step=2, columns=["index", "label_prob", "group"], max_rows=7) == 7
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    (tag,) = events.Tags()["tensors"]
    assert tag.startswith("hardmine/table")
    (event,) = events.Tensors(tag)
    text = event.tensor_proto.string_val[0].decode()
    assert event.step == 2
    assert text == markdown_table(hardest, columns=["index", "label_prob", "group"], max_rows=7)
    rows = text.splitlines()[2:]
    assert [int(r.split("|")[1]) for r in rows] == hardest["index"].head(7).tolist()


def test_log_embedding_writes_projector_files(table, tmp_path):
    pytest.importorskip("tensorboard")
    assert log_embedding(tmp_path, table, step=1) == len(table)
    assert "embeddings" in (tmp_path / "projector_config.pbtxt").read_text()
    (meta,) = tmp_path.glob("*/hardmine/metadata.tsv")
    with meta.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    assert header == [
        "index",
        "id",
        "label",
        "pred",
        "label_prob",
        "confidence",
        "loss",
        "polarity",
        "difficulty",
        "group",
    ]
    assert [int(r[0]) for r in rows[1:]] == table["index"].tolist()
    assert [r[header.index("difficulty")] for r in rows[1:]] == table["difficulty"].astype(str).tolist()
    vectors = [[float(v) for v in line.split("\t")] for line in meta.with_name("tensors.tsv").read_text().splitlines()]
    np.testing.assert_allclose(vectors, table[["prob_0", "prob_1"]].to_numpy(), atol=1e-6)

    features = torch.randn(len(table), 4)
    other = tmp_path / "features"
    log_embedding(other, table, features, columns=["index"], tag="feat")
    (meta,) = other.glob("*/feat/metadata.tsv")
    assert meta.read_text().split() == [str(i) for i in table["index"]]
    with pytest.raises(ValueError, match=r"shape \(30, D\)"):
        log_embedding(other, table, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="prob_"):
        log_embedding(other, table.drop(columns=["prob_0", "prob_1"]))
    with pytest.raises(TypeError, match="`features`"):
        log_embedding(other, table, [[0.0]] * len(table))


def test_wandb_table_with_images_from_file_paths(tmp_path):
    pytest.importorskip("wandb")
    from PIL import Image

    from hardmine.integrations.wandb import to_wandb_table

    paths = []
    for i, shade in enumerate((0, 128, 255)):
        path = tmp_path / f"img_{i}.png"
        Image.fromarray(np.full((4, 6), shade, dtype=np.uint8)).save(path)
        paths.append(str(path))
    t = pd.DataFrame({"index": [0, 1, 2], "id": paths, "label_prob": [0.1, 0.5, 0.9]})
    w = to_wandb_table(t, images=True, max_rows=2)
    assert w.columns == ["index", "id", "label_prob", "image"] and len(w.data) == 2
    shown = [row[3] for row in w.data]
    assert [np.asarray(img.image).tolist() for img in shown] == [np.full((4, 6), s).tolist() for s in (0, 128)]
    with pytest.raises(ValueError, match=r"1 are missing"):
        to_wandb_table(t.assign(id=[paths[0], paths[1], str(tmp_path / "gone.png")]), images=True)
    with pytest.raises(ValueError, match="no id column"):
        to_wandb_table(t.drop(columns=["id"]), images=True)


def test_log_embedding_with_images_writes_a_sprite(table, tmp_path):
    pytest.importorskip("tensorboard")
    from PIL import Image

    images = torch.rand(len(table), 1, 5, 5)
    log_embedding(tmp_path, table, images=images)
    (sprite,) = tmp_path.glob("*/hardmine/sprite.png")
    assert "sprite" in (tmp_path / "projector_config.pbtxt").read_text()
    width, height = Image.open(sprite).size
    assert width == height == 6 * 5  # ceil(sqrt(30)) = 6 tiles of 5x5 on a side
    with pytest.raises(ValueError, match=r"\(30, C, H, W\)"):
        log_embedding(tmp_path, table, images=torch.rand(30, 5, 5))
