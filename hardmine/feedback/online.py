"""Scores observed during training: each sample's latest per-sample loss, kept on the device, with a staleness rule.

:class:`HardMiner` in online mode (``rescore_every=None``) mines from these instead of a scoring pass: the training
step already computes every drawn sample's loss, so :meth:`HardMiner.observe` scatters it into a buffer of ``N``
entries on the training device (no host synchronisation per call), and the miner turns the buffer into a table at the
start of every mining epoch.

Staleness. A sample's score is as old as the last time it was drawn, and a sample with a low weight is drawn rarely,
so its easy score would otherwise stay frozen while the model changes (it may be forgotten). The rule:

- **age**: a score observed during epoch ``e`` has age ``E - 1 - e`` when the table is built at the start of epoch
  ``E`` (0 for scores of the epoch that just ended).
- **decay toward the mean**: every score column ``x`` (loss, label probability, margin, ...) of an observed sample is
  replaced by ``mean(x) + (x - mean(x)) * 0.5 ** (age / half_life)``, the mean over the observed samples. An old easy
  score drifts back toward the average, so the sample's weight rises and it is drawn (and re-observed) again; an old
  hard score drifts down likewise. ``half_life=None`` turns the decay off.
- **never observed**: a sample with no score yet gets the largest weight of the observed samples (its label is not
  known yet, so not per class), so it is drawn soon; its row in the table has ``seen`` False and no scores. A
  suspected label issue not observed yet weighs no more than the lightest observed sample instead.
- **observed with logits, then with losses only**: the loss is the latest, while ``pred``, ``confidence``,
  ``margin`` and ``entropy`` keep the values of the last observation that had logits.

Under ``torchrun`` each rank observes the samples it trains on; at the start of every epoch the miner merges the
ranks' buffers (one ``all_gather`` of ``8 x N`` float64 values and two scalar reductions; the latest observation of
each sample wins: the one of the latest epoch, and of the lowest rank among those of that epoch), so every rank
builds the same table and draws from the same weights.

Example:
    >>> obs = ObservedScores(4, half_life=1.0)
    >>> obs.observe(torch.tensor([0, 1]), torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]), stamp=0)
    >>> obs.observe(torch.tensor([2]), torch.tensor([[0.0, 0.0]]), torch.tensor([1]), stamp=1)
    >>> t = obs.table(now=2)
    >>> t["seen"].tolist(), t["age"].tolist()
    ([True, True, True, False], [1.0, 1.0, 0.0, nan])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor

from hardmine.core import validate
from hardmine.core._tensors import check_float_tensor, check_index_vector, check_range
from hardmine.core.distributed import get_world_size
from hardmine.core.validate import choice
from hardmine.scoring.measures import compute_measures

__all__ = ["SCORE_COLUMNS", "ObservedScores", "decay_toward_mean"]

#: The float score columns an observation records (``loss`` always; the others from logits).
SCORE_COLUMNS: tuple[str, ...] = ("confidence", "label_prob", "margin", "entropy", "loss")
_NEVER = float("-inf")


def decay_toward_mean(values: Tensor, age: Tensor, half_life: float | None) -> Tensor:
    """``mean + (values - mean) * 0.5 ** (age / half_life)``, the mean over the finite entries of ``values``.

    Args:
        values: float tensor ``(M,)`` of scores (NaN where a sample has none of this kind).
        age: float tensor ``(M,)`` of ages in epochs, ``>= 0``.
        half_life: epochs after which a score is halfway back to the mean; ``None`` returns ``values``.

    Returns:
        Float tensor ``(M,)``, same dtype and device as ``values``.

    Example:
        >>> decay_toward_mean(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0]), half_life=1.0)
        tensor([0.0000, 1.5000])
    """
    if half_life is None or values.numel() == 0:
        return values
    return _decay_where(values, torch.isfinite(values), age, half_life)


def _decay_where(values: Tensor, where: Tensor, age: Tensor, half_life: float) -> Tensor:
    """``values`` with the entries under the bool mask ``where`` decayed toward their mean; the others as they are.

    The mean is over the masked entries and the factor is ``0.5 ** (age / half_life)``, the same operations in the same
    order as :func:`decay_toward_mean` on the masked values, so the result is the same bit for bit.
    """
    mean = values[where].mean() if bool(where.any()) else values.new_zeros(())
    factor = torch.pow(0.5, age.to(values.dtype) / half_life)
    return torch.where(where, mean + (values - mean) * factor, values)


def _ages(stamp: Tensor, now: float) -> Tensor:
    """Ages in epochs at epoch ``now`` of observations stamped ``stamp``, float64 ``(N,)``; NaN where never seen."""
    return torch.where(stamp > _NEVER, (float(now) - 1.0 - stamp).clamp_min(0.0), float("nan"))


def _refuse_bad_losses(name: str, losses: Tensor, indices: Tensor) -> None:
    """A :class:`ValueError` if a CPU tensor of per-sample losses holds NaN or ``-inf`` (``+inf`` is a loss)."""
    bad = torch.isnan(losses) | (losses == float("-inf"))
    if bool(bad.any()):
        where = bad.nonzero()[:, 0][:10]
        raise ValueError(
            f"Expected per-sample `{name}` that are numbers (or +inf), but the samples with dataset indices "
            f"{indices[where].tolist()} have {losses[where].tolist()}: a NaN or -inf loss, from a step that diverged?"
        )


def _decayed(values: Tensor, seen: Tensor, age: Tensor, half_life: float | None) -> Tensor:
    """A copy of ``values`` whose observed finite entries are decayed toward their mean by :func:`decay_toward_mean`."""
    if half_life is None or values.numel() == 0:
        return values.clone()
    return _decay_where(values, seen & torch.isfinite(values), age, half_life)  # the mean over the seen, finite


class ObservedScores:
    """Each sample's latest observed scores, ``(N,)`` buffers on the device of the first observation.

    Args:
        num_samples: ``N``, the dataset's length.
        half_life: the staleness decay in epochs (see the module doc), ``> 0``, or ``None`` for none.

    Attributes:
        count: observations recorded so far (samples, counting repeats).
        num_classes: ``C`` of the observed logits, ``None`` until logits were observed (losses only).
    """

    def __init__(self, num_samples: int, *, half_life: float | None = 2.0) -> None:
        self.num_samples = validate.integer("num_samples", num_samples, min=1)
        self.half_life = validate.optional(validate.number, "half_life", half_life, min=0, min_open=True)
        self.count = 0
        self._placed = True  # False after loading a state with no buffers in use: the first observation places them
        self._merged_count = 0  # `count` at the last merge of the ranks (every rank's observations up to then)
        self.num_classes: int | None = None
        self._buffers: dict[str, Tensor] | None = None

    def _allocate(self, device: torch.device) -> dict[str, Tensor]:
        n = self.num_samples
        nan = torch.full((n,), float("nan"), dtype=torch.float32, device=device)
        buffers = {name: nan.clone() for name in SCORE_COLUMNS}
        buffers["label"] = torch.full((n,), -1, dtype=torch.int64, device=device)
        buffers["pred"] = torch.full((n,), -1, dtype=torch.int64, device=device)
        buffers["stamp"] = torch.full((n,), _NEVER, dtype=torch.float64, device=device)
        return buffers

    @property
    def device(self) -> torch.device | None:
        """Where the buffers live (``None`` before the first observation)."""
        return None if self._buffers is None else self._buffers["stamp"].device

    def observe(
        self, indices: Tensor, outputs: Tensor, targets: Tensor | None = None, *, stamp: float, name: str = "outputs"
    ) -> None:
        """Record a batch: per-sample losses ``(B,)``, or logits ``(B, C)`` (or ``(B,)`` binary) with ``targets``.

        A sample repeated in the batch keeps one of its observations (on the CPU the last; on an accelerator any one).
        On the CPU, where it is free, a NaN or ``-inf`` loss and a non-finite logit are refused (a ``ValueError``
        naming the samples); on an accelerator nothing is checked (that would cost a host synchronisation per batch),
        and the samplers rank a NaN loss as the largest.

        Args:
            indices: int tensor ``(B,)`` of dataset indices in ``[0, N)``, any integer dtype.
            outputs: float tensor: losses ``(B,)`` when ``targets`` is ``None``, else the model's logits.
            targets: class indices ``(B,)``, or ``None``.
            stamp: the epoch the observation belongs to (its age is measured from it).
            name: what the caller calls ``outputs``, for the error messages.

        Raises:
            TypeError: ``indices`` not an integer tensor, ``outputs`` not a float tensor, ``targets`` not a tensor.
            ValueError: ``indices`` not one-dimensional, shapes that do not match, indices outside ``[0, N)`` or
                targets outside ``[0, C)`` (checked on the CPU), NaN or ``-inf`` losses or non-finite logits (on the
                CPU), logits with another number of classes than before. A refused batch changes nothing.
        """
        check_index_vector("indices", indices, "dataset indices")
        check_float_tensor(name, outputs, "losses or logits")
        if targets is not None and not isinstance(targets, torch.Tensor):
            raise TypeError(f"Expected argument `targets` to be a tensor of class indices, but got {type(targets)}.")
        b = indices.numel()
        out = outputs.detach()
        if self._buffers is not None and not self._placed:  # loaded onto the CPU: to where the observations are
            self._buffers = {k: v.to(out.device) for k, v in self._buffers.items()}
            self._placed = True
        device = out.device if self._buffers is None else self._buffers["stamp"].device
        idx = indices.to(device, torch.int64, non_blocking=True)
        check_range("indices", idx, self.num_samples)
        c: int | None = None
        if targets is None:
            if out.shape != (b,):
                raise ValueError(
                    f"Expected per-sample `{name}` of shape ({b},) (one per index), but got shape "
                    f"{tuple(out.shape)}; pass `targets` to observe logits."
                )
            if out.device.type == "cpu":  # free on the CPU only
                _refuse_bad_losses(name, out, idx)
            measures: dict[str, Tensor] = {"loss": out, "label_prob": torch.exp(-out)}
        else:
            if out.ndim not in (1, 2) or out.shape[0] != b:
                raise ValueError(
                    f"Expected `{name}` to be logits of shape ({b}, C) or ({b},) (one row per index), but got shape "
                    f"{tuple(out.shape)}."
                )
            if targets.numel() != b:
                raise ValueError(
                    f"Expected `targets` to be class indices of shape ({b},) (one per index), but got shape "
                    f"{tuple(targets.shape)}."
                )
            c = 2 if out.ndim == 1 or out.shape[1] == 1 else int(out.shape[1])
            if self.num_classes is not None and self.num_classes != c:
                raise ValueError(f"Expected `{name}` (logits) with {self.num_classes} classes as before, but got {c}.")
            measures = compute_measures(out, targets.to(out.device, non_blocking=True))
            if out.device.type == "cpu":  # free on the CPU only
                if not bool(measures["valid"].all()):
                    bad = (~measures["valid"]).nonzero()[:, 0][:10]
                    raise ValueError(
                        f"Expected `targets` to be class indices in [0, {c}), but the samples with dataset indices "
                        f"{idx[bad].tolist()} have targets {targets.reshape(-1)[bad].tolist()}."
                    )
                if not bool(measures["finite"].all()):
                    bad = (~measures["finite"]).nonzero()[:, 0][:10]
                    raise ValueError(
                        f"Expected finite `{name}` (logits), but the samples with dataset indices {idx[bad].tolist()} "
                        "have NaN or infinite logits."
                    )
            measures["label"] = targets.reshape(-1).to(out.device, torch.int64, non_blocking=True)
        if c is not None:
            self.num_classes = c
        if self._buffers is None:
            self._buffers = self._allocate(out.device)
        buffers = self._buffers
        for column, values in measures.items():
            if column in buffers:
                buffers[column].index_copy_(0, idx, values.reshape(-1).to(buffers[column].dtype))
        buffers["stamp"].index_fill_(0, idx, float(stamp))
        self.count += b

    def merge_ranks(self) -> None:
        """Under torch.distributed: every rank gets, for each sample, the latest observation of any rank.

        The latest by epoch (``stamp``); between ranks that observed a sample in the same epoch, the lowest rank's.
        ``count`` becomes every rank's observations together, each counted once however often the ranks merge.
        """
        if get_world_size() <= 1 or not dist.is_initialized():
            return
        device = self.device
        if device is None:
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
            self._buffers = self._allocate(device or torch.device("cpu"))
        buffers = self._buffers
        assert buffers is not None
        names = [*SCORE_COLUMNS, "label", "pred", "stamp"]
        stacked = torch.stack([buffers[k].to(torch.float64) for k in names])
        gathered = [torch.empty_like(stacked) for _ in range(get_world_size())]
        dist.all_gather(gathered, stacked)
        every = torch.stack(gathered)  # (W, K, N)
        latest = every[:, -1, :].argmax(dim=0)  # ties: the lowest rank
        pick = every.gather(0, latest[None, None, :].expand(1, len(names), -1))[0]
        for row, name in enumerate(names):
            buffers[name] = pick[row].to(buffers[name].dtype)
        classes = torch.tensor([self.num_classes or 0], device=stacked.device)
        dist.all_reduce(classes, op=dist.ReduceOp.MAX)
        self.num_classes = int(classes.item()) or None
        counts = torch.tensor([self.count - self._merged_count], device=stacked.device)  # each rank's since then
        dist.all_reduce(counts)
        self.count = self._merged_count = self._merged_count + int(counts.item())

    def seen(self) -> Tensor:
        """Bool tensor ``(N,)``: the samples observed at least once."""
        if self._buffers is None:
            return torch.zeros(self.num_samples, dtype=torch.bool)
        return self._buffers["stamp"] > _NEVER

    def scores(self, now: float, name: str = "loss") -> Tensor:
        """One score column as a float32 CPU tensor ``(N,)``, decayed by age at epoch ``now``; NaN where unknown.

        What :meth:`table` puts in column ``name``, without building the table (no pandas, one column).

        Args:
            now: the epoch the ages are measured at (see the module doc).
            name: one of :data:`SCORE_COLUMNS`.

        Example:
            >>> obs = ObservedScores(3, half_life=1.0)
            >>> obs.observe(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]), stamp=0)
            >>> obs.scores(now=1).tolist()[:2], obs.scores(now=2).tolist()[:2]
            ([1.0, 3.0], [1.5, 2.5])
        """
        choice("name", name, SCORE_COLUMNS)
        if self._buffers is None:
            return torch.full((self.num_samples,), float("nan"), dtype=torch.float32)
        stamp = self._buffers["stamp"].detach().cpu()
        return _decayed(self._buffers[name].detach().cpu(), stamp > _NEVER, _ages(stamp, now), self.half_life)

    def table(self, now: float) -> pd.DataFrame:
        """The observed scores as a table of ``N`` rows in dataset-index order, decayed by age at epoch ``now``.

        Columns: ``index``, ``label`` (``-1`` where unknown: never observed, or losses observed without targets),
        ``pred`` (``-1`` where unknown), ``confidence``, ``label_prob``, ``margin``, ``entropy``, ``loss`` (float32,
        decayed; NaN where unknown), ``seen`` (bool) and ``age`` (epochs, NaN for unseen). ``attrs["hardmine"]``
        holds ``num_classes``.
        """
        n = self.num_samples
        if self._buffers is None:
            b = self._allocate(torch.device("cpu"))
        else:
            b = {k: v.detach().cpu() for k, v in self._buffers.items()}
        seen = b["stamp"] > _NEVER
        age = _ages(b["stamp"], now)
        columns: dict[str, Any] = {"index": np.arange(n, dtype=np.int64)}
        columns["label"] = b["label"].numpy()
        columns["pred"] = b["pred"].numpy()
        for name in SCORE_COLUMNS:
            columns[name] = _decayed(b[name], seen, age, self.half_life).numpy()
        columns["seen"] = seen.numpy()
        columns["age"] = age.numpy()
        table = pd.DataFrame(columns)
        table.attrs["hardmine"] = {"num_classes": int(self.num_classes or 0)}
        return table

    def state_dict(self) -> dict[str, Any]:
        """Buffers (on the CPU), count and settings; loads with ``torch.load(..., weights_only=True)``."""
        return {
            "num_samples": self.num_samples,
            "half_life": self.half_life,
            "count": self.count,
            "num_classes": self.num_classes,
            "buffers": None
            if self._buffers is None
            else {k: v.detach().cpu().clone() for k, v in self._buffers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` onto the device of the buffers in use, else onto that of the next observation.

        With no buffers in use the state waits on the CPU, and the first observation moves it to its own device: a run
        resumed on a GPU keeps its buffers there.
        """
        if int(state["num_samples"]) != self.num_samples:
            raise ValueError(
                f"Expected observed scores for {self.num_samples} samples, but the state holds {state['num_samples']}."
            )
        self._placed = self.device is not None
        device = self.device or torch.device("cpu")
        self.count = self._merged_count = int(state["count"])
        self.num_classes = None if state["num_classes"] is None else int(state["num_classes"])
        buffers = state["buffers"]
        self._buffers = None if buffers is None else {k: v.to(device).clone() for k, v in buffers.items()}
