"""PrioritySampler: draw the samples the model gets most wrong most often, ranked by the loss training already computed.

Online batch selection by rank (Loshchilov & Hutter, 2015) with stale losses, as selective backprop's "stale" variant
(Jiang et al., 2019) uses them: no extra forward pass. The training step computes every drawn sample's loss anyway;
:meth:`PrioritySampler.observe` keeps the latest one per sample (an :class:`~hardmine.feedback.online.ObservedScores`
buffer on the training device), and the sampler draws from them.

**The draw.** The observed samples are ranked by their latest loss, largest first; the one at rank ``r`` of ``K`` is
drawn with a probability proportional to ``pressure ** (-r / (K - 1))``: the hardest is ``pressure`` times likelier
than the easiest (1000 by default, chosen by ``benchmarks/bench_selection.py`` on clean labels; 10 did best there
with ``exclude`` under label noise), and the probability falls geometrically in between, so it depends on the order
of the losses, not on their scale. Samples with equal losses share the mean weight of the ranks they hold (equal
losses have no order, so none is favoured by its index). Per epoch of ``N`` draws, the hardest sample is drawn about
``ln(pressure) / (1 - 1 / pressure)`` times (6.9 at 1000), the median one ``pressure ** -0.5`` times that (0.22), the
easiest ``1 / pressure`` times that. Draws are with replacement; an epoch is ``draws`` indices (``N`` by default).
The probabilities are recomputed from the latest losses every ``refresh`` draws (32 times an epoch by default), so a
hard sample that has been learned drops back within the epoch.

**Exclusion** (the small-loss trick of co-teaching, Han et al., 2018; or the area under the margin, Pleiss et al.,
2020). Under label noise the largest losses are mostly wrong labels, which the ranking would otherwise draw most.
``exclude="auto"`` never draws an observed sample whose label the model finds less likely than chance: loss above
``log(C)``, label probability below ``1 / C`` (or, with a :class:`~hardmine.analysis.dynamics.Dynamics`, an area
under the margin below 0), however many samples that is: on clean labels a handful, under 40 % noise about 40 %.
``exclude=f`` (a fraction) never draws the ``round(f * n)`` observed samples with the largest loss (or lowest AUM) of
the ``n`` observed, ties by dataset index, and never all ``n`` (at most ``n - 1``). An infinite loss is the largest,
so it is excluded first. The rest are ranked as above. An excluded sample is not drawn, so its loss is not observed
again; its stale loss decays toward the mean (``half_life``, below), and it returns to the draw once it no longer
counts as excluded: a clean sample excluded early, before the model learnt its class, comes back; a wrong label comes
back rarely, and is excluded again as soon as its loss is observed.

Staleness, and samples without a loss:

- the first ``warmup_epochs`` (1) epochs draw every sample once, in a random order, so every sample gets a loss;
- a sample never observed is drawn with the largest probability (that of rank 0), so it is drawn, and observed, soon;
- a sample's loss is as old as its last draw, and an easy sample is drawn rarely, so its loss may be epochs old when
  the model has forgotten it. Every observed loss therefore decays toward the mean of the observed losses by its age
  in epochs (``half_life``, 1 epoch by default; see :mod:`hardmine.feedback.online` for the ages): an old easy loss
  rises, an old hard one falls, and an excluded sample returns to the draw once its decayed loss no longer counts as
  excluded. ``half_life=None`` keeps the losses as observed. In the benchmark the decay gained 0.8 points under 40 %
  label noise (with ``exclude``) and lost 0.3 on clean labels.

**Fresher losses from the same forward pass.** A drawn sample's loss may be stale: part of what is drawn as hard
has been learnt since. Let the ``DataLoader`` draw a quarter more than a step trains on (batches of 80 for 64), train
on the largest losses of each batch (``hm.ohem_loss(logits, y, keep=64)``: the others get no gradient) and observe
all of them: in the benchmark (40 seeds, clean labels) this reached uniform's final accuracy in 0.50x the steps and
0.69x the CPU, against 0.59x and 0.67x, and gained nothing under 40 % label noise (see ``docs/benchmarks/mining.md``).

Epochs: call :meth:`set_epoch` before each epoch, as with ``DistributedSampler``; without it, every pass read to its
end moves on to the next epoch by itself.

Cost: each refresh copies the ``N`` losses to the CPU (one host synchronisation per ``refresh`` draws, not per batch),
decays them, ranks them with a radix sort and gives tied losses their mean weight, ``O(N)``: about 1.5 ms for 30,000
samples on one CPU thread (``benchmarks/bench_refresh.py``, Intel Xeon), 32 times an epoch, so 0.05 s an epoch against
1.6 s of training steps in ``benchmarks/bench_selection.py``; 86 ms for 10**6 samples, 1.7 to 1.8 s for 10**7. With
``exclude=f`` the excluded samples are the first ``round(f * n)`` of the same ranking, so the exclusion costs no second
pass.

Distributed (``torchrun``): every rank keeps its own observations; at the start of each epoch the ranks merge them
(one ``all_gather``, :meth:`ObservedScores.merge_ranks`), so every rank starts the epoch from the same losses. Within
the epoch each rank draws ``ceil(draws / num_replicas)`` indices from its own random stream (``seed``, epoch, rank)
and refreshes from the losses it observes itself. Draws are with replacement, so two ranks may draw the same sample
in an epoch, as one rank may draw it twice. Every rank must start each epoch (the merge is a collective). The warm-up
epochs split one shared permutation into disjoint shares, as ``DistributedSampler`` does.

Example:
    >>> import torch
    >>> s = PrioritySampler(4, pressure=8.0, warmup_epochs=0)
    >>> s.observe(torch.arange(4), torch.tensor([0.1, 3.0, 1.0, 0.5]))
    >>> s.probabilities().mul(15).round().tolist()  # ranks 0..3 by loss: 8, 4, 2, 1 out of 15
    [1.0, 8.0, 4.0, 2.0]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hardmine.core._sorting import descending_order
from hardmine.core.validate import integer, number, optional
from hardmine.feedback._epochs import mix
from hardmine.feedback._observing import Exclude, ObservingSampler, dataset_length

if TYPE_CHECKING:
    from hardmine.analysis.dynamics import Dynamics

__all__ = ["PrioritySampler"]

_REFRESHES_PER_EPOCH = 32


def _average_ties(weight: Tensor, sorted_keys: Tensor) -> None:
    """Give the ranks whose keys are equal the mean of their weights, in place (equal losses, equal probabilities).

    ``weight`` (float64) and ``sorted_keys`` (the ranked samples' keys in rank order) are CPU tensors. Only the ranks
    in a tie are touched, so the cost beyond one comparison of neighbours is that of the ties (a handful among 30,000
    float32 losses); numpy keeps the per-call overhead of those small steps low.

    >>> w = torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)
    >>> _average_ties(w, torch.tensor([3.0, 2.0, 2.0, 1.0])); w.tolist()
    [8.0, 3.0, 3.0, 1.0]
    """
    keys = sorted_keys.numpy()
    tied = keys[1:] == keys[:-1]  # rank r has rank r + 1's key
    if not tied.any():
        return
    shared = np.zeros(keys.size, dtype=bool)
    shared[:-1] |= tied
    shared[1:] |= tied
    members = np.flatnonzero(shared)  # the ranks that share their key with a neighbour, in order
    starts = np.ones(members.size, dtype=bool)
    starts[1:] = ~((members[1:] == members[:-1] + 1) & tied[members[:-1]])
    group = np.cumsum(starts) - 1
    w = weight.numpy()
    sums = np.bincount(group, weights=w[members])
    w[members] = (sums / np.bincount(group))[group]


class PrioritySampler(ObservingSampler):
    """Draws each sample by the rank of its latest training loss: the hardest ``pressure`` times as often as the last.

    See the module doc for the rules. Use it as a ``DataLoader``'s ``sampler=`` with a dataset whose batches carry
    their dataset indices (:func:`hardmine.with_indices`, or a dataset that returns them), train on the plain mean
    loss, and report the per-sample losses back with :meth:`observe`.

    Args:
        data_source: the dataset (only its length is used), or ``N`` itself.
        pressure: how many times likelier the largest-loss sample is drawn than the smallest-loss one, ``>= 1``
            (1 draws the kept samples uniformly); 1000 by default. Under label noise, with ``exclude``, 10; on a
            budget far past where training levels off (3x in the benchmark), 1 to 3.
        exclude: the fraction of the observed samples with the largest observed loss (lowest AUM with ``dynamics``)
            never drawn after the warm-up, in ``[0, 1)``; 0 (the default) excludes nothing; ``"auto"`` never draws
            an observed sample whose label the model finds less likely than chance (loss above
            ``log(num_classes)``; AUM below 0 with ``dynamics``), however many that is.
        draws: indices per epoch over all ranks, ``>= 1``; ``None`` (the default) draws ``N``. The warm-up epochs
            draw every sample once whatever this is; Lightning and the Hugging Face Trainer take every epoch's
            length from the first, so with them use ``warmup_epochs=0`` when ``draws`` is not ``N``.
        refresh: draws (on each rank) between two recomputations of the probabilities, ``>= 1``; ``None`` (the
            default) refreshes 32 times an epoch.
        warmup_epochs: epochs at the start that draw every sample once, shuffled, ``>= 0``.
        dynamics: rank the exclusion by the area under the margin of this :class:`Dynamics` (lowest first) instead
            of the observed loss. You update it yourself (``dynamics.update(idx, logits, y)``,
            ``dynamics.end_epoch()``).
        half_life: an observed loss decays halfway back to the mean of the observed losses every ``half_life``
            epochs since it was observed (``> 0``; 1 by default); ``None`` keeps it as it was.
        seed: the seed of the draws; epoch ``e`` on rank ``r`` draws from a stream of ``(seed, e, r)``.
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
        >>> sampler = hm.PrioritySampler(data, pressure=100.0)
        >>> loader = hm.with_indices(DataLoader(data, batch_size=10, sampler=sampler))
        >>> model = torch.nn.Linear(3, 2)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> for epoch in range(3):
        ...     sampler.set_epoch(epoch)
        ...     for idx, x, y in loader:
        ...         losses = F.cross_entropy(model(x), y, reduction="none")
        ...         opt.zero_grad(); losses.mean().backward(); opt.step()
        ...         sampler.observe(idx, losses)
        >>> len(sampler), round(float(sampler.probabilities().sum()), 6)
        (100, 1.0)
    """

    def __init__(
        self,
        data_source: Sized | int,
        *,
        pressure: float = 1000.0,
        exclude: Exclude = 0.0,
        draws: int | None = None,
        refresh: int | None = None,
        warmup_epochs: int = 1,
        dynamics: Dynamics | None = None,
        half_life: float | None = 1.0,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        n = dataset_length(data_source)
        self.pressure = number("pressure", pressure, min=1.0)
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
        self.draws = optional(integer, "draws", draws, min=1) or n
        self.refresh = optional(integer, "refresh", refresh, min=1)

    def __repr__(self) -> str:
        return (
            f"PrioritySampler(num_samples={self.num_samples}, pressure={self.pressure:g}, exclude={self.exclude!r}, "
            f"draws={self.draws}, epoch={self.epoch})"
        )

    # ------------------------------------------------------------------ the draw

    def warming_up(self, epoch: int | None = None) -> bool:
        """Whether epoch ``epoch`` (default: the current one) is a warm-up epoch (every sample once)."""
        return (self.epoch if epoch is None else epoch) < self.warmup_epochs

    def probabilities(self, epoch: int | None = None) -> Tensor:
        """Every sample's draw probability from the losses observed so far: float64 ``(N,)`` on the CPU, sum 1.

        Args:
            epoch: the epoch the ages of the losses are measured at (for ``half_life``); default: the current one.

        Returns:
            ``pressure ** (-r / (K - 1))`` normalised for the observed sample at loss rank ``r`` of the ``K`` kept
            ones, the rank-0 value for a never observed sample, 0 for an excluded one. If nothing is left to draw
            (every sample excluded), every sample equally.
        """
        n = self.num_samples
        now = self.epoch if epoch is None else integer("epoch", epoch, min=0)
        loss = self._losses(now)  # float32, NaN for a sample never observed
        seen = ~torch.isnan(loss)
        keys = torch.where(seen, loss.clamp_min(torch.finfo(torch.float32).min), float("-inf"))  # the seen first
        order = descending_order(keys)[: int(seen.sum())]
        fresh = ~seen  # a sample never observed: the largest weight, 1
        if self.excludes:
            excluded = self._excluded(loss.double(), order)  # an excluded one: 0
            ranked = order.numpy()  # the kept, still largest first (numpy's mask is 7x faster than torch's)
            order = torch.from_numpy(ranked[~excluded.numpy()[ranked]])
            fresh &= ~excluded  # an area under the margin may exclude a sample this sampler never observed
        k = len(order)
        p = fresh.to(torch.float64)
        if k:
            step = math.log(self.pressure) / max(k - 1, 1)
            weight = torch.exp(torch.arange(k, dtype=torch.float64).mul_(-step))
            _average_ties(weight, keys[order])
            p.index_copy_(0, order, weight)
        total = float(p.sum())
        if total <= 0.0:
            return torch.full((n,), 1.0 / n, dtype=torch.float64)
        return p / total

    def _chunk_size(self, share: int) -> int:
        if self.refresh is not None:
            return self.refresh
        return max(1, math.ceil(share / _REFRESHES_PER_EPOCH))

    def __iter__(self) -> Iterator[int]:
        self._next_pass()
        epoch = self.epoch
        reps, rank = self._replicas()
        self._warn_if_sharded_again(reps, sys._getframe(1))
        n = self.num_samples
        if self.warming_up(epoch):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(mix(self.seed, epoch)))
            yield from self._share(order).tolist()
        else:
            self.observed.merge_ranks()
            share = math.ceil(self.draws / reps)
            chunk = self._chunk_size(share)
            for c, start in enumerate(range(0, share, chunk)):
                cdf = torch.cumsum(self.probabilities(epoch), 0)
                g = torch.Generator().manual_seed(mix(self.seed, epoch, rank, c))
                u = torch.rand(min(chunk, share - start), generator=g, dtype=torch.float64) * cdf[-1]
                yield from torch.searchsorted(cdf, u, right=True).clamp_(max=n - 1).tolist()
        self._advance = True

    def __len__(self) -> int:
        """This rank's number of indices in the current epoch (after a finished pass, in the next one)."""
        reps, _ = self._replicas()
        epoch = self.epoch + 1 if self._advance else self.epoch
        return math.ceil((self.num_samples if self.warming_up(epoch) else self.draws) / reps)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Epoch, seed and the observed losses (ints, floats and CPU tensors only).

        Loads with ``torch.load(..., weights_only=True)``. A pass under way restarts its epoch after loading (the
        draws of an epoch follow the losses observed during it, so the position inside an epoch is not kept).
        """
        return {**self._common_state(), "draws": self.draws}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state.

        Raises:
            ValueError: a missing key, or a state saved for another number of samples.
        """
        self._load_common_state(state, ("draws",))
        self.draws = int(state["draws"])
