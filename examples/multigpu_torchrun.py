"""The PyTorch DDP tutorial's ``multigpu_torchrun.py`` (pytorch/examples, distributed/ddp-tutorial-series), on the
bundled digits, with hard mining.

The structure is the tutorial's: ``ddp_setup``, a ``Trainer`` with ``_run_batch``, ``_run_epoch`` (which peeks at a
batch for its size and calls ``train_data.sampler.set_epoch(epoch)``), snapshots, ``load_train_objs``,
``prepare_dataloader`` with a ``DistributedSampler``. Changed: the data are scikit-learn's digits and the model a
linear classifier (the tutorial's random regression data have nothing hard to mine), the backend is gloo on CPU when
there is no GPU, every rank waits at a barrier for rank 0's last snapshot before it leaves the process group (a rank
leaving gloo while its peer still works can abort the peer at exit), and hard mining takes the lines marked
``# hardmine``. The miner replaces the ``DistributedSampler``
with its own sharded weighted draw, reading the rank when each epoch starts; the peek starts no new epoch and no
scoring pass.

    torchrun --standalone --nproc_per_node=2 examples/multigpu_torchrun.py 4 2
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.distributed import barrier, destroy_process_group, init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import hardmine as hm  # hardmine


def ddp_setup():
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        init_process_group(backend="nccl")
    else:
        init_process_group(backend="gloo")


def device_of(local_rank: int) -> torch.device:
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        train_data: DataLoader,
        optimizer: torch.optim.Optimizer,
        save_every: int,
        snapshot_path: str,
    ) -> None:
        self.gpu_id = int(os.environ["LOCAL_RANK"])
        self.device = device_of(self.gpu_id)
        self.model = model.to(self.device)
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every
        self.epochs_run = 0
        self.snapshot_path = snapshot_path
        if os.path.exists(snapshot_path):
            print("Loading snapshot")
            self._load_snapshot(snapshot_path)

        self.model = DDP(self.model, device_ids=[self.gpu_id] if torch.cuda.is_available() else None)

    def _load_snapshot(self, snapshot_path):
        snapshot = torch.load(snapshot_path, map_location=self.device)
        self.model.load_state_dict(snapshot["MODEL_STATE"])
        self.epochs_run = snapshot["EPOCHS_RUN"]
        print(f"Resuming training from snapshot at Epoch {self.epochs_run}")

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        output = self.model(source)
        loss = F.cross_entropy(output, targets)
        loss.backward()
        self.optimizer.step()

    def _run_epoch(self, epoch):
        b_sz = len(next(iter(self.train_data))[0])
        print(f"[GPU{self.gpu_id}] Epoch {epoch} | Batchsize: {b_sz} | Steps: {len(self.train_data)}")
        self.train_data.sampler.set_epoch(epoch)
        for source, targets in self.train_data:
            source = source.to(self.device)
            targets = targets.to(self.device)
            self._run_batch(source, targets)

    def _save_snapshot(self, epoch):
        snapshot = {
            "MODEL_STATE": self.model.module.state_dict(),
            "EPOCHS_RUN": epoch,
        }
        torch.save(snapshot, self.snapshot_path)
        print(f"Epoch {epoch} | Training snapshot saved at {self.snapshot_path}")

    def train(self, max_epochs: int):
        for epoch in range(self.epochs_run, max_epochs):
            self._run_epoch(epoch)
            if self.gpu_id == 0 and epoch % self.save_every == 0:
                self._save_snapshot(epoch)


def load_train_objs(dataset_size: int):
    d = load_digits()
    x = torch.tensor(d.data[:dataset_size] / 16.0, dtype=torch.float32)
    train_set = TensorDataset(x, torch.tensor(d.target[:dataset_size]))  # load your dataset
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)  # load your model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return train_set, model, optimizer


def prepare_dataloader(dataset: Dataset, batch_size: int):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        pin_memory=torch.cuda.is_available(),
        shuffle=False,
        sampler=DistributedSampler(dataset),
    )


def main(save_every: int, total_epochs: int, batch_size: int, snapshot_path: str = "snapshot.pt", size: int = 1797):
    ddp_setup()
    dataset, model, optimizer = load_train_objs(size)
    train_data = prepare_dataloader(dataset, batch_size)
    train_data = hm.HardMiner(model, train_data, threshold=0.7, progress=False)  # hardmine
    trainer = Trainer(model, train_data, optimizer, save_every, snapshot_path)
    trainer.train(total_epochs)
    print(f"[GPU{trainer.gpu_id}] scoring passes: {train_data.score_calls}")  # hardmine
    barrier()  # every rank waits for rank 0's last snapshot: a rank leaving gloo mid-work can abort its peer
    destroy_process_group()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="simple distributed training job")
    parser.add_argument("total_epochs", type=int, help="Total epochs to train the model")
    parser.add_argument("save_every", type=int, help="How often to save a snapshot")
    parser.add_argument("--batch_size", default=32, type=int, help="Input batch size on each device (default: 32)")
    parser.add_argument("--snapshot_path", default="snapshot.pt", help="where to save snapshots")
    parser.add_argument("--dataset_size", default=1797, type=int, help="digits to train on (at most 1797)")
    args = parser.parse_args()
    main(args.save_every, args.total_epochs, args.batch_size, args.snapshot_path, args.dataset_size)
