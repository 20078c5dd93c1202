"""The settings of a :class:`hardmine.HardMiner`, as frozen objects that check themselves once, when they are built.

:class:`HardMiner` takes its options as keyword arguments and gathers them here: the split rule (what is hard), the
weight rule (how much a hard sample weighs), the schedule (which epochs mine and which re-score), the batch shares, and
:class:`MinerSettings` around them with the remaining options (how the weights are applied, the draw, the batch
format). Every value is checked with :mod:`hardmine.core.validate`, so a bad value gets the same error here as in
every other hardmine function; a value that only makes sense with another (``positive_share`` with ``apply``) is
checked where both are known. The objects are frozen: ``miner.settings`` reads them, and a different setting needs a
new miner (``dataclasses.replace`` builds a changed copy and checks it again).

Example:
    >>> rule = WeightRule(hard_weight=8.0)
    >>> rule.hard_weight, rule.options(has_labels=True, previous=None)["hard_weight"]
    (8.0, 8.0)
    >>> WeightRule(hard_weight=-3)
    Traceback (most recent call last):
        ...
    ValueError: `hard_weight` must be >= 0, got -3.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal, get_args

import pandas as pd
from torch import Tensor

from hardmine.analysis.dynamics import HARDNESS_COLUMNS, Dynamics
from hardmine.analysis.splitting import fixed_threshold
from hardmine.core.columns import default_threshold
from hardmine.core.validate import boolean, choice, fraction, integer, number, optional
from hardmine.feedback.apply_modes import APPLY_MODES, apply_mode
from hardmine.feedback.sampling import SamplerMode, _check_replicas
from hardmine.feedback.weighting import Balance, _check_balance
from hardmine.scoring.options import ScoreOptions

__all__ = [
    "BatchShares",
    "FrozenSetting",
    "MinerSettings",
    "Phase",
    "Schedule",
    "SettingsView",
    "SplitRule",
    "WeightRule",
]

Phase = Literal["warmup", "mine", "uniform"]
# Options of hm.sample_weights that the miner sets itself (from its own arguments, or from the previous weights).
_NAMING_KEYS = frozenset({"ids", "classes"})
_MINER_WEIGHT_KEYS = frozenset({"previous", "momentum", "floor", "balance", "labels", "dtype"})


def _set(obj: Any, name: str, value: Any) -> None:
    """Store a checked (converted) value on a frozen dataclass."""
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class SplitRule:
    """What makes a sample hard: the arguments of :func:`hardmine.split` that the miner passes on every scoring.

    Args:
        threshold: the hardness threshold on ``by``; ``None`` for the column's default (0.5 for ``label_prob``), or
            ``"per_class"``. Not together with ``hard_fraction``.
        by: the column that decides hardness (``None``: the task's own, see :func:`hardmine.split`), or a
            training-dynamics column of :data:`hardmine.analysis.dynamics.HARDNESS_COLUMNS` (needs ``dynamics``;
            ``variability``, ``correctness`` and ``forgetting`` have no default threshold). A column without a default
            threshold (``loss``, ``entropy``, a column of your own) needs ``threshold`` or ``hard_fraction``.
        hard_fraction: call the hardest fraction of samples hard instead, in ``[0, 1]``.
        positive: the class (or classes) of interest, as for :func:`hardmine.split`.

    Example:
        >>> SplitRule(threshold=0.7).column(None)
        (None, 0.7)
        >>> SplitRule(by="aum").column(None)   # no dynamics epoch yet: label_prob with its default threshold
        ('label_prob', None)
    """

    threshold: float | Literal["per_class"] | None = None
    by: str | None = None
    hard_fraction: float | None = None
    positive: int | list[int] | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.hard_fraction is not None:
            raise ValueError(
                "Expected only one of `threshold` and `hard_fraction`, but got both "
                f"(threshold={self.threshold!r}, hard_fraction={self.hard_fraction!r})."
            )
        if isinstance(self.threshold, str):
            if self.threshold != "per_class":  # in hardmine.core.validate's words, naming all three kinds
                raise ValueError(f"`threshold` must be a real number, 'per_class' or None, got {self.threshold!r}")
        else:
            _set(self, "threshold", optional(number, "threshold", self.threshold))
        _set(self, "hard_fraction", optional(fraction, "hard_fraction", self.hard_fraction))
        if self.by is not None and not isinstance(self.by, str):
            raise TypeError(f"`by` must be a column name (str) or None, got {type(self.by).__name__} {self.by!r}")
        if isinstance(self.threshold, float) and self.by is not None:
            # The check hm.split makes, now rather than at the first scoring (with `by=None` the column is the
            # task's own, known once the model has been scored).
            fixed_threshold(self.threshold, self.by, pd.DataFrame())
        if self.by is not None and default_threshold(self.by) is None and self.threshold is self.hard_fraction is None:
            # hm.split would refuse it at the first scoring, an epoch or more into training: refuse it now
            raise ValueError(f"Column `{self.by}` has no default threshold: pass `threshold=` or `hard_fraction=`.")

    @property
    def dynamic(self) -> bool:
        """Whether ``by`` is a training-dynamics column (the miner then needs ``dynamics``)."""
        return self.by in HARDNESS_COLUMNS

    def check_dynamics(self, dynamics: Any, num_samples: int) -> None:
        """Raise unless ``dynamics`` is a :class:`hardmine.Dynamics` over ``num_samples`` samples, or allowed None."""
        if dynamics is not None and not isinstance(dynamics, Dynamics):
            raise TypeError(
                f"Expected argument `dynamics` to be a hardmine Dynamics or None, but got {type(dynamics).__name__}."
            )
        if dynamics is not None and dynamics.num_samples != num_samples:
            raise ValueError(
                f"Expected argument `dynamics` over the loader's {num_samples} samples, but it has num_samples="
                f"{dynamics.num_samples}."
            )
        if self.dynamic and dynamics is None:
            raise ValueError(
                f"Expected argument `dynamics` (a Dynamics your loop fills) with by={self.by!r}, a training-"
                "dynamics column, but got None."
            )

    def column(self, summary: pd.DataFrame | None) -> tuple[str | None, Any]:
        """``(by, threshold)`` for one scoring, given the dynamics summary (``None`` before its first epoch).

        A dynamics column falls back to ``label_prob`` (default threshold, ``"per_class"`` kept) until every sample
        has been seen in a recorded epoch.
        """
        if not self.dynamic or (summary is not None and bool((summary["epochs"] > 0).all())):
            return self.by, self.threshold
        return "label_prob", self.threshold if isinstance(self.threshold, str) else None


@dataclass(frozen=True)
class WeightRule:
    """How the split becomes per-sample weights: the options the miner passes to :func:`hardmine.weights`.

    Args:
        hard_weight: weight of a hard sample relative to ``easy_weight`` (within a class, see ``balance``); >= 0, the
            rule of :func:`hardmine.sample_weights` (0 draws hard samples only through the floor).
        easy_weight: weight of an easy sample; >= 0.
        floor: the smallest weight any sample gets, relative to the largest of its class, in ``[0, 1]``.
        momentum: ``w = momentum * previous + (1 - momentum) * new`` across re-scorings, in ``[0, 1)``.
        balance: ``"label"``, ``"polarity"`` or ``None``, as for :func:`hardmine.weights`.
        weight_kwargs: more options for :func:`hardmine.weights` (e.g. ``{"by": "label_prob", "gamma": 2.0}``), held
            read-only; not ``previous``, ``momentum``, ``floor``, ``balance``, ``labels`` or ``dtype``, which the miner
            sets.

    Example:
        >>> WeightRule(balance=None, weight_kwargs={"by": "loss"}).options(has_labels=True, previous=None)
        {'floor': 0.05, 'balance': None, 'by': 'loss'}
    """

    hard_weight: float = 4.0
    easy_weight: float = 1.0
    floor: float = 0.05
    momentum: float = 0.0
    balance: Balance | None = "label"
    weight_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _set(self, "hard_weight", number("hard_weight", self.hard_weight, min=0))
        _set(self, "easy_weight", number("easy_weight", self.easy_weight, min=0))
        _set(self, "floor", fraction("floor", self.floor))
        _set(self, "momentum", fraction("momentum", self.momentum, open_high=True))
        _check_balance(self.balance)  # the message hm.sample_weights gives for the same value
        kwargs = self.weight_kwargs
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"`weight_kwargs` must be a mapping or None, got {type(kwargs).__name__} {kwargs!r}")
        bad = sorted(set(kwargs) & _MINER_WEIGHT_KEYS)
        if bad:
            raise ValueError(
                f"Expected `weight_kwargs` without {bad}: pass those as HardMiner's own options "
                "(floor, momentum, balance) or leave them to the miner."
            )
        _set(self, "weight_kwargs", MappingProxyType(dict(kwargs)))

    def options(self, *, has_labels: bool | None, previous: Tensor | None) -> dict[str, Any]:
        """Keyword arguments for :func:`hardmine.weights`.

        Args:
            has_labels: ``False`` when the table has no labels (``balance="label"`` then balances nothing).
            previous: the previous raw weights, float64 ``(N,)``, for ``momentum``; ``None`` before the first.
        """
        balance = None if self.balance == "label" and has_labels is False else self.balance
        options: dict[str, Any] = {"floor": self.floor, "balance": balance, **self.weight_kwargs}
        if "by" not in options:  # per-group weights from the split; `by` switches to weights from a score
            options.setdefault("hard_weight", self.hard_weight)
            options.setdefault("easy_weight", self.easy_weight)
        if self.momentum > 0 and previous is not None:
            options["previous"] = previous
            options["momentum"] = self.momentum
        return options


@dataclass(frozen=True)
class Schedule:
    """Which epochs warm up, mine and return to uniform, and which mining epochs start with a scoring pass.

    Args:
        rescore_every: re-score every this many epochs (counted from the end of the warm-up), a callable
            ``rescore_every(epoch) -> bool``, or ``None`` (online mining: no scoring pass, a new table from the
            observed losses at every mining epoch).
        warmup_epochs: uniform epochs before mining starts, ``>= 0``.
        uniform_after: epoch from which sampling is uniform again, ``>= warmup_epochs``, or ``None``.

    Example:
        >>> s = Schedule(rescore_every=2, warmup_epochs=1, uniform_after=6)
        >>> [s.phase_of(e) for e in (0, 1, 6)], [s.rescore_due(e, scored=True) for e in (1, 2, 3)]
        (['warmup', 'mine', 'uniform'], [True, False, True])
    """

    rescore_every: int | Callable[[int], bool] | None = 1
    warmup_epochs: int = 1
    uniform_after: int | None = None

    def __post_init__(self) -> None:
        if self.rescore_every is not None and not callable(self.rescore_every):
            _set(self, "rescore_every", integer("rescore_every", self.rescore_every, min=1))
        _set(self, "warmup_epochs", integer("warmup_epochs", self.warmup_epochs, min=0))
        try:
            _set(self, "uniform_after", optional(integer, "uniform_after", self.uniform_after, min=self.warmup_epochs))
        except ValueError as error:
            raise ValueError(
                f"{error} (warmup_epochs={self.warmup_epochs}: mining cannot end before it starts)"
            ) from None

    @property
    def online(self) -> bool:
        """Online mining: no scoring pass, the observed losses make the table."""
        return self.rescore_every is None

    def phase_of(self, epoch: int) -> Phase:
        """The phase of epoch ``epoch``: ``"warmup"``, ``"mine"`` or ``"uniform"``."""
        if epoch < self.warmup_epochs:
            return "warmup"
        if self.uniform_after is not None and epoch >= self.uniform_after:
            return "uniform"
        return "mine"

    def rescore_due(self, epoch: int, *, scored: bool) -> bool:
        """Whether mining epoch ``epoch`` starts with a scoring pass; always when nothing was ``scored`` yet."""
        if not scored or self.rescore_every is None:
            return True
        if callable(self.rescore_every):
            return bool(self.rescore_every(epoch))
        return (epoch - self.warmup_epochs) % self.rescore_every == 0

    def next_rescore(self, start: int, *, scored: bool) -> str:
        """The epoch of the next scoring pass from epoch ``start`` on, in words.

        Example:
            >>> Schedule(rescore_every=3).next_rescore(2, scored=True)
            'epoch 4 (every 3 epochs)'
        """
        start = max(start, self.warmup_epochs)
        uniform = f"none (uniform from epoch {self.uniform_after})"
        if self.uniform_after is not None and start >= self.uniform_after:
            return uniform
        if not scored:
            return f"epoch {start} (the first mining epoch)"
        every = self.rescore_every
        if callable(every):
            return f"when rescore_every(epoch) says so, from epoch {start}"
        if every is None:  # online mining: a new table at every mining epoch
            return f"epoch {start} (every mining epoch)"
        nxt = start + (-(start - self.warmup_epochs)) % every
        if self.uniform_after is not None and nxt >= self.uniform_after:
            return uniform
        return f"epoch {nxt} (every {every} epoch{'s' if every != 1 else ''})"


@dataclass(frozen=True)
class BatchShares:
    """Shares of every mining batch kept for positive and for hard samples (see ``ShareBatchSampler``).

    Args:
        positive_share: share kept for positives, in ``[0, 1]``; ``None`` is 0.
        hard_share: share kept for hard samples, in ``[0, 1]``; ``None`` is 0. The two sum to at most 1.

    Example:
        >>> BatchShares(positive_share=0.25).active, BatchShares().active
        (True, False)
    """

    positive_share: float | None = 0.0
    hard_share: float | None = 0.0

    def __post_init__(self) -> None:
        for name in ("positive_share", "hard_share"):
            _set(self, name, optional(fraction, name, getattr(self, name)) or 0.0)
        if self.positive_share + self.hard_share > 1:  # type: ignore[operator]
            raise ValueError(
                f"Expected `positive_share + hard_share` <= 1, but got {self.positive_share} + {self.hard_share}."
            )

    @property
    def active(self) -> bool:
        """Whether any share applies (batches are then drawn by ``ShareBatchSampler``)."""
        return bool(self.positive_share) or bool(self.hard_share)


@dataclass(frozen=True)
class MinerSettings:
    """Every setting of a :class:`hardmine.HardMiner`, checked together once; ``miner.settings`` holds it.

    The scoring options (``device``, ``amp``, ``progress``, ``score_kwargs``) are passed on to :func:`hardmine.score`,
    which checks them. ``half_life`` is checked by :class:`hardmine.ObservedScores`; ``exclude_label_issues`` by the
    label-issue policy (it needs the dataset).

    Example:
        >>> MinerSettings(num_samples=64).apply, MinerSettings(num_samples=64, apply="loss").with_weights
        ('sample', True)
    """

    num_samples: int
    split: SplitRule = field(default_factory=SplitRule)
    weights: WeightRule = field(default_factory=WeightRule)
    schedule: Schedule = field(default_factory=Schedule)
    shares: BatchShares = field(default_factory=BatchShares)
    apply: str = "sample"
    sampler_mode: SamplerMode = "replacement"
    with_weights: bool | None = None
    indices: bool = False
    seed: int = 0
    exclude_label_issues: Any = False
    half_life: float | None = 2.0
    num_replicas: int | None = None
    rank: int | None = None
    device: Any = None
    amp: Any = False
    progress: Any = True
    score_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: The scoring options as one checked :class:`~hardmine.scoring.options.ScoreOptions` (derived).
    score_options: ScoreOptions = field(init=False, repr=False, compare=False)
    #: ``ids``/``classes`` from ``score_kwargs``: they name the rows and go to :func:`hardmine.score` as keywords.
    score_naming: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        choice("apply", self.apply, APPLY_MODES)
        choice("sampler_mode", self.sampler_mode, get_args(SamplerMode))
        apply_mode(self.apply).check(self)
        if self.shares.active and self.schedule.online:
            raise ValueError(
                "Expected no `positive_share`/`hard_share` with rescore_every=None (online mode weighs the observed "
                "samples only; the share batches need every sample's group), but got a share."
            )
        _set(self, "num_samples", integer("num_samples", self.num_samples, min=1))
        _set(self, "seed", integer("seed", self.seed))
        default = apply_mode(self.apply).yields_weights
        _set(self, "with_weights", default if self.with_weights is None else boolean("with_weights", self.with_weights))
        _set(self, "indices", boolean("indices", self.indices))
        _check_replicas(self.num_replicas, self.rank)  # the message HardSampler gives for the same values
        kwargs = self.score_kwargs
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"`score_kwargs` must be a mapping or None, got {type(kwargs).__name__} {kwargs!r}")
        _set(self, "score_kwargs", MappingProxyType(dict(kwargs)))
        # The pass's options in one checked object, built once: a bad scoring option fails here, not at the first
        # re-scoring. `ids` and `classes` name the rows and are not options of the pass.
        naming = {k: v for k, v in kwargs.items() if k in _NAMING_KEYS}
        options = {k: v for k, v in kwargs.items() if k not in _NAMING_KEYS}
        _set(self, "score_naming", MappingProxyType(naming))
        _set(
            self,
            "score_options",
            ScoreOptions(device=self.device, amp=self.amp, progress=self.progress, **options),
        )


class FrozenSetting:
    """A read-only :class:`hardmine.HardMiner` attribute that reads one of its settings (``miner.hard_weight``).

    Assigning to it raises :class:`AttributeError`, saying that the settings are frozen and how to get a miner with
    another value: the settings are checked together when the miner is built, and a changed value (``apply``, a
    weight) would have to rebuild the samplers, loaders and weights that came from it.

    Args:
        path: where the value is in ``miner.settings`` (``"weights.hard_weight"``), or, with ``on_miner``, the name of
            the miner's private attribute without its underscore (``"loader"`` reads ``miner._loader``).
        on_miner: read the miner's own attribute rather than its settings.
    """

    def __init__(self, path: str, *, on_miner: bool = False) -> None:
        self.path = path
        self.name = path.rsplit(".", 1)[-1]
        self._read = attrgetter(f"_{path}" if on_miner else f"settings.{path}")
        self._shown = f"miner.{self.name}" if on_miner else f"miner.settings.{path}"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else self._read(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        build = (
            "HardMiner(model, new_loader, ...)"
            if self.name == "loader"
            else f"HardMiner(model, loader, ..., {self.name}=...)"
        )
        raise AttributeError(
            f"HardMiner settings are frozen: `{self.name}` was checked with the others when the miner was built, and "
            f"its samplers, loaders and weights were made from them, so `miner.{self.name} = {value!r}` cannot take "
            f"effect. Build a new miner with the value you want: {build} (the value in use is `{self._shown}`)."
        )


class SettingsView:
    """The settings of a :class:`hardmine.HardMiner` under their argument names, read-only (``miner.apply``).

    Every attribute reads :attr:`settings` (or the loader and dynamics the miner was built with); assigning one raises
    :class:`AttributeError` (see :class:`FrozenSetting`).
    """

    _settings: MinerSettings

    @property
    def settings(self) -> MinerSettings:
        """The settings, frozen and checked once (``miner.settings.split.threshold``)."""
        return self._settings

    loader = FrozenSetting("loader", on_miner=True)
    dynamics = FrozenSetting("dynamics", on_miner=True)
    threshold = FrozenSetting("split.threshold")
    by = FrozenSetting("split.by")
    hard_fraction = FrozenSetting("split.hard_fraction")
    positive = FrozenSetting("split.positive")
    hard_weight = FrozenSetting("weights.hard_weight")
    easy_weight = FrozenSetting("weights.easy_weight")
    floor = FrozenSetting("weights.floor")
    momentum = FrozenSetting("weights.momentum")
    balance = FrozenSetting("weights.balance")
    weight_kwargs = FrozenSetting("weights.weight_kwargs")
    rescore_every = FrozenSetting("schedule.rescore_every")
    warmup_epochs = FrozenSetting("schedule.warmup_epochs")
    uniform_after = FrozenSetting("schedule.uniform_after")
    positive_share = FrozenSetting("shares.positive_share")
    hard_share = FrozenSetting("shares.hard_share")
    apply = FrozenSetting("apply")
    sampler_mode = FrozenSetting("sampler_mode")
    num_samples = FrozenSetting("num_samples")
    with_weights = FrozenSetting("with_weights")
    indices = FrozenSetting("indices")
    seed = FrozenSetting("seed")
    exclude_label_issues = FrozenSetting("exclude_label_issues")
    half_life = FrozenSetting("half_life")
    device = FrozenSetting("device")
    amp = FrozenSetting("amp")
    progress = FrozenSetting("progress")
    score_kwargs = FrozenSetting("score_kwargs")
    num_replicas = FrozenSetting("num_replicas")
    rank = FrozenSetting("rank")
