"""HardSampler: a weighted sampler for hard-example mining, a drop-in for ``WeightedRandomSampler``.

Three modes draw ``num_samples`` dataset indices per epoch from per-sample weights ``(N,)``:

- ``"cover"`` (by name, ``mode="cover"``): every sample once, in random order, plus
  ``num_samples - N`` extra draws with replacement in proportion to the weights, mixed evenly through the epoch. Plain
  weighted sampling with replacement leaves about a third of the data unseen each epoch; this mode sees all of it and
  spends the extra draws on the hard ones.
- ``"replacement"`` (``replacement=True``, the default): ``num_samples`` independent draws, ``P(i) = w_i / sum(w)``,
  exactly as ``WeightedRandomSampler(replacement=True)``.
- ``"no_replacement"`` (``replacement=False``): ``num_samples`` distinct indices drawn one after another in proportion
  to the remaining weights, as ``WeightedRandomSampler(replacement=False)``, except that a zero-weight index is never
  returned (``torch.multinomial`` returns one once the positive weights run out; here that is an error up front).

How (and why it scales past ``torch.multinomial``'s 2**24 categories):

- With replacement (and for cover mode's extra draws) it keeps the float64 running sum of the weights, 8 bytes per
  sample, built once per :meth:`HardSampler.update`, and draws by inverse CDF: a chunk of uniforms is generated in
  sorted order (running sums of exponentials), located with one cache-friendly ``torch.searchsorted`` pass, and
  shuffled with a random permutation.
- Without replacement it sorts exponential keys ``log(E_i) - log(w_i)``, ``E_i ~ Exp(1)``, the Efraimidis-Spirakis
  method: the order of the keys is the order of successive weighted draws without replacement, and a zero weight
  gets the key ``+inf``.
- Draws are generated and yielded in chunks of :data:`CHUNK` positions, each chunk from its own ``torch.Generator``
  seeded from ``(seed, epoch, chunk)``; the global RNG is never touched, and a resumed epoch jumps straight to its
  chunk. Memory per epoch: a chunk of draws (with replacement), an int32 permutation of ``N`` (cover), or the sorted
  keys and their int64 order (without replacement, about 16 bytes per sample while sorting).

Distributed: the rank and world size are read from ``torch.distributed`` when each pass starts (unless given), so a
sampler built before ``init_process_group`` shards correctly; ``num_replicas=1`` leaves the sharding to a framework
that does it itself. Every rank generates the same global sequence of ``num_samples`` indices from ``seed + epoch``,
pads it to a multiple of ``num_replicas`` by wrapping around (as ``DistributedSampler`` pads), and takes the positions
``rank, rank + num_replicas, ...`` (a strided share, as ``DistributedSampler`` takes). The shares are disjoint, equally
long (``ceil(num_samples / num_replicas)``) and together are the padded global draw.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor
from torch.utils.data import Sampler

from hardmine.core import distributed, validate
from hardmine.core._tensors import real_tensor
from hardmine.feedback._epochs import (
    DoubleShardingWarning,
    ResumableEpochs,
    check_replicas,
    framework_sharding,
    mix,
)

__all__ = [
    "CHUNK",
    "DoubleShardingWarning",
    "HardSampler",
    "SamplerMode",
    "check_sampling_weights",
    "cumulative_weights",
    "framework_sharding",
]

SamplerMode = Literal["cover", "replacement", "no_replacement"]

#: Positions of the global draw generated per chunk; fixed, so the draw does not depend on how it is consumed.
CHUNK: int = 1 << 20

_CUMSUM_BLOCK = 1 << 22


def _generator(device: torch.device, *key: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(mix(*key))
    return g


def check_sampling_weights(weights: Tensor | Sequence[float], *, name: str = "weights") -> Tensor:
    """Validate sampling weights and return them as a 1-D floating point tensor (float64 unless already floating).

    Args:
        weights: ``(N,)`` tensor or sequence of non-negative, finite numbers, not all zero.
        name: the argument name used in error messages.

    Returns:
        Float tensor ``(N,)`` on the input's device (a tensor input keeps its floating dtype), detached. Weights
        whose largest times ``N`` is above ``2**1000`` (their running sum could overflow float64) or below
        ``2**-900`` come back in float64 multiplied by a power of two (exactly), so that their running sum keeps
        their ratios, which are all that matter. Only a reduction is added for the others: no copy.

    Raises:
        TypeError: not a tensor or sequence of numbers, or a complex/bool tensor.
        ValueError: not 1-D, empty, NaN or infinite, negative, or all zero; the message names the first bad samples.

    Example:
        >>> check_sampling_weights([1, 0, 2.5])
        tensor([1.0000, 0.0000, 2.5000], dtype=torch.float64)
    """
    weights = real_tensor(name, weights, "a 1-D tensor or sequence of numbers").detach()
    if not weights.is_floating_point():
        weights = weights.to(torch.float64)
    if weights.ndim != 1:
        raise ValueError(f"Expected argument `{name}` to have shape (N,), but got shape {tuple(weights.shape)}.")
    if weights.numel() == 0:
        raise ValueError(f"Expected argument `{name}` to hold at least one weight, but got an empty tensor.")
    if not bool(torch.isfinite(weights).all()):
        idx = (~torch.isfinite(weights)).nonzero()[:5, 0].tolist()
        raise ValueError(
            f"Expected argument `{name}` to be finite, but samples {idx} have weights {weights[idx].tolist()}."
        )
    if bool((weights < 0).any()):
        idx = (weights < 0).nonzero()[:5, 0].tolist()
        raise ValueError(
            f"Expected argument `{name}` to be non-negative, but samples {idx} have weights {weights[idx].tolist()}."
        )
    if not bool((weights > 0).any()):
        raise ValueError(f"Expected argument `{name}` to have at least one positive weight, but all are zero.")
    peak = float(weights.max())
    if peak * weights.numel() > 2.0**1000 or peak < 2.0**-900:  # the running sum would overflow or lose them
        shift = -math.frexp(peak)[1]  # by a power of two, in two halves (2.0**1064 is not a float): exact
        weights = weights.to(torch.float64) * 2.0 ** (shift // 2) * 2.0 ** (shift - shift // 2)
    return weights


def cumulative_weights(weights: Tensor) -> Tensor:
    """Inclusive running sum of ``weights`` in float64, the table that with-replacement draws search.

    Index ``i`` owns the interval ``[c[i-1], c[i])`` of ``[0, c[-1])``; a zero weight owns an empty interval and is
    never drawn. float64 keeps the intervals of 10**8 samples apart (float32 cannot: its 24-bit mantissa would merge
    them, the same reason ``torch.multinomial`` stops at 2**24 categories).

    Args:
        weights: float tensor ``(N,)``, non-negative, finite, not all zero (see :func:`check_sampling_weights`).

    Returns:
        float64 tensor ``(N,)`` on ``weights.device``: 8 bytes per sample.

    Example:
        >>> cumulative_weights(torch.tensor([1.0, 0.0, 3.0]))
        tensor([1., 1., 4.], dtype=torch.float64)
    """
    # Block by block, so that no float64 copy of all the weights exists beside the result.
    n = weights.numel()
    out = torch.empty(n, dtype=torch.float64, device=weights.device)
    carry = torch.zeros((), dtype=torch.float64, device=weights.device)
    for lo in range(0, n, _CUMSUM_BLOCK):
        hi = min(lo + _CUMSUM_BLOCK, n)
        block = out[lo:hi]
        torch.cumsum(weights[lo:hi].to(torch.float64), 0, out=block)
        block += carry
        carry = block[-1].clone()
    return out


def _draw(cum: Tensor, last: int, count: int, generator: torch.Generator, *, shuffle: bool = True) -> Tensor:
    """``count`` i.i.d. indices with ``P(i) = w_i / sum(w)``, int64 on ``cum``'s device, in random order.

    Inverse CDF without random probes: the ``count`` uniforms are generated already sorted (normalised running sums
    of ``count + 1`` standard exponentials are distributed exactly as the order statistics of ``count`` uniforms), so
    one ``searchsorted`` pass walks ``cum`` in order, several times faster than random probes into a table that does
    not fit in cache; a random permutation then gives the i.i.d. order (``shuffle=False`` leaves them sorted, for a
    caller that shuffles anyway). ``last`` is the last index with a positive weight (where a uniform that rounds up
    to ``sum(w)`` lands).
    """
    device = cum.device
    spacings = torch.empty(count + 1, dtype=torch.float64, device=device).exponential_(generator=generator)
    running = torch.cumsum(spacings, 0)
    u_sorted = running[:-1].mul_(cum[-1] / running[-1])
    found = torch.searchsorted(cum, u_sorted, right=True).clamp_(max=last)
    if not shuffle:
        return found
    return found[torch.randperm(count, generator=generator, device=device)]


class HardSampler(ResumableEpochs, Sampler[int]):
    """Weighted sampler over dataset indices that covers every sample, scales past 2**24 and shards across ranks.

    A drop-in for ``torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement=True, generator=None)``:
    the same positional arguments with the same meaning, so ``HardSampler(w, 100)`` draws 100 indices with
    replacement in proportion to ``w``, exactly as ``WeightedRandomSampler(w, 100)`` does. Pass it to a ``DataLoader``
    as ``sampler=`` (or to :func:`hardmine.wrap`). The coverage mode (every sample once plus weighted extra
    draws) is chosen by name, ``mode="cover"``.

    Args:
        weights: ``(N,)`` non-negative finite weights in dataset-index order, not all zero (for example from
            :func:`hardmine.sample_weights`); a tensor or a sequence of numbers. Only ratios matter.
        num_samples: global number of draws per epoch (all ranks together). Defaults to ``N`` (one epoch of the
            dataset, as a shuffled loader has) with and without replacement (without replacement at most the
            number of positive weights); in cover mode to ``2 * N`` (every sample once plus ``N`` weighted draws: at
            ``N`` cover mode would be a plain permutation). Cover mode needs ``num_samples >= N``. Fixed for the
            sampler's life, so ``len(sampler)`` stays constant when the weights change.
        replacement: ``True`` (default) for independent draws, ``False`` for distinct indices, as in
            ``WeightedRandomSampler``. Ignored when ``mode`` names the mode (``False`` with another mode is an error).
            ``None`` is deprecated (it used to select cover mode): pass ``mode="cover"``.
        generator: a ``torch.Generator``, as ``WeightedRandomSampler`` takes: the sampler's ``seed`` is drawn from it
            once, at construction. Not together with ``seed``.
        mode: ``"replacement"``, ``"no_replacement"`` or ``"cover"``; defaults to the one ``replacement`` names.
        seed: base seed (default 0); epoch ``e`` draws from ``(seed, e)`` alone, so every rank draws the same global
            sequence.
        num_replicas: number of ranks sharing the draw. ``None`` (default): the world size of ``torch.distributed``,
            read when each pass starts (so a sampler built before ``init_process_group`` shards correctly); 1
            without torch.distributed. Pass ``num_replicas=1`` when a framework shards the indices itself (Lightning's
            ``use_distributed_sampler``, accelerate in the Hugging Face Trainer): every rank then yields the whole
            global draw, the same on every rank, for the framework to split.
        rank: this process's rank in ``[0, num_replicas)``; ``None`` (default): read from ``torch.distributed`` when
            each pass starts (0 with ``num_replicas=1``).

    ``len(sampler)`` is this rank's share, ``ceil(num_samples / num_replicas)``. Call :meth:`set_epoch` before each
    epoch for a new reproducible draw (as with ``DistributedSampler``); without it, each *completed* pass moves on to
    the next epoch by itself, so consecutive passes differ as ``WeightedRandomSampler``'s do, while a pass that was
    abandoned early (a peek at the first batch) leaves the epoch where it was. When the sampler finds itself iterated
    by a framework's distributed wrapper (Lightning's ``DistributedSamplerWrapper``, accelerate's
    ``BatchSamplerShard``) while it shards too, it warns (:class:`DoubleShardingWarning`): each rank would get only
    ``1 / world_size**2`` of the draw.

    Example:
        >>> w = torch.tensor([1.0, 0.0, 1.0, 8.0])
        >>> s = HardSampler(w, 6, seed=0)          # as WeightedRandomSampler(w, 6): 6 draws with replacement
        >>> len(s), 1 in set(s)                    # a zero weight is never drawn
        (6, False)
        >>> c = HardSampler(w, 6, mode="cover", seed=0)
        >>> sorted(set(c)) == [0, 1, 2, 3]         # cover mode: every sample at least once
        True
        >>> c.set_epoch(3); list(c) == list(c.indices(3).tolist())
        True
        >>> HardSampler([1.0, 0.0, 1.0, 8.0], replacement=False).indices(0).sort().values.tolist()
        [0, 2, 3]
    """

    def __init__(
        self,
        weights: Tensor | Sequence[float],
        num_samples: int | None = None,
        replacement: bool | None = True,
        generator: torch.Generator | None = None,
        *,
        mode: SamplerMode | None = None,
        seed: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.mode: SamplerMode = _resolve_mode(replacement, mode)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"`generator` must be a torch.Generator or None, got {type(generator).__name__}")
        if generator is not None and seed is not None:
            raise ValueError("Expected one of `generator` and `seed`, but got both.")
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        self.seed = validate.integer("seed", 0 if seed is None else seed)
        self._num_replicas_arg, self._rank_arg = check_replicas(num_replicas, rank)
        self._double_warned = False
        w = check_sampling_weights(weights)
        n = w.numel()
        if num_samples is None:
            num_samples = {"cover": 2 * n, "replacement": n, "no_replacement": min(n, int((w > 0).sum()))}[self.mode]
        num_samples = validate.integer("num_samples", num_samples, min=1)
        if self.mode == "cover" and num_samples < n:
            raise ValueError(
                f"Expected argument `num_samples` to be at least the number of samples N={n} in cover mode (every "
                f"sample once plus weighted extra draws), but got {num_samples}. Use replacement=True or False for "
                "shorter epochs."
            )
        self.num_samples = num_samples
        self._start_epochs()
        self._set_weights(w)

    # ------------------------------------------------------------------ ranks

    @property
    def num_replicas(self) -> int:
        """Ranks sharing the draw: the ``num_replicas`` given, else torch.distributed's world size now."""
        if self._num_replicas_arg is not None:
            return self._num_replicas_arg
        return distributed.get_world_size()

    @property
    def rank(self) -> int:
        """This process's share of the draw: the ``rank`` given, else torch.distributed's rank now (0 of 1)."""
        if self._rank_arg is not None:
            return self._rank_arg
        return 0 if self.num_replicas == 1 else distributed.get_rank()

    def _replicas_now(self) -> tuple[int, int]:
        """``(num_replicas, rank)`` for a pass starting now, checked against each other."""
        reps, rank = self.num_replicas, self.rank
        if not 0 <= rank < reps:
            raise ValueError(
                f"HardSampler: rank {rank} is not in [0, num_replicas={reps}); pass matching `num_replicas` and "
                "`rank`, or leave both to torch.distributed."
            )
        return reps, rank

    # ------------------------------------------------------------------ weights

    def _set_weights(self, w: Tensor) -> None:
        n = w.numel()
        positive = int((w > 0).sum())
        if self.mode == "no_replacement" and self.num_samples > positive:
            raise ValueError(
                f"Expected at most as many draws without replacement as positive weights, but `num_samples` is "
                f"{self.num_samples} and only {positive} of {n} weights are positive."
            )
        self.weights = w
        # Without replacement the sampler sorts fresh keys every epoch and keeps no table.
        self._cum = torch.empty(0, dtype=torch.float64) if self.mode == "no_replacement" else cumulative_weights(w)

    def update(self, weights: Tensor | Sequence[float]) -> None:
        """Replace the weights (same length ``N``); they apply from the next pass, ``len(self)`` does not change.

        A pass already under way keeps the weights it started with.

        Raises:
            ValueError: a different length than before, NaN, infinite, negative or all-zero weights, or (without
                replacement) fewer positive weights than ``num_samples``.
        """
        w = check_sampling_weights(weights)
        if w.numel() != self.weights.numel():
            raise ValueError(
                f"Expected argument `weights` to have {self.weights.numel()} entries like the weights it replaces, "
                f"but got {w.numel()}."
            )
        self._set_weights(w)

    # ------------------------------------------------------------------ epochs and state

    def __len__(self) -> int:
        """This rank's number of indices per epoch, ``ceil(num_samples / num_replicas)``."""
        return math.ceil(self.num_samples / self.num_replicas)

    def state_dict(self) -> dict[str, Any]:
        """Where this rank stands: epoch, seed, indices yielded so far in the epoch, settings and weights.

        ``yielded`` counts indices handed out by the pass in progress (a ``DataLoader`` with workers prefetches a
        few batches ahead of training; save the state the way your loader accounts for that).
        """
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "yielded": self._yielded(),
            "num_samples": self.num_samples,
            "mode": self.mode,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "weights": self.weights.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state: the next pass yields exactly the rest of the saved epoch.

        Raises:
            ValueError: a missing key, or a state saved with another ``num_samples``, mode or number of ranks.
        """
        mine = {"num_samples": self.num_samples, "mode": self.mode, "num_replicas": self.num_replicas}
        self._check_state(state, "HardSampler", mine)
        if "weights" in state:
            self.update(state["weights"])
        self._restore_position(state)

    # ------------------------------------------------------------------ drawing

    def indices(self, epoch: int | None = None) -> Tensor:
        """This rank's whole epoch as one int64 tensor ``(len(self),)``: what iterating yields, without Python ints.

        Args:
            epoch: the epoch to draw; defaults to the current one (:attr:`epoch`).
        """
        e = self.epoch if epoch is None else validate.integer("epoch", epoch, min=0)
        out = torch.empty(len(self), dtype=torch.int64, device=self.weights.device)
        pos = 0
        reps, rank = self._replicas_now()
        for chunk in self._rank_chunks(e, 0, self._tables(), reps, rank):
            out[pos : pos + chunk.numel()] = chunk
            pos += chunk.numel()
        return out

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, self._resume
        reps, rank = self._replicas_now()
        if reps > 1 and not self._double_warned:
            framework = framework_sharding(sys._getframe(1))
            if framework is not None:
                self._double_warned = True
                warnings.warn(
                    f"HardSampler shards its draw over {reps} ranks and is iterated by {framework}, which shards "
                    f"the indices again: each rank gets about 1/{reps * reps} of the epoch instead of 1/{reps}. Build "
                    "it with num_replicas=1 (the framework then splits the one global draw), or let hardmine shard "
                    "(Lightning: Trainer(use_distributed_sampler=False)).",
                    DoubleShardingWarning,
                    stacklevel=2,
                )
        yield from self._yield_chunks(epoch, start, self._rank_chunks(epoch, start, self._tables(), reps, rank))

    def _tables(self) -> tuple[Tensor, Tensor]:
        return self.weights, self._cum

    def _rank_chunks(
        self, epoch: int, start: int, tables: tuple[Tensor, Tensor], reps: int, r: int
    ) -> Iterator[Tensor]:
        """Rank ``r``'s indices from local position ``start`` to the end of the epoch, in chunks (int64 tensors)."""
        m = self.num_samples
        total = math.ceil(m / reps)
        if start >= total:
            return
        plan = _EpochPlan(self.mode, tables, m, self.seed, epoch)
        first = r + reps * start  # global padded position of local `start`
        pos = first
        while pos < m:  # positions inside the real draw
            k = pos // CHUNK
            lo = k * CHUNK
            chunk = plan.chunk(k)
            yield chunk[pos - lo :: reps]
            count = (lo + chunk.numel() - pos + reps - 1) // reps
            pos += count * reps
        last = r + reps * (total - 1)
        if pos <= last:  # padding: wrap around to the start of the draw, as DistributedSampler pads
            padded = torch.arange(pos, last + 1, reps, device=self.weights.device) % m
            yield plan.gather(padded)

    def __repr__(self) -> str:
        """What the sampler draws: per-epoch draws of ``N``, mode, weight range, epoch, seed and rank.

        Example:
            >>> HardSampler(torch.tensor([1.0, 0.0, 1.0, 8.0]), 6, seed=3)  # doctest: +NORMALIZE_WHITESPACE
            HardSampler(num_samples=6 per epoch of N=4, mode='replacement', replacement=True, weights in [0, 8]
            (1 of 4 zero, max/min positive 8), epoch=0, seed=3, rank 0 of 1)
        """
        w = self.weights
        positive = w[w > 0]
        zeros = w.numel() - positive.numel()
        low, high = float(w.min()), float(w.max())
        ratio = high / float(positive.min())
        try:
            ranks = f"rank {self.rank} of {self.num_replicas}"
        except (RuntimeError, ValueError):  # torch.distributed half set up: say what was asked for
            ranks = f"rank {self._rank_arg} of {self._num_replicas_arg}"
        return (
            f"HardSampler(num_samples={self.num_samples} per epoch of N={w.numel()}, mode={self.mode!r}, "
            f"replacement={self.mode != 'no_replacement'}, weights in [{low:.4g}, {high:.4g}] "
            f"({zeros} of {w.numel()} zero, max/min positive {ratio:.4g}), epoch={self.epoch}, seed={self.seed}, "
            f"{ranks})"
        )


class _EpochPlan:
    """The global draw of one epoch, chunk by chunk; chunk ``k`` is positions ``[k * CHUNK, (k + 1) * CHUNK)``."""

    def __init__(
        self,
        mode: str,
        tables: tuple[Tensor, Tensor],
        num_samples: int,
        seed: int,
        epoch: int,
    ) -> None:
        self.mode = mode
        self.weights, self.cum = tables
        self.num_samples = num_samples
        self.seed, self.epoch = seed, epoch
        self.device = self.weights.device
        self.n = self.weights.numel()
        # The last positive weight: the first index whose running sum reaches the total.
        self.last = int(torch.searchsorted(self.cum, self.cum[-1:])[0]) if mode != "no_replacement" else 0
        self._order = torch.empty(0, dtype=torch.int64, device=self.device)
        if mode == "no_replacement":
            g = _generator(self.device, seed, epoch, 1)
            e = torch.empty(self.n, dtype=torch.float32, device=self.device).exponential_(generator=g)
            keys = e.log_().sub_(self.weights.log().to(torch.float32))  # log first: tiny float64 weights stay > 0
            self._order = torch.sort(keys, stable=True).indices[:num_samples]
        elif mode == "cover":
            g = _generator(self.device, seed, epoch, 2)
            dtype = torch.int32 if self.n < 2**31 else torch.int64
            self._order = torch.randperm(self.n, generator=g, dtype=dtype, device=self.device)

    def chunk(self, k: int) -> Tensor:
        lo = k * CHUNK
        hi = min(lo + CHUNK, self.num_samples)
        if self.mode == "no_replacement":
            return self._order[lo:hi]
        g = _generator(self.device, self.seed, self.epoch, 3, k)
        if self.mode == "replacement":
            return _draw(self.cum, self.last, hi - lo, g)
        # Cover: the first floor(p * N / num_samples) positions' worth of the permutation is spread evenly, so every
        # chunk mixes cover and extra draws in the same proportion; each chunk is shuffled on its own.
        c_lo = lo * self.n // self.num_samples
        c_hi = hi * self.n // self.num_samples
        extra = (hi - lo) - (c_hi - c_lo)
        mixed = torch.cat([self._order[c_lo:c_hi].long(), _draw(self.cum, self.last, extra, g, shuffle=False)])
        return mixed[torch.randperm(hi - lo, generator=g, device=self.device)]

    def gather(self, positions: Tensor) -> Tensor:
        """Indices at global positions ``positions`` (int64, ascending), from the chunks that hold them."""
        ks = positions // CHUNK
        out = torch.empty_like(positions)
        for k in torch.unique(ks).tolist():
            sel = ks == k
            out[sel] = self.chunk(k)[positions[sel] - k * CHUNK]
        return out


def _resolve_mode(replacement: bool | None, mode: str | None) -> SamplerMode:
    """The mode from ``WeightedRandomSampler``'s ``replacement`` (default ``True``) and the by-name ``mode``."""
    validate.optional(validate.boolean, "replacement", replacement)
    validate.optional(validate.choice, "mode", mode, options=get_args(SamplerMode))
    if replacement is None:
        warnings.warn(
            "HardSampler(replacement=None) is deprecated: it selected the cover mode, which is now chosen by name "
            "with mode='cover' (replacement defaults to True, as in WeightedRandomSampler).",
            DeprecationWarning,
            stacklevel=3,
        )
        return mode or "cover"  # type: ignore[return-value]
    if mode is None:
        return "replacement" if replacement else "no_replacement"
    if replacement is False and mode != "no_replacement":
        raise ValueError(
            f"Expected argument `replacement=False` to agree with `mode={mode!r}`; give one of them, or "
            "mode='no_replacement'."
        )
    return mode  # type: ignore[return-value]


def _check_replicas(num_replicas: int | None, rank: int | None) -> None:
    """The miner's check of its ``num_replicas`` and ``rank`` (:func:`hardmine.feedback._epochs.check_replicas`)."""
    check_replicas(num_replicas, rank)
