"""Train with HardMiner under torchrun (DistributedDataParallel), on scikit-learn's bundled digits.

Run on CPU with the gloo backend (or on GPUs with NCCL, one process per GPU)::

    torchrun --nproc_per_node=2 examples/ddp_train.py
    torchrun --nproc_per_node=2 examples/ddp_train.py --epochs 8 --out hard_digits.csv

What happens on every rank:

- The model is wrapped in ``DistributedDataParallel`` for training. The miner gets the *unwrapped* module: the
  scoring pass is inference only and must not go through DDP's forward (which may broadcast buffers, a collective
  that ranks with different numbers of scoring batches would not match). Both share the same parameters.
- ``HardMiner`` re-scores the training set at the start of mining epochs: ``hm.score`` gives each rank a contiguous
  share of the samples (each sample scored exactly once, no padding), gathers the results, and every rank gets the
  same table, so every rank computes the same weights.
- Its ``HardSampler`` reads the rank and world size from ``torch.distributed``: every rank generates the same global
  weighted draw and takes its own strided share, so ranks see disjoint positions and the same number of batches per
  epoch (what DDP needs).
- ``hm.to_csv`` writes on rank 0 only.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from hardmine.analysis.io import to_csv
from hardmine.core.distributed import all_gather_concat, is_main_process
from hardmine.feedback.miner import HardMiner
from hardmine.scoring.engine import score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HardMiner under torchrun on the digits data.")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default=None, help="write the final hard samples here as CSV (rank 0)")
    args = parser.parse_args(argv)

    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    world = dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)

    digits = load_digits()
    data = TensorDataset(torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(digits.target))
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    ddp_model = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=args.lr, momentum=0.9)

    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, pin_memory=use_cuda)
    miner = HardMiner(model, loader, threshold=0.7, hard_weight=4.0, warmup_epochs=1, rescore_every=2, progress=False)

    for epoch in range(args.epochs):
        ddp_model.train()
        seen = 0
        for x, y in miner:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(ddp_model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
        table = miner.table
        hard = int((table["difficulty"] == "hard").sum()) if table is not None else -1
        if is_main_process():
            print(
                f"epoch {epoch} ({miner.phase:>7}): {world} ranks x {seen} samples, last loss {loss.item():.3f}, "
                f"hard samples in the last scoring: {hard if hard >= 0 else '-'}",
                flush=True,
            )

    final = score(model, DataLoader(data, batch_size=256), progress=False)
    # Every rank holds the same table: check by gathering one checksum per rank.
    checksum = torch.tensor([float(final["label_prob"].astype("float64").sum())], dtype=torch.float64)
    checksums = all_gather_concat(checksum)
    accuracy = float((final["pred"] == final["label"]).mean())
    if is_main_process():
        print(
            f"final: {len(final)} samples scored once each, training accuracy {accuracy:.3f}, "
            f"same table on all {world} ranks: {bool((checksums == checksums[0]).all())}"
        )
    if args.out is not None:
        path = to_csv(miner.table, args.out, only="hard")  # rank 0 writes, the other ranks return at once
        if is_main_process():
            print(f"hard samples of the last scoring written to {path}")
    dist.barrier()  # the other ranks wait for rank 0's write: a rank leaving gloo mid-work can abort its peer
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
