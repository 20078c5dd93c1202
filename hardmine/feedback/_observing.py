"""The base of the samplers that plan from observed training losses.

:class:`~hardmine.feedback.pruning.PruningSampler` and :class:`~hardmine.feedback.priority.PrioritySampler` share the
dataset's length, each sample's latest observed training loss, the exclusion of the top losses, the epoch and the
ranks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sized
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Sampler

from hardmine.core import distributed
from hardmine.core.validate import integer, number, optional
from hardmine.feedback._epochs import DoubleShardingWarning, framework_sharding
from hardmine.feedback.online import ObservedScores

if TYPE_CHECKING:
    from hardmine.analysis.dynamics import Dynamics

__all__ = ["Exclude", "ObservingSampler", "dataset_length"]

#: ``exclude``: a fraction of the observed samples, or ``"auto"`` (those whose label the model finds less likely than
#: chance).
Exclude = float | Literal["auto"]


def dataset_length(data_source: Sized | int) -> int:
    """``N``: ``data_source`` itself when it is an int (``>= 1``), else ``len(data_source)``.

    Example:
        >>> dataset_length(5), dataset_length([1, 2, 3])
        (5, 3)
    """
    if isinstance(data_source, int) and not isinstance(data_source, bool):
        return integer("data_source", data_source, min=1)
    if isinstance(data_source, Sized):
        return integer("len(data_source)", len(data_source), min=1)
    raise TypeError(f"`data_source` must be a dataset with a length or an int, got {type(data_source).__name__}")


def _excluded_count(fraction: float, known: int) -> int:
    """How many of ``known`` samples the fraction ``exclude`` leaves out: ``round(fraction * known)``, but never all.

    >>> _excluded_count(0.4, 10), _excluded_count(0.99, 50), _excluded_count(0.6, 1)
    (4, 49, 0)
    """
    return max(0, min(round(fraction * known), known - 1))


class ObservingSampler(Sampler[int]):
    """A sampler that plans its draws from the training step's own losses (:meth:`observe`), without a scoring pass.

    Subclasses set the rest of their settings after calling ``__init__`` and implement ``__iter__`` and ``__len__``.

    Attributes:
        num_samples: ``N``.
        epoch: the epoch the next (or current) pass draws.
        observed: the :class:`ObservedScores` holding each sample's latest loss.
    """

    #: The keys of :meth:`_common_state`.
    _common_state_keys: tuple[str, ...] = ("num_samples", "epoch", "advance", "seed", "observed")

    def __init__(
        self,
        data_source: Sized | int,
        *,
        exclude: Exclude,
        warmup_epochs: int,
        dynamics: Dynamics | None,
        half_life: float | None,
        seed: int,
        num_replicas: int | None,
        rank: int | None,
        num_classes: int | None = None,
    ) -> None:
        n = dataset_length(data_source)
        self.num_samples = n
        if isinstance(exclude, str) and exclude != "auto":
            raise ValueError(f"`exclude` must be a fraction in [0, 1) or 'auto', got {exclude!r}")
        self.exclude: Exclude = (
            "auto" if exclude == "auto" else number("exclude", exclude, min=0.0, max=1.0, max_open=True)
        )
        self.num_classes = optional(integer, "num_classes", num_classes, min=2)
        self.warmup_epochs = integer("warmup_epochs", warmup_epochs, min=0)
        if dynamics is not None:
            from hardmine.analysis.dynamics import Dynamics

            if not isinstance(dynamics, Dynamics):
                raise TypeError(f"`dynamics` must be a hardmine.Dynamics or None, got {type(dynamics).__name__}")
            if dynamics.num_samples != n:
                raise ValueError(f"`dynamics` must cover {n} samples like the sampler, got {dynamics.num_samples}")
        self.dynamics = dynamics
        optional(number, "half_life", half_life, min=0.0, min_open=True)
        self.seed = integer("seed", seed, min=-(2**63), max=2**63 - 1)  # seed + epoch stays a torch seed
        self._num_replicas_arg = optional(integer, "num_replicas", num_replicas, min=1)
        self._rank_arg = optional(integer, "rank", rank, min=0)
        self.observed = ObservedScores(n, half_life=half_life)
        self.epoch = 0
        self._advance = False  # a pass was read to its end: the next pass is the next epoch, unless set_epoch
        self._double_warned = False

    def _replicas(self) -> tuple[int, int]:
        """``(num_replicas, rank)``: the arguments, else torch.distributed's world size and rank."""
        reps = self._num_replicas_arg if self._num_replicas_arg is not None else distributed.get_world_size()
        if self._rank_arg is not None:
            rank = self._rank_arg
        else:
            rank = 0 if reps == 1 else distributed.get_rank()
        if not 0 <= rank < reps:
            raise ValueError(f"`rank` must be in [0, num_replicas={reps}), got {rank}")
        return reps, rank

    def _warn_if_sharded_again(self, reps: int, frame: FrameType | None) -> None:
        """Warn once when this sampler shards over ``reps > 1`` ranks and a framework's wrapper shards it again."""
        if reps <= 1 or self._double_warned:
            return
        framework = framework_sharding(frame)
        if framework is not None:
            self._double_warned = True
            name = type(self).__name__
            warnings.warn(
                f"{name} shards its epoch over {reps} ranks and is iterated by {framework}, which shards the "
                f"indices again: each rank gets about 1/{reps * reps} of the epoch instead of 1/{reps}. Build it "
                "with num_replicas=1, rank=0 (every rank then draws the same epoch and the framework splits it), or "
                "let hardmine shard (Lightning: Trainer(use_distributed_sampler=False)).",
                DoubleShardingWarning,
                stacklevel=3,
            )

    def _share(self, order: Tensor) -> Tensor:
        """This rank's share of ``order`` (the whole epoch over every rank).

        As ``DistributedSampler`` does: padded to a multiple of ``num_replicas`` by wrapping around, then the
        positions ``rank, rank + num_replicas, ...``; disjoint, equally long shares.
        """
        reps, rank = self._replicas()
        if reps == 1 or order.numel() == 0:
            return order
        size = math.ceil(order.numel() / reps) * reps
        padded = order.repeat(math.ceil(size / order.numel()))[:size]
        return padded[rank::reps]

    def _next_pass(self) -> None:
        """Move to the next epoch if the last pass was read to its end without :meth:`set_epoch` since."""
        if self._advance:
            self.epoch += 1
            self._advance = False

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (planned from the losses observed so far)."""
        self.epoch = integer("epoch", epoch, min=0)
        self._advance = False

    def _losses(self, now: int) -> Tensor:
        """Every sample's observed loss decayed to epoch ``now``: float32 ``(N,)`` on the CPU, NaN if never observed.

        An observed NaN (unchecked on an accelerator) counts as ``+inf``, the largest loss.
        """
        loss = self.observed.scores(now=now)
        nan = torch.isnan(loss)
        if bool(nan.any()):
            loss = torch.where(nan & self.observed.seen().cpu(), float("inf"), loss)
        return loss

    @property
    def excludes(self) -> bool:
        """Whether any sample may be excluded (``exclude`` is ``"auto"`` or above 0)."""
        return self.exclude == "auto" or self.exclude > 0

    def _excluded(self, loss: Tensor, order: Tensor | None = None) -> Tensor:
        """Bool ``(N,)``: the observed samples left out, by loss or by lowest AUM.

        A fraction: the top ``exclude`` share of the observed samples. ``"auto"``: every observed sample whose loss
        exceeds ``log(C)`` (its label gets less than the chance probability ``1 / C``), or whose AUM is below 0 with
        ``dynamics`` (its label's logit is, on average over the epochs, below the largest other one).

        ``order``: the observed samples (all of them) already ranked by ``loss``, largest first (ties by index), as a
        caller that ranks them anyway has them; a fraction by loss is then its head, with no second pass over ``N``.
        """
        if order is not None and self.dynamics is None and self.exclude != "auto":  # the head of the ranking
            out = torch.zeros(self.num_samples, dtype=torch.bool)
            out[order[: _excluded_count(float(self.exclude), len(order))]] = True
            return out
        if self.dynamics is not None:
            badness = -self.dynamics.statistics()["aum"].detach().cpu().to(torch.float64)
            limit = 0.0
        else:
            badness = loss
            limit = math.log(self._classes()) if self.exclude == "auto" else 0.0
        known = ~torch.isnan(badness)  # an infinite loss is known, and the largest
        if self.exclude == "auto":
            return known & (badness > limit)
        k = _excluded_count(float(self.exclude), int(known.sum()))
        out = torch.zeros(self.num_samples, dtype=torch.bool)
        if k:  # the k largest, ties by dataset index (as the head of a ranking has them)
            ranked = torch.where(known, badness, float("-inf"))
            out[torch.sort(ranked, descending=True, stable=True).indices[:k]] = True
        return out

    def _classes(self) -> int:
        """``C`` for ``exclude="auto"``: ``num_classes``, else the class count of the observed logits."""
        c = self.num_classes or self.observed.num_classes
        if c is None:
            raise ValueError(
                "`exclude='auto'` needs the number of classes: pass `num_classes=` to the sampler, or observe logits "
                "with targets (`sampler.observe(idx, logits, y)`), not per-sample losses alone"
            )
        return c

    def observe(self, indices: Tensor, losses: Tensor, targets: Tensor | None = None) -> None:
        """Record the training step's losses: per-sample losses ``(B,)``, or logits ``(B, C)`` with ``targets``.

        Pass the *unweighted* per-sample losses (``reduction="none"``). The losses stay on their device (one
        ``index_copy_``, no host synchronisation). A sample drawn twice into one batch keeps one of its losses. A
        ``+inf`` loss ranks as the largest; on the CPU a NaN or ``-inf`` loss, or a non-finite logit, is refused (on an
        accelerator it is not checked, and a NaN loss ranks as the largest).

        Args:
            indices: int tensor ``(B,)`` of the batch's dataset indices (any integer dtype).
            losses: float tensor ``(B,)`` of per-sample losses, or the logits when ``targets`` is given.
            targets: class indices ``(B,)`` to compute the cross-entropy from logits, or ``None``.

        Raises:
            TypeError: ``indices``, ``losses`` or ``targets`` of the wrong type.
            ValueError: mismatched shapes; logits with another number of classes than ``num_classes``; on the CPU,
                indices outside ``[0, N)``, targets outside ``[0, C)``, NaN or ``-inf`` losses, non-finite logits. A
                refused batch records nothing.
        """
        if targets is not None and self.num_classes is not None and isinstance(losses, Tensor) and losses.ndim == 2:
            c = 2 if losses.shape[1] == 1 else int(losses.shape[1])
            if c != self.num_classes:
                raise ValueError(
                    f"Expected logits with num_classes={self.num_classes} classes, as the sampler was built with, but "
                    f"got {c}: `exclude='auto'` would measure the losses against log({self.num_classes})."
                )
        self.observed.observe(indices, losses, targets, stamp=float(self.epoch), name="losses")

    # ------------------------------------------------------------------ state

    def _common_state(self) -> dict[str, Any]:
        """The state every observing sampler keeps: sizes, epoch, seed and the observed losses (CPU tensors)."""
        return {
            "num_samples": self.num_samples,
            "epoch": self.epoch,
            "advance": self._advance,
            "seed": self.seed,
            "observed": self.observed.state_dict(),
        }

    def _load_common_state(self, state: Mapping[str, Any], keys: tuple[str, ...]) -> None:
        """Check that ``state`` has :meth:`_common_state`'s keys and ``keys``, for this ``N``; restore the common part.

        Raises:
            ValueError: a missing key, or a state saved for another number of samples.
        """
        missing = [k for k in (*self._common_state_keys, *keys) if k not in state]
        if missing:
            raise ValueError(f"`state` must come from {type(self).__name__}.state_dict(), but it lacks {missing}")
        if int(state["num_samples"]) != self.num_samples:
            raise ValueError(f"`state` must be saved for {self.num_samples} samples, got {state['num_samples']}")
        self.observed.load_state_dict(state["observed"])
        self.epoch = int(state["epoch"])
        self._advance = bool(state["advance"])
        self.seed = int(state["seed"])
