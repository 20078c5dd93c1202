"""Lightning with strategy="ddp", accelerator="cpu", devices=2: what each rank draws, written to a JSON file per rank.

Run as ``python tests/lightning_ddp_run.py SCENARIO OUT_DIR`` (Lightning starts the second rank by running this
script again). Each training batch is a dict of named loaders (Lightning's CombinedLoader), one per case:

Scenario ``default`` (Lightning's ``use_distributed_sampler=True``):

- ``miner``: a HardMiner built before ``fit`` (before the process group), passed as it is, with the callback.
- ``as_sampler``: a DataLoader on ``miner.as_sampler()`` of a miner with ``num_replicas=1``: Lightning's
  ``DistributedSamplerWrapper`` shards the one global draw.

Scenario ``own`` (``use_distributed_sampler=False``):

- ``sampler``: a HardSampler built in ``train_dataloader()``, after the process group is up, default ``num_replicas``:
  hardmine shards. After ``fit``, the same sampler wrapped in Lightning's ``DistributedSamplerWrapper`` (both
  shard) must warn.

Scenario ``priority`` (Lightning's defaults): a ``PrioritySampler`` built before ``fit``, in a DataLoader wrapped by
``hm.with_indices`` (not a DataLoader, so Lightning leaves its sampler alone and the sampler shards itself), the
training step observing each batch's logits. Each rank records what it drew, and the observed losses as the first
batch of each epoch arrives (after the epoch's merge across ranks).

For every epoch each rank records the dataset indices it trained on and the epoch's global draw, rebuilt from the
active sampler's weights by a one-process HardSampler.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import lightning.pytorch as L
import torch
import torch.distributed as dist
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardmine import HardMiner, HardSampler, PrioritySampler, with_indices
from hardmine.feedback.sampling import DoubleShardingWarning
from hardmine.integrations.lightning import HardMiningCallback

N, BATCH, EPOCHS = 48, 8, 3


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 4, generator=g)
    return TensorDataset(x, (x[:, 0] + 0.3 * torch.randn(N, generator=g) > 0).long(), torch.arange(N))


def global_draw(s: HardSampler, epoch: int) -> list[int]:
    ref = HardSampler(s.weights, s.num_samples, mode=s.mode, seed=s.seed, num_replicas=1)
    return ref.indices(epoch).tolist()


def active(miner: HardMiner) -> HardSampler:
    s = miner.sampler if miner.phase == "mine" else miner._uniform_sampler
    assert isinstance(s, HardSampler)
    return s


class Module(L.LightningModule):
    def __init__(self, scenario: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(4, 2)
        self.scenario = scenario
        self.drawn: dict[str, dict[int, list[int]]] = {}
        self.expected: dict[str, dict[int, list[int]]] = {}
        self.miners: dict[str, HardMiner] = {}
        self.sampler: HardSampler | PrioritySampler | None = None
        self.merged_at_start: dict[int, list[float]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.scenario == "priority":
            idx, x, y, _ = batch
            assert isinstance(self.sampler, PrioritySampler)
            if batch_idx == 0:  # the epoch's pass has started: the ranks' observations are merged
                losses = self.sampler.observed.scores(now=self.sampler.epoch)
                self.merged_at_start[self.current_epoch] = torch.nan_to_num(losses, nan=-1.0).tolist()
            self.drawn.setdefault("priority", {}).setdefault(self.current_epoch, []).extend(idx.tolist())
            logits = self(x)
            self.sampler.observe(idx, logits.detach(), y)
            return nn.functional.cross_entropy(logits, y)
        loss = torch.zeros(())
        for name, (x, y, idx) in batch.items():
            self.drawn.setdefault(name, {}).setdefault(self.current_epoch, []).extend(idx.tolist())
            loss = loss + nn.functional.cross_entropy(self(x), y)
        return loss

    def on_train_epoch_end(self) -> None:
        e = self.current_epoch
        for name, miner in self.miners.items():
            self.expected.setdefault(name, {})[e] = global_draw(active(miner), e)
        if isinstance(self.sampler, HardSampler):
            self.expected.setdefault("sampler", {})[e] = global_draw(self.sampler, e)

    def train_dataloader(self):
        if self.scenario == "priority":
            assert isinstance(self.sampler, PrioritySampler)
            return with_indices(DataLoader(dataset(), batch_size=BATCH, sampler=self.sampler))
        if self.scenario == "own":
            assert dist.is_initialized()  # built after init_process_group
            self.sampler = HardSampler(torch.linspace(0.5, 2.0, N), N, seed=5)
            return {"sampler": DataLoader(dataset(), batch_size=BATCH, sampler=self.sampler)}
        loaders = {"miner": self.miners["miner"]}
        loaders["as_sampler"] = DataLoader(dataset(), batch_size=BATCH, sampler=self.miners["as_sampler"].as_sampler())
        return loaders

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(scenario: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    module = Module(scenario)
    callbacks = []
    if scenario == "priority":
        module.sampler = PrioritySampler(N, pressure=20.0, seed=3)  # before fit: no process group yet
    if scenario == "default":
        for name in ("miner", "as_sampler"):
            miner = HardMiner(
                module,
                DataLoader(dataset(), batch_size=BATCH, shuffle=True),
                threshold=0.7,
                num_replicas=1 if name == "as_sampler" else None,
                seed=1 if name == "as_sampler" else 0,
                progress=False,
            )
            module.miners[name] = miner
            callbacks.append(HardMiningCallback(miner, prefix=f"{name}/"))
    trainer = L.Trainer(
        strategy="ddp",
        accelerator="cpu",
        devices=2,
        max_epochs=EPOCHS,
        callbacks=callbacks,
        logger=False,
        use_distributed_sampler=scenario != "own",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module)
    result = {
        "world": trainer.world_size,
        "drawn": module.drawn,
        "expected": module.expected,
        "double_sharding_in_fit": sum(issubclass(w.category, DoubleShardingWarning) for w in caught),
        "history_epochs": {name: m.history["epoch"].tolist() for name, m in module.miners.items()},
        "merged_at_start": module.merged_at_start,
    }
    if scenario == "own":  # both shard: the sampler warns, and each rank gets a quarter of the epoch
        assert module.sampler is not None
        wrapper = DistributedSamplerWrapper(module.sampler, shuffle=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result["double_drawn"] = list(wrapper)
        result["double_warned"] = sum(issubclass(w.category, DoubleShardingWarning) for w in caught)
    Path(out_dir, f"{scenario}_rank{trainer.global_rank}.json").write_text(json.dumps(result))
    # Tear the process group down before the interpreter exits: left to exit-time destructors, gloo's threads can
    # abort the process ("terminate called without an active exception") after a run that succeeded.
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
