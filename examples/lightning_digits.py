"""A Lightning 2.x classifier on the bundled digits, with hard mining: the miner is the training data, a callback
keeps it in step with the Trainer and logs each scoring pass.

Hard mining takes the lines marked ``# hardmine``. Under ``--strategy ddp --devices 2`` nothing else changes:
Lightning leaves a HardMiner's sampling alone (it is not a DataLoader), and the miner reads the rank and world size
when each epoch's draw starts, after Lightning has started the process group.

    python examples/lightning_digits.py --epochs 5
    python examples/lightning_digits.py --epochs 5 --strategy ddp --devices 2
"""

from __future__ import annotations

import argparse

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm  # hardmine
from hardmine.integrations.lightning import HardMiningCallback  # hardmine


class DigitClassifier(L.LightningModule):
    def __init__(self, lr: float = 5e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lightning + hardmine on the digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--train-size", type=int, default=1400)
    parser.add_argument("--log-dir", default="lightning_logs")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    d = load_digits()
    x, y = torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)
    train = DataLoader(
        TensorDataset(x[: args.train_size], y[: args.train_size]), batch_size=args.batch_size, shuffle=True
    )
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=256)

    model = DigitClassifier()
    miner = hm.HardMiner(model, train, threshold=0.7, progress=False)  # hardmine
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=args.devices,
        strategy=args.strategy,
        callbacks=[HardMiningCallback(miner)],  # hardmine
        logger=L.loggers.CSVLogger(args.log_dir),
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(model, train_dataloaders=miner, val_dataloaders=val)  # hardmine (miner instead of train)
    if trainer.global_rank == 0:
        print(miner.history[["epoch", "hard", "hard_fraction", "accuracy"]].to_string(index=False))
        print(f"val_acc {float(trainer.callback_metrics['val_acc']):.3f}")
    return miner


if __name__ == "__main__":
    main()
