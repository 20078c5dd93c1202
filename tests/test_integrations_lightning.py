"""hardmine.integrations.lightning: the callback in one process, and Lightning DDP with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_ok
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch")

from hardmine import HardMiner, PrioritySampler, with_indices  # noqa: E402
from hardmine.integrations.lightning import HardMiningCallback  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "lightning_ddp_run.py"
ROOT = Path(__file__).resolve().parent.parent


def _trainer(**settings):
    """A CPU Trainer that writes nothing (no logger, checkpoint, progress bar or summary) unless ``settings`` say."""
    quiet = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return L.Trainer(**{**quiet, "enable_model_summary": False, **settings})


class _Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(4, 2)
        self.epochs_seen: list[tuple[int, int, str]] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def on_train_epoch_end(self):
        miner = self.trainer.train_dataloader
        self.epochs_seen.append((self.current_epoch, miner.epoch, miner.phase))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_callback_follows_the_trainer_epochs_and_logs_history(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    module = _Module()
    miner = HardMiner(module, DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8), progress=False)
    callback = HardMiningCallback(miner)
    trainer = _trainer(
        max_epochs=4,
        limit_train_batches=3,  # epochs stop early: the miner's epochs still follow the trainer's
        callbacks=[callback],
        logger=L.loggers.CSVLogger(tmp_path, name="run"),
    )
    trainer.fit(module, train_dataloaders=miner)
    assert module.epochs_seen == [(0, 0, "warmup"), (1, 1, "mine"), (2, 2, "mine"), (3, 3, "mine")]
    assert miner.history["epoch"].tolist() == [1, 2, 3] and miner.score_calls == 3
    assert callback.logged_epochs == [1, 2, 3]
    import pandas as pd

    logged = pd.read_csv(next(tmp_path.glob("run/*/metrics.csv")))
    rows = logged.dropna(subset=["hardmine/hard_fraction"])
    assert rows["hardmine/epoch"].tolist() == [1.0, 2.0, 3.0]
    assert rows["hardmine/hard_fraction"].tolist() == pytest.approx(miner.history["hard_fraction"].tolist())


class _PriorityModule(L.LightningModule):
    """Trains on the sampler's draws and reports each batch's losses back, as the integrations guide shows."""

    def __init__(self, sampler: PrioritySampler) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(4, 2)
        self.sampler = sampler
        self.epochs_seen: list[tuple[int, int, bool]] = []
        self.drawn: list[int] = []
        self.last_loss = torch.full((len(sampler),), float("nan"))  # each sample's loss when it was last trained on

    def forward(self, x):
        return self.net(x)

    def on_train_epoch_start(self):
        self.epochs_seen.append((self.current_epoch, self.sampler.epoch, self.sampler.warming_up()))

    def training_step(self, batch, batch_idx):
        idx, x, y = batch
        logits = self(x)
        self.sampler.observe(idx, logits.detach(), y)
        losses = nn.functional.cross_entropy(logits, y, reduction="none")
        self.last_loss[idx] = losses.detach()
        if not self.sampler.warming_up():
            self.drawn.extend(idx.tolist())
        return losses.mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_priority_sampler_follows_the_trainer_epochs_and_observes_each_drawn_sample():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    sampler = PrioritySampler(data, pressure=100.0, draws=48, half_life=None, seed=0)
    module = _PriorityModule(sampler)
    trainer = _trainer(
        max_epochs=5,
        limit_train_batches=4,  # the warm-up (24 samples) is read to its end, the later epochs (48 draws) are not
    )
    trainer.fit(module, train_dataloaders=with_indices(DataLoader(data, batch_size=6, sampler=sampler)))
    # The Trainer's set_epoch reaches the sampler through the loader: an epoch cut short still moves it on.
    assert module.epochs_seen == [(0, 0, True), (1, 1, False), (2, 2, False), (3, 3, False), (4, 4, False)]
    assert len(module.drawn) == 4 * 4 * 6  # four epochs after the warm-up, four batches of six each
    # Every sample's recorded loss is the one its last training step computed: the indices came with their samples.
    observed = sampler.observed.scores(now=sampler.epoch)
    assert torch.isfinite(observed).all()  # the warm-up observed every sample
    assert torch.allclose(observed, module.last_loss, rtol=1e-6, atol=1e-7)
    assert sampler.observed.count == 24 + 4 * 4 * 6


class _ResumableModule(_PriorityModule):
    """Keeps the sampler's state in Lightning's checkpoints, as the integrations guide says."""

    def on_save_checkpoint(self, checkpoint):
        checkpoint["priority_sampler"] = self.sampler.state_dict()

    def on_load_checkpoint(self, checkpoint):
        self.sampler.load_state_dict(checkpoint["priority_sampler"])


def test_priority_sampler_resumes_from_a_lightning_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 4, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())

    first = PrioritySampler(data, half_life=None, seed=0)
    run = _trainer(max_epochs=2)
    run.fit(_ResumableModule(first), train_dataloaders=with_indices(DataLoader(data, batch_size=6, sampler=first)))
    run.save_checkpoint(tmp_path / "last.ckpt")
    saved = first.observed.scores(now=2)

    second = PrioritySampler(data, half_life=None, seed=0)  # a new process: nothing observed
    module = _ResumableModule(second)
    loader = with_indices(DataLoader(data, batch_size=6, sampler=second))
    _trainer(max_epochs=3).fit(module, train_dataloaders=loader, ckpt_path=tmp_path / "last.ckpt")
    assert module.epochs_seen == [(2, 2, False)]  # resumed at epoch 2, past the warm-up
    assert second.observed.count == first.observed.count + 24  # the saved observations, then epoch 2's
    drawn_again = torch.zeros(24, dtype=torch.bool)
    drawn_again[torch.tensor(module.drawn)] = True
    kept = second.observed.scores(now=3)
    assert torch.equal(kept[~drawn_again], saved[~drawn_again])  # what epoch 2 did not draw is as it was saved


@pytest.mark.slow
@pytest.mark.distributed
def test_lightning_ddp_priority_sampler_shards_itself_and_merges_the_ranks_observations(tmp_path):
    ranks = _run_ddp("priority", tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["double_sharding_in_fit"] == ranks[1]["double_sharding_in_fit"] == 0  # Lightning left it alone
    a, b = ranks[0]["drawn"]["priority"], ranks[1]["drawn"]["priority"]
    assert sorted(a["0"] + b["0"]) == list(range(48))  # the warm-up: disjoint halves of one permutation
    for epoch in ("1", "2"):
        assert len(a[epoch]) == len(b[epoch]) == 24  # then each rank half of the epoch's draws
    merged = [r["merged_at_start"] for r in ranks]
    assert min(merged[0]["0"]) == -1.0  # nothing observed before the first epoch
    for epoch in ("1", "2"):  # every sample observed by one rank or the other, and both ranks hold all of them
        assert merged[0][epoch] == merged[1][epoch] and min(merged[0][epoch]) >= 0.0


def test_callback_checkpoints_the_miners_state_with_its_own():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(24, 4, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    model = torch.nn.Linear(4, 2)
    miner = HardMiner(model, DataLoader(data, batch_size=6), warmup_epochs=1, rescore_every=1, progress=False)
    for _ in range(3):
        _ = list(miner)
    state = HardMiningCallback(miner).state_dict()
    fresh = HardMiner(model, DataLoader(data, batch_size=6), warmup_epochs=1, rescore_every=1, progress=False)
    callback = HardMiningCallback(fresh)
    callback.load_state_dict(state)
    assert fresh.epoch == miner.epoch == 2 and torch.equal(fresh.sampler.weights, miner.sampler.weights)
    assert [b[0].tolist() for b in fresh] == [b[0].tolist() for b in miner]  # epoch 3: the same draw
    HardMiningCallback(fresh).load_state_dict({"logged_epochs": [1]})  # a checkpoint from before 0.5: the log only


def test_callback_rejects_a_non_miner():
    with pytest.raises(TypeError, match="`miner`"):
        HardMiningCallback(object())  # type: ignore[arg-type]


def _run_ddp(scenario: str, out: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    run_ok([sys.executable, str(SCRIPT), scenario, str(out)], cwd=out, env=env)
    return [json.loads((out / f"{scenario}_rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("scenario", ["default", "own"])
def test_lightning_ddp_splits_each_epoch_into_disjoint_rank_shares(tmp_path, scenario):
    ranks = _run_ddp(scenario, tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["expected"] == ranks[1]["expected"]  # every rank agrees on each epoch's global draw
    cases = {"default": ["as_sampler", "miner"], "own": ["sampler"]}[scenario]
    assert sorted(ranks[0]["expected"]) == cases
    for case in cases:
        assert sorted(ranks[0]["expected"][case]) == ["0", "1", "2"]
        for epoch, draw in ranks[0]["expected"][case].items():
            a, b = ranks[0]["drawn"][case][epoch], ranks[1]["drawn"][case][epoch]
            assert len(draw) == 48 and len(a) == len(b) == 24  # each rank half of the epoch
            assert sorted(a + b) == sorted(draw)  # together exactly the epoch's draw
            if case != "as_sampler":  # hardmine's own strided shares; Lightning's wrapper shuffles positions
                assert a == draw[0::2] and b == draw[1::2]
    assert ranks[0]["double_sharding_in_fit"] == ranks[1]["double_sharding_in_fit"] == 0
    if scenario == "default":  # a warm-up epoch, then a scoring pass per epoch, the same on both ranks
        for r in ranks:
            assert r["history_epochs"] == {"miner": [1, 2], "as_sampler": [1, 2]}
    else:  # the sampler built after init_process_group, wrapped by Lightning's DistributedSamplerWrapper too
        assert all(r["double_warned"] == 1 and len(r["double_drawn"]) == 12 for r in ranks)
