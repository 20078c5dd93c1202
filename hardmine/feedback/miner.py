"""HardMiner: wrap a model and its DataLoader, re-score on a schedule, and yield batches that favour the hard samples.

The miner only holds settings and state; the work is done by the pure parts below it: :func:`hardmine.score`
(the inference pass), :func:`hardmine.split` (positive/negative, easy/hard), :func:`hardmine.weights`
(per-sample weights) and :class:`hardmine.HardSampler` (the draw). It works with a plain training loop::

    miner = HardMiner(model, train_loader, threshold=0.7, hard_weight=4.0, rescore_every=2)
    for epoch in range(20):
        for x, y in miner:          # epoch 0 warms up; re-scored at the start of epochs 1, 3, 5, ...
            ...                     # your own training step
    miner.table                     # the latest scored and split table; miner.history: one row per re-score

Each pass over the miner is one epoch. At its start the miner decides the phase of that epoch: ``"warmup"`` (the
first ``warmup_epochs`` epochs, uniform), ``"mine"``, or ``"uniform"`` (from epoch ``uniform_after`` on); in a mining
epoch it re-scores the dataset when the schedule says so, then sets the weights.

How hardness is applied (``apply``):

- ``"sample"`` (default): hard samples are drawn more often; the loss is the user's own, unweighted.
- ``"loss"``: samples are drawn uniformly (every sample once per epoch) and every batch carries per-sample loss
  weights, ``hard_weight`` for hard samples and ``easy_weight`` for easy ones, scaled to a dataset mean of 1.
- ``"sample+correct"``: hard samples are drawn more often *and* every batch carries importance weights
  ``1 / (N p_i)`` (``p_i`` the probability of drawing sample ``i``), so that the weighted loss is an unbiased estimate
  of the plain mean loss over the dataset: the hard samples are seen more often, the gradient is not biased towards
  them.

The weights are :func:`hardmine.weights` of the split table. By default (``balance="label"``) they first give every
class the same share of the total weight, as a class-balanced sampler does, and then, inside each class, give a hard
sample ``hard_weight / easy_weight`` (4) times an easy one's weight; ``balance=None`` leaves the classes' shares to the
hardness alone.

So one bias at a time: either the draw or the loss, never both. In the two weighted modes a batch ``(x, y)`` comes as
``(x, y, w)`` (a dict batch gets a ``"weight"`` key), ``w`` a float32 tensor ``(B,)`` on the CPU; feed it to
:func:`hardmine.weighted_loss`. Uniform epochs (warm-up, the return to uniform) carry weights of 1, so every
batch keeps the same structure.

Training dynamics and label issues: a sample the model keeps getting wrong is either genuinely hard or mislabelled,
and drawing a mislabelled one more often teaches the wrong label. Pass a :class:`hardmine.Dynamics` that your
loop fills (``indices=True`` yields each batch's dataset indices first) to mine by a dynamics column
(``by="aum"``, ``"mean_label_prob"``, ``"variability"``, ``"correctness"``, ``"forgetting"``), and pass
``exclude_label_issues`` to keep suspected label issues (area under the margin below 0, or confident learning on the
scored probabilities, or your own set) out of the up-weighting: they get the easy weight, never more, and never zero.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from hardmine.analysis.dynamics import HARDNESS_COLUMNS, Dynamics, add_dynamics
from hardmine.analysis.labels import issue_indices, label_issues
from hardmine.analysis.splitting import default_by, split
from hardmine.core._state import frame_from_state, frame_to_state, plain
from hardmine.core.columns import GROUPS, prob_columns
from hardmine.core.data import _check_map_style, _IndexedCollate, _IndexedDataset, dataset_ids, rebuild_loader
from hardmine.core.distributed import get_world_size
from hardmine.feedback.online import ObservedScores
from hardmine.feedback.sampling import HardSampler, SamplerMode, _check_replicas
from hardmine.feedback.weighting import Balance, HardSetCollapseWarning, _check_balance
from hardmine.feedback.weighting import weights as sample_weights
from hardmine.scoring.engine import score

__all__ = [
    "APPLY_MODES",
    "EXCLUDE_METHODS",
    "Apply",
    "HardMiner",
    "MinerSampler",
    "ShareBatchSampler",
    "importance_weights",
]

Apply = Literal["sample", "loss", "sample+correct"]
APPLY_MODES: tuple[str, ...] = ("sample", "loss", "sample+correct")
Phase = Literal["warmup", "mine", "uniform"]
#: The built-in ways :class:`HardMiner` finds suspected label issues (``exclude_label_issues=``).
EXCLUDE_METHODS: tuple[str, ...] = ("aum", "confident_learning")
ExcludeArg = (
    bool
    | Literal["aum", "confident_learning"]
    | Callable[[pd.DataFrame], Any]
    | Sequence[int]
    | AbstractSet[int]
    | np.ndarray
    | Tensor
)
# Dynamics columns that hm.split has no default threshold for.
_NO_DEFAULT_THRESHOLD = ("variability", "correctness", "forgetting")


def importance_weights(
    weights: Tensor, *, expected_draws: Tensor | None = None, num_draws: int | None = None
) -> Tensor:
    """Loss weights that undo a weighted draw: ``1 / (N p_i)`` with ``p_i = w_i / sum(w)``.

    With i.i.d. draws of probability ``p_i``, ``E[1 / (N p_i) * loss_i] = mean(loss)``: the weighted mean loss of a
    batch is an unbiased estimate of the plain mean loss over the ``N`` samples. For a draw that is not i.i.d. (every
    sample once plus weighted extra draws, or batches with guaranteed shares), pass ``expected_draws``, the expected
    number of times each sample is drawn per epoch, and ``num_draws``, the draws per epoch: the weights are then
    ``num_draws / (N * expected_draws_i)``, which is ``1 / (N p_i)`` for i.i.d. draws
    (``expected_draws = num_draws * p``).

    Args:
        weights: float tensor ``(N,)`` of sampling weights, non-negative, not all zero.
        expected_draws: float tensor ``(N,)``, optional.
        num_draws: int, required with ``expected_draws``.

    Returns:
        Float tensor ``(N,)`` (float64); zero where a sample is never drawn (it never needs a weight).

    Example:
        >>> importance_weights(torch.tensor([1.0, 1.0, 2.0]))
        tensor([1.3333, 1.3333, 0.6667], dtype=torch.float64)
    """
    w = weights.to(torch.float64)
    n = w.numel()
    if expected_draws is None:
        p = w / w.sum()
        return torch.where(p > 0, 1.0 / (n * p.clamp_min(torch.finfo(torch.float64).tiny)), 0.0)
    if num_draws is None:
        raise ValueError("Expected argument `num_draws` together with `expected_draws`, but got None.")
    c = expected_draws.to(torch.float64)
    return torch.where(c > 0, num_draws / (n * c.clamp_min(torch.finfo(torch.float64).tiny)), 0.0)


class ShareBatchSampler(Sampler[list[int]]):
    """Batches with a guaranteed share of positive and of hard samples, as detection pipelines keep 1:3 positives.

    Every batch of ``batch_size`` indices holds ``ceil(positive_share * batch_size)`` draws from the positive samples,
    ``ceil(hard_share * batch_size)`` draws from the hard samples, and the rest from all samples; within each part
    the draws are independent and in proportion to ``weights`` (with replacement, so a rare positive may appear twice
    in one batch). A part whose mask is empty (no hard samples left) gives its slots to the rest. The batch is then
    shuffled. With no masks the sampler yields plain uniform batches: a fresh permutation, every sample once.

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
        for name, value in (("batch_size", batch_size), ("num_batches", num_batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected argument `{name}` to be an int >= 1, but got {value!r}.")
        _check_share("positive_share", positive_share)
        _check_share("hard_share", hard_share)
        if positive_share + hard_share > 1:
            raise ValueError(f"Expected `positive_share + hard_share` <= 1, but got {positive_share} + {hard_share}.")
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.positive_share = float(positive_share)
        self.hard_share = float(hard_share)
        self.seed = seed
        self.epoch = 0
        self.update(weights, positive=positive, hard=hard)

    def update(self, weights: Tensor, *, positive: Tensor | None = None, hard: Tensor | None = None) -> None:
        """New weights and masks; they apply from the next pass."""
        w = weights.to(torch.float64).reshape(-1)
        if w.numel() == 0 or bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or not bool((w > 0).any()):
            raise ValueError("Expected argument `weights` to be finite, non-negative and not all zero.")
        for name, mask in (("positive", positive), ("hard", hard)):
            if mask is not None and (mask.dtype != torch.bool or mask.shape != w.shape):
                raise ValueError(
                    f"Expected argument `{name}` to be a bool tensor of shape {tuple(w.shape)}, but got "
                    f"{mask.dtype} {tuple(mask.shape)}."
                )
        self.weights = w
        self.positive = positive
        self.hard = hard

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch`` on the next pass."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

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
            k = min(b - used, math.ceil(share * b))
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


def _check_share(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"Expected argument `{name}` to be a float in [0, 1] or None, but got {value!r}.")


def _check_indices(value: Any, n: int, name: str) -> np.ndarray:
    """Sorted unique int64 dataset indices from a list, tuple, set, range, array, tensor or pandas Index/Series."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple, range, pd.Index, pd.Series)) else None
    if isinstance(value, (set, frozenset)):
        arr = np.asarray(sorted(value))
    if arr is not None and arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr is None or arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        shown = f"dtype {arr.dtype} and shape {arr.shape}" if arr is not None else type(value).__name__
        raise TypeError(
            f"Expected `{name}` to be dataset indices (a 1-D sequence, array or tensor of ints), but got {shown}."
        )
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(f"Expected `{name}` to hold dataset indices in [0, {n}), but got {arr[bad][:10].tolist()}.")
    return np.unique(arr.astype(np.int64))


def _exclude_setting(value: Any, dynamics: Dynamics | None, n: int) -> tuple[str | None, np.ndarray | None]:
    """``(method, fixed indices)`` of ``exclude_label_issues``.

    The method is ``None`` (off), one of :data:`EXCLUDE_METHODS`, ``"custom"`` (a callable) or ``"fixed"`` (an index
    set).
    """
    if value is None or value is False:
        return None, None
    if value is True:
        return ("aum" if dynamics is not None else "confident_learning"), None
    if isinstance(value, str):
        if value not in EXCLUDE_METHODS:
            raise ValueError(
                f"Expected argument `exclude_label_issues` to be a bool, one of {EXCLUDE_METHODS}, a "
                f"callable or dataset indices, but got {value!r}."
            )
        if value == "aum" and dynamics is None:
            raise ValueError(
                "Expected argument `dynamics` with exclude_label_issues='aum' (the area under the margin "
                "is recorded over epochs), but got None."
            )
        return value, None
    if callable(value):
        return "custom", None
    return "fixed", _check_indices(value, n, "exclude_label_issues")


def _as_easy(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a split table with its ``suspect`` rows relabelled easy (difficulty and group), for the weights."""
    out = table.copy()
    rows = out["suspect"].to_numpy(dtype=bool)
    out.loc[rows, "difficulty"] = "easy"
    if "polarity" in out.columns:
        pos = (out["polarity"] == "positive").to_numpy(dtype=bool)
        out.loc[rows & pos, "group"] = "easy_positive"
        out.loc[rows & ~pos, "group"] = "easy_negative"
    return out


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


def _check_score_loader(score_loader: Any, loader: DataLoader) -> None:
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


class HardMiner:
    """Yields training batches that favour the hard samples, re-scoring the dataset on a schedule.

    Iterate it once per epoch in place of the DataLoader. Every iteration is one epoch: the miner scores the whole
    dataset with the model (when the schedule says so), splits it into easy/hard and positive/negative, turns that into
    per-sample weights, and yields batches from the user's loader rebuilt with a weighted sampler (same dataset,
    batch size, collate_fn, workers; see :func:`hardmine.wrap`). The scoring pass leaves the model exactly as it
    was (training flags, parameters, BatchNorm statistics). Nothing to subclass.

    Args:
        model: the model being trained; scored in eval mode under ``torch.inference_mode``, then restored.
        loader: the training DataLoader over a map-style dataset, built with ``batch_size``.
        threshold: the hardness threshold on ``by`` (see :func:`hardmine.split`); ``None`` for its default
            (0.5 for ``label_prob``), or ``"per_class"``.
        by: the score that decides hardness: ``"label_prob"``, ``"confidence"``, ``"margin"``, ``"loss"``,
            ``"entropy"``, ``"abs_error"``; ``None`` (default) for the task's column (:func:`hardmine.split`:
            ``label_prob`` for classification, ``loss`` for regression and any ``loss_fn`` table); or, with
            ``dynamics``, a training-dynamics column of :data:`hardmine.analysis.dynamics.HARDNESS_COLUMNS`: ``"aum"``
            (default threshold 0), ``"mean_label_prob"`` (default 0.5), ``"correctness"`` (lower is harder),
            ``"variability"``, ``"forgetting"`` (higher is harder; these three need ``threshold`` or
            ``hard_fraction``). Until every sample has been seen in at least one
            recorded epoch (``dynamics.summary()["epochs"] >= 1``), a dynamics ``by`` falls back to ``"label_prob"``
            of the current scores, with its default threshold 0.5 (``hard_fraction`` and ``"per_class"`` are kept);
            ``history["by"]`` says which column each scoring used.
        hard_fraction: call the hardest fraction of samples hard instead of using a threshold.
        positive: the class (or classes) of interest. Defaults to 1 for binary labels; a multi-class task without
            ``positive`` (and an unlabeled, regression or multi-label one) is split easy/hard only, as
            :func:`hardmine.split` does: no ``polarity``/``group`` columns, and ``positive_share`` has no positives.
        dynamics: a :class:`hardmine.Dynamics` over the ``N`` samples that your training loop fills:
            ``dynamics.update(idx, logits, y)`` per batch (``indices=True`` yields ``idx``) and
            ``dynamics.end_epoch()`` after each pass. The miner only reads it at every scoring: its columns (``aum``,
            ``mean_label_prob``, ``variability``, ``correctness``, ``forgetting``) join :attr:`table` once it has an
            epoch. The miner's :meth:`state_dict` does not hold it: checkpoint it with its own ``state_dict``.
        exclude_label_issues: keep suspected label issues out of the up-weighting. ``False`` (default): none.
            ``"aum"``: samples whose area under the margin is below 0 (:func:`hardmine.label_issues` on
            ``dynamics``; nothing is flagged before its first epoch, nor a sample it never saw).
            ``"confident_learning"``: confident learning on the probabilities of the current scoring pass (scored
            with ``keep_probs=True``); in-sample probabilities of the model being trained, so it finds fewer issues
            as the model memorises its training set (AUM does not have that blind spot). ``True``: ``"aum"`` with
            ``dynamics``, else ``"confident_learning"``. A callable ``f(table) -> indices`` gets the scored and split
            table and returns the suspects' dataset indices; a sequence, array or tensor of dataset indices is a fixed
            set (e.g. ``issue_indices(label_issues(cross_val_scores(...)))``). A suspect keeps its ``difficulty`` in
            the table but is weighted as an easy sample of its polarity (with score weights, ``weight_kwargs["by"]``:
            no more than the lightest other sample), is left out of the ``hard_share`` slots, and keeps a positive
            probability: it is never dropped. :attr:`table` gets a bool ``suspect`` column.
        hard_weight: weight of a hard sample (draws or loss, see ``apply``), relative to ``easy_weight`` within a
            class (see ``balance``).
        easy_weight: weight of an easy sample.
        floor: the smallest weight any sample gets, relative to the largest of its class (of all samples with
            ``balance=None``), so no sample is starved (see :func:`hardmine.weights`).
        momentum: smooth the weights across re-scorings, ``w = momentum * previous + (1 - momentum) * new`` (see
            :func:`hardmine.weights`), so a sample that just turned easy is not dropped at once; in ``[0, 1)``.
        balance: ``"label"`` (default): every class gets the same total weight, so a weighted draw picks each class
            equally often (as a class-balanced ``WeightedRandomSampler`` does), and within a class a hard sample is
            drawn ``hard_weight / easy_weight`` times as often as an easy one; no class can take over the draws
            because its samples are hard. ``"polarity"``: positives and negatives get the same total weight.
            ``None``: no balancing, the hardness alone decides (a rare class that is mostly hard then gets only
            ``hard_weight`` times its natural share). See ``balance`` in :func:`hardmine.weights`.
        weight_kwargs: more options for :func:`hardmine.weights`, e.g. ``{"by": "label_prob", "gamma": 2.0}``
            for continuous weights ``(1 - p) ** 2`` instead of per-group ones, or ``{"hard": {"positive": 8.0,
            "negative": 2.0}}`` for a weight per group.
        apply: ``"sample"`` (more draws), ``"loss"`` (larger loss weights, uniform draws) or ``"sample+correct"``
            (more draws with importance weights ``1 / (N p_i)`` that keep the gradient unbiased).
        rescore_every: re-score every this many epochs (counted from the end of the warm-up), or a callable
            ``rescore_every(epoch) -> bool``. The first mining epoch always scores. ``None``: online mode, no scoring
            pass at all: the miner mines from the per-sample losses your training step hands to :meth:`observe`,
            refreshed at the start of every mining epoch (see :meth:`observe` for the staleness rule).
        half_life: online mode: an observed score decays halfway back to the mean of all observed scores every
            ``half_life`` epochs of age, so a sample drawn rarely is drawn again to refresh it (``None``: no decay).
        warmup_epochs: uniform epochs before mining starts (default 1: an untrained model's scores say little, every
            sample looks hard, and the pass would cost a full inference pass for nothing). ``0`` scores before the
            first epoch, which is right for a model that is already trained (fine-tuning).
        uniform_after: epoch from which sampling is uniform again (fine-tuning on the true distribution), or ``None``.
        positive_share: keep this share of every batch for positive samples (mining epochs; needs ``apply`` to draw).
        hard_share: keep this share of every batch for hard samples (mining epochs).
        num_samples: draws per epoch; defaults to ``len(loader.dataset)``, so an epoch has as many batches as the
            user's loader.
        sampler_mode: how :class:`hardmine.HardSampler` draws in mining epochs: ``"replacement"`` (default,
            i.i.d. draws in proportion to the weights), ``"cover"`` (every sample once plus weighted extra draws;
            needs ``num_samples > N`` to differ from uniform) or ``"no_replacement"`` (not with ``"sample+correct"``).
        with_weights: yield the per-sample loss weights as the last item of every batch; defaults to ``True`` for
            ``apply="loss"`` and ``"sample+correct"``, ``False`` for ``"sample"``.
        indices: yield each sample's dataset index first: ``(idx, x, y[, w])``.
        device: where to run the scoring pass (defaults to the model's device).
        amp: autocast for the scoring pass (see :func:`hardmine.score`).
        seed: seed of the draws; epoch ``e`` draws from ``(seed, e)``.
        progress: show a progress bar while scoring.
        score_kwargs: more keyword arguments for :func:`hardmine.score` (``unpack``, ``input_key``,
            ``target_key``, ``batch_size``, ``channels_last``).
        score_loader: the DataLoader the scoring passes read, when it should differ from ``loader``: the same samples
            in the same dataset order with evaluation transforms (no random crops or flips), so that two passes over
            an unchanged model give the same scores while training keeps its augmentations. Its dataset must have
            the same length as ``loader.dataset``, and index ``i`` must be the same sample in both (the miner checks
            the lengths and, where both datasets have file paths, the paths). Defaults to ``loader``.
        num_replicas: ranks sharing the weighted draw; ``None`` (default) reads torch.distributed's world size when
            each epoch's draw starts (a miner built before ``init_process_group``, as Lightning starts it inside
            ``fit``, still shards correctly). Pass ``1`` when a framework shards the miner's indices itself (see
            :meth:`as_sampler`).
        rank: this process's rank among ``num_replicas``; ``None`` (default): read when each epoch's draw starts.

    Attributes:
        table: the latest scored and split DataFrame (``None`` before the first scoring), with ``weight`` (the
            sampling weight), ``loss_weight`` and ``drawn`` (times drawn since that scoring) columns.
        history: a DataFrame, one row per scoring pass: epoch, counts per group, hard fraction, mean scores,
            accuracy, seconds, and how often hard and easy samples were drawn (per sample) until the next scoring;
            ``by`` (the column that decided hardness), ``dynamics_epochs`` (epochs recorded in ``dynamics``, 0
            without), ``suspect_method``, ``suspects`` and ``drawn_per_suspect`` (suspects are left out of
            ``drawn_per_hard`` and ``drawn_per_easy``).
        epoch: the epoch in progress (``-1`` before the first), :attr:`phase` its phase. A new epoch starts when a
            pass starts after the previous pass was read to its end, or when :meth:`set_epoch` names another epoch;
            a pass abandoned early (``next(iter(miner))`` to peek at a batch) does not end its epoch, so the next
            pass repeats that epoch from its first batch, with no new scoring pass.
        draws: int64 tensor ``(N,)``, the times each sample was yielded in a batch, over all epochs.
        sampler: the sampler of mining epochs.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> g = torch.Generator().manual_seed(0)
        >>> ds = TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g))
        >>> model = nn.Linear(4, 2)
        >>> miner = HardMiner(model, DataLoader(ds, batch_size=16), threshold=0.6, progress=False)
        >>> for epoch in range(3):   # epoch 0 is the warm-up (uniform, no scoring); 1 and 2 score and mine
        ...     for x, y in miner:
        ...         pass
        >>> len(miner), miner.history["epoch"].tolist(), int(miner.draws.sum()), len(miner.dataset)
        (4, [1, 2], 192, 64)
    """

    def __init__(
        self,
        model: nn.Module,
        loader: DataLoader,
        *,
        threshold: float | Literal["per_class"] | None = None,
        by: str | None = None,
        hard_fraction: float | None = None,
        positive: int | list[int] | None = None,
        dynamics: Dynamics | None = None,
        exclude_label_issues: ExcludeArg = False,
        hard_weight: float = 4.0,
        easy_weight: float = 1.0,
        floor: float = 0.05,
        momentum: float = 0.0,
        balance: Balance | None = "label",
        weight_kwargs: Mapping[str, Any] | None = None,
        apply: Apply = "sample",
        rescore_every: int | Callable[[int], bool] | None = 1,
        half_life: float | None = 2.0,
        warmup_epochs: int = 1,
        uniform_after: int | None = None,
        positive_share: float | None = None,
        hard_share: float | None = None,
        num_samples: int | None = None,
        sampler_mode: SamplerMode = "replacement",
        with_weights: bool | None = None,
        indices: bool = False,
        device: str | torch.device | None = None,
        amp: bool | str | torch.dtype = False,
        seed: int = 0,
        progress: bool = True,
        score_kwargs: Mapping[str, Any] | None = None,
        score_loader: DataLoader | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
        _check_map_style(loader, "HardMiner")
        if loader.batch_size is None:
            raise ValueError(
                "Expected `loader` to be built with `batch_size=`, but it was built on a custom batch_sampler "
                "(its batch_size is None); HardMiner replaces the sampling and keeps the batch size."
            )
        if apply not in APPLY_MODES:
            raise ValueError(f"Expected argument `apply` to be one of {APPLY_MODES}, but got {apply!r}.")
        if threshold is not None and hard_fraction is not None:
            raise ValueError(
                "Expected only one of `threshold` and `hard_fraction`, but got both "
                f"(threshold={threshold!r}, hard_fraction={hard_fraction!r})."
            )
        if isinstance(threshold, str) and threshold != "per_class":
            raise ValueError(
                f"Expected argument `threshold` to be a float, 'per_class' or None, but got {threshold!r}."
            )
        if (
            threshold is not None
            and not isinstance(threshold, str)
            and (isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold))
        ):
            raise ValueError(
                f"Expected argument `threshold` to be a finite float, 'per_class' or None, but got {threshold!r}."
            )
        if hard_fraction is not None and (
            isinstance(hard_fraction, bool)
            or not isinstance(hard_fraction, (int, float))
            or not 0 <= hard_fraction <= 1
        ):
            raise ValueError(f"Expected argument `hard_fraction` to be a float in [0, 1], but got {hard_fraction!r}.")
        for name, value in (("hard_weight", hard_weight), ("easy_weight", easy_weight)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (value > 0 and math.isfinite(value))
            ):
                raise ValueError(f"Expected argument `{name}` to be a finite float > 0, but got {value!r}.")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
            raise ValueError(f"Expected argument `floor` to be a float in [0, 1], but got {floor!r}.")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"Expected argument `momentum` to be a float in [0, 1), but got {momentum!r}.")
        if weight_kwargs is not None and not isinstance(weight_kwargs, Mapping):
            raise TypeError(
                f"Expected argument `weight_kwargs` to be a mapping or None, but got {type(weight_kwargs).__name__}."
            )
        _check_balance(balance)
        bad_keys = sorted(set(weight_kwargs or {}) & {"previous", "momentum", "floor", "balance", "labels", "dtype"})
        if bad_keys:
            raise ValueError(
                f"Expected `weight_kwargs` without {bad_keys}: pass those as HardMiner's own options "
                "(floor, momentum, balance) or leave them to the miner."
            )
        if (
            rescore_every is not None
            and not callable(rescore_every)
            and (isinstance(rescore_every, bool) or not isinstance(rescore_every, int) or rescore_every < 1)
        ):
            raise ValueError(
                f"Expected argument `rescore_every` to be an int >= 1, a callable(epoch) -> bool or None (online: "
                f"mine from the losses passed to observe()), but got {rescore_every!r}."
            )
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"Expected argument `warmup_epochs` to be an int >= 0, but got {warmup_epochs!r}.")
        if uniform_after is not None and (
            isinstance(uniform_after, bool) or not isinstance(uniform_after, int) or uniform_after < warmup_epochs
        ):
            raise ValueError(
                f"Expected argument `uniform_after` to be None or an int >= warmup_epochs={warmup_epochs}, but got "
                f"{uniform_after!r}."
            )
        _check_share("positive_share", positive_share)
        _check_share("hard_share", hard_share)
        shares = bool(positive_share) or bool(hard_share)
        if shares and apply == "loss":
            raise ValueError(
                "Expected `apply` to be 'sample' or 'sample+correct' with `positive_share`/`hard_share` "
                "(shares change how batches are drawn), but got apply='loss'."
            )
        if shares and (positive_share or 0) + (hard_share or 0) > 1:
            raise ValueError(f"Expected `positive_share + hard_share` <= 1, but got {positive_share} + {hard_share}.")
        if shares and num_replicas != 1 and get_world_size() > 1:
            raise ValueError(
                "`positive_share`/`hard_share` batches are drawn by one process; under torch.distributed "
                "leave them out (HardSampler shards the weighted draw across ranks)."
            )
        n = len(loader.dataset)  # type: ignore[arg-type]
        if score_loader is not None:
            _check_score_loader(score_loader, loader)
        _check_replicas(num_replicas, rank)
        if dynamics is not None and not isinstance(dynamics, Dynamics):
            raise TypeError(
                f"Expected argument `dynamics` to be a hardmine Dynamics or None, but got {type(dynamics).__name__}."
            )
        if dynamics is not None and dynamics.num_samples != n:
            raise ValueError(
                f"Expected argument `dynamics` over the loader's {n} samples, but it has num_samples="
                f"{dynamics.num_samples}."
            )
        if by in HARDNESS_COLUMNS and dynamics is None:
            raise ValueError(
                f"Expected argument `dynamics` (a Dynamics your loop fills) with by={by!r}, a training-"
                "dynamics column, but got None."
            )
        if by in _NO_DEFAULT_THRESHOLD and threshold is None and hard_fraction is None:
            raise ValueError(f"Column `{by}` has no default threshold: pass `threshold=` or `hard_fraction=`.")
        self._exclude_method, self._exclude_fixed = _exclude_setting(exclude_label_issues, dynamics, n)
        if sampler_mode not in get_args(SamplerMode):
            raise ValueError(
                f"Expected argument `sampler_mode` to be one of {get_args(SamplerMode)}, but got {sampler_mode!r}."
            )
        self._observed = ObservedScores(n, half_life=half_life)  # checks half_life
        if rescore_every is None:
            _check_online(shares=shares, exclude_method=self._exclude_method)
        if apply == "sample+correct" and sampler_mode == "no_replacement":
            raise ValueError(
                "Expected `sampler_mode` 'replacement' or 'cover' with apply='sample+correct' (draws "
                "without replacement have no simple probability to correct for), but got "
                "'no_replacement'."
            )

        self.model = model
        self.loader = loader
        self.threshold = threshold
        self.by = by
        self.hard_fraction = hard_fraction
        self.positive = positive
        self.dynamics = dynamics
        self.exclude_label_issues = exclude_label_issues
        self._exclude_fn = exclude_label_issues if callable(exclude_label_issues) else None
        self.hard_weight = float(hard_weight)
        self.easy_weight = float(easy_weight)
        self.floor = float(floor)
        self.momentum = float(momentum)
        self.balance: Balance | None = balance
        self.weight_kwargs = dict(weight_kwargs or {})
        self.apply: Apply = apply
        self.rescore_every = rescore_every
        self.warmup_epochs = warmup_epochs
        self.uniform_after = uniform_after
        self.positive_share = float(positive_share or 0.0)
        self.hard_share = float(hard_share or 0.0)
        self.with_weights = apply != "sample" if with_weights is None else bool(with_weights)
        self.indices = bool(indices)
        self.device = device
        self.amp = amp
        self.seed = seed
        self.progress = progress
        self.score_kwargs = dict(score_kwargs or {})
        self._score_loader = score_loader
        self.num_replicas = num_replicas
        self.rank = rank

        self.num_samples = n if num_samples is None else num_samples
        ones = torch.ones(n, dtype=torch.float64)
        dataset = _IndexedDataset(loader.dataset)
        collate = _IndexedCollate(loader.collate_fn)
        self._shares = shares
        if shares:
            b = int(loader.batch_size)
            nb = self.num_samples // b if loader.drop_last else math.ceil(self.num_samples / b)
            self.sampler: HardSampler | ShareBatchSampler = ShareBatchSampler(
                ones,
                batch_size=b,
                num_batches=max(1, nb),
                positive_share=self.positive_share,
                hard_share=self.hard_share,
                seed=seed,
            )
            self._uniform_sampler: HardSampler | ShareBatchSampler = ShareBatchSampler(
                ones, batch_size=b, num_batches=max(1, nb), seed=seed
            )
            self._mine_loader = rebuild_loader(loader, batch_sampler=self.sampler, dataset=dataset, collate_fn=collate)
            self._uniform_loader = rebuild_loader(
                loader, batch_sampler=self._uniform_sampler, dataset=dataset, collate_fn=collate
            )
        else:
            self.sampler = HardSampler(
                ones, self.num_samples, mode=sampler_mode, seed=seed, num_replicas=num_replicas, rank=rank
            )
            # Uniform epochs: every sample once (a permutation) when the epoch is at least N long.
            self._uniform_sampler = HardSampler(
                ones,
                self.num_samples,
                mode="cover" if self.num_samples >= n else "replacement",
                seed=seed,
                num_replicas=num_replicas,
                rank=rank,
            )
            self._mine_loader = rebuild_loader(loader, sampler=self.sampler, dataset=dataset, collate_fn=collate)
            self._uniform_loader = rebuild_loader(
                loader, sampler=self._uniform_sampler, dataset=dataset, collate_fn=collate
            )

        self.epoch = -1
        self.phase: Phase | None = None
        self.draws = torch.zeros(n, dtype=torch.int64)
        self.score_calls = 0
        self._collapse_warned = False
        self._raw_weights: Tensor | None = None
        self._n = n
        self._next_epoch = 0
        self._pass_done = True
        self._pending_epoch: int | None = None
        self._table: pd.DataFrame | None = None
        self._rows: list[dict[str, Any]] = []
        self._draws_at_score = torch.zeros(n, dtype=torch.int64)
        self._loss_weights = torch.ones(n, dtype=torch.float32)
        self._table_has_labels: bool | None = None
        self._uniform_loss_weights = torch.ones(n, dtype=torch.float32)

    # ------------------------------------------------------------------ schedule

    def phase_of(self, epoch: int) -> Phase:
        """The phase of epoch ``epoch``: ``"warmup"``, ``"mine"`` or ``"uniform"``.

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
            >>> m = HardMiner(nn.Linear(2, 2), DataLoader(ds, batch_size=2), warmup_epochs=1, uniform_after=3)
            >>> [m.phase_of(e) for e in range(4)]
            ['warmup', 'mine', 'mine', 'uniform']
        """
        if epoch < self.warmup_epochs:
            return "warmup"
        if self.uniform_after is not None and epoch >= self.uniform_after:
            return "uniform"
        return "mine"

    def rescore_due(self, epoch: int) -> bool:
        """Whether a mining epoch ``epoch`` starts with a scoring pass (always when nothing was scored yet)."""
        if self._table is None or self.rescore_every is None:
            return True
        if callable(self.rescore_every):
            return bool(self.rescore_every(epoch))
        return (epoch - self.warmup_epochs) % self.rescore_every == 0

    # ------------------------------------------------------------------ scoring and weights

    def rescore(self) -> pd.DataFrame | None:
        """Score and split the dataset now and set the weights of the next mining epochs; returns the table.

        In online mode (``rescore_every=None``) no model runs: the table comes from the scores given to
        :meth:`observe` (``None`` while nothing has been observed: the weights stay uniform).
        """
        if self.rescore_every is None:
            return self._refresh_observed()
        start = time.perf_counter()
        options = dict(self.score_kwargs)
        drop_probs = self._exclude_method == "confident_learning" and not options.get("keep_probs")
        if drop_probs:
            options["keep_probs"] = True
        table = score(
            self.model, self.score_loader, device=self.device, amp=self.amp, progress=self.progress, **options
        )
        self.score_calls += 1
        # Without `positive` a multi-class (or unlabeled, regression, multi-label) table is split easy/hard only, as
        # hm.split does: no class is made positive behind the user's back.
        positive = self.positive
        summary = None
        if self.dynamics is not None and self.dynamics.num_epochs > 0:
            summary = self.dynamics.summary()
            table = add_dynamics(table, summary)
        by, threshold = self._hardness_column(summary)
        if by is None:
            by = default_by(table)
        table = split(table, threshold, by=by, hard_fraction=self.hard_fraction, positive=positive)
        self._table_has_labels = "label" in table.columns
        suspect = self._suspects(table, summary)
        if drop_probs:
            table = table.drop(columns=prob_columns(table))
        table["suspect"] = suspect.numpy()[table["index"].to_numpy()]
        w = self._weights(table, suspect)
        self._raw_weights = w
        hard = _mask(table, "difficulty", "hard") & ~suspect
        pos = _mask(table, "polarity", "positive") if "polarity" in table.columns else None
        self._install(table, w, hard, pos, by, start)
        return self.table

    def _install(self, table: pd.DataFrame, w: Tensor, hard: Tensor, pos: Tensor | None, by: str, start: float) -> None:
        """Set the sampler and loss weights of the next mining epochs from weights ``w`` of the split ``table``."""
        if self.apply == "loss":
            sampling = torch.ones_like(w)
            loss_w = w / w.mean()
        else:
            sampling = w
            loss_w = torch.ones_like(w)
        if isinstance(self.sampler, ShareBatchSampler):
            self.sampler.update(sampling, positive=pos, hard=hard)
        else:
            self.sampler.update(sampling)
        if self.apply == "sample+correct":
            loss_w = importance_weights(
                sampling, expected_draws=self._expected_draws(), num_draws=self._draws_per_epoch()
            )
        self._loss_weights = loss_w.to(torch.float32)

        self._close_period()
        table = table.copy()
        table["weight"] = sampling.to(torch.float32).numpy()
        table["loss_weight"] = self._loss_weights.numpy()
        self._table = table
        self._draws_at_score = self.draws.clone()
        self._rows.append(self._history_row(table, by, time.perf_counter() - start))

    def observe(self, indices: Tensor, outputs: Tensor, targets: Tensor | None = None) -> None:
        """Record the training step's own per-sample scores; online mode (``rescore_every=None``) mines from them.

        Call it once per batch with the batch's dataset indices (``indices=True`` yields them first) and either the
        per-sample losses (``loss_fn(..., reduction="none")``, detached for you) or the logits and targets (then
        every score column is recorded: ``label_prob``, ``confidence``, ``margin``, ``entropy``, ``loss``, ``pred``
        and the label). Nothing waits for the device: the values are scattered into ``(N,)`` buffers on the
        device of ``outputs``.

        At the start of every mining epoch the online miner builds its table from the latest observation of every
        sample, aged by epochs and decayed toward the mean (``half_life``; see the online module); a sample
        never observed gets the largest weight so it is drawn soon. The table's ``seen`` and ``age`` columns say
        which scores are observed and how old they are, and it then goes through the same split, weights and
        label-issue exclusion as a scored table (``by``, ``threshold``, ``balance``, ``momentum``, ``dynamics``).
        With losses alone the labels are unknown: ``label_prob`` is ``exp(-loss)`` (the probability of the label
        for cross-entropy), and ``balance="label"`` needs the targets (pass logits and targets, or
        ``balance=None``). Under ``torchrun`` each rank records its own batches and the ranks' buffers are merged
        at the start of every epoch (the latest observation of each sample wins), so every rank draws from the same
        weights. Observations are kept in :meth:`state_dict`.

        Args:
            indices: int tensor ``(B,)``, the batch's dataset indices.
            outputs: float tensor: per-sample losses ``(B,)`` without ``targets``; logits ``(B, C)`` (or ``(B,)``
                for one binary logit) with ``targets``.
            targets: ``(B,)`` class indices, or ``None``.

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
            >>> model = nn.Linear(2, 2)
            >>> miner = HardMiner(model, DataLoader(ds, batch_size=4), rescore_every=None, indices=True)
            >>> for epoch in range(2):
            ...     for idx, x, y in miner:
            ...         logits = model(x)
            ...         miner.observe(idx, logits, y)
            >>> miner.score_calls, len(miner.table), miner.history["epoch"].tolist()
            (0, 8, [1])
        """
        self._observed.observe(indices, outputs, targets, stamp=float(self.epoch))

    def _refresh_observed(self) -> pd.DataFrame | None:
        """Online mode: split and weigh the observed scores (no model runs); ``None`` while none are observed."""
        start = time.perf_counter()
        observed = self._observed
        observed.merge_ranks()
        full = observed.table(now=max(self.epoch, 0))
        seen = full["seen"].to_numpy(dtype=bool)
        if not seen.any():
            return None
        rows = np.flatnonzero(seen)
        labelled = bool((full["label"].to_numpy()[rows] >= 0).all())
        if self.balance == "label" and not labelled:
            raise ValueError(
                "Expected the labels of the observed samples with balance='label', but observe() got losses "
                "without targets: call miner.observe(indices, logits, targets), or build the miner with "
                "balance=None."
            )
        positive = self.positive  # None on a multi-class task: easy/hard only, as hm.split does
        sub = full.iloc[rows].drop(columns=["seen", "age"]).reset_index(drop=True)
        summary = None
        if self.dynamics is not None and self.dynamics.num_epochs > 0:
            summary = self.dynamics.summary()
            sub = add_dynamics(sub, summary)
        by, threshold = self._hardness_column(summary)
        if by is None:
            by = default_by(sub)
        sub = split(sub, threshold, by=by, hard_fraction=self.hard_fraction, positive=positive)
        suspect = self._suspects(sub, summary)
        sub["suspect"] = suspect.numpy()[rows]
        renumbered = sub.assign(index=np.arange(len(sub)))  # hm.weights wants the rows as a dataset of their own
        previous = self._raw_weights
        self._raw_weights = None if previous is None else previous[torch.from_numpy(rows)]  # momentum on these rows
        try:
            w_seen = self._weights(renumbered, suspect[torch.from_numpy(rows)])
        finally:
            self._raw_weights = previous
        w = torch.full((self._n,), float(w_seen.max()), dtype=torch.float64)  # unseen: the largest weight
        w[torch.from_numpy(rows)] = w_seen
        self._raw_weights = w
        table = full[["index", "seen", "age"]].merge(sub, on="index", how="left")
        table["label"] = full["label"].to_numpy()
        table["pred"] = full["pred"].to_numpy()
        table["suspect"] = table["suspect"].fillna(False).astype(bool)
        hard = torch.from_numpy((table["difficulty"] == "hard").to_numpy(dtype=bool, copy=True)) & ~suspect
        pos = (
            torch.from_numpy((table["polarity"] == "positive").to_numpy(dtype=bool, copy=True))
            if "polarity" in table.columns
            else None
        )
        self._install(table, w, hard, pos, by, start)
        row = self._rows[-1]
        known = seen & (table["pred"].to_numpy() >= 0)
        row["accuracy"] = float((table["pred"] == table["label"]).to_numpy()[known].mean()) if known.any() else math.nan
        row["observed"] = int(seen.sum())
        return self.table

    def _hardness_column(self, summary: pd.DataFrame | None) -> tuple[str | None, Any]:
        """``(by, threshold)`` for this scoring.

        A dynamics column falls back to ``label_prob`` until every sample has been seen in a recorded epoch.
        """
        if self.by not in HARDNESS_COLUMNS or (summary is not None and bool((summary["epochs"] > 0).all())):
            return self.by, self.threshold
        return "label_prob", self.threshold if isinstance(self.threshold, str) else None

    def _suspects(self, table: pd.DataFrame, summary: pd.DataFrame | None) -> Tensor:
        """Bool tensor ``(N,)`` in dataset-index order: the suspected label issues of this scoring."""
        mask = np.zeros(self._n, dtype=bool)
        method = self._exclude_method
        if method == "aum" and summary is not None:
            mask[issue_indices(label_issues(summary, method="aum"))] = True
        elif method == "confident_learning":
            mask[issue_indices(label_issues(table, method="confident_learning"))] = True
        elif method == "custom":
            found = self._exclude_fn(table.copy()) if self._exclude_fn is not None else []
            mask[_check_indices(found, self._n, "exclude_label_issues(table)")] = True
        elif method == "fixed" and self._exclude_fixed is not None:
            mask[self._exclude_fixed] = True
        return torch.from_numpy(mask)

    def _weights(self, table: pd.DataFrame, suspect: Tensor) -> Tensor:
        """Float64 sampling weights ``(N,)``; a suspect weighs no more than an easy sample of its polarity."""
        options = self._weight_options()
        score_based = "by" in options
        suspects = bool(suspect.any())
        source = _as_easy(table) if suspects and not score_based else table
        w = self._collapse_guarded(source, options)
        if not suspects:
            return w
        if score_based:  # no easy weight to speak of: no more than the lightest other sample
            others = w[~suspect]
            others = others[others > 0]
            cap = others.min().expand_as(w) if others.numel() else w
        elif "previous" in options:  # momentum may carry a suspect's old hard weight: cap at today's easy weight
            plain = {k: v for k, v in options.items() if k not in ("previous", "momentum")}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HardSetCollapseWarning)
                cap = sample_weights(source, **plain).detach().to("cpu", torch.float64)
        else:
            return w
        return torch.where(suspect, torch.minimum(w, cap), w)

    def _collapse_guarded(self, source: pd.DataFrame, options: dict[str, Any]) -> Tensor:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HardSetCollapseWarning)
            w = sample_weights(source, **options)
        for warning in caught:  # the collapse warning once per miner, not at every re-score
            if issubclass(warning.category, HardSetCollapseWarning):
                if self._collapse_warned:
                    continue
                self._collapse_warned = True
            warnings.warn(warning.message, warning.category, stacklevel=4)
        return w.detach().to("cpu", torch.float64)

    def _weight_options(self) -> dict[str, Any]:
        balance = self.balance
        if balance == "label" and self._table_has_labels is False:
            balance = None  # regression, multi-label and unlabeled tables have no class to balance
        options: dict[str, Any] = {"floor": self.floor, "balance": balance, **self.weight_kwargs}
        if "by" not in options:  # per-group weights from the split; `by` switches to weights from a score
            options.setdefault("hard", self.hard_weight)
            options.setdefault("easy", self.easy_weight)
        if self.momentum > 0 and self._raw_weights is not None:
            options["previous"] = self._raw_weights
            options["momentum"] = self.momentum
        return options

    def _draws_per_epoch(self) -> int:
        if isinstance(self.sampler, ShareBatchSampler):
            return self.sampler.num_batches * self.sampler.batch_size
        return self.sampler.num_samples

    def _expected_draws(self) -> Tensor:
        """Expected draws of every sample per mining epoch under the current sampling weights."""
        if isinstance(self.sampler, ShareBatchSampler):
            return self.sampler.expected_draws()
        w = self.sampler.weights.to(torch.float64)
        p = w / w.sum()
        m = self.sampler.num_samples
        if self.sampler.mode == "cover":
            return 1.0 + (m - self._n) * p
        return m * p

    def _history_row(self, table: pd.DataFrame, by: str, seconds: float) -> dict[str, Any]:
        counts = table["group"].value_counts() if "group" in table.columns else pd.Series(dtype=np.int64)
        hard = table["difficulty"] == "hard"
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "samples": len(table),
            "hard": int(hard.sum()),
            "hard_fraction": float(hard.mean()),
        }
        for g in GROUPS:
            row[g] = int(counts.get(g, 0))
        row[f"mean_{by}"] = float(table[by].mean())
        for col in ("label_prob", "confidence", "loss"):
            if col != by and col in table.columns:
                row[f"mean_{col}"] = float(table[col].mean())
        has_labels = "pred" in table.columns and "label" in table.columns
        row["accuracy"] = float((table["pred"] == table["label"]).mean()) if has_labels else float("nan")
        row["seconds"] = seconds
        row["by"] = by
        row["dynamics_epochs"] = 0 if self.dynamics is None else self.dynamics.num_epochs
        row["suspect_method"] = self._exclude_method
        row["suspects"] = int(table["suspect"].sum())
        row["drawn_per_hard"] = float("nan")
        row["drawn_per_easy"] = float("nan")
        row["drawn_per_suspect"] = float("nan")
        return row

    def _period_draws(self) -> Tensor:
        return self.draws - self._draws_at_score

    def _close_period(self) -> None:
        """Write how often the previous table's hard and easy samples were drawn into its history row."""
        if self._table is None or not self._rows:
            return
        self._rows[-1].update(self._drawn_by_difficulty(self._table))

    def _drawn_by_difficulty(self, table: pd.DataFrame) -> dict[str, float]:
        drawn = self._period_draws().numpy()
        hard = (table["difficulty"] == "hard").to_numpy()
        suspect = (
            table["suspect"].to_numpy(dtype=bool) if "suspect" in table.columns else np.zeros(len(table), dtype=bool)
        )

        def per_sample(rows: np.ndarray) -> float:
            return float(drawn[rows].mean()) if rows.any() else float("nan")

        return {
            "drawn_per_hard": per_sample(hard & ~suspect),
            "drawn_per_easy": per_sample(~hard & ~suspect),
            "drawn_per_suspect": per_sample(suspect),
        }

    @property
    def table(self) -> pd.DataFrame | None:
        """The latest scored and split table, with ``suspect``, ``weight``, ``loss_weight`` and ``drawn`` columns."""
        if self._table is None:
            return None
        table = self._table.copy()
        table["drawn"] = self._period_draws().numpy()
        return table

    @property
    def history(self) -> pd.DataFrame:
        """One row per scoring pass; the last row's draw counts run up to now."""
        rows = [dict(r) for r in self._rows]
        if rows and self._table is not None:
            rows[-1].update(self._drawn_by_difficulty(self._table))
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ iteration

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same in every phase), as ``len(loader)`` would say."""
        return len(self._mine_loader)

    @property
    def dataset(self) -> Any:
        """The training loader's dataset, so code that reads ``loader.dataset`` (e.g. ``len(loader.dataset)``) works."""
        return self.loader.dataset

    @property
    def batch_size(self) -> int | None:
        """The training loader's batch size."""
        return self.loader.batch_size

    @property
    def drop_last(self) -> bool:
        """The training loader's ``drop_last``."""
        return self.loader.drop_last

    @property
    def score_loader(self) -> DataLoader:
        """The DataLoader the scoring passes read: ``score_loader=`` if given, else the training loader.

        :func:`hardmine.score` reads it too, so ``hm.score(model, miner)`` scores what the miner scores.
        """
        return self.loader if self._score_loader is None else self._score_loader

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch``, as ``DistributedSampler.set_epoch`` does.

        The next pass starts epoch ``epoch`` (its phase, a scoring pass when the schedule says so, and the draw of
        ``(seed, epoch)``), unless ``epoch`` is the epoch already under way: then the pass repeats it, with the same
        draw and no new scoring pass. Without ``set_epoch`` the miner counts epochs itself: a pass read to its end
        ends its epoch.

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
            >>> m = HardMiner(nn.Linear(2, 2), DataLoader(ds, batch_size=4), warmup_epochs=0, progress=False)
            >>> _ = next(iter(m)); _ = next(iter(m))   # two peeks: epoch 0, one scoring pass
            >>> m.epoch, m.score_calls
            (0, 1)
            >>> m.set_epoch(3); _ = list(m); m.epoch, m.score_calls
            (3, 2)
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"Expected argument `epoch` to be an int >= 0, but got {epoch!r}.")
        self._pending_epoch = epoch

    def _begin_pass(self) -> tuple[DataLoader, HardSampler | ShareBatchSampler, Tensor]:
        """Start a pass: a new epoch (phase, scoring when due) or the epoch under way again; what to read from."""
        self._check_length()
        if self._pending_epoch is not None:
            target = self._pending_epoch
        else:
            target = self._next_epoch if self._pass_done or self.phase is None else self.epoch
        self._pending_epoch = None
        if target != self.epoch or self.phase is None:
            self.epoch = target
            self._next_epoch = target + 1
            self.phase = self.phase_of(target)
            if self.phase == "mine" and self.rescore_due(target):
                self.rescore()
        self._pass_done = False
        if self._shares and self.num_replicas != 1 and get_world_size() > 1:
            raise ValueError(
                "`positive_share`/`hard_share` batches are drawn by one process; under torch.distributed leave them "
                "out (HardSampler shards the weighted draw across ranks), or pass num_replicas=1 when a framework "
                "shards the batches."
            )
        if self.phase == "mine" and self.apply != "loss":
            loader, sampler, loss_w = self._mine_loader, self.sampler, self._loss_weights
        elif self.phase == "mine":
            loader, sampler, loss_w = self._uniform_loader, self._uniform_sampler, self._loss_weights
        else:
            loader, sampler, loss_w = self._uniform_loader, self._uniform_sampler, self._uniform_loss_weights
        sampler.set_epoch(self.epoch)
        return loader, sampler, loss_w

    def __iter__(self) -> Iterator[Any]:
        loader, _sampler, loss_w = self._begin_pass()
        for idx, batch in loader:
            self.draws.index_add_(0, idx, torch.ones_like(idx))
            yield self._format(idx, batch, loss_w)
        self._pass_done = True

    def as_sampler(self) -> MinerSampler:
        """This miner as a ``Sampler[int]`` of dataset indices, for a DataLoader that someone else builds.

        For frameworks that build the training DataLoader themselves (the Hugging Face Trainer's
        ``_get_train_sampler``, a Lightning ``train_dataloader`` with ``use_distributed_sampler``): each pass runs the
        miner's epoch logic (phase, scoring pass when due) and yields the epoch's draw. Only for ``apply="sample"``
        without batch shares (loss weights and batch shares need the miner's own batches). Build the miner with
        ``num_replicas=1`` when the framework shards the indices across ranks (accelerate and Lightning's sampler
        wrapper do): every rank then yields the same global draw and the framework hands each rank its share.

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
            >>> m = HardMiner(nn.Linear(2, 2), DataLoader(ds, batch_size=4), progress=False)
            >>> s = m.as_sampler()
            >>> len(s), sorted(s) == list(range(8)), m.phase   # epoch 0 is the warm-up: every sample once
            (8, True, 'warmup')
        """
        if self.apply != "sample" or self._shares or self.with_weights or self.indices:
            raise ValueError(
                "Expected a HardMiner with apply='sample', no positive_share/hard_share, with_weights=False and "
                "indices=False for as_sampler() (a sampler yields indices only), but got "
                f"apply={self.apply!r}, shares={self._shares}, with_weights={self.with_weights}, "
                f"indices={self.indices}."
            )
        return MinerSampler(self)

    def _format(self, idx: Tensor, batch: Any, loss_w: Tensor) -> Any:
        if self.with_weights:
            w = loss_w[idx]
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

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The miner's state for a checkpoint: next epoch, draw counts, weights, table, history, observed scores.

        Only tensors, numbers, strings, lists and dicts (the table as columns, see :mod:`hardmine.core._state`), so a
        checkpoint holding it loads with ``torch.load(path)`` (``weights_only=True``). A miner built with the same
        arguments on the same dataset and given this state draws exactly what the saved one would have drawn next,
        also with ``momentum`` (the previous weights are kept). The ``dynamics`` are not included: checkpoint them
        with their own ``state_dict``.
        """
        return {
            "num_samples": self._n,
            "next_epoch": self._next_epoch,
            "draws": self.draws.clone(),
            "draws_at_score": self._draws_at_score.clone(),
            "loss_weights": self._loss_weights.clone(),
            "sampling_weights": self.sampler.weights.clone(),
            "raw_weights": None if self._raw_weights is None else self._raw_weights.clone(),
            "table": None if self._table is None else frame_to_state(self._table),
            "history": plain([dict(r) for r in self._rows]),
            "score_calls": self.score_calls,
            "collapse_warned": self._collapse_warned,
            "observed": self._observed.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next pass is the epoch after the saved one, with the saved weights."""
        missing = [
            k for k in ("next_epoch", "draws", "loss_weights", "sampling_weights", "table", "history") if k not in state
        ]
        if missing:
            raise ValueError(f"Expected argument `state` to come from HardMiner.state_dict(), but it lacks {missing}.")
        self._check_length()
        if state["draws"].shape != self.draws.shape:
            raise ValueError(
                f"Expected a state for the loader's {self._n} samples, but it holds {state['draws'].shape[0]}; "
                "a miner resumes on the dataset it was saved with."
            )
        self._next_epoch = int(state["next_epoch"])
        self.epoch = self._next_epoch - 1
        self.draws = state["draws"].clone()
        self._draws_at_score = state.get("draws_at_score", torch.zeros_like(self.draws)).clone()
        self._loss_weights = state["loss_weights"].clone()
        raw = state.get("raw_weights")
        self._raw_weights = None if raw is None else raw.clone()
        table = state["table"]
        if isinstance(table, pd.DataFrame):  # a state saved before 0.3 (loads with weights_only=False only)
            self._table = table.copy()
        else:
            self._table = None if table is None else frame_from_state(table)
        self._rows = [dict(r) for r in state["history"]]
        self.score_calls = int(state.get("score_calls", 0))
        self._collapse_warned = bool(state.get("collapse_warned", False))
        if state.get("observed") is not None:
            self._observed.load_state_dict(state["observed"])
        if isinstance(self.sampler, ShareBatchSampler) and self._table is not None:
            hard = _mask(self._table, "difficulty", "hard")
            if "suspect" in self._table.columns:
                hard &= ~_mask(self._table, "suspect", True)
            self.sampler.update(
                state["sampling_weights"],
                positive=_mask(self._table, "polarity", "positive") if "polarity" in self._table.columns else None,
                hard=hard,
            )
        else:
            self.sampler.update(state["sampling_weights"])

    def _check_length(self) -> None:
        """Raise when the dataset's length changed since the miner was built (its weights and counts are per sample)."""
        n = len(self.loader.dataset)  # type: ignore[arg-type]
        if n != self._n:
            raise ValueError(
                f"Expected the dataset of `loader` to keep its {self._n} samples, but it now has {n}: the miner's "
                "weights, draw counts and observed scores are per sample. Build a new HardMiner on the changed "
                "dataset (its epoch count and history start afresh; observe() or a scoring pass fills it)."
            )

    # ------------------------------------------------------------------ repr

    def __repr__(self) -> str:
        """Where the miner stands: phase and epoch, the last re-score, the next one, the sampler and the device.

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
            >>> print(HardMiner(nn.Linear(2, 2), DataLoader(ds, batch_size=2), warmup_epochs=1, progress=False))
            ... # doctest: +NORMALIZE_WHITESPACE
            HardMiner(
              phase=None (no pass yet), epoch=-1, N=4, apply='sample', warmup_epochs=1,
              last re-score: none yet,
              next re-score: epoch 1 (the first mining epoch),
              sampler=HardSampler(num_samples=4 per epoch of N=4, mode='replacement', replacement=True,
                weights in [1, 1] (0 of 4 zero, max/min positive 1), epoch=0, seed=0, rank 0 of 1),
              device=cpu,
            )
        """
        phase = f"{self.phase!r}" if self.phase is not None else "None (no pass yet)"
        if self._rows:
            row = self._rows[-1]
            settings = self._table.attrs.get("hardmine", {}) if self._table is not None else {}
            threshold, by = settings.get("threshold"), row.get("by", self.by)
            if threshold is None and settings.get("hard_fraction") is not None:
                rule = f"{by}, hardest {settings['hard_fraction']:.4g}"
            elif threshold == "per_class":
                rule = f"{by} under per-class thresholds"
            elif threshold is not None:
                rule = f"{by} {'<' if settings.get('hard_when') == 'lower' else '>'} {threshold:.4g}"
            else:
                rule = f"{by}"
            last = f"epoch {row['epoch']}, {row['hard']} hard of {row['samples']} by {rule} " + (
                f"(scoring pass {self.score_calls})" if self.score_calls else "(no scoring pass: observed scores)"
            )
        else:
            last = "none yet"
        if isinstance(self.sampler, ShareBatchSampler):
            s = self.sampler
            sampler = (
                f"ShareBatchSampler({s.num_batches} batches of {s.batch_size} per epoch, "
                f"positive_share={s.positive_share:.4g}, hard_share={s.hard_share:.4g}, epoch={s.epoch}, seed={s.seed})"
            )
        else:
            sampler = repr(self.sampler)
        device = self.device
        if device is None:
            param = next(iter(self.model.parameters()), None)
            device = param.device if param is not None else "cpu"
        return (
            "HardMiner(\n"
            f"  phase={phase}, epoch={self.epoch}, N={self._n}, apply={self.apply!r}, "
            f"warmup_epochs={self.warmup_epochs},\n"
            f"  last re-score: {last},\n"
            f"  next re-score: {self._next_rescore()},\n"
            f"  sampler={sampler},\n"
            f"  device={device},\n"
            ")"
        )

    def _next_rescore(self) -> str:
        """The epoch of the next scoring pass, in words (for ``__repr__``)."""
        start = self._pending_epoch if self._pending_epoch is not None else self._next_epoch
        start = max(start, self.warmup_epochs)
        if self.uniform_after is not None and start >= self.uniform_after:
            return f"none (uniform from epoch {self.uniform_after})"
        if self._table is None:
            return f"epoch {start} (the first mining epoch)"
        every = self.rescore_every
        if callable(every):
            return f"when rescore_every(epoch) says so, from epoch {start}"
        if not isinstance(every, int):  # no period (online mining): a new table at every mining epoch
            return f"epoch {start} (every mining epoch)"
        nxt = start + (-(start - self.warmup_epochs)) % every
        if self.uniform_after is not None and nxt >= self.uniform_after:
            return f"none (uniform from epoch {self.uniform_after})"
        return f"epoch {nxt} (every {every} epoch{'s' if every != 1 else ''})"


def _check_online(*, shares: bool, exclude_method: str | None) -> None:
    """Options that online mode (``rescore_every=None``) cannot serve."""
    if shares:
        raise ValueError(
            "Expected no `positive_share`/`hard_share` with rescore_every=None (online mode weighs the observed "
            "samples only; the share batches need every sample's group), but got a share."
        )
    if exclude_method == "confident_learning":
        raise ValueError(
            "Expected exclude_label_issues other than 'confident_learning' with rescore_every=None: confident "
            "learning needs every class probability of a scoring pass; use 'aum' with dynamics, a callable or indices."
        )
