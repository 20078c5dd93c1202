"""HardMiner.observe under torch.distributed: 2 gloo processes, each observing its own share of the draws.

Each rank trains nothing (the model is fixed, so every observation is a pure function of the sample) and observes
the batches it draws in epoch 0; at the start of epoch 1 the miner merges the ranks' buffers. Both ranks must then
hold the same table, equal to one process that observed the union of the samples, and draw from the same weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_dataset, make_model
from ranks import DISTRIBUTED, run_ranks
from torch.utils.data import DataLoader

from hardmine.feedback.miner import HardMiner as _HardMiner


def HardMiner(*args, **kwargs):  # noqa: N802 - stands in for the class
    """These tests mine from epoch 0: the miner without its warm-up epoch (the default since issue 13 is 1)."""
    kwargs.setdefault("warmup_epochs", 0)
    return _HardMiner(*args, **kwargs)


WORLD = 2
N = 30

pytestmark = DISTRIBUTED


def _online_case() -> dict[str, Any]:
    ds = make_dataset(N, 3, seed=8)
    model = make_model(3, seed=8).eval()
    miner = HardMiner(
        model, DataLoader(ds, batch_size=4), rescore_every=None, indices=True, sampler_mode="no_replacement", seed=1
    )
    observed = []
    for idx, x, y in miner:
        with torch.no_grad():
            miner.observe(idx, model(x), y)
        observed += idx.tolist()
    drawn = [idx.tolist() for idx, _x, _y in miner]  # epoch 1: built from every rank's observations
    return {"observed": observed, "table": miner.table, "drawn": drawn, "weights": miner.sampler.weights.clone()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_online_case, tmp_path_factory.mktemp("online"), WORLD)


def test_ranks_merge_their_observations_into_one_table(ranks) -> None:
    observed = [set(ranks[r]["observed"]) for r in range(WORLD)]
    assert observed[0].isdisjoint(observed[1]) and observed[0] | observed[1] == set(range(N))
    tables = [ranks[r]["table"].drop(columns="drawn") for r in range(WORLD)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[0]["seen"].all()
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"])

    # one process that observed every sample in epoch 0 builds the same table
    ds = make_dataset(N, 3, seed=8)
    model = make_model(3, seed=8).eval()
    single = HardMiner(model, DataLoader(ds, batch_size=4), rescore_every=None, indices=True, seed=1)
    for _batch in single:  # epoch 0: nothing observed yet, uniform
        pass
    x, y = ds.tensors
    with torch.no_grad():
        single.observe(torch.arange(N), model(x), y)
    next(iter(single))
    expected = single.table.drop(columns="drawn")
    pd.testing.assert_frame_equal(tables[0], expected, check_exact=False, rtol=1e-5, atol=1e-6)


def test_ranks_draw_disjoint_shares_of_one_weighted_draw(ranks) -> None:
    drawn = [sum(ranks[r]["drawn"], []) for r in range(WORLD)]
    assert len(drawn[0]) == len(drawn[1]) == N // WORLD
    assert set(drawn[0]).isdisjoint(drawn[1])
    np.testing.assert_array_equal(
        ranks[0]["table"]["drawn"].to_numpy() + ranks[1]["table"]["drawn"].to_numpy(), np.ones(N)
    )
