"""``repr(HardMiner)`` and ``repr(HardSampler)`` say what they hold, checked against the objects' own state."""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm


def _data(n: int = 40) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_sampler_repr_names_draws_mode_weights_epoch_seed_and_rank():
    w = torch.tensor([0.5, 0.0, 2.0, 4.0, 1.0])
    s = hm.HardSampler(w, 12, mode="cover", seed=7, num_replicas=3, rank=2)
    s.set_epoch(4)
    text = repr(s)
    assert text.startswith("HardSampler(num_samples=12 per epoch of N=5, mode='cover', replacement=True,")
    assert "weights in [0, 4] (1 of 5 zero, max/min positive 8)" in text
    assert text.endswith("epoch=4, seed=7, rank 2 of 3)")
    text = repr(hm.HardSampler([1.0, 3.0, 2.0], 2, replacement=False))
    assert "mode='no_replacement', replacement=False" in text and "rank 0 of 1" in text


def test_miner_repr_before_and_after_a_rescore():
    loader = DataLoader(_data(), batch_size=8)
    miner = hm.HardMiner(
        nn.Linear(3, 2), loader, warmup_epochs=1, rescore_every=2, uniform_after=6, threshold=0.6, progress=False
    )
    before = repr(miner)
    assert "phase=None (no pass yet), epoch=-1, N=40" in before
    assert "last re-score: none yet" in before and "next re-score: epoch 1 (the first mining epoch)" in before
    for epoch in range(2):
        miner.set_epoch(epoch)
        for _ in miner:
            pass
    text = repr(miner)
    hard = int((miner.table["difficulty"] == "hard").sum())
    assert 0 < hard < 40
    assert "phase='mine', epoch=1, N=40, apply='sample', warmup_epochs=1" in text
    assert f"last re-score: epoch 1, {hard} hard of 40 by label_prob < 0.6 (scoring pass 1)" in text
    assert "next re-score: epoch 3 (every 2 epochs)" in text
    assert f"sampler={miner.sampler!r}" in text and "device=cpu" in text
    # The sampler line shows the mined weights: their range is the sampler's own.
    lo, hi = float(miner.sampler.weights.min()), float(miner.sampler.weights.max())
    assert f"weights in [{lo:.4g}, {hi:.4g}]" in text and lo < hi
    # Past uniform_after there is no re-score to come.
    for epoch in range(2, 6):
        miner.set_epoch(epoch)
        for _ in miner:
            pass
    assert "next re-score: none (uniform from epoch 6)" in repr(miner)


def test_miner_repr_with_hard_fraction_and_batch_shares():
    miner = hm.HardMiner(
        nn.Linear(3, 2),
        DataLoader(_data(), batch_size=8),
        warmup_epochs=0,
        hard_fraction=0.25,
        positive=1,
        hard_share=0.5,
        device="cpu",
        progress=False,
    )
    for _ in miner:
        pass
    text = repr(miner)
    assert re.search(r"last re-score: epoch 0, 10 hard of 40 by label_prob, hardest 0\.25 \(scoring pass 1\)", text)
    assert "sampler=ShareBatchSampler(5 batches of 8 per epoch, positive_share=0, hard_share=0.5" in text
    assert "next re-score: epoch 1 (every 1 epoch)" in text
