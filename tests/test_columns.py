"""The column registry (hardmine.core.columns) is the one place that says what a column is; the docs agree with it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import hardmine as hm
from hardmine.core.columns import (
    COLUMNS,
    FLOAT_COLUMNS,
    HARDER_WHEN,
    INT_COLUMNS,
    MEASURES,
    default_threshold,
    harder_when,
    value_range,
)
from hardmine.scoring import measures

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_entry_is_consistent():
    for name, col in COLUMNS.items():
        assert col.name == name
        assert col.dtype in ("int64", "float32", "str", "category")
        if col.default_threshold is not None:
            assert col.harder_when is not None, name  # a threshold needs a direction
            if col.range is not None:
                lo, hi = col.range
                assert lo <= col.default_threshold <= hi, name
        if col.range is not None:
            assert col.range[0] < col.range[1], name
    assert set(INT_COLUMNS).isdisjoint(FLOAT_COLUMNS)


def test_the_scoring_pass_reads_the_registry():
    assert measures.MEASURES is MEASURES and measures.HARDER_WHEN is HARDER_WHEN
    assert list(HARDER_WHEN) == list(MEASURES) == ["confidence", "label_prob", "margin", "entropy", "loss"]
    # The directions are right: a confident right answer scores easier than an undecided one on every measure.
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = measures.compute_measures(logits, torch.tensor([0, 0]))
    for m in MEASURES:
        easy, hard = float(got[m][0]), float(got[m][1])
        assert (hard < easy) if harder_when(m) == "lower" else (hard > easy), m


def test_the_pass_writes_the_registered_dtypes():
    model = torch.nn.Linear(4, 3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(10, 4), torch.randint(0, 3, (10,))), batch_size=4
    )
    table = hm.score(model, loader, progress=False)
    for col in table.columns:
        spec = COLUMNS[col]
        want = {"int64": np.int64, "float32": np.float32, "str": object}[spec.dtype]
        assert table[col].dtype == want, col
        if spec.range is not None:
            lo, hi = value_range(col, num_classes=3)  # type: ignore[misc]
            assert ((table[col] >= lo - 1e-6) & (table[col] <= hi + 1e-6)).all(), col


def test_value_range_and_default_threshold():
    assert value_range("entropy") == (0.0, math.inf)
    assert value_range("entropy", num_classes=4) == (0.0, math.log(4))
    assert value_range("prob_12") == (0.0, 1.0) and value_range("probe") is None
    assert [default_threshold(c) for c in ("label_prob", "margin", "aum", "loss", "nope")] == [
        0.5,
        0.0,
        0.0,
        None,
        None,
    ]
    assert harder_when("nope") == "lower" and harder_when("index") == "lower"  # unknown: probability-like


def test_split_uses_the_registry_defaults_and_ranges():
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"index": np.arange(40), "label": rng.integers(0, 2, 40), "pred": rng.integers(0, 2, 40)}
        | {c: rng.uniform(0.0, 1.0, 40).astype(np.float32) for c in ("label_prob", "confidence", "mistakenness")}
    )
    for by in ("label_prob", "confidence", "mistakenness"):
        got = hm.split(table, by=by, positive=1)
        t = default_threshold(by)
        hard = table[by] < t if harder_when(by) == "lower" else table[by] > t
        assert (got["difficulty"] == "hard").tolist() == hard.tolist(), by
        lo, hi = value_range(by)  # type: ignore[misc]
        with pytest.raises(ValueError, match="threshold"):
            hm.split(table, by=by, threshold=hi + 0.5, positive=1)


def _doc_rows(page: Path) -> dict[str, list[str]]:
    rows = {}
    for line in page.read_text().splitlines():
        m = re.match(r"^\| `([a-z_]+)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [cell.strip() for cell in m.group(2).split("|")]
    return rows


def test_the_table_page_agrees_with_the_registry():
    rows = _doc_rows(DOCS / "table.md")
    checked = 0
    for name, cells in rows.items():
        if name not in COLUMNS or len(cells) < 5:
            continue
        dtype, harder, threshold = cells[0], cells[3], cells[4]
        col = COLUMNS[name]
        assert dtype.startswith(col.dtype if col.dtype != "str" else "object"), name
        assert harder == (col.harder_when or ""), name
        if col.default_threshold is None:
            assert not re.fullmatch(r"-?[0-9.]+", threshold), name
        else:
            assert float(threshold) == col.default_threshold, name
        checked += 1
    assert checked >= 12  # the score columns and the dynamics columns
