"""ShardedSampler: weighted draws for 10**9 samples where each rank draws only its own share.

:class:`hardmine.HardSampler` makes every rank generate the whole global draw and keep 12 bytes per sample;
at 10**9 samples that is minutes and 12 GB per rank. This sampler reads the weights from a memory-mapped array
(4 bytes per sample on disk, shared by the page cache) and draws in two levels:

1. The index range ``[0, N)`` is cut into shards of ``shard_size`` consecutive samples. At construction (and on
   :meth:`ShardedSampler.update`) one streamed pass sums each shard's weight, ``W_s``, in float64.
2. Epoch ``e``: every rank draws the same ``S`` per-shard counts ``c ~ Multinomial(M, W / sum(W))`` and the same
   random order of the shards from ``(seed, e)`` alone; ``M = len(sampler) * num_replicas`` (the epoch's draws,
   rounded up to a multiple of the ranks). Laid out shard after shard in that order, the ``M`` positions are cut
   into ``num_replicas`` equal consecutive slices; rank ``r`` takes slice ``r``. For each shard its slice touches, it
   reads that shard's weights and draws the overlap's count i.i.d. inside the shard (inverse CDF on the shard's
   float64 running sum) from a generator seeded by ``(seed, e, shard, r)``, then shuffles its share.

Why the union is the weighted draw: given the counts, the draws inside shard ``s`` are i.i.d. with
``P(i | s) = w_i / W_s``, however they are divided between ranks; and multinomial counts with i.i.d. draws inside
each shard are exactly ``M`` i.i.d. draws with ``P(i) = w_i / sum(w)`` (a draw picks its shard with probability
``W_s / sum(w)``, then its sample within). ``tests/test_sharded.py`` checks the union of all ranks' draws against the
weights with a chi-square test. Each rank touches about ``S / num_replicas + 1`` shards per epoch, and a fresh shard
order every epoch moves every rank across the whole dataset over epochs.

Memory per rank: the shard sums (8 bytes per shard), one shard's float64 running sum (``8 * shard_size`` bytes,
32 MB at the default ``2**22``), and this rank's share of the epoch (4 bytes per draw when ``N < 2**31``).
With replacement only: a draw without replacement or one that covers every sample needs a global order of all ``N``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler

from hardmine.core import distributed, validate
from hardmine.feedback._epochs import ResumableEpochs, mix

__all__ = ["ShardedSampler"]

PathLike = str | os.PathLike[str]
_YIELD_CHUNK = 1 << 16


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(mix(*key)))


def _as_array(weights: np.ndarray | Tensor | PathLike) -> tuple[np.ndarray, str | None]:
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"No such weights file: {str(path)!r}.")
        if path.suffix.lower() != ".npy":
            raise ValueError(f"Expected argument `weights` to be a .npy file, but got {str(path)!r}.")
        return np.load(path, mmap_mode="r"), str(path)
    if isinstance(weights, Tensor):
        if weights.device.type != "cpu":
            raise ValueError(f"Expected argument `weights` on the CPU, but it is on {weights.device}.")
        weights = weights.detach().numpy()
    if not isinstance(weights, np.ndarray):
        raise TypeError(
            f"Expected argument `weights` to be a numpy array (a memmap), a CPU tensor or a .npy path, but got "
            f"{type(weights).__name__}."
        )
    return weights, None


class ShardedSampler(ResumableEpochs, Sampler[int]):
    """Weighted sampling with replacement where each rank draws only its own share; see the module doc.

    Args:
        weights: ``(N,)`` non-negative finite weights in dataset-index order, not all zero: a ``.npy`` path (opened
            memory-mapped), a numpy array or memmap, or a CPU tensor. From
            :meth:`hardmine.ScoreDataset.weights` or ``np.save(path, hm.sample_weights(...).numpy())``.
        num_samples: global number of draws per epoch (all ranks together); default ``N``. Each rank yields
            ``ceil(num_samples / num_replicas)``.
        shard_size: samples per shard (the unit a rank reads), >= 1.
        seed: base seed; epoch ``e`` draws from ``(seed, e)``, the same global draw on every rank.
        num_replicas: number of ranks; read from ``torch.distributed`` when it is initialised, else 1.
        rank: this process's rank; read from ``torch.distributed`` when initialised, else 0.

    Raises:
        ValueError: weights that are not 1-D, empty, negative, NaN/infinite or all zero (naming the first bad
            sample), or bad ``num_samples``/``shard_size``/``rank``.
        TypeError: an unsupported ``weights`` type.

    Example:
        >>> w = np.array([1.0, 0.0, 1.0, 8.0, 2.0, 0.5], dtype=np.float32)
        >>> parts = [ShardedSampler(w, 12, shard_size=2, seed=0, num_replicas=3, rank=r) for r in range(3)]
        >>> [len(p) for p in parts]
        [4, 4, 4]
        >>> draws = sorted(i for p in parts for i in p)
        >>> len(draws), 1 in draws
        (12, False)
        >>> list(parts[0]) == parts[0].indices(1).tolist()   # the second pass is epoch 1
        True
    """

    def __init__(
        self,
        weights: np.ndarray | Tensor | PathLike,
        num_samples: int | None = None,
        *,
        shard_size: int = 1 << 22,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        seed = validate.integer("seed", seed)
        shard_size = validate.integer("shard_size", shard_size, min=1)
        world = distributed.get_world_size() if num_replicas is None else num_replicas
        num_replicas = validate.integer("num_replicas", world, min=1)
        rank = validate.integer("rank", distributed.get_rank() if rank is None else rank, min=0, max=num_replicas - 1)
        self.seed = seed
        self.weights: np.ndarray = np.empty(0, dtype=np.float32)
        self.weights_path: str | None = None
        self.shard_totals: np.ndarray = np.empty(0, dtype=np.float64)
        self.shard_size = shard_size
        self.num_replicas = num_replicas
        self.rank = rank
        self._start_epochs()
        self._set_weights(weights)
        n = len(self.weights)
        if num_samples is None:
            num_samples = n
        self.num_samples = validate.integer("num_samples", num_samples, min=1)

    # ------------------------------------------------------------------ weights

    def _set_weights(self, weights: np.ndarray | Tensor | PathLike) -> None:
        arr, path = _as_array(weights)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"Expected argument `weights` to have shape (N,) with N >= 1, but got {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"Expected argument `weights` to hold real numbers, but got dtype {arr.dtype}.")
        n, size = arr.size, self.shard_size
        totals = np.empty(math.ceil(n / size), dtype=np.float64)
        for s in range(len(totals)):  # one streamed pass: a shard at a time
            block = np.asarray(arr[s * size : (s + 1) * size], dtype=np.float64)
            bad = ~np.isfinite(block) | (block < 0)
            if bad.any():
                i = s * size + int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"Expected argument `weights` to be finite and non-negative, but sample {i} has weight {arr[i]}."
                )
            totals[s] = block.sum()
        if not (totals > 0).any():
            raise ValueError("Expected argument `weights` to have at least one positive weight, but all are zero.")
        if len(self.weights) and n != len(self.weights):
            raise ValueError(
                f"Expected argument `weights` to have {len(self.weights)} entries like the weights it replaces, but "
                f"got {n}."
            )
        self.weights = arr
        self.weights_path = path
        self.shard_totals = totals

    def update(self, weights: np.ndarray | Tensor | PathLike) -> None:
        """Replace the weights (same ``N``); they apply from the next pass. One streamed pass over them."""
        self._set_weights(weights)

    # ------------------------------------------------------------------ epochs and state

    def __len__(self) -> int:
        """This rank's draws per epoch, ``ceil(num_samples / num_replicas)``."""
        return math.ceil(self.num_samples / self.num_replicas)

    def state_dict(self) -> dict[str, Any]:
        """Where this rank stands, as plain ints and strings (loads with ``torch.load(weights_only=True)``).

        The weights themselves are not in the state (4 GB at 10**9); ``weights_path`` names their file when the
        sampler was built from one.
        """
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "yielded": self._yielded(),
            "num_samples": self.num_samples,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "shard_size": self.shard_size,
            "n": len(self.weights),
            "weights_path": self.weights_path,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state: the next pass yields exactly the rest of the saved epoch.

        Raises:
            ValueError: a missing key, or a state saved with another ``num_samples``, ``num_replicas``,
                ``shard_size`` or ``N``.
        """
        mine = {"num_samples": self.num_samples, "num_replicas": self.num_replicas, "shard_size": self.shard_size}
        self._check_state(state, "ShardedSampler", {**mine, "n": len(self.weights)})
        self._restore_position(state)

    # ------------------------------------------------------------------ drawing

    def shard_counts(self, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's global plan, the same on every rank: the shard order and each shard's number of draws.

        Returns:
            ``(order, counts)``: int64 arrays ``(S,)``; ``order`` is a permutation of the shards, ``counts[s]`` the
            draws from shard ``s`` (they sum to ``len(self) * num_replicas``).
        """
        e = self.epoch if epoch is None else epoch
        rng = _rng(self.seed, e, 0)
        total = len(self) * self.num_replicas
        p = self.shard_totals / self.shard_totals.sum()
        counts = _multinomial(rng, total, p)
        order = rng.permutation(len(p)).astype(np.int64)
        return order, counts

    def indices(self, epoch: int | None = None) -> Tensor:
        """This rank's draws of one epoch as an int64 tensor ``(len(self),)``, what iterating yields."""
        return torch.from_numpy(self._draw(self.epoch if epoch is None else epoch).astype(np.int64))

    def _draw(self, epoch: int) -> np.ndarray:
        order, counts = self.shard_counts(epoch)
        share = len(self)
        first, last = self.rank * share, (self.rank + 1) * share  # this rank's positions in the shard-ordered layout
        dtype = np.int32 if len(self.weights) < 2**31 else np.int64
        out = np.empty(share, dtype=dtype)
        pos = 0  # start of the current shard's positions
        filled = 0
        for s in order.tolist():
            c = int(counts[s])
            lo, hi = max(pos, first), min(pos + c, last)
            if hi > lo:
                k = hi - lo
                out[filled : filled + k] = self._draw_in_shard(s, k, _rng(self.seed, epoch, 1, s, self.rank))
                filled += k
            pos += c
            if pos >= last:
                break
        _rng(self.seed, epoch, 2, self.rank).shuffle(out)
        return out

    def _draw_in_shard(self, s: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` i.i.d. indices of shard ``s`` with ``P(i) = w_i / W_s``, sorted (inverse CDF, sorted uniforms)."""
        lo = s * self.shard_size
        cum = np.cumsum(np.asarray(self.weights[lo : lo + self.shard_size], dtype=np.float64))
        # Sorted uniforms: normalised running sums of k + 1 exponentials are the order statistics of k uniforms, so
        # one searchsorted pass walks the running sum in order.
        running = np.cumsum(rng.standard_exponential(k + 1))
        u = running[:-1] * (cum[-1] / running[-1])
        found = np.searchsorted(cum, u, side="right")
        last_positive = int(np.searchsorted(cum, cum[-1], side="left"))  # where a uniform rounding up to W_s lands
        np.minimum(found, last_positive, out=found)
        return found + lo

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, self._resume
        draws = self._draw(epoch)
        yield from self._yield_chunks(
            epoch, start, (draws[lo : lo + _YIELD_CHUNK] for lo in range(start, len(draws), _YIELD_CHUNK))
        )


def _multinomial(rng: np.random.Generator, total: int, p: np.ndarray) -> np.ndarray:
    """Multinomial counts by sequential binomials (exact for any ``total``, no float tolerance on ``sum(p)``)."""
    counts = np.zeros(len(p), dtype=np.int64)
    left, mass = total, 1.0
    for s in np.flatnonzero(p > 0).tolist():
        if left == 0:
            break
        q = min(1.0, p[s] / mass) if mass > 0 else 1.0
        c = int(rng.binomial(left, q))
        counts[s] = c
        left -= c
        mass -= p[s]
    if left:  # rounding left a few draws: they go to the last positive shard, which took q = 1 in exact arithmetic
        counts[int(np.flatnonzero(p > 0)[-1])] += left
    return counts
