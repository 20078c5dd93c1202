"""From a scoring pass (or the observed losses) to the weights of a :class:`hardmine.HardMiner`'s next mining epochs.

:class:`Rescorer` is the miner's re-scoring state: the latest split table, the raw weights (for ``momentum``), the loss
weights, and the :class:`~hardmine.feedback.history.MiningHistory`. Each scoring goes through the same steps, by the
miner's settings:

1. join the training-dynamics columns (when ``dynamics`` has an epoch) and :func:`hardmine.split` by the split rule;
2. find the suspected label issues (:class:`~hardmine.feedback.label_policy.LabelIssuePolicy`);
3. weigh by the weight rule with :func:`hardmine.weights`, suspects capped at an easy weight;
4. let the ``apply`` mode turn the weights into the draw's sampling weights and the loss weights, and record the row.

The miner runs the model (its one scoring call) and hands the table over; online mining hands the
:class:`hardmine.ObservedScores` instead, and only the observed samples are split and weighed.

Online mining (``rescore_every=None``): at the start of every mining epoch the table is built from the latest
observation of every sample, aged by epochs and decayed toward the mean (``half_life``; see
:mod:`hardmine.feedback.online`); a sample never observed gets the largest weight so it is drawn soon. The table's
``seen`` and ``age`` columns say which scores are observed and how old they are, and it then goes through the same
split, weights and label-issue exclusion as a scored table (``by``, ``threshold``, ``balance``, ``momentum``,
``dynamics``). With losses alone the labels are unknown: ``label_prob`` is ``exp(-loss)`` (the probability of the
label for cross-entropy), and ``balance="label"`` needs the targets (pass logits and targets, or ``balance=None``).
Under ``torchrun`` each rank records its own batches and the ranks' buffers are merged at the start of every epoch
(the latest observation of each sample wins), so every rank draws from the same weights.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.analysis.dynamics import Dynamics, add_dynamics
from hardmine.analysis.splitting import default_by, split
from hardmine.core._state import frame_from_state, frame_to_state
from hardmine.core.columns import prob_columns
from hardmine.feedback.apply_modes import apply_mode
from hardmine.feedback.batching import IndexDraw, ShareDraw, table_masks
from hardmine.feedback.history import MiningHistory
from hardmine.feedback.label_policy import LabelIssuePolicy
from hardmine.feedback.miner_settings import MinerSettings
from hardmine.feedback.online import ObservedScores
from hardmine.feedback.weighting import HardSetCollapseWarning
from hardmine.feedback.weighting import weights as sample_weights

__all__ = ["Rescorer", "check_state"]


class Rescorer:
    """A miner's re-scoring state: turns each scored or observed table into the weights of the next mining epochs.

    Args:
        settings: the miner's settings (split rule, weight rule, ``apply``).
        policy: the label-issue policy.
        dynamics: the miner's :class:`hardmine.Dynamics`, or ``None``.
        draw: the miner's draw; :meth:`from_scores` and :meth:`from_observed` give it the new sampling weights.

    Attributes:
        table: the latest split table with ``suspect``, ``weight`` and ``loss_weight`` columns (``None`` before).
        raw_weights: float64 ``(N,)``, the latest weights before the ``apply`` mode (``None`` before).
        loss_weights: float32 ``(N,)``, the loss weights of mining epochs.
        history: the :class:`~hardmine.feedback.history.MiningHistory`.
        collapse_warned: whether :class:`hardmine.HardSetCollapseWarning` was shown (once per miner).
    """

    def __init__(
        self,
        settings: MinerSettings,
        policy: LabelIssuePolicy,
        dynamics: Dynamics | None,
        draw: IndexDraw | ShareDraw,
    ) -> None:
        n = policy.num_samples
        self.settings, self.policy, self.dynamics, self.draw = settings, policy, dynamics, draw
        self.mode = apply_mode(settings.apply)
        self.table: pd.DataFrame | None = None
        self.raw_weights: Tensor | None = None
        self.loss_weights = torch.ones(n, dtype=torch.float32)
        self.history = MiningHistory(n)
        self.collapse_warned = False

    @property
    def keeps_probs(self) -> bool:
        """Whether the scoring pass must add the class probabilities that the user did not ask for."""
        return self.policy.needs_probs and not self.settings.score_kwargs.get("keep_probs")

    def from_scores(self, table: pd.DataFrame, *, epoch: int, draws: Tensor, start: float) -> None:
        """Split and weigh a scoring pass's table; the new weights apply from the next mining epoch.

        Args:
            table: :func:`hardmine.score`'s table (with the class probabilities when :attr:`keeps_probs`).
            epoch: the epoch in progress, for the history.
            draws: the miner's draw counts so far, int64 ``(N,)``.
            start: ``time.perf_counter()`` when the scoring began, for the history's ``seconds``.
        """
        summary = self._dynamics_summary()
        table, by = self._split(table, summary)
        suspect = self.policy.suspects(table, summary)
        if self.keeps_probs:
            table = table.drop(columns=prob_columns(table))
        table["suspect"] = suspect.numpy()[table["index"].to_numpy()]
        has_labels = "label" in table.columns  # regression, multi-label, unlabeled: no class to balance
        self.raw_weights = self._weigh(table, suspect, has_labels=has_labels, previous=self.raw_weights)
        self._install(table, self.raw_weights, by, epoch=epoch, draws=draws, start=start)

    def from_observed(self, observed: ObservedScores, *, epoch: int, draws: Tensor) -> bool:
        """Online mining: split and weigh the observed samples; ``False`` (nothing changes) while none are observed.

        A sample never observed gets the largest weight of the observed ones, so it is drawn soon, unless it is a
        suspected label issue: that one weighs no more than the lightest observed sample.
        """
        start = time.perf_counter()
        found = _observed_rows(observed, epoch, self.settings.weights.balance)
        if found is None:
            return False
        full, rows = found
        summary = self._dynamics_summary()
        sub, by = self._split(full.iloc[rows].drop(columns=["seen", "age"]).reset_index(drop=True), summary)
        suspect = self.policy.suspects(sub, summary)
        sub["suspect"] = suspect.numpy()[rows]
        picked = torch.from_numpy(rows)
        previous = None if self.raw_weights is None else self.raw_weights[picked]  # momentum on these rows
        renumbered = sub.assign(index=np.arange(len(sub)))  # hm.sample_weights wants the rows as a dataset of their own
        w_seen = self._weigh(renumbered, suspect[picked], has_labels=None, previous=previous)
        w = torch.full((self.policy.num_samples,), float(w_seen.max()), dtype=torch.float64)
        w[picked] = w_seen
        unseen_suspect = suspect.clone()
        unseen_suspect[picked] = False
        if bool(unseen_suspect.any()):  # a suspect weighs no more than the lightest sample, observed or not
            lightest = w_seen[w_seen > 0]
            w[unseen_suspect] = float(lightest.min()) if lightest.numel() else 0.0
        self.raw_weights = w
        table = _observed_table(full, sub)
        table["suspect"] = suspect.numpy()  # dataset-index order, the observed and the others
        row = self._install(table, w, by, epoch=epoch, draws=draws, start=start)
        seen = full["seen"].to_numpy(dtype=bool)
        known = seen & (table["pred"].to_numpy() >= 0)
        row["accuracy"] = float((table["pred"] == table["label"]).to_numpy()[known].mean()) if known.any() else math.nan
        row["observed"] = int(seen.sum())
        return True

    def _dynamics_summary(self) -> pd.DataFrame | None:
        dyn = self.dynamics
        return dyn.summary() if dyn is not None and dyn.num_epochs > 0 else None

    def _split(self, table: pd.DataFrame, summary: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
        """``(split table, by)``: the dynamics columns joined, then :func:`hardmine.split` by the split rule.

        Without ``positive`` a multi-class (or unlabeled, regression, multi-label) table is split easy/hard only, as
        hm.split does: no class is made positive behind the user's back.
        """
        rule = self.settings.split
        if summary is not None:
            table = add_dynamics(table, summary)
        by, threshold = rule.column(summary)
        by = default_by(table) if by is None else by
        return split(table, threshold, by=by, hard_fraction=rule.hard_fraction, positive=rule.positive), by

    def _weigh(
        self, table: pd.DataFrame, suspect: Tensor, *, has_labels: bool | None, previous: Tensor | None
    ) -> Tensor:
        """Float64 weights ``(N,)`` of a split table by the weight rule, suspects capped by the label policy."""
        options = self.settings.weights.options(has_labels=has_labels, previous=previous)
        return self.policy.weigh(table, suspect, options, self._weights_warning_once)

    def _weights_warning_once(self, source: pd.DataFrame, **options: Any) -> Tensor:
        """:func:`hardmine.weights`, with its collapse warning once per miner rather than at every re-score."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HardSetCollapseWarning)
            w = sample_weights(source, **options)
        for warning in caught:
            if issubclass(warning.category, HardSetCollapseWarning):
                if self.collapse_warned:
                    continue
                self.collapse_warned = True
            warnings.warn(warning.message, warning.category, stacklevel=6)
        return w.detach().to("cpu", torch.float64)

    def _install(
        self, table: pd.DataFrame, w: Tensor, by: str, *, epoch: int, draws: Tensor, start: float
    ) -> dict[str, Any]:
        """Give the draw and the loss weights of the next mining epochs the weights ``w``; returns the history row."""
        sampling = self.mode.sampling(w)
        hard, positive = table_masks(table)
        self.draw.update(sampling, hard=hard, positive=positive)
        self.loss_weights = self.mode.loss_weights(w, self.draw).to(torch.float32)
        table = table.assign(weight=sampling.to(torch.float32).numpy(), loss_weight=self.loss_weights.numpy())
        row = self.history.record(
            table,
            previous=self.table,
            draws=draws,
            epoch=epoch,
            by=by,
            seconds=time.perf_counter() - start,
            dynamics_epochs=0 if self.dynamics is None else self.dynamics.num_epochs,
            suspect_method=self.policy.method,
        )
        self.table = table
        return row

    def current(self, draws: Tensor) -> pd.DataFrame | None:
        """A copy of the latest table with a ``drawn`` column (times drawn since it was made), or ``None``."""
        if self.table is None:
            return None
        return self.table.assign(drawn=self.history.period_draws(draws).numpy())

    def state_dict(self) -> dict[str, Any]:
        """The miner's state keys of this part: weights, table, history (plain values)."""
        return {
            **self.history.state_dict(),  # draws_at_score, history
            "loss_weights": self.loss_weights.clone(),
            "raw_weights": None if self.raw_weights is None else self.raw_weights.clone(),
            "table": None if self.table is None else frame_to_state(self.table),
            "collapse_warned": self.collapse_warned,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` and the draw's weights and masks (``state["sampling_weights"]``)."""
        self.history.load_state_dict(state)
        self.loss_weights = state["loss_weights"].clone()
        raw = state.get("raw_weights")
        self.raw_weights = None if raw is None else raw.clone()
        table = state["table"]
        if isinstance(table, pd.DataFrame):  # a state saved before 0.3 (loads with weights_only=False only)
            self.table = table.copy()
        else:
            self.table = None if table is None else frame_from_state(table)
        self.collapse_warned = bool(state.get("collapse_warned", False))
        hard, positive = table_masks(self.table) if self.table is not None else (None, None)
        self.draw.update(state["sampling_weights"], hard=hard, positive=positive)


def check_state(state: Mapping[str, Any], num_samples: int) -> None:
    """Raise unless ``state`` is a :meth:`hardmine.HardMiner.state_dict` for ``num_samples`` samples."""
    if not isinstance(state, Mapping):
        raise TypeError(f"Expected argument `state` to be a HardMiner.state_dict() mapping, got {type(state)}.")
    missing = [
        k for k in ("next_epoch", "draws", "loss_weights", "sampling_weights", "table", "history") if k not in state
    ]
    if missing:
        raise ValueError(f"Expected argument `state` to come from HardMiner.state_dict(), but it lacks {missing}.")
    if state["draws"].shape != (num_samples,):
        raise ValueError(
            f"Expected a state for the loader's {num_samples} samples, but it holds {state['draws'].shape[0]}; "
            "a miner resumes on the dataset it was saved with."
        )
    observed = state.get("observed")
    if isinstance(observed, Mapping) and int(observed.get("num_samples", num_samples)) != num_samples:
        raise ValueError(
            f"Expected a state for the loader's {num_samples} samples, but its observed scores are for "
            f"{observed['num_samples']}; a miner resumes on the dataset it was saved with."
        )


def _observed_rows(observed: ObservedScores, epoch: int, balance: str | None) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Online mode: ``(table of every sample, rows observed so far)`` after merging the ranks; ``None`` if none."""
    observed.merge_ranks()
    full = observed.table(now=max(epoch, 0))
    seen = full["seen"].to_numpy(dtype=bool)
    if not seen.any():
        return None
    rows = np.flatnonzero(seen)
    loss = full["loss"].to_numpy()
    nan = rows[np.isnan(loss[rows])]
    if nan.size:  # on an accelerator observe() does not check (it would wait for the device)
        raise ValueError(
            f"Expected finite observed losses, but the samples with dataset indices {nan[:10].tolist()} were observed "
            "with NaN (a diverged training step; on the CPU observe() refuses them): look at that step's logits."
        )
    infinite = rows[np.isinf(loss[rows])]
    if infinite.size:  # +inf is the largest loss: it counts as the largest finite one observed
        finite = loss[rows][np.isfinite(loss[rows])]
        full.loc[infinite, "loss"] = finite.max() if finite.size else np.finfo(np.float32).max
    if balance == "label" and not bool((full["label"].to_numpy()[rows] >= 0).all()):
        raise ValueError(
            "Expected the labels of the observed samples with balance='label', but observe() got losses "
            "without targets: call miner.observe(indices, logits, targets), or build the miner with "
            "balance=None."
        )
    return full, rows


def _observed_table(full: pd.DataFrame, split_rows: pd.DataFrame) -> pd.DataFrame:
    """Online mode: the table of every sample, with the split columns of the observed ones (``seen``, ``age`` kept)."""
    table = full[["index", "seen", "age"]].merge(split_rows, on="index", how="left")
    table["label"] = full["label"].to_numpy()
    table["pred"] = full["pred"].to_numpy()
    table["suspect"] = table["suspect"].fillna(False).astype(bool)
    return table
