"""Batches of a :class:`hardmine.HardMiner`: the share batch sampler, the miner's two draws, and the batch format.

- :class:`ShareBatchSampler`: batches with a guaranteed share of positive and of hard samples, the batch-level
  counterpart of :class:`hardmine.HardSampler` (which draws indices).
- :class:`IndexDraw` and :class:`ShareDraw`: what a miner draws from in mining and in uniform epochs (a sampler and
  the user's loader rebuilt around it for each), behind one interface, so the miner never asks which sampler it holds.
- :class:`BatchFormat`: how a batch leaves the miner (loss weights last, dataset indices first).

Example:
    >>> fmt = BatchFormat(with_weights=True, indices=True)
    >>> fmt(torch.tensor([3, 1]), ("x", "y"), torch.tensor([0.5, 1.0, 2.0, 4.0]))
    (tensor([3, 1]), 'x', 'y', tensor([4., 1.]))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from hardmine.core.data import _check_map_style, _IndexedCollate, _IndexedDataset, dataset_ids, rebuild_loader
from hardmine.core.distributed import get_world_size
from hardmine.core.validate import fraction, fraction_count, integer
from hardmine.feedback.sampling import HardSampler, SamplerMode, check_sampling_weights

if TYPE_CHECKING:
    from hardmine.feedback.miner import HardMiner
    from hardmine.feedback.miner_settings import MinerSettings

__all__ = [
    "BatchFormat",
    "IndexDraw",
    "MinerSampler",
    "ShareBatchSampler",
    "ShareDraw",
    "check_length",
    "check_loaders",
    "check_score_loader",
    "make_draw",
    "table_masks",
]


class ShareBatchSampler(Sampler[list[int]]):
    """Batches with a guaranteed share of positive and of hard samples, as detection pipelines keep 1:3 positives.

    Every batch of ``batch_size`` indices holds ``ceil(positive_share * batch_size)`` draws from the positive samples,
    ``ceil(hard_share * batch_size)`` draws from the hard samples, and the rest from all samples; within each part the
    draws are independent and in proportion to ``weights`` (with replacement, so a rare positive may appear twice in one
    batch). When the two rounded-up counts add up past ``batch_size`` the hard part gets the slots left (with
    ``batch_size=3`` and both shares 0.5: 2 and 1). A part whose mask is empty (no hard samples left) gives its slots to
    the rest. The batch is then shuffled. With no masks the sampler yields plain uniform batches: a fresh permutation,
    every sample once.

    Args:
        weights: float tensor ``(N,)`` of sampling weights (non-negative, not all zero).
        batch_size: indices per batch.
        num_batches: batches per epoch.
        positive: bool tensor ``(N,)``, the positive samples, or ``None``.
        hard: bool tensor ``(N,)``, the hard samples, or ``None``.
        positive_share: share of every batch kept for positives, in ``[0, 1]``.
        hard_share: share of every batch kept for hard samples, in ``[0, 1]``; the two shares sum to at most 1.
        seed: epoch ``e`` draws from ``(seed, e)`` alone.

    Example:
        >>> s = ShareBatchSampler(torch.ones(100), batch_size=8, num_batches=3,
        ...                       positive=torch.arange(100) < 5, positive_share=0.25)
        >>> [sum(i < 5 for i in batch) >= 2 for batch in s]
        [True, True, True]
    """

    def __init__(
        self,
        weights: Tensor,
        *,
        batch_size: int,
        num_batches: int,
        positive: Tensor | None = None,
        hard: Tensor | None = None,
        positive_share: float = 0.0,
        hard_share: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.batch_size = integer("batch_size", batch_size, min=1)
        self.num_batches = integer("num_batches", num_batches, min=1)
        self.positive_share = fraction("positive_share", positive_share)
        self.hard_share = fraction("hard_share", hard_share)
        if self.positive_share + self.hard_share > 1:
            raise ValueError(f"Expected `positive_share + hard_share` <= 1, but got {positive_share} + {hard_share}.")
        self.seed = integer("seed", seed, min=-(2**42), max=2**42)  # seed * 1_000_003 + epoch stays a torch seed
        self.epoch = 0
        self.update(weights, positive=positive, hard=hard)

    def update(self, weights: Tensor, *, positive: Tensor | None = None, hard: Tensor | None = None) -> None:
        """New weights and masks; they apply from the next pass.

        Raises:
            TypeError: ``weights`` not a real tensor or sequence, a mask not a bool tensor.
            ValueError: ``weights`` not 1-D, empty, not finite, negative or all zero; a mask of another shape.
        """
        w = check_sampling_weights(weights).to(torch.float64)
        for name, mask in (("positive", positive), ("hard", hard)):
            if mask is not None and (not isinstance(mask, Tensor) or mask.dtype != torch.bool):
                got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
                raise TypeError(f"Expected argument `{name}` to be a bool tensor (N,) or None, but got {got}.")
            if mask is not None and mask.shape != w.shape:
                raise ValueError(
                    f"Expected argument `{name}` to be a bool tensor of shape {tuple(w.shape)}, but got shape "
                    f"{tuple(mask.shape)}."
                )
        self.weights = w
        self.positive = positive
        self.hard = hard

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch`` on the next pass."""
        self.epoch = integer("epoch", epoch, min=0)

    def __len__(self) -> int:
        return self.num_batches

    def __repr__(self) -> str:
        """The batches per epoch, the shares, the epoch and the seed.

        Example:
            >>> ShareBatchSampler(torch.ones(10), batch_size=4, num_batches=3, hard_share=0.5)
            ShareBatchSampler(3 batches of 4 per epoch, positive_share=0, hard_share=0.5, epoch=0, seed=0)
        """
        return (
            f"ShareBatchSampler({self.num_batches} batches of {self.batch_size} per epoch, "
            f"positive_share={self.positive_share:.4g}, hard_share={self.hard_share:.4g}, epoch={self.epoch}, "
            f"seed={self.seed})"
        )

    def _parts(self) -> list[tuple[Tensor, int]]:
        """(weights restricted to a part, slots per batch) for every part with slots."""
        b = self.batch_size
        parts: list[tuple[Tensor, int]] = []
        used = 0
        for mask, share in ((self.positive, self.positive_share), (self.hard, self.hard_share)):
            if mask is None or share == 0:
                continue
            part = self.weights * mask
            if not bool((part > 0).any()):
                continue
            k = min(b - used, fraction_count("share", share, b))  # ceil(share * b), exactly (0.07 of 100 is 7, not 8)
            if k:
                parts.append((part, k))
                used += k
        if b - used:
            parts.append((self.weights, b - used))
        return parts

    @property
    def uniform(self) -> bool:
        """True when no share applies and the weights are all equal: batches are a plain permutation."""
        shared = any(
            m is not None and s > 0 for m, s in ((self.positive, self.positive_share), (self.hard, self.hard_share))
        )
        return not shared and bool((self.weights == self.weights[0]).all())

    def expected_draws(self) -> Tensor:
        """Expected number of draws of every sample per epoch, float64 ``(N,)``."""
        n = self.weights.numel()
        if self.uniform:
            return torch.full((n,), self.num_batches * self.batch_size / n, dtype=torch.float64)
        total = torch.zeros(n, dtype=torch.float64)
        for part, k in self._parts():
            total += self.num_batches * k * part / part.sum()
        return total

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = self.weights.numel()
        nb, b = self.num_batches, self.batch_size
        if self.uniform:
            reps = math.ceil(nb * b / n)
            flat = torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[: nb * b]
            batches = flat.view(nb, b)
        else:
            cols = []
            for part, k in self._parts():
                cdf = torch.cumsum(part, 0)
                u = torch.rand(nb * k, generator=g, dtype=torch.float64) * cdf[-1]
                cols.append(torch.searchsorted(cdf, u, right=True).clamp_(max=n - 1).view(nb, k))
            batches = torch.cat(cols, dim=1)
            batches = batches.gather(1, torch.rand(nb, b, generator=g).argsort(dim=1))
        self.epoch += 1
        yield from batches.tolist()


def _mask(table: pd.DataFrame, column: str, value: Any) -> Tensor:
    """Bool tensor ``(N,)`` in dataset-index order: rows of ``table`` whose ``column`` is ``value``."""
    hits = (table[column] == value).to_numpy(dtype=bool, copy=True)
    if "index" in table.columns:
        ordered = np.zeros(len(table), dtype=bool)
        ordered[table["index"].to_numpy()] = hits
        hits = ordered
    return torch.from_numpy(hits)


def table_masks(table: pd.DataFrame) -> tuple[Tensor, Tensor | None]:
    """``(hard, positive)`` bool tensors ``(N,)`` in dataset-index order from a miner's split table.

    ``hard`` leaves the suspected label issues out (a ``suspect`` column); ``positive`` is ``None`` without a
    ``polarity`` column.
    """
    hard = _mask(table, "difficulty", "hard")
    if "suspect" in table.columns:
        hard &= ~_mask(table, "suspect", True)
    positive = _mask(table, "polarity", "positive") if "polarity" in table.columns else None
    return hard, positive


_SHARED_WORLD = (
    "`positive_share`/`hard_share` batches are drawn by one process; under torch.distributed leave them out "
    "(HardSampler shards the weighted draw across ranks), or pass num_replicas=1 when a framework shards the batches."
)


class IndexDraw:
    """A miner's draw of indices: a weighted :class:`hardmine.HardSampler` for mining epochs, a uniform one else.

    Uniform epochs draw every sample once (a permutation) when the epoch is at least ``N`` long. Each sampler has the
    user's loader rebuilt around it (see :func:`hardmine.core.data.rebuild_loader`), yielding ``(indices, batch)``.

    Args:
        loader: the user's training DataLoader (map-style, built with ``batch_size``).
        num_samples: draws per epoch.
        mode: the mining sampler's mode.
        seed: as for :class:`hardmine.HardSampler`.
        num_replicas: as for :class:`hardmine.HardSampler`.
        rank: as for :class:`hardmine.HardSampler`.
    """

    def __init__(
        self,
        loader: DataLoader,
        *,
        num_samples: int,
        mode: SamplerMode,
        seed: int,
        num_replicas: int | None,
        rank: int | None,
    ) -> None:
        n = len(loader.dataset)  # type: ignore[arg-type]
        ones = torch.ones(n, dtype=torch.float64)
        uniform_mode: SamplerMode = "cover" if num_samples >= n else "replacement"
        self.sampler = HardSampler(ones, num_samples, mode=mode, seed=seed, num_replicas=num_replicas, rank=rank)
        self.uniform = HardSampler(
            ones, num_samples, mode=uniform_mode, seed=seed, num_replicas=num_replicas, rank=rank
        )
        self.mine_loader = _rebuild(loader, sampler=self.sampler)
        self.uniform_loader = _rebuild(loader, sampler=self.uniform)

    def check_world(self) -> None:
        """Nothing to check: a HardSampler shards its draw across ranks."""

    def update(self, weights: Tensor, *, hard: Tensor | None, positive: Tensor | None) -> None:
        """Sampling weights for the next mining epochs (the masks only matter to share batches)."""
        self.sampler.update(weights)

    def draws_per_epoch(self) -> int:
        """Indices drawn per mining epoch (all ranks together)."""
        return self.sampler.num_samples

    def expected_draws(self) -> Tensor:
        """Expected draws of every sample per mining epoch, float64 ``(N,)``."""
        w = self.sampler.weights.to(torch.float64)
        p = w / w.sum()
        m = self.sampler.num_samples
        if self.sampler.mode == "cover":
            return 1.0 + (m - w.numel()) * p
        return m * p

    def describe(self) -> str:
        """The mining sampler, for the miner's repr."""
        return repr(self.sampler)


class ShareDraw:
    """A miner's draw of share batches: :class:`ShareBatchSampler` with the shares for mining, without for uniform.

    Args:
        loader: the user's training DataLoader (its ``batch_size`` and ``drop_last`` set the batches per epoch).
        num_samples: draws per epoch.
        positive_share: the share of every mining batch kept for positive samples.
        hard_share: the share of every mining batch kept for hard samples.
        seed: as for :class:`ShareBatchSampler`.
        num_replicas: ``1`` when a framework shards the batches; else the draw refuses torch.distributed.
    """

    def __init__(
        self,
        loader: DataLoader,
        *,
        num_samples: int,
        positive_share: float,
        hard_share: float,
        seed: int,
        num_replicas: int | None,
    ) -> None:
        self.num_replicas = num_replicas
        self.check_world()
        ones = torch.ones(len(loader.dataset), dtype=torch.float64)  # type: ignore[arg-type]
        b = int(loader.batch_size)  # type: ignore[arg-type]
        nb = max(1, num_samples // b if loader.drop_last else math.ceil(num_samples / b))
        self.sampler = ShareBatchSampler(
            ones, batch_size=b, num_batches=nb, positive_share=positive_share, hard_share=hard_share, seed=seed
        )
        self.uniform = ShareBatchSampler(ones, batch_size=b, num_batches=nb, seed=seed)
        self.mine_loader = _rebuild(loader, batch_sampler=self.sampler)
        self.uniform_loader = _rebuild(loader, batch_sampler=self.uniform)

    def check_world(self) -> None:
        """Raise under torch.distributed unless ``num_replicas=1``: share batches are drawn by one process."""
        if self.num_replicas != 1 and get_world_size() > 1:
            raise ValueError(_SHARED_WORLD)

    def update(self, weights: Tensor, *, hard: Tensor | None, positive: Tensor | None) -> None:
        """Sampling weights and the hard and positive masks for the next mining epochs."""
        self.sampler.update(weights, positive=positive, hard=hard)

    def draws_per_epoch(self) -> int:
        """Indices drawn per mining epoch."""
        return self.sampler.num_batches * self.sampler.batch_size

    def expected_draws(self) -> Tensor:
        """Expected draws of every sample per mining epoch, float64 ``(N,)``."""
        return self.sampler.expected_draws()

    def describe(self) -> str:
        """The mining sampler, for the miner's repr."""
        return repr(self.sampler)


def make_draw(loader: DataLoader, settings: MinerSettings) -> IndexDraw | ShareDraw:
    """The draw of a miner with ``settings`` over ``loader``: share batches when a share applies, else indices."""
    s = settings
    if s.shares.active:
        shares = s.shares
        return ShareDraw(
            loader,
            num_samples=s.num_samples,
            positive_share=float(shares.positive_share or 0.0),
            hard_share=float(shares.hard_share or 0.0),
            seed=s.seed,
            num_replicas=s.num_replicas,
        )
    return IndexDraw(
        loader, num_samples=s.num_samples, mode=s.sampler_mode, seed=s.seed, num_replicas=s.num_replicas, rank=s.rank
    )


def _rebuild(loader: DataLoader, **sampling: Any) -> DataLoader:
    """The user's loader over the same dataset, drawing with ``sampling``, yielding ``(indices, batch)``."""
    dataset, collate = _IndexedDataset(loader.dataset), _IndexedCollate(loader.collate_fn)
    return rebuild_loader(loader, dataset=dataset, collate_fn=collate, **sampling)


@dataclass(frozen=True)
class BatchFormat:
    """How a miner's batch comes out: the user's batch, its loss weights last, its dataset indices first.

    Args:
        with_weights: append the float32 loss weights ``(B,)`` (a dict batch gets a ``"weight"`` key).
        indices: put the int64 dataset indices ``(B,)`` first: ``(idx, x, y[, w])``.
    """

    with_weights: bool = False
    indices: bool = False

    def __call__(self, idx: Tensor, batch: Any, loss_weights: Tensor) -> Any:
        """The batch of dataset indices ``idx`` (int64 ``(B,)``), given every sample's loss weight ``(N,)``."""
        if self.with_weights:
            w = loss_weights[idx]
            if isinstance(batch, Mapping):
                batch = {**batch, "weight": w}
            elif isinstance(batch, tuple):
                batch = (*batch, w)
            elif isinstance(batch, list):
                batch = [*batch, w]
            else:
                batch = (batch, w)
        if self.indices:
            return (idx, *batch) if isinstance(batch, (tuple, list)) else (idx, batch)
        return batch


class MinerSampler(Sampler[int]):
    """A :class:`HardMiner` seen as a sampler of dataset indices (see :meth:`HardMiner.as_sampler`).

    Each pass runs the miner's epoch logic and yields that epoch's draw; :meth:`set_epoch` is the miner's.
    """

    def __init__(self, miner: HardMiner) -> None:
        self.miner = miner

    def __len__(self) -> int:
        """Indices per epoch on this rank."""
        return len(self.miner.sampler)

    def set_epoch(self, epoch: int) -> None:
        """See :meth:`HardMiner.set_epoch`."""
        self.miner.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        miner = self.miner
        _loader, sampler, _w = miner._begin_pass()
        if not isinstance(sampler, HardSampler):  # as_sampler() refuses batch shares
            raise TypeError(f"MinerSampler needs a HardSampler, but the miner draws with {type(sampler).__name__}.")
        drawn: list[int] = []
        try:
            for i in sampler:
                drawn.append(i)
                yield i
            miner._pass_done = True
        finally:
            if drawn:
                idx = torch.tensor(drawn, dtype=torch.int64)
                miner.draws.index_add_(0, idx, torch.ones_like(idx))


def check_score_loader(score_loader: Any, loader: DataLoader) -> None:
    """Raise unless ``score_loader`` is a DataLoader over the same samples as ``loader`` (length, file paths)."""
    if not isinstance(score_loader, DataLoader):
        raise TypeError(
            f"Expected argument `score_loader` to be a torch.utils.data.DataLoader or None, but got "
            f"{type(score_loader).__name__}."
        )
    _check_map_style(score_loader, "HardMiner's score_loader")
    n, m = len(loader.dataset), len(score_loader.dataset)  # type: ignore[arg-type]
    if n != m:
        raise ValueError(
            f"Expected argument `score_loader` over the same {n} samples as `loader` (index i the same sample in "
            f"both), but its dataset has {m}."
        )
    train_ids, score_ids = dataset_ids(loader.dataset), dataset_ids(score_loader.dataset)
    if train_ids is not None and score_ids is not None and list(train_ids) != list(score_ids):
        first = next(i for i, (a, b) in enumerate(zip(train_ids, score_ids, strict=True)) if a != b)
        raise ValueError(
            f"Expected argument `score_loader` to index the same samples as `loader`, but dataset index {first} is "
            f"{score_ids[first]!r} there and {train_ids[first]!r} in `loader`."
        )


def check_loaders(loader: DataLoader, score_loader: DataLoader | None) -> int:
    """Raise unless ``loader`` (and ``score_loader``) suit a miner; returns ``N``, the dataset's length."""
    _check_map_style(loader, "HardMiner")
    if loader.batch_size is None:
        raise ValueError(
            "Expected `loader` to be built with `batch_size=`, but it was built on a custom batch_sampler "
            "(its batch_size is None); HardMiner replaces the sampling and keeps the batch size."
        )
    if score_loader is not None:
        check_score_loader(score_loader, loader)
    return len(loader.dataset)  # type: ignore[arg-type]


def check_length(loader: DataLoader, num_samples: int) -> None:
    """Raise when the loader's dataset lost or gained samples since the miner was built (its state is per sample)."""
    n = len(loader.dataset)  # type: ignore[arg-type]
    if n != num_samples:
        raise ValueError(
            f"Expected the dataset of `loader` to keep its {num_samples} samples, but it now has {n}: the miner's "
            "weights, draw counts and observed scores are per sample. Build a new HardMiner on the changed "
            "dataset (its epoch count and history start afresh; observe() or a scoring pass fills it)."
        )
