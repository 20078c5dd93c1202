"""HardMiner: wrap a model and its DataLoader, re-score on a schedule, and yield batches that favour the hard samples.

The work is done by the pure parts below the miner: :func:`hardmine.score`, :func:`hardmine.split`,
:func:`hardmine.weights` and :class:`hardmine.HardSampler`. It works with a plain training loop::

    miner = HardMiner(model, train_loader, threshold=0.7, hard_weight=4.0, rescore_every=2)
    for epoch in range(20):
        for x, y in miner:          # epoch 0 warms up; re-scored at the start of epochs 1, 3, 5, ...
            ...                     # your own training step
    miner.table                     # the latest scored and split table; miner.history: one row per re-score

Each pass over the miner is one epoch. At its start the miner decides the phase of that epoch: ``"warmup"`` (the
first ``warmup_epochs`` epochs, uniform), ``"mine"``, or ``"uniform"`` (from epoch ``uniform_after`` on); in a mining
epoch it re-scores the dataset when the schedule says so, then sets the weights: :func:`hardmine.weights` of the split
table (by default every class gets the same total weight, and inside a class a hard sample weighs ``hard_weight /
easy_weight`` times an easy one). How they are applied (``apply``): ``"sample"`` draws hard samples more often,
``"loss"`` draws uniformly and weighs the loss, ``"sample+correct"`` draws hard samples more often and weighs the loss
by ``1 / (N p_i)`` so that the gradient stays unbiased (see :mod:`hardmine.feedback.apply_modes`). One bias at a time:
either the draw or the loss. In the two weighted modes a batch ``(x, y)`` comes as ``(x, y, w)`` (a dict batch gets a
``"weight"`` key), ``w`` a float32 tensor ``(B,)`` for :func:`hardmine.weighted_loss`; uniform epochs carry weights
of 1, so every batch keeps the same structure.

A sample the model keeps getting wrong is either genuinely hard or mislabelled, and drawing a mislabelled one more
often teaches the wrong label: with a :class:`hardmine.Dynamics` your loop fills, the miner can mine by a dynamics
column (``by="aum"``...), and ``exclude_label_issues`` keeps suspected label issues out of the up-weighting.

The miner owns the epoch loop, the scoring call and its state, and is made of parts: frozen settings checked once
(:mod:`~hardmine.feedback.miner_settings`, ``miner.settings``; assigning ``miner.apply = "loss"`` raises
:class:`AttributeError`), one strategy per ``apply`` mode (:mod:`~hardmine.feedback.apply_modes`), the label-issue
policy (:mod:`~hardmine.feedback.label_policy`), the re-scoring state and its history
(:mod:`~hardmine.feedback.rescoring`, :mod:`~hardmine.feedback.history`), and the draws and batch format beside the
samplers (:mod:`~hardmine.feedback.batching`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hardmine.analysis.dynamics import Dynamics
from hardmine.core.validate import integer
from hardmine.feedback.apply_modes import APPLY_MODES, Apply, apply_mode, importance_weights
from hardmine.feedback.batching import (
    BatchFormat,
    MinerSampler,
    ShareBatchSampler,
    check_length,
    check_loaders,
    make_draw,
)
from hardmine.feedback.label_policy import EXCLUDE_METHODS, ExcludeArg, LabelIssuePolicy
from hardmine.feedback.miner_settings import (
    BatchShares,
    MinerSettings,
    Phase,
    Schedule,
    SettingsView,
    SplitRule,
    WeightRule,
)
from hardmine.feedback.online import ObservedScores
from hardmine.feedback.rescoring import Rescorer, check_state
from hardmine.feedback.sampling import HardSampler, SamplerMode
from hardmine.feedback.weighting import Balance
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


class HardMiner(SettingsView):
    """Yields training batches that favour the hard samples, re-scoring the dataset on a schedule.

    Iterate it once per epoch in place of the DataLoader. Every iteration is one epoch: the miner scores the whole
    dataset with the model (when the schedule says so), splits it into easy/hard and positive/negative, turns that into
    per-sample weights, and yields batches from the user's loader rebuilt with a weighted sampler (same dataset,
    batch size, collate_fn, workers; see :func:`hardmine.wrap`). The scoring pass leaves the model exactly as it
    was (training flags, parameters, BatchNorm statistics). Nothing to subclass.

    The options are checked once, into the frozen :attr:`settings`; each argument below is documented in full on the
    settings object that holds it. They read back as attributes (``miner.apply``, ``miner.hard_weight``), and
    assigning one raises :class:`AttributeError`: build a new miner for other settings.

    Args:
        model: the model being trained; scored in eval mode under ``torch.inference_mode``, then restored.
        loader: the training DataLoader over a map-style dataset, built with ``batch_size``.
        threshold: what is hard, as for :func:`hardmine.split` (:class:`SplitRule`); ``None``: the column's default.
        by: the column that decides hardness; a training-dynamics ``by`` (``"aum"``...) needs ``dynamics`` and uses
            ``"label_prob"`` until every sample has a recorded epoch (``history["by"]`` says which).
        hard_fraction: as for :func:`hardmine.split`.
        positive: as for :func:`hardmine.split`.
        dynamics: a :class:`hardmine.Dynamics` over the ``N`` samples that your loop fills
            (``dynamics.update(idx, logits, y)`` per batch, ``dynamics.end_epoch()`` per pass); read at every scoring,
            its columns join :attr:`table`. Not in :meth:`state_dict`: checkpoint it with its own.
        exclude_label_issues: keep suspected label issues out of the up-weighting: ``False``, ``"aum"``,
            ``"confident_learning"``, ``True`` (``"aum"`` with ``dynamics``, else confident learning), a callable
            ``f(table) -> indices`` or fixed dataset indices (see the label policy). A suspect weighs as an easy
            sample and gets no ``hard_share`` slot; :attr:`table` gets a ``suspect`` column.
        hard_weight: a hard sample weighs ``hard_weight / easy_weight`` times an easy one of its class
            (:class:`WeightRule`).
        easy_weight: the weight of an easy sample.
        floor: the smallest weight, relative to the largest of its class.
        momentum: ``w = momentum * previous + (1 - momentum) * new`` across re-scorings.
        balance: ``"label"`` (every class the same total weight), ``"polarity"`` or ``None``.
        weight_kwargs: more options for :func:`hardmine.sample_weights`.
        apply: ``"sample"`` (more draws), ``"loss"`` (loss weights, uniform draws) or ``"sample+correct"`` (more
            draws, importance weights ``1 / (N p_i)``); see :mod:`hardmine.feedback.apply_modes`.
        rescore_every: re-score every this many mining epochs (:class:`Schedule`); ``None`` is online mining (no
            scoring pass: the table comes from the losses given to :meth:`observe`).
        half_life: online mining: an observed score decays halfway to the mean every ``half_life`` epochs of age.
        warmup_epochs: uniform epochs before mining starts.
        uniform_after: back to uniform draws from this epoch on (``None``: never).
        positive_share: share of every mining batch kept for positives (:class:`ShareBatchSampler`; not with "loss").
        hard_share: share of every mining batch kept for hard samples, likewise.
        num_samples: draws per epoch; defaults to ``len(loader.dataset)``.
        sampler_mode: how :class:`hardmine.HardSampler` draws in mining epochs: ``"replacement"``, ``"cover"`` or
            ``"no_replacement"`` (not with ``"sample+correct"``).
        with_weights: yield the loss weights last in every batch; defaults to ``True`` unless ``apply="sample"``.
        indices: yield each sample's dataset index first: ``(idx, x, y[, w])``.
        device: where the scoring pass runs (:class:`hardmine.ScoreOptions`, as are ``amp`` and ``progress``).
        amp: mixed precision of the scoring pass.
        progress: the scoring pass's progress bar.
        score_kwargs: more scoring options (:class:`hardmine.ScoreOptions` fields, ``ids``, ``classes``).
        seed: seed of the draws; epoch ``e`` draws from ``(seed, e)``.
        score_loader: the DataLoader the scoring passes read (same samples, same order, evaluation transforms);
            defaults to ``loader``.
        num_replicas: ranks sharing the draw (``None``: torch.distributed's, read each epoch); ``1`` when a framework
            shards the miner's indices itself (see :meth:`as_sampler`).
        rank: this process's rank (``None``: torch.distributed's, read each epoch).

    Attributes:
        settings: the frozen :class:`~hardmine.feedback.miner_settings.MinerSettings`.
        table: the latest scored and split DataFrame (``None`` before the first scoring), with ``weight``,
            ``loss_weight`` and ``drawn`` (times drawn since that scoring) columns.
        history: a DataFrame, one row per scoring pass (see :class:`~hardmine.feedback.history.MiningHistory`).
        epoch: the epoch in progress (``-1`` before the first), :attr:`phase` its phase. A pass abandoned early does
            not end its epoch: the next pass repeats it from its first batch, with no new scoring pass.
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
        n = check_loaders(loader, score_loader)
        s = MinerSettings(
            num_samples=n if num_samples is None else num_samples,
            split=SplitRule(threshold=threshold, by=by, hard_fraction=hard_fraction, positive=positive),
            weights=WeightRule(
                hard_weight, easy_weight, floor, momentum, balance, {} if weight_kwargs is None else weight_kwargs
            ),
            schedule=Schedule(rescore_every=rescore_every, warmup_epochs=warmup_epochs, uniform_after=uniform_after),
            shares=BatchShares(positive_share=positive_share, hard_share=hard_share),
            apply=apply,
            sampler_mode=sampler_mode,
            with_weights=with_weights,
            indices=indices,
            seed=seed,
            exclude_label_issues=exclude_label_issues,
            half_life=half_life,
            num_replicas=num_replicas,
            rank=rank,
            device=device,
            amp=amp,
            progress=progress,
            score_kwargs={} if score_kwargs is None else score_kwargs,
        )
        s.split.check_dynamics(dynamics, n)
        policy = LabelIssuePolicy.from_argument(exclude_label_issues, dynamics=dynamics, num_samples=n)
        self._observed = ObservedScores(n, half_life=half_life)  # checks half_life
        if s.schedule.online:
            policy.check_online()
        self._settings, self._mode = s, apply_mode(s.apply)
        self._format = BatchFormat(with_weights=bool(s.with_weights), indices=s.indices)
        self._draw = make_draw(loader, s)
        self._rescorer = Rescorer(s, policy, dynamics, self._draw)
        self.model = model
        self._loader, self._dynamics, self._score_loader, self._n = loader, dynamics, score_loader, n
        # The epoch loop: the epoch in progress and its phase, the next one, and whether this pass was read to its end.
        self.epoch, self._next_epoch, self._pass_done = -1, 0, True
        self.phase: Phase | None = None
        self._pending_epoch: int | None = None
        self.draws = torch.zeros(n, dtype=torch.int64)
        self.score_calls = 0
        self._uniform_loss_weights = torch.ones(n, dtype=torch.float32)

    def phase_of(self, epoch: int) -> Phase:
        """The phase of epoch ``epoch``: ``"warmup"``, ``"mine"`` or ``"uniform"`` (see :class:`Schedule`).

        Example:
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
            >>> m = HardMiner(nn.Linear(2, 2), DataLoader(ds, batch_size=2), warmup_epochs=1, uniform_after=3)
            >>> [m.phase_of(e) for e in range(4)]
            ['warmup', 'mine', 'mine', 'uniform']
        """
        return self._settings.schedule.phase_of(epoch)

    def rescore_due(self, epoch: int) -> bool:
        """Whether a mining epoch ``epoch`` starts with a scoring pass (always when nothing was scored yet)."""
        return self._settings.schedule.rescore_due(epoch, scored=self._rescorer.table is not None)

    def rescore(self) -> pd.DataFrame | None:
        """Score and split the dataset now and set the weights of the next mining epochs; returns the table.

        In online mode (``rescore_every=None``) no model runs: the table comes from the scores given to
        :meth:`observe` (``None`` while nothing has been observed: the weights stay uniform).
        """
        if self._settings.schedule.online:
            found = self._rescorer.from_observed(self._observed, epoch=self.epoch, draws=self.draws)
            return self.table if found else None
        start = time.perf_counter()
        table = self._score(keep_probs=self._rescorer.keeps_probs)
        self._rescorer.from_scores(table, epoch=self.epoch, draws=self.draws, start=start)
        return self.table

    def _score(self, *, keep_probs: bool) -> pd.DataFrame:
        """The scoring pass: :func:`hardmine.score` of the model over :attr:`score_loader` with the scoring options."""
        s = self._settings
        options = replace(s.score_options, keep_probs=True) if keep_probs else s.score_options
        table = score(self.model, self.score_loader, options=options, **s.score_naming)
        self.score_calls += 1
        return table

    def observe(self, indices: Tensor, outputs: Tensor, targets: Tensor | None = None) -> None:
        """Record the training step's own per-sample scores; online mode (``rescore_every=None``) mines from them.

        Call it once per batch with the batch's dataset indices (``indices=True`` yields them first) and either the
        per-sample losses (``loss_fn(..., reduction="none")``, detached for you) or the logits and targets (then
        every score column is recorded: ``label_prob``, ``confidence``, ``margin``, ``entropy``, ``loss``, ``pred``
        and the label). Nothing waits for the device: the values are scattered into ``(N,)`` buffers on the
        device of ``outputs``.

        At the start of every mining epoch the online miner splits and weighs the latest observation of every sample,
        aged and decayed toward the mean (``half_life``), as it would a scored table; a sample never observed gets
        the largest weight (see :mod:`hardmine.feedback.rescoring`). Observations are kept in :meth:`state_dict`.

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

    @property
    def table(self) -> pd.DataFrame | None:
        """The latest scored and split table, with ``suspect``, ``weight``, ``loss_weight`` and ``drawn`` columns."""
        return self._rescorer.current(self.draws)

    @property
    def history(self) -> pd.DataFrame:
        """One row per scoring pass; the last row's draw counts run up to now."""
        return self._rescorer.history.frame(self._rescorer.table, self.draws)

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same in every phase), as ``len(loader)`` would say."""
        return len(self._draw.mine_loader)

    @property
    def sampler(self) -> HardSampler | ShareBatchSampler:
        """The sampler of mining epochs."""
        return self._draw.sampler

    @property
    def _uniform_sampler(self) -> HardSampler | ShareBatchSampler:  # read by tests/hf_run.py and lightning_ddp_run
        return self._draw.uniform

    @property
    def dataset(self) -> Any:
        """The training loader's dataset, so code that reads ``loader.dataset`` (e.g. ``len(loader.dataset)``) works."""
        return self._loader.dataset

    @property
    def batch_size(self) -> int | None:
        """The training loader's batch size."""
        return self._loader.batch_size

    @property
    def drop_last(self) -> bool:
        """The training loader's ``drop_last``."""
        return self._loader.drop_last

    @property
    def score_loader(self) -> DataLoader:
        """The DataLoader the scoring passes read: ``score_loader=`` if given, else the training loader.

        :func:`hardmine.score` reads it too, so ``hm.score(model, miner)`` scores what the miner scores.
        """
        return self._loader if self._score_loader is None else self._score_loader

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
        self._pending_epoch = integer("epoch", epoch, min=0)

    def _begin_pass(self) -> tuple[DataLoader, HardSampler | ShareBatchSampler, Tensor]:
        """Start a pass: a new epoch (phase, scoring when due) or the epoch under way again; what to read from."""
        check_length(self._loader, self._n)
        if self._pending_epoch is not None:
            target = self._pending_epoch
        else:
            target = self._next_epoch if self._pass_done or self.phase is None else self.epoch
        self._pending_epoch = None
        if target != self.epoch or self.phase is None:
            self.epoch, self._next_epoch, self.phase = target, target + 1, self.phase_of(target)
            if self.phase == "mine" and self.rescore_due(target):
                self.rescore()
        self._pass_done = False
        self._draw.check_world()
        mine = self.phase == "mine"
        d = self._draw
        loader, sampler = (
            (d.mine_loader, d.sampler) if mine and self._mode.weighted_draw else (d.uniform_loader, d.uniform)
        )
        sampler.set_epoch(self.epoch)
        return loader, sampler, self._rescorer.loss_weights if mine else self._uniform_loss_weights

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
        s = self._settings
        if not self._mode.serves_sampler or s.shares.active or s.with_weights or s.indices:
            raise ValueError(
                "Expected a HardMiner with apply='sample', no positive_share/hard_share, with_weights=False and "
                "indices=False for as_sampler() (a sampler yields indices only), but got "
                f"apply={s.apply!r}, shares={s.shares.active}, with_weights={s.with_weights}, indices={s.indices}."
            )
        return MinerSampler(self)

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
            "sampling_weights": self.sampler.weights.clone(),
            **self._rescorer.state_dict(),  # draws_at_score, history, loss_weights, raw_weights, table, collapse_warned
            "score_calls": self.score_calls,
            "observed": self._observed.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` over any pass stopped early or set_epoch; a refused state changes nothing."""
        check_length(self._loader, self._n)
        check_state(state, self._n)  # a TypeError or ValueError before anything changes
        backup = self.state_dict()
        try:
            self._restore(state)
        except Exception:
            self._restore(backup)
            raise

    def _restore(self, state: Mapping[str, Any]) -> None:
        self._next_epoch = int(state["next_epoch"])
        self.epoch, self._pass_done, self._pending_epoch = self._next_epoch - 1, True, None  # next pass: next epoch
        self.phase = self.phase_of(self.epoch) if self.epoch >= 0 else None  # set_epoch(saved) repeats it, unscored
        self.draws, self.score_calls = state["draws"].clone(), int(state.get("score_calls", 0))
        if state.get("observed") is not None:
            self._observed.load_state_dict(state["observed"])
        self._rescorer.load_state_dict(state)

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
        s, table = self._settings, self._rescorer.table
        phase = f"{self.phase!r}" if self.phase is not None else "None (no pass yet)"
        last = self._rescorer.history.describe_last(table, score_calls=self.score_calls, by=s.split.by)
        start = self._pending_epoch if self._pending_epoch is not None else self._next_epoch
        device = s.device
        if device is None:
            param = next(iter(self.model.parameters()), None)
            device = param.device if param is not None else "cpu"
        return (
            "HardMiner(\n"
            f"  phase={phase}, epoch={self.epoch}, N={self._n}, apply={s.apply!r}, "
            f"warmup_epochs={s.schedule.warmup_epochs},\n"
            f"  last re-score: {last},\n"
            f"  next re-score: {s.schedule.next_rescore(start, scored=table is not None)},\n"
            f"  sampler={self._draw.describe()},\n"
            f"  device={device},\n"
            ")"
        )
