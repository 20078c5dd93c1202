"""hardmine under torch.distributed: 2 CPU processes with the gloo backend, compared with a single process.

One spawn of 2 ranks runs every scenario (starting processes is the slow part) and saves what each rank saw; the
tests then compare both ranks with a 1-process run of the same code:

- ``hm.score`` gives every rank the same table as one process, for dataset sizes that do not divide by the world size
  (11, 50) and for 1 sample (rank 1 has no samples), with and without ``keep_probs``; each sample is read once.
- ``hm.to_csv`` writes on rank 0 only.
- ``all_gather_concat`` with uneven and empty shards.
- ``HardSampler``: the ranks' shares are the strided shares of the one global draw, disjoint without replacement.
- ``with_indices`` over a ``DistributedSampler`` and ``Dynamics`` synced over ranks equal the 1-process results.
- ``HardMiner``: the same table on both ranks, and disjoint draws that together cover the dataset.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import gloo
import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import CountingDataset, make_dataset, make_model
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from hardmine.analysis.dynamics import Dynamics
from hardmine.analysis.io import to_csv
from hardmine.core.data import with_indices
from hardmine.core.distributed import all_gather_concat, shard_bounds
from hardmine.feedback.miner import HardMiner
from hardmine.feedback.sampling import HardSampler
from hardmine.scoring.engine import score

WORLD = 2
SIZES = (11, 50, 1)
NUM_CLASSES = 3


pytestmark = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.skipif(not gloo.available(), reason="torch.distributed with the gloo backend is not available"),
]


# --------------------------------------------------------------------------- the scenarios, run by every process


def _score_cases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in SIZES:
        counting = CountingDataset(make_dataset(n, NUM_CLASSES, seed=n))
        loader = DataLoader(counting, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1))
        out[f"table_{n}"] = score(make_model(NUM_CLASSES, seed=n), loader, progress=False)
        out[f"calls_{n}"] = list(counting.calls)
    loader = DataLoader(make_dataset(11, NUM_CLASSES, seed=7), batch_size=3)
    out["probs_11"] = score(make_model(NUM_CLASSES, seed=7), loader, progress=False, keep_probs=True)
    # Bad samples on one rank only (sample 9 is in rank 1's share, sample 2 in rank 0's): every rank must raise the
    # same error as one process does, instead of one rank raising and the other waiting for it forever.
    ds = make_dataset(11, NUM_CLASSES, seed=8)
    ds.tensors[0][9] = float("nan")
    for name, data in (("nan", ds), ("label", make_dataset(11, NUM_CLASSES, seed=8))):
        if name == "label":
            data.tensors[1][2] = 7
        try:
            score(make_model(NUM_CLASSES, seed=8), DataLoader(data, batch_size=4), progress=False)
        except ValueError as err:
            out[f"error_{name}"] = str(err)
    return out


class _UnreadableAt(torch.utils.data.Dataset):
    """A dataset whose sample ``bad`` cannot be read (a corrupt file, say)."""

    def __init__(self, base: torch.utils.data.Dataset, bad: int) -> None:
        self.base, self.bad = base, bad

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        if index == self.bad:
            raise OSError(f"cannot read sample {index}")
        return self.base[index]


def _failure_case() -> dict[str, Any]:
    # Sample 9 is in rank 1's share: rank 1 fails inside its scoring loop, before any gather. Rank 0 must not wait
    # for it forever; it raises too, naming rank 1 and its error.
    data = _UnreadableAt(make_dataset(11, NUM_CLASSES, seed=9), bad=9)
    try:
        score(make_model(NUM_CLASSES, seed=9), DataLoader(data, batch_size=4), progress=False)
    except (OSError, RuntimeError) as err:
        return {"failure": f"{type(err).__name__}: {err}"}
    return {"failure": None}


def _sampler_cases() -> dict[str, Any]:
    w = torch.linspace(0.1, 2.0, 23, dtype=torch.float64)
    w[5] = 0.0  # a zero-weight sample: never drawn without replacement
    return {
        "cover": HardSampler(w, num_samples=41, mode="cover", seed=3).indices(0),
        "replacement": HardSampler(w, num_samples=41, replacement=True, seed=3).indices(1),
        "no_replacement": HardSampler(w, replacement=False, seed=3).indices(0),
    }


def _dynamics_case(rank: int, world: int) -> dict[str, Any]:
    ds = make_dataset(11, NUM_CLASSES, seed=11)
    torch.manual_seed(0)
    model = nn.Linear(6, NUM_CLASSES)
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=5)
    loader = DataLoader(ds, batch_size=4, sampler=sampler)
    dyn = Dynamics(num_samples=len(ds))
    seen: list[int] = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for idx, x, y in with_indices(loader):
            torch.testing.assert_close(x, ds.tensors[0][idx])
            seen.extend(idx.tolist())
            with torch.no_grad():
                dyn.update(idx, model(x) * (epoch + 1), y)
        dyn.end_epoch()
    return {"dynamics": dyn.summary(), "seen": seen}


def _miner_case() -> dict[str, Any]:
    ds = make_dataset(50, 2, seed=4)
    model = make_model(2, seed=4)
    miner = HardMiner(
        model,
        DataLoader(ds, batch_size=8),
        threshold=0.5,
        sampler_mode="no_replacement",
        indices=True,
        warmup_epochs=0,
        progress=False,
    )
    drawn = [idx for idx, _x, _y in miner]
    return {"miner_table": miner.table, "miner_drawn": torch.cat(drawn).tolist()}


def _built_before_init() -> dict[str, Any]:
    """A sampler and a miner built before init_process_group (as Lightning builds them before fit starts it)."""
    w = torch.linspace(0.1, 2.0, 23, dtype=torch.float64)
    miner = HardMiner(
        make_model(2, seed=4), DataLoader(make_dataset(50, 2, seed=4), batch_size=8), warmup_epochs=1, progress=False
    )
    return {"sampler": HardSampler(w, 41, seed=3), "miner": miner, "lengths": (len(HardSampler(w, 41)), len(miner))}


def _after_init_cases(before: dict[str, Any]) -> dict[str, Any]:
    """Each epoch's draws of the samplers built before init and one built after it, now that the group is up."""
    w = torch.linspace(0.1, 2.0, 23, dtype=torch.float64)
    after = HardSampler(w, 41, seed=3)
    miner = before["miner"]
    out: dict[str, Any] = {"lengths_before": before["lengths"], "lengths_after": (len(after), len(miner))}
    for epoch in range(2):
        for name, s in (("before", before["sampler"]), ("after", after)):
            s.set_epoch(epoch)
            out[f"{name}_{epoch}"] = list(s)
        out[f"miner_{epoch}"] = torch.cat([y for _x, y in miner]).numel()
    out["miner_epochs"] = (miner.epoch, miner.history["epoch"].tolist())
    return out


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    before = _built_before_init()
    gloo.init_gloo(rank, world, port)
    try:
        out = _score_cases()
        out.update(_failure_case())
        out["gather_1d"] = all_gather_concat(torch.arange(10 * rank, 10 * rank + 2 * rank + 1))  # lengths 1, 3
        out["gather_2d"] = all_gather_concat(torch.full((rank, 2), float(rank + 1)))  # lengths 0, 1
        to_csv(out["table_11"], Path(out_dir) / f"scores_from_rank{rank}.csv")
        out.update(_sampler_cases())
        out.update(_dynamics_case(rank, world))
        out.update(_miner_case())
        out.update(_after_init_cases(before))
        with open(Path(out_dir) / f"rank{rank}.pkl", "wb") as fh:
            pickle.dump(out, fh)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """What each of the 2 ranks saw, and the folder they wrote in."""
    out_dir = tmp_path_factory.mktemp("distributed")
    mp.start_processes(
        _worker, args=(WORLD, gloo.free_port(), str(out_dir)), nprocs=WORLD, join=True, start_method="spawn"
    )
    results = []
    for r in range(WORLD):
        with open(out_dir / f"rank{r}.pkl", "rb") as fh:
            results.append(pickle.load(fh))
    return results, out_dir


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    """The same scenarios in one process (no torch.distributed)."""
    out = _score_cases()
    out.update(_sampler_cases())
    out.update(_failure_case())
    return out


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("n", SIZES)
def test_score_tables_equal_single_process(ranks, single, n: int) -> None:
    results, _ = ranks
    for r in range(WORLD):
        pd.testing.assert_frame_equal(results[r][f"table_{n}"], single[f"table_{n}"])
    assert results[0][f"table_{n}"]["index"].tolist() == list(range(n))


def test_score_keep_probs_equal_single_process(ranks, single) -> None:
    results, _ = ranks
    for r in range(WORLD):
        pd.testing.assert_frame_equal(results[r]["probs_11"], single["probs_11"])
    assert [c for c in single["probs_11"].columns if c.startswith("prob_")] == ["prob_0", "prob_1", "prob_2"]


@pytest.mark.parametrize("n", SIZES)
def test_every_sample_read_exactly_once_across_ranks(ranks, n: int) -> None:
    results, _ = ranks
    calls = np.array([results[r][f"calls_{n}"] for r in range(WORLD)])
    np.testing.assert_array_equal(calls.sum(axis=0), np.ones(n, dtype=int))
    for r in range(WORLD):  # each rank read exactly its contiguous share
        start, stop = shard_bounds(n, WORLD, r)
        np.testing.assert_array_equal(np.flatnonzero(calls[r]), np.arange(start, stop))


@pytest.mark.parametrize("kind", ["nan", "label"])
def test_bad_samples_on_one_rank_raise_the_same_error_on_every_rank(ranks, single, kind: str) -> None:
    results, _ = ranks
    expected = {
        "nan": "NaN or infinite logits for 1 sample(s), dataset indices [9]",
        "label": "dataset indices [2] with labels [7]",
    }[kind]
    assert expected in single[f"error_{kind}"]
    # The same error on every rank; it names the batch that held the sample, and under torchrun its rank (issue 14:
    # bad input names the batch and the sample range), so only that part differs from one process's message.
    where = {
        "nan": " (first in batch 0 of rank 1, samples 6..9)",
        "label": " (first in batch 0 of rank 0, samples 0..3)",
    }
    single_where = {"nan": " (first in batch 2, samples 8..10)", "label": " (first in batch 0, samples 0..3)"}
    for r in range(WORLD):
        assert results[r][f"error_{kind}"] == single[f"error_{kind}"].replace(single_where[kind], where[kind])


def test_a_rank_failing_inside_its_loop_makes_every_rank_raise(ranks, single) -> None:
    results, _ = ranks
    assert single["failure"] == "OSError: cannot read sample 9"
    assert results[1]["failure"] == single["failure"]  # the failing rank raises its own error
    assert results[0]["failure"] == "RuntimeError: hm.score failed on rank 1 (of 2): OSError: cannot read sample 9"


def test_to_csv_writes_on_rank_zero_only(ranks, single) -> None:
    _, out_dir = ranks
    assert (out_dir / "scores_from_rank0.csv").is_file()
    assert not (out_dir / "scores_from_rank1.csv").exists()
    written = pd.read_csv(out_dir / "scores_from_rank0.csv")
    assert written["index"].tolist() == single["table_11"]["index"].tolist()


def test_all_gather_concat_uneven_shards(ranks) -> None:
    results, _ = ranks
    for r in range(WORLD):
        torch.testing.assert_close(results[r]["gather_1d"], torch.tensor([0, 10, 11, 12]))
        torch.testing.assert_close(results[r]["gather_2d"], torch.tensor([[2.0, 2.0]]))


@pytest.mark.parametrize("mode", ["cover", "replacement", "no_replacement"])
def test_sampler_shares_are_strided_shares_of_one_draw(ranks, single, mode: str) -> None:
    results, _ = ranks
    global_draw = single[mode]
    length = -(-len(global_draw) // WORLD)
    padded = torch.cat([global_draw, global_draw[: length * WORLD - len(global_draw)]])
    for r in range(WORLD):
        torch.testing.assert_close(results[r][mode], padded[r::WORLD])


def test_sampler_shares_without_replacement_are_disjoint(ranks) -> None:
    results, _ = ranks
    shares = [set(results[r]["no_replacement"].tolist()) for r in range(WORLD)]
    # 22 positive-weight samples split evenly: no padding, so the shares are disjoint and cover every drawn sample.
    assert shares[0].isdisjoint(shares[1])
    assert shares[0] | shares[1] == set(range(23)) - {5}


def test_with_indices_and_dynamics_across_ranks(ranks) -> None:
    results, _ = ranks
    ds = make_dataset(11, NUM_CLASSES, seed=11)
    torch.manual_seed(0)
    model = nn.Linear(6, NUM_CLASSES)
    for epoch in range(2):  # with_indices yields exactly the DistributedSampler's indices on each rank
        for r in range(WORLD):
            s = DistributedSampler(ds, num_replicas=WORLD, rank=r, shuffle=True, seed=5)
            s.set_epoch(epoch)
            assert results[r]["seen"][6 * epoch : 6 * (epoch + 1)] == list(s)
    # One process that sees every sample once per epoch gets the same statistics as the synced ranks.
    dyn = Dynamics(num_samples=len(ds))
    x, y = ds.tensors
    for epoch in range(2):
        with torch.no_grad():
            dyn.update(torch.arange(len(ds)), model(x) * (epoch + 1), y)
        dyn.end_epoch()
    expected = dyn.summary()
    for r in range(WORLD):
        pd.testing.assert_frame_equal(results[r]["dynamics"], expected, check_exact=False, rtol=1e-5, atol=1e-6)


def test_miner_same_table_and_disjoint_draws(ranks) -> None:
    results, _ = ranks
    tables = [results[r]["miner_table"] for r in range(WORLD)]
    # Scores, split and weights agree on every rank; `drawn` counts this rank's own draws, so the ranks add up.
    pd.testing.assert_frame_equal(tables[0].drop(columns="drawn"), tables[1].drop(columns="drawn"))
    np.testing.assert_array_equal(tables[0]["drawn"].to_numpy() + tables[1]["drawn"].to_numpy(), np.ones(50))
    drawn = [results[r]["miner_drawn"] for r in range(WORLD)]
    assert len(drawn[0]) == len(drawn[1]) == 25
    assert set(drawn[0]).isdisjoint(drawn[1])
    assert sorted(drawn[0] + drawn[1]) == list(range(50))


@pytest.mark.parametrize("built", ["before", "after"])
def test_sampler_built_before_or_after_init_splits_each_epoch(ranks, built: str) -> None:
    results, _ = ranks
    w = torch.linspace(0.1, 2.0, 23, dtype=torch.float64)
    assert results[0]["lengths_before"] == (41, 7)  # one process: the whole epoch, 7 batches of 8 from 50
    assert results[0]["lengths_after"] == (21, 4)  # the group is up: this rank's share
    for epoch in range(2):
        draw = HardSampler(w, 41, seed=3).indices(epoch).tolist()  # the epoch's global draw, in one process
        padded = draw + draw[:1]  # 41 draws over 2 ranks: padded to 42 by wrapping around
        shares = [results[r][f"{built}_{epoch}"] for r in range(WORLD)]
        assert shares[0] == padded[0::2] and shares[1] == padded[1::2]
        assert len(shares[0]) + len(shares[1]) == 42


def test_miner_built_before_init_gives_each_rank_half_an_epoch(ranks) -> None:
    results, _ = ranks
    for r in range(WORLD):
        assert [results[r][f"miner_{e}"] for e in range(2)] == [25, 25]  # 50 samples, 2 ranks: 25 each
        assert results[r]["miner_epochs"] == (1, [1])
