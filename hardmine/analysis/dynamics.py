"""Training dynamics: how each sample's scores move over the epochs of the one training run the user does anyway.

A single scoring pass of a model that has memorised its training set cannot tell a genuinely hard sample from a
mislabelled one. The trajectory can: a mislabelled sample is learned late, forgotten often and its assigned label's
logit stays below another class's for most of training (a low *area under the margin*, Pleiss et al. 2020); a
genuinely ambiguous sample flips back and forth (high *variability*, Swayamdipta et al. 2020, "dataset cartography").

:class:`Dynamics` records, on the device and without a host synchronisation per batch, running sums per sample (memory
``O(N)`` per statistic; the full per-epoch history only with ``keep_history=True``) and turns them into a table once,
in :meth:`Dynamics.summary`. What is made of that table (the data-map regions, the columns joined onto a score table)
is in :mod:`hardmine.analysis.cartography` (importable from here too).

Definitions (``e`` runs over the epochs in which the sample was seen):

- ``label_prob_e``: softmax probability of the sample's label at epoch ``e``.
- ``aum_margin_e``: the logit of the label minus the largest other logit at epoch ``e`` (logits, not probabilities,
  as Pleiss et al. define the area under the margin). A single binary logit ``z`` is read as class logits ``(0, z)``.
- ``correct_e``: 1 when the arg-max class is the label (the label's logit strictly above every other; a tie is wrong).

A sample updated several times in one epoch (sampling with replacement, ``DistributedSampler`` padding) gets the
**mean** of its updates for that epoch: ``label_prob_e``, ``aum_margin_e`` and ``correct_e`` (then a fraction in
``[0, 1]``) are averaged, and the epoch counts as *correct* for forgetting when more than half of its updates were
correct. A sample not seen in an epoch does not count that epoch at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor

from hardmine.analysis._renames import renamed_threshold
from hardmine.analysis.cartography import HARDNESS_COLUMNS, REGIONS, add_dynamics, dynamics_regions
from hardmine.core import validate
from hardmine.core.distributed import is_distributed
from hardmine.scoring.measures import as_class_logits

__all__ = ["HARDNESS_COLUMNS", "REGIONS", "SUMMARY_COLUMNS", "Dynamics", "add_dynamics", "dynamics_regions"]

#: Columns of :meth:`Dynamics.summary`, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "index",
    "id",
    "label",
    "mean_label_prob",
    "variability",
    "correctness",
    "aum",
    "forgetting",
    "learned",
    "epochs",
    "runner_up",
)

_STATE_VERSION = 1
# Per-epoch accumulators, folded into the running sums by end_epoch. `ep_sums` (N, 4) float64 is summed over the
# epoch's updates; `ep_max` (N, 3) int64 is max-reduced (deterministic under duplicates and across ranks).
_SUM_COLUMNS: tuple[str, ...] = ("count", "label_prob", "margin", "correct")
_MAX_COLUMNS: tuple[str, ...] = ("label", "runner_up", "bad")  # bad: 1 a label outside [0, C), 2 a non-finite logit
_MAX_EMPTY: tuple[int, ...] = (-1, -1, 0)


# Dynamics is about 370 lines, over the ~300 a class should have: a third is docstrings and doctests, and the rest is
# one accumulator whose methods (update, sync, end_epoch, the results, the checkpoint) all read and write the same
# buffer layout. Its pure parts are module functions below (_new_buffers, _epoch_problems, _fold_epoch); splitting
# the rest would spread that layout over several classes.
class Dynamics:
    """Per-sample training dynamics: mean label probability, variability, correctness, AUM, forgetting.

    Use it in the training loop with :func:`hardmine.with_indices`, which puts each sample's dataset index in front
    of its batch, whatever the shuffle or sampler::

        dyn = Dynamics(num_samples=len(train_set))
        for epoch in range(epochs):
            for idx, x, y in hm.with_indices(train_loader):
                logits = model(x)
                ...
                dyn.update(idx, logits, y)      # detached inside; stays on the device, no host sync
            dyn.end_epoch()
        table = dyn.summary()

    Buffers live on the device of the first ``update``'s logits (or ``device``): per statistic one ``(N,)`` tensor.
    Under ``torch.distributed``, :meth:`end_epoch` sums the epoch's accumulators over all ranks first, so every rank
    ends up with every sample's statistics (pass ``sync=False`` to keep them local).

    Args:
        num_samples: ``N``, the number of samples in the dataset; indices must lie in ``[0, N)``.
        keep_history: also keep every epoch's per-sample ``label_prob``, ``aum_margin`` and ``correct`` (memory
            ``O(N * epochs)``), available from :meth:`history`.
        ids: optional per-sample ids (length ``N``) for the ``id`` column of the tables; defaults to the index.
        device: where the buffers live; defaults to the device of the first update's logits.

    Example:
        >>> dyn = Dynamics(num_samples=3)
        >>> for epoch in range(2):
        ...     logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]) * (epoch + 1)
        ...     dyn.update(torch.tensor([0, 1, 2]), logits, torch.tensor([0, 0, 1]))
        ...     dyn.end_epoch()
        >>> dyn.summary()[["index", "label", "aum", "correctness", "epochs"]]
           index  label  aum  correctness  epochs
        0      0      0  3.0          1.0       2
        1      1      0 -3.0          0.0       2
        2      2      1 -1.5          0.0       2
    """

    def __init__(
        self,
        num_samples: int,
        *,
        keep_history: bool = False,
        ids: Sequence[Any] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        num_samples = validate.integer("num_samples", num_samples, min=1)
        keep_history = validate.boolean("keep_history", keep_history)
        if ids is not None and (isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__")):
            raise TypeError(f"Expected argument `ids` to be a sequence of one id per sample, but got {type(ids)}.")
        if ids is not None and len(ids) != num_samples:
            raise ValueError(f"Expected argument `ids` to have one id per sample ({num_samples}), but got {len(ids)}.")
        try:
            where = None if device is None else torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"Expected argument `device` to be a torch device such as 'cpu' or 'cuda', got {device!r}."
            ) from error
        self.num_samples = num_samples
        self.keep_history = bool(keep_history)
        self.ids = None if ids is None else [str(i) for i in ids]
        self.device: torch.device | None = where
        self.num_classes: int | None = None  # C of the logits updated so far (this process)
        self._placed = True  # False after loading a state with no device set: the next update places it
        self.num_epochs = 0
        self._buffers: dict[str, Tensor] = {}
        self._history: list[dict[str, Tensor]] = []
        if self.device is not None:
            self._allocate(self.device)

    def __repr__(self) -> str:
        """What it holds: samples, epochs recorded, samples seen, updates waiting for ``end_epoch``, device, history.

        Example:
            >>> dyn = Dynamics(num_samples=3, keep_history=True)
            >>> dyn
            Dynamics(num_samples=3, epochs=0, device=None (set by the first update), keep_history=True (0 epochs))
            >>> dyn.update(torch.tensor([0, 1]), torch.zeros(2, 2), torch.tensor([0, 1]))
            >>> dyn
            Dynamics(num_samples=3, epochs=0, seen=0, updated_this_epoch=2, device='cpu', keep_history=True (0 epochs))
            >>> dyn.end_epoch()
            >>> dyn
            Dynamics(num_samples=3, epochs=1, seen=2, updated_this_epoch=0, device='cpu', keep_history=True (1 epochs))
        """
        parts = [f"num_samples={self.num_samples}", f"epochs={self.num_epochs}"]
        if self._buffers:
            b = self._buffers
            parts.append(f"seen={int((b['epochs'] > 0).sum())}")  # a host sync: fine in a repr, never in a loop
            parts.append(f"updated_this_epoch={int((b['ep_sums'][:, 0] > 0).sum())}")
            parts.append(f"device={str(self.device)!r}")
        else:
            parts.append("device=None (set by the first update)")
        parts.append(
            f"keep_history={self.keep_history}" + (f" ({len(self._history)} epochs)" if self.keep_history else "")
        )
        return f"Dynamics({', '.join(parts)})"

    # ------------------------------------------------------------------ recording
    def _allocate(self, device: torch.device) -> None:
        self._buffers = _new_buffers(self.num_samples, device)
        self.device = device

    @torch.no_grad()
    def update(self, indices: Tensor, logits: Tensor, labels: Tensor) -> None:
        """Record one batch: the samples ``indices`` got ``logits`` for ``labels``.

        Runs on the device with ``index_add_``/``scatter_reduce_``; nothing is copied to the host. Bad labels, bad
        indices on an accelerator and non-finite logits are reported by :meth:`end_epoch`, once per epoch.

        Args:
            indices: int tensor ``(B,)``, dataset indices in ``[0, N)`` (from :func:`hardmine.with_indices`).
            logits: float tensor ``(B, C)``, ``(B,)`` or ``(B, 1)``; detached inside.
            labels: int tensor ``(B,)`` of class indices.
        """
        if not isinstance(indices, Tensor):
            indices = torch.as_tensor(indices)
        if indices.is_floating_point() or indices.dtype == torch.bool or indices.ndim != 1:
            raise TypeError(
                f"Expected argument `indices` to be an integer tensor of shape (B,), but got dtype "
                f"{indices.dtype} and shape {tuple(indices.shape)}."
            )
        if not isinstance(logits, Tensor):
            raise TypeError(f"Expected argument `logits` to be a torch.Tensor, but got {type(logits).__name__}.")
        if logits.ndim not in (1, 2):
            raise ValueError(f"Expected `logits` of shape (B, C), (B,) or (B, 1), but got shape {tuple(logits.shape)}.")
        if logits.shape[0] != indices.shape[0]:
            raise ValueError(
                f"Expected `indices` and `logits` to have the same number of samples, but got "
                f"{indices.shape[0]} indices and {logits.shape[0]} logits."
            )
        if indices.device.type == "cpu" and indices.numel() > 0:
            # A CPU index tensor (what with_indices yields) is checked here at no device cost.
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= self.num_samples:
                bad = indices[(indices < 0) | (indices >= self.num_samples)][:10].tolist()
                raise ValueError(f"Expected `indices` in [0, {self.num_samples}) (num_samples), but got {bad}.")
        if self.device is None:
            self._allocate(logits.device)
        elif not self._placed and logits.device != self.device:  # a loaded state: to where the updates come from
            self._buffers = {k: v.to(logits.device) for k, v in self._buffers.items()}
            self._history = [{k: v.to(logits.device) for k, v in h.items()} for h in self._history]
            self.device = logits.device
        self._placed = True
        b = self._buffers
        dev = b["epochs"].device
        z = as_class_logits(logits.detach().to(dev, non_blocking=True))
        z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
        if not isinstance(labels, Tensor):
            raise TypeError(f"Expected argument `labels` to be a torch.Tensor, but got {type(labels).__name__}.")
        raw = labels.to(dev, non_blocking=True).reshape(-1)
        if raw.shape[0] != z.shape[0]:
            raise ValueError(
                f"Expected `labels` to hold one class index per sample ({z.shape[0]}), but got shape "
                f"{tuple(labels.shape)}."
            )
        y = raw.long()
        num_classes = z.shape[1]
        if self.num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f"Expected logits with {self.num_classes} classes as in the earlier updates, but got {num_classes}."
            )
        self.num_classes = num_classes
        valid = (y >= 0) & (y < num_classes)
        if raw.is_floating_point():
            valid &= raw == y.to(raw.dtype)
        finite = torch.isfinite(z).all(dim=1)
        y_safe = y.clamp(0, num_classes - 1)
        label_logit = z.gather(1, y_safe[:, None])[:, 0]
        label_prob = (label_logit - torch.logsumexp(z, dim=1)).exp()
        top_other, runner_up = z.scatter(1, y_safe[:, None], float("-inf")).max(dim=1)
        margin = label_logit - top_other
        correct = label_logit > top_other  # the arg-max is the label (ties count as wrong)

        idx = indices.to(dev, non_blocking=True).long()
        if indices.device.type != "cpu":
            out = (idx < 0) | (idx >= self.num_samples)
            b["bad_index"] += out.sum()
            keep = (~out).to(torch.float64)
            idx = idx.clamp(0, self.num_samples - 1)
        else:
            keep = torch.ones(idx.shape[0], dtype=torch.float64, device=dev)
        ok = valid & finite
        w = keep * ok.to(torch.float64)
        values = torch.stack([torch.ones_like(w), label_prob.double(), margin.double(), correct.double()], dim=1)
        b["ep_sums"].index_add_(0, idx, torch.where(ok[:, None], values, 0.0) * w[:, None])
        kept = keep > 0
        bad_code = ((~valid).long() + 2 * (~finite).long()) * kept.long()
        maxed = torch.stack([torch.where(kept, y, -1), torch.where(w > 0, runner_up, -1), bad_code], dim=1)
        b["ep_max"].scatter_reduce_(0, idx[:, None].expand(-1, len(_MAX_COLUMNS)), maxed, "amax")

    def sync(self) -> None:
        """Sum the current epoch's accumulators over all ranks (a no-op without torch.distributed).

        :meth:`end_epoch` calls it by default when torch.distributed is initialised with more than one process.
        With the gloo backend the buffers travel through the CPU; with NCCL they stay on the GPU.
        """
        if not is_distributed() or self.device is None:
            return
        b = self._buffers
        comm = torch.device("cpu") if dist.get_backend() == "gloo" else b["epochs"].device
        sums = b["ep_sums"].to(comm)
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        maxed = b["ep_max"].to(comm)
        dist.all_reduce(maxed, op=dist.ReduceOp.MAX)
        bad_index = b["bad_index"].reshape(1).to(comm)
        dist.all_reduce(bad_index, op=dist.ReduceOp.SUM)
        b["ep_sums"].copy_(sums)
        b["ep_max"].copy_(maxed)
        b["bad_index"].copy_(bad_index[0])

    @torch.no_grad()
    def end_epoch(self, *, sync: bool | None = None) -> None:
        """Fold this epoch's updates into the running statistics; one host synchronisation per epoch.

        Args:
            sync: sum the epoch's accumulators over all ranks first (:meth:`sync`). ``None`` (default) does so
                whenever torch.distributed is initialised with more than one process.

        Raises:
            ValueError: when some update of this epoch had an index outside ``[0, N)``, a label outside ``[0, C)``
                or a non-finite logit; the samples are named, and the epoch is not recorded.
        """
        sync = validate.optional(validate.boolean, "sync", sync)
        if self.device is None:
            self._allocate(torch.device("cpu"))
        if sync is None:
            sync = is_distributed()
        if sync:
            self.sync()
        b = self._buffers
        problems = _epoch_problems(b, self.num_samples)
        if problems:
            self._reset_epoch()
            raise ValueError("Dynamics.end_epoch: " + problems + ". This epoch was not recorded.")
        entry = _fold_epoch(b)
        if self.keep_history:
            self._history.append(entry)
        self.num_epochs += 1
        self._reset_epoch()

    def _reset_epoch(self) -> None:
        b = self._buffers
        b["ep_sums"].zero_()
        b["ep_max"].copy_(torch.tensor(_MAX_EMPTY, dtype=torch.int64, device=b["ep_max"].device).expand_as(b["ep_max"]))
        b["bad_index"].zero_()

    # ------------------------------------------------------------------ results
    def statistics(self) -> dict[str, Tensor]:
        """The per-sample statistics as tensors ``(N,)`` on the buffers' device (what :meth:`summary` tabulates).

        Returns:
            ``mean_label_prob`` (mean ``label_prob``), ``variability`` (its population standard deviation, ddof 0, as in
            dataset cartography), ``correctness`` (mean fraction of correct updates), ``aum`` (mean logit margin), all
            float64 and NaN for samples never seen; ``forgetting`` (int64 count of correct-to-wrong transitions between
            consecutive epochs the sample was seen), ``learned`` (bool: correct in at least one epoch), ``epochs``
            (int64, epochs the sample was seen), ``label`` and ``runner_up`` (int64, the label and the class with the
            largest other logit at the last epoch the sample was seen; when it was updated several times in that
            epoch, the largest of those updates' runner-up classes; -1 if never seen).
        """
        if self.device is None:
            self._allocate(torch.device("cpu"))
        b = self._buffers
        e = b["epochs"].double()
        seen = e > 0
        nan = torch.full_like(e, float("nan"))
        safe = e.clamp(min=1.0)
        mean = b["sum_label_prob"] / safe
        var = (b["sum_sq_label_prob"] / safe - mean.square()).clamp(min=0.0)
        return {
            "mean_label_prob": torch.where(seen, mean, nan),
            "variability": torch.where(seen, var.sqrt(), nan),
            "correctness": torch.where(seen, b["sum_correct"] / safe, nan),
            "aum": torch.where(seen, b["sum_margin"] / safe, nan),
            "forgetting": b["forgetting"].clone(),
            "learned": b["learned"].clone(),
            "epochs": b["epochs"].clone(),
            "label": b["label"].clone(),
            "runner_up": b["runner_up"].clone(),
        }

    def summary(self) -> pd.DataFrame:
        """One row per sample, in index order: the training dynamics as a table.

        Columns: ``index`` (int64), ``id`` (str), ``label`` (int64), ``mean_label_prob`` (mean over epochs of the
        label's probability; named ``confidence`` before 0.4.0), ``variability`` (its standard deviation over epochs),
        ``correctness`` (the mean over epochs of the fraction of that epoch's updates that predicted the label: the
        fraction of epochs right when a sample is updated once an epoch), ``aum`` (area under the margin: mean over
        epochs of the label's logit minus the largest other logit), all float32; ``forgetting`` (int64, forgetting
        events: right at one epoch, wrong at the next one the sample was seen), ``learned`` (bool), ``epochs`` (int64,
        epochs the sample was seen) and ``runner_up`` (int64, the most likely class other than the label, at the last
        epoch seen; with several updates in that epoch, the largest of their runner-up classes). Samples never seen have
        NaN statistics, ``epochs == 0`` and ``label == runner_up == -1``.

        Lower ``mean_label_prob``, ``correctness`` and ``aum`` and higher ``variability`` and ``forgetting`` mean
        harder, so each column can be passed as ``by=`` to :func:`hardmine.split`.
        """
        stats = {k: v.cpu().numpy() for k, v in self.statistics().items()}
        n = self.num_samples
        data: dict[str, Any] = {"index": pd.RangeIndex(n).to_numpy().astype("int64")}
        data["id"] = [str(i) for i in range(n)] if self.ids is None else list(self.ids)
        data["label"] = stats["label"]
        for k in ("mean_label_prob", "variability", "correctness", "aum"):
            data[k] = stats[k].astype("float32")
        for k in ("forgetting", "learned", "epochs", "runner_up"):
            data[k] = stats[k]
        table = pd.DataFrame(data)
        table["id"] = table["id"].astype(object)
        table.attrs["hardmine"] = {"source": "dynamics", "num_epochs": self.num_epochs}
        return table

    def regions(
        self,
        *,
        mean_label_prob_threshold: float | None = None,
        variability_threshold: float = 0.2,
        **renamed: Any,
    ) -> pd.DataFrame:
        """The summary with a ``region`` column: the data map of dataset cartography (Swayamdipta et al. 2020).

        See :func:`dynamics_regions` for the rule and its thresholds (``mean_label_prob_threshold`` defaults to 0.5;
        ``confidence_threshold`` is its deprecated name).
        """
        threshold = renamed_threshold("Dynamics.regions", mean_label_prob_threshold, renamed)
        return dynamics_regions(
            self.summary(), mean_label_prob_threshold=threshold, variability_threshold=variability_threshold
        )

    def history(self) -> dict[str, Tensor]:
        """Every recorded epoch's per-sample values, kept with ``keep_history=True``.

        Returns:
            ``label_prob``, ``aum_margin`` and ``correct`` (the epoch's fraction of correct updates), each a float64
            tensor ``(epochs, N)`` with NaN where the sample was not seen in that epoch.

        Raises:
            ValueError: when the object was built without ``keep_history=True``.
        """
        if not self.keep_history:
            raise ValueError("Dynamics.history() needs `keep_history=True` when the Dynamics object is built.")
        keys = ("label_prob", "aum_margin", "correct")
        if not self._history:
            dev = self.device or torch.device("cpu")
            return {k: torch.zeros((0, self.num_samples), dtype=torch.float64, device=dev) for k in keys}
        return {k: torch.stack([h[k] for h in self._history]) for k in keys}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, including a partly recorded epoch; save it with ``torch.save``."""
        return {
            "version": _STATE_VERSION,
            "num_samples": self.num_samples,
            "num_epochs": self.num_epochs,
            "keep_history": self.keep_history,
            "buffers": {k: v.clone() for k, v in self._buffers.items()},
            "history": [{k: v.clone() for k, v in h.items()} for h in self._history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; buffers go to ``self.device`` when it is set, else to the next update's.

        With no device set (a new ``Dynamics(N)``), the state waits where it was saved and the first :meth:`update`
        moves it to its logits' device, so a run resumed on a GPU does not copy every batch's logits to the CPU.

        Raises:
            ValueError: when the state is for another number of samples or is not a Dynamics state.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION or "buffers" not in state:
            raise ValueError(
                f"Expected a state from Dynamics.state_dict() (version {_STATE_VERSION}), but got "
                f"{type(state).__name__} with keys {sorted(state) if isinstance(state, dict) else None}."
            )
        if state["num_samples"] != self.num_samples:
            raise ValueError(
                f"Expected a state for num_samples={self.num_samples}, but it has num_samples={state['num_samples']}."
            )
        buffers = state["buffers"]
        self._placed = self.device is not None
        if buffers:
            dev = self.device if self.device is not None else buffers["epochs"].device
            self._buffers = {k: v.to(dev).clone() for k, v in buffers.items()}
            self.device = dev
            self._history = [{k: v.to(dev).clone() for k, v in h.items()} for h in state["history"]]
        else:
            self._buffers, self._history = {}, []
            if self.device is not None:
                self._allocate(self.device)
        self.num_epochs = int(state["num_epochs"])
        self.num_classes = None  # learnt again from the next update
        self.keep_history = bool(state["keep_history"])


def _new_buffers(n: int, device: torch.device) -> dict[str, Tensor]:
    """The running sums of :class:`Dynamics` for ``n`` samples, and the accumulators of the epoch in progress."""

    def f64() -> Tensor:
        return torch.zeros(n, dtype=torch.float64, device=device)

    def i64(fill: int = 0, shape: tuple[int, ...] = (n,)) -> Tensor:
        return torch.full(shape, fill, dtype=torch.int64, device=device)

    return {
        "ep_sums": torch.zeros((n, len(_SUM_COLUMNS)), dtype=torch.float64, device=device),
        "ep_max": torch.tensor(_MAX_EMPTY, dtype=torch.int64, device=device).repeat(n, 1),
        "epochs": i64(),
        "sum_label_prob": f64(),
        "sum_sq_label_prob": f64(),
        "sum_margin": f64(),
        "sum_correct": f64(),
        "forgetting": i64(),
        "last_correct": i64(-1),  # -1 never seen, 0 wrong, 1 right at the last epoch seen
        "learned": torch.zeros(n, dtype=torch.bool, device=device),
        "label": i64(-1),
        "runner_up": i64(-1),
        "bad_index": i64(0, ()),
    }


def _epoch_problems(b: dict[str, Tensor], num_samples: int) -> str:
    """What was wrong with the epoch's updates (bad indices, labels, logits), naming samples; ``""`` when nothing."""
    bad_index = int(b["bad_index"])
    bad = b["ep_max"][:, 2]
    if not bad_index and not bool((bad > 0).any()):
        return ""
    labels_bad = ((bad == 1) | (bad == 3)).nonzero()[:, 0][:10].tolist()
    finite_bad = (bad >= 2).nonzero()[:, 0][:10].tolist()
    found = (
        (bad_index, f"{bad_index} update(s) had an index outside [0, {num_samples})"),
        (labels_bad, f"samples {labels_bad} had labels that are not class indices in [0, C)"),
        (finite_bad, f"samples {finite_bad} had non-finite logits"),
    )
    return "; ".join(text for present, text in found if present)


def _fold_epoch(b: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fold the epoch's accumulators into the running sums of ``b`` (in place); the epoch's values for the history.

    A sample updated several times in the epoch counts with the mean of its updates, and as correct when more than
    half of them were; a sample not seen does not count the epoch (NaN in the returned values).
    """
    count, sum_label_prob, sum_margin, sum_correct = b["ep_sums"].unbind(dim=1)
    seen = count > 0
    safe = count.clamp(min=1.0)
    label_prob = sum_label_prob / safe
    margin = sum_margin / safe
    correct_frac = sum_correct / safe
    correct_now = (correct_frac > 0.5).long()
    seen_f = seen.double()

    b["epochs"] += seen.long()
    b["sum_label_prob"] += label_prob * seen_f
    b["sum_sq_label_prob"] += label_prob.square() * seen_f
    b["sum_margin"] += margin * seen_f
    b["sum_correct"] += correct_frac * seen_f
    b["forgetting"] += (seen & (b["last_correct"] == 1) & (correct_now == 0)).long()
    b["last_correct"] = torch.where(seen, correct_now, b["last_correct"])
    b["learned"] |= seen & (correct_now == 1)
    b["label"] = torch.where(seen, b["ep_max"][:, 0], b["label"])
    b["runner_up"] = torch.where(seen, b["ep_max"][:, 1], b["runner_up"])
    nan = torch.full_like(label_prob, float("nan"))
    return {
        "label_prob": torch.where(seen, label_prob, nan),
        "aum_margin": torch.where(seen, margin, nan),
        "correct": torch.where(seen, correct_frac, nan),
    }
