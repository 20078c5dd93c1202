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


def _count_case() -> dict[str, Any]:
    from hardmine.feedback.online import ObservedScores

    rank = torch.distributed.get_rank()
    obs = ObservedScores(10, half_life=None)
    counts = []
    obs.observe(torch.tensor([rank]), torch.tensor([float(rank)]), stamp=0)
    obs.observe(torch.tensor([5]), torch.tensor([1.0 + 8 * rank]), stamp=0)  # both ranks, the same epoch
    obs.merge_ranks()
    counts.append(obs.count)
    obs.observe(torch.tensor([rank + 2]), torch.tensor([2.0]), stamp=1)
    obs.merge_ranks()
    counts.append(obs.count)
    obs.merge_ranks()  # nothing new: the count stays
    counts.append(obs.count)
    return {"counts": counts, "loss": obs.scores(now=2)}


def test_merges_count_each_observation_once_and_the_lowest_rank_wins_within_an_epoch(tmp_path) -> None:
    ranks = run_ranks(_count_case, tmp_path, WORLD)
    assert ranks[0]["counts"] == ranks[1]["counts"] == [4, 6, 6]  # 2 + 2, then 1 + 1 more, then none
    for r in range(WORLD):
        loss = ranks[r]["loss"]
        assert loss[[0, 1, 2, 3]].tolist() == [0.0, 1.0, 2.0, 2.0] and loss[5].item() == 1.0  # rank 0's 1.0, not 9.0
