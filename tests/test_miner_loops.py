"""HardMiner in the loops people write: epochs, peeking, set_epoch, loader attributes, the scoring view, ranks."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import hardmine.core.distributed
import hardmine.feedback.miner
from hardmine.feedback.miner import HardMiner
from hardmine.scoring.engine import score

N = 48

pytestmark = pytest.mark.filterwarnings("ignore::hardmine.feedback.weighting.HardSetCollapseWarning")


def _data(n: int = N, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 2)


def _miner(**kw) -> HardMiner:
    kw.setdefault("progress", False)
    return HardMiner(_model(), DataLoader(_data(), batch_size=8, shuffle=True), threshold=0.6, **kw)


# ---------------------------------------------------------------- epochs
def test_default_warmup_scores_no_untrained_model(count_scores):
    miner = _miner()
    assert miner.warmup_epochs == 1
    list(miner)
    assert (miner.epoch, miner.phase, len(count_scores.loaders)) == (0, "warmup", 0)
    list(miner)
    assert (miner.epoch, miner.phase, len(count_scores.loaders)) == (1, "mine", 1)


def test_peeking_starts_no_epoch_and_no_scoring_pass(count_scores):
    # The DDP tutorial's loop: `len(next(iter(loader))[0])` before each epoch, then a full pass.
    miner = _miner(warmup_epochs=1)
    plain = _miner(warmup_epochs=1)
    for epoch in range(4):
        assert len(next(iter(miner))[0]) == 8
        assert miner.epoch == epoch
        batches = list(miner)
        assert len(batches) == len(miner) == 6
        assert miner.epoch == epoch
        for b, ref in zip(batches, plain, strict=True):  # the peek changes nothing: same batches as no peek
            torch.testing.assert_close(b[0], ref[0])
    assert len(count_scores.loaders) == 3 * 2  # epochs 1, 2, 3 for both miners, none for the peeks
    assert miner.history["epoch"].tolist() == [1, 2, 3]


def test_set_epoch_as_distributed_sampler(count_scores):
    miner = _miner(warmup_epochs=1, rescore_every=2)
    for epoch in range(5):
        miner.set_epoch(epoch)
        list(miner)
        assert miner.epoch == epoch
    assert miner.history["epoch"].tolist() == [1, 3]
    miner.set_epoch(4)  # the epoch just done: the same draw again, no scoring pass
    again = [b[0] for b in miner]
    miner.set_epoch(4)
    torch.testing.assert_close(torch.cat(again), torch.cat([b[0] for b in miner]))
    assert len(count_scores.loaders) == 2
    miner.set_epoch(7)
    next(iter(miner))
    assert (miner.epoch, miner.history["epoch"].tolist()) == (7, [1, 3, 7])
    with pytest.raises(ValueError, match="`epoch`"):
        miner.set_epoch(-1)


# ---------------------------------------------------------------- a loader
def test_loader_attributes_and_score_of_a_miner():
    data = _data()
    miner = HardMiner(_model(), DataLoader(data, batch_size=8, drop_last=True), progress=False)
    assert miner.dataset is data and miner.batch_size == 8 and miner.drop_last is True
    assert len(miner) == N // 8 and len(miner.dataset) == N
    direct = score(_model(), DataLoader(data, batch_size=5), progress=False)
    via_miner = score(_model(), miner, progress=False)
    assert via_miner.equals(direct)


class _Augmented(Dataset):
    """A training view with random noise (the augmentation) over the same samples as the clean view."""

    def __init__(self, base: TensorDataset, noise: float) -> None:
        self.base, self.noise = base, noise

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x + self.noise * torch.randn(x.shape), y


def test_score_loader_scores_with_evaluation_transforms(count_scores):
    data = _data()
    train = DataLoader(_Augmented(data, noise=3.0), batch_size=8, shuffle=True)
    clean = DataLoader(data, batch_size=16)
    miner = HardMiner(_model(), train, score_loader=clean, warmup_epochs=0, rescore_every=1, progress=False)
    list(miner)
    first = miner.table
    list(miner)
    second = miner.table
    assert count_scores.loaders == [clean, clean]
    # The model did not change (no training here): the clean view scores the same twice, unlike the noisy view.
    assert first["label_prob"].equals(second["label_prob"])
    reference = score(_model(), clean, progress=False)
    assert first["label_prob"].equals(reference["label_prob"])
    model = _model()
    noisy = [score(model, train, progress=False)["label_prob"] for _ in range(2)]
    assert (noisy[0] - noisy[1]).abs().max() > 0.05
    assert score(_model(), miner, progress=False)["label_prob"].equals(reference["label_prob"])


def test_score_loader_must_index_the_same_samples():
    train = DataLoader(_data(), batch_size=8)
    with pytest.raises(ValueError, match="same 48 samples"):
        HardMiner(_model(), train, score_loader=DataLoader(_data(40), batch_size=8))
    with pytest.raises(TypeError, match="`score_loader`"):
        HardMiner(_model(), train, score_loader=_data())


# ---------------------------------------------------------------- a sampler for other people's loaders
def test_as_sampler_runs_the_epochs_and_yields_the_draw(count_scores):
    miner = _miner(warmup_epochs=1, seed=3)
    sampler = miner.as_sampler()
    loader = DataLoader(_data(), batch_size=8, sampler=sampler)
    assert len(sampler) == N and len(loader) == 6
    warm = [i for i in sampler]
    assert sorted(warm) == list(range(N)) and miner.phase == "warmup"
    sampler.set_epoch(1)
    drawn = list(sampler)
    assert miner.phase == "mine" and len(count_scores.loaders) == 1
    miner.sampler.set_epoch(1)
    assert drawn == miner.sampler.indices(1).tolist()
    assert int(miner.draws.sum()) == 2 * N
    with pytest.raises(ValueError, match="apply='sample'"):
        _miner(apply="loss").as_sampler()


# ---------------------------------------------------------------- ranks read when the draw starts
def test_miner_built_before_the_process_group_shards_when_iterated(monkeypatch):
    miner = _miner(warmup_epochs=0, indices=True, sampler_mode="no_replacement", seed=1)
    assert len(miner) == 6
    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 2)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda rank=rank: rank)
        miner.set_epoch(0)
        assert len(miner) == 3
        shares.append(torch.cat([b[0] for b in miner]).tolist())
    assert len(shares[0]) == len(shares[1]) == N // 2
    assert set(shares[0]).isdisjoint(shares[1]) and sorted(shares[0] + shares[1]) == list(range(N))
    pinned = _miner(warmup_epochs=0, num_replicas=1)  # a framework shards: every rank yields the whole epoch
    assert len(pinned) == 6 and sum(len(b[0]) for b in pinned) == N
