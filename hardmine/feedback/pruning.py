"""PruningSampler: skip what the model already knows, and what it should not learn, from losses it has already seen.

No extra forward pass: the training step computes every drawn sample's loss anyway; :meth:`PruningSampler.observe`
keeps the latest one per sample (an :class:`~hardmine.feedback.online.ObservedScores` buffer), and at the start of
every epoch the sampler decides from these *stale* losses which samples the epoch draws.

**Pruning** (InfoBatch, Qin et al., ICLR 2024). Of the samples whose observed loss is below the mean observed loss
(the well-learned ones, ``m`` of them), ``round(prune * m)`` chosen at random are left out of the epoch; the ``m - d``
kept low-loss samples get the loss weight ``m / (m - d)`` (``1 / (1 - prune)`` up to rounding) from
:meth:`PruningSampler.loss_weights`, so the epoch's expected gradient equals the full data's. Every other sample is
drawn once with weight 1. An epoch has fewer steps; a step costs the same. In the last ``anneal`` fraction of the
``epochs`` (12.5 % by default; ``epochs`` must be given for this) nothing is pruned, so training ends on the full,
unweighted data. The annealing epochs are those from ``(1 - anneal) * epochs`` on, rounded up, as InfoBatch counts
them: ``floor(anneal * epochs)`` of them (1 of 10 epochs at 12.5 %, none of 4).

**Exclusion** (the small-loss trick of co-teaching, Han et al., 2018; or the area under the margin, Pleiss et al.,
2020). With ``exclude > 0``, the ``round(exclude * n)`` observed samples with the largest observed loss (of the
``n`` observed ones), or the lowest AUM when a :class:`~hardmine.analysis.dynamics.Dynamics` is given, are left out
of the epoch altogether (weight 0, also during the annealing epochs): under label noise these are mostly the wrong
labels. Ties go by dataset index; an infinite loss counts as the largest; at least one observed sample stays.
Pruning then applies to the rest. An excluded sample is not trained on, so its loss is not observed again; with
``half_life`` its stale loss drifts back toward the mean (see :mod:`hardmine.feedback.online`), and it returns to the
draw once its decayed loss leaves the top fraction.

Rules for the first epochs and for samples without a loss:

- the first ``warmup_epochs`` (1) epochs draw everything with weight 1 (while every sample gets its first loss);
- a sample never observed is never pruned and has weight 1, and it does not count in the mean; it is excluded only by
  its area under the margin, with ``dynamics`` (which you update yourself, so it may know a sample this sampler has
  not observed);
- an infinite observed loss (or, unchecked on an accelerator, a NaN) is never pruned and does not count in the mean;
  it is the first to be excluded;
- the plan of an epoch is fixed when its pass starts (or at :meth:`set_epoch`): observations made during the epoch
  count from the next one.

Epochs: call :meth:`set_epoch` before each epoch, as with ``DistributedSampler``; without it, every pass read to its
end moves on to the next epoch by itself.

Distributed (``torchrun``): every rank keeps its own observations; at the start of each epoch the ranks merge them
(one ``all_gather``, :meth:`ObservedScores.merge_ranks`, so every rank's plan is computed from the same losses),
build the same plan from ``seed + epoch``, pad the shuffled epoch to a multiple of ``num_replicas`` by wrapping
around (as ``DistributedSampler`` pads) and take the positions ``rank, rank + num_replicas, ...``: the shares are
disjoint and equally long, ``ceil(kept / num_replicas)``. Every rank must start each epoch (the merge is a collective).

Example:
    >>> import torch
    >>> s = PruningSampler(8, prune=0.5, seed=0)
    >>> first = list(s)                             # epoch 0: warm-up, everything once, weight 1
    >>> sorted(first) == list(range(8)), s.loss_weights(torch.tensor([0, 1])).tolist()
    (True, [1.0, 1.0])
    >>> s.observe(torch.arange(8), torch.tensor([0.1, 0.2, 0.3, 0.4, 2.0, 3.0, 4.0, 5.0]))
    >>> second = list(s)                            # epoch 1: 2 of the 4 below the mean (1.875) are dropped
    >>> len(second), sorted(second)[-4:], s.loss_weights(torch.tensor(second)).sum().item()
    (6, [4, 5, 6, 7], 8.0)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hardmine.core._tensors import check_index_vector, check_range
from hardmine.core.validate import boolean, fraction, integer, number, optional
from hardmine.feedback._observing import Exclude, ObservingSampler, dataset_length

if TYPE_CHECKING:
    from hardmine.analysis.dynamics import Dynamics

__all__ = ["PruningSampler"]


class PruningSampler(ObservingSampler):
    """Draws each epoch the samples still worth a step: low-loss ones partly pruned, top-loss ones optionally excluded.

    See the module doc for the rules. Use it as a ``DataLoader``'s ``sampler=`` with a dataset whose batches carry
    their dataset indices (:func:`hardmine.with_indices`, or a dataset that returns them), train on the weighted
    per-sample loss, and report the unweighted per-sample losses back.

    A pruned epoch has fewer batches than a full one, so drive a learning-rate schedule by the epochs done,
    ``epoch + i / len(loader)`` (after :meth:`set_epoch`, ``len(loader)`` is that epoch's own length), not by a count
    of steps sized from a full epoch, which the run would stop short of.

    Args:
        data_source: the dataset (only its length is used), or ``N`` itself.
        prune: the fraction of the below-mean-loss samples left out of each epoch, in ``[0, 1)``; InfoBatch's
            default 0.5.
        exclude: the fraction of the observed samples with the largest observed loss (lowest AUM with ``dynamics``)
            left out of every epoch after the warm-up, in ``[0, 1)``; 0 (the default) excludes nothing; ``"auto"``
            leaves out every observed sample whose label the model finds less likely than chance (loss above
            ``log(num_classes)``; AUM below 0 with ``dynamics``), however many that is. Set a fraction near
            the share of wrong labels you expect.
        epochs: the number of training epochs, for the annealing; ``None`` never anneals.
        anneal: the final fraction of ``epochs`` in which nothing is pruned, in ``[0, 1]`` (InfoBatch: 0.125).
        warmup_epochs: epochs at the start that draw every sample with weight 1, ``>= 0``.
        dynamics: rank the exclusion by the area under the margin of this :class:`Dynamics` (lowest first) instead
            of the observed loss. You update it yourself (``dynamics.update(idx, logits, y)``,
            ``dynamics.end_epoch()``).
        half_life: an observed loss decays halfway back to the mean of the observed losses every ``half_life``
            epochs since it was observed (``> 0``); ``None`` (the default, as InfoBatch) keeps it as it was.
        shuffle: draw each epoch in a random order (``False``: ascending dataset indices).
        seed: the seed of the pruning and the order; epoch ``e`` uses ``seed + e``, the same on every rank.
        num_replicas: ranks sharing the epoch; defaults to torch.distributed's world size when a pass starts.
        rank: this rank; defaults to torch.distributed's rank when a pass starts.
        num_classes: ``C``, for ``exclude="auto"`` when you observe per-sample losses (observed logits give it).

    Attributes:
        epoch: the epoch the next (or current) pass draws.
        observed: the :class:`ObservedScores` holding each sample's latest loss.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> import hardmine as hm
        >>> data = TensorDataset(torch.randn(100, 3), torch.randint(0, 2, (100,)))
        >>> sampler = hm.PruningSampler(data, prune=0.5, epochs=4, anneal=0.25)
        >>> loader = hm.with_indices(DataLoader(data, batch_size=10, sampler=sampler))
        >>> model = torch.nn.Linear(3, 2)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> for epoch in range(4):
        ...     sampler.set_epoch(epoch)
        ...     for idx, x, y in loader:
        ...         losses = F.cross_entropy(model(x), y, reduction="none")
        ...         loss = (losses * sampler.loss_weights(idx)).mean()
        ...         opt.zero_grad(); loss.backward(); opt.step()
        ...         sampler.observe(idx, losses)
        >>> len(sampler) == 100                   # the last epoch (annealing: a quarter of 4) draws everything
        True
    """

    def __init__(
        self,
        data_source: Sized | int,
        *,
        prune: float = 0.5,
        exclude: Exclude = 0.0,
        epochs: int | None = None,
        anneal: float = 0.125,
        warmup_epochs: int = 1,
        dynamics: Dynamics | None = None,
        half_life: float | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        n = dataset_length(data_source)
        self.prune = number("prune", prune, min=0.0, max=1.0, max_open=True)
        super().__init__(
            n,
            exclude=exclude,
            warmup_epochs=warmup_epochs,
            dynamics=dynamics,
            half_life=half_life,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            num_classes=num_classes,
        )
        self.epochs = optional(integer, "epochs", epochs, min=1)
        self.anneal = fraction("anneal", anneal)
        self.shuffle = boolean("shuffle", shuffle)
        self._plan_epoch: int | None = None
        self._plan_order = torch.arange(n)
        self._plan_weights = torch.ones(n, dtype=torch.float32)
        self._device_weights: tuple[Tensor, Tensor] | None = None  # (the plan's weights, their copy on a device)

    # ------------------------------------------------------------------ epochs

    def pruning_active(self, epoch: int | None = None) -> bool:
        """Whether epoch ``epoch`` (default: the current one) prunes: after the warm-up, before the annealing."""
        e = self.epoch if epoch is None else epoch
        if e < self.warmup_epochs or self.prune == 0.0:
            return False
        return self.epochs is None or e < math.ceil((1.0 - self.anneal) * self.epochs - 1e-9)

    def _start(self) -> None:
        """Move to the next epoch if the last pass ended without :meth:`set_epoch`, and build the epoch's plan."""
        self._next_pass()
        if self._plan_epoch != self.epoch:
            self._plan_order, self._plan_weights = self.plan(self.epoch)
            self._plan_epoch = self.epoch

    def plan(self, epoch: int) -> tuple[Tensor, Tensor]:
        """The whole epoch ``epoch`` over every rank, from the losses observed so far (merged across ranks).

        Returns:
            ``(order, weights)``: int64 ``(K,)``, the dataset indices the epoch draws in order (before the split
            between ranks), and float32 ``(N,)``, every sample's loss weight (0 for a sample not drawn).
        """
        epoch = integer("epoch", epoch, min=0)
        n = self.num_samples
        self.observed.merge_ranks()
        weights = torch.ones(n, dtype=torch.float32)
        g = torch.Generator().manual_seed(self.seed + epoch)
        if epoch >= self.warmup_epochs:
            loss = self._losses(epoch).to(torch.float64)
            if self.excludes:
                weights[self._excluded(loss)] = 0.0
            if self.pruning_active(epoch):
                usable = torch.isfinite(loss) & (weights > 0)
                if bool(usable.any()):
                    low = (usable & (loss < loss[usable].mean())).nonzero()[:, 0]
                    dropped = round(self.prune * low.numel())
                    if dropped:
                        pick = torch.randperm(low.numel(), generator=g)
                        weights[low[pick[:dropped]]] = 0.0
                        weights[low[pick[dropped:]]] = low.numel() / (low.numel() - dropped)
        order = (weights > 0).nonzero()[:, 0]
        if self.shuffle:
            order = order[torch.randperm(order.numel(), generator=g)]
        return order, weights

    # ------------------------------------------------------------------ drawing

    def indices(self) -> Tensor:
        """This rank's share of the current epoch as an int64 tensor ``(len(self),)`` (what iterating yields)."""
        self._start()
        return self._share(self._plan_order)

    def __iter__(self) -> Iterator[int]:
        self._warn_if_sharded_again(self._replicas()[0], sys._getframe(1))
        share = self.indices()
        yield from share.tolist()
        self._advance = True

    def __len__(self) -> int:
        """This rank's number of indices in the current epoch; changes nothing once the epoch's pass has started.

        Before the epoch's pass starts (a new sampler, or after :meth:`set_epoch`), its plan is built here, as the pass
        would build it (under torchrun a collective: call it on every rank, as ``DataLoader`` and Lightning do). Once
        a pass has started, and after it has been read to its end (with a ``DataLoader`` that is while its last
        batches are still being trained on, or prefetched by workers), the length is that epoch's: the next epoch's
        plan waits for its own pass (or :meth:`set_epoch`), so that every loss observed before then counts in it.
        """
        if not self._advance and self._plan_epoch != self.epoch:
            self._start()
        reps, _ = self._replicas()
        return math.ceil(self._plan_order.numel() / reps)

    # ------------------------------------------------------------------ losses

    def loss_weights(self, indices: Tensor) -> Tensor:
        """The current epoch's loss weights of ``indices``: float32 ``(B,)`` on ``indices``' device.

        ``1 / (1 - prune)`` (up to rounding) for a kept below-mean sample during pruning, 1 for every other drawn
        sample; multiply the per-sample losses by it before averaging. On an accelerator the epoch's weights are
        copied to it once (at the first call of the epoch) and indexed there, with no host synchronisation per call;
        on the CPU the indices are checked against ``[0, N)``.

        Args:
            indices: int tensor ``(B,)`` of the batch's dataset indices, on any device.

        Raises:
            TypeError: ``indices`` is not an integer tensor.
            ValueError: ``indices`` not one-dimensional; (on the CPU) an index outside ``[0, N)``.
        """
        idx = check_index_vector("indices", indices, "dataset indices").long()  # lined up with the batch's losses
        if self._plan_epoch is None:
            self._start()
        if idx.device.type == "cpu":
            check_range("indices", idx, self.num_samples, "to be dataset indices")
            return self._plan_weights[idx]
        cached = self._device_weights
        if cached is None or cached[0] is not self._plan_weights or cached[1].device != idx.device:
            cached = self._device_weights = (self._plan_weights, self._plan_weights.to(idx.device))
        return cached[1][idx]

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Epoch, seed, the current epoch's plan and the observed losses (ints, floats and CPU tensors only).

        Loads with ``torch.load(..., weights_only=True)``. A pass under way restarts its epoch after loading (the
        position inside an epoch is not kept); the plan is kept, so the epoch draws the same samples.
        """
        return {
            **self._common_state(),
            "plan_epoch": self._plan_epoch,
            "plan_order": self._plan_order.clone(),
            "plan_weights": self._plan_weights.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state.

        Raises:
            ValueError: a missing key, or a state saved for another number of samples.
        """
        self._load_common_state(state, ("plan_epoch", "plan_order", "plan_weights"))
        self._plan_epoch = None if state["plan_epoch"] is None else int(state["plan_epoch"])
        self._plan_order = state["plan_order"].clone()
        self._plan_weights = state["plan_weights"].clone()
