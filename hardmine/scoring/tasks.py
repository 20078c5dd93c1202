"""How a task turns a model's outputs and the targets into per-sample measures: one small class per task.

:func:`hardmine.score` runs the model over the dataset once; for every batch it asks the dataset's :class:`Task` for
the per-sample results. A task is any object with the three methods of the :class:`Task` protocol, so a new kind of
output (segmentation masks, detections, sequences) plugs in as one more class:

- ``check(outputs, targets, where)``: shapes and dtypes, on the host, no device synchronisation; raise naming
  ``where`` (the batch and its samples) when they do not fit.
- ``measures(outputs, targets)``: a dict of tensors, each ``(B, ...)`` on the outputs' device: the table columns
  (``(B,)`` each, or ``(B, K)`` for a block of ``K`` columns) and the bool flags of :data:`FLAGS`, which the
  scoring pass reads once, at the end, to raise for bad samples without a synchronisation per batch.
- ``columns(results)``: the table columns, in order, from the results of the whole pass (numpy arrays).

The built-in tasks (``task=`` of :func:`hardmine.score`, or detected from the first batch by :func:`resolve_task`):

- ``"classification"``: logits ``(B, C)`` or ``(B,)`` and class indices ``(B,)``; columns ``label pred confidence
  label_prob margin entropy loss``.
- ``"soft"``: logits ``(B, C)`` and target distributions ``(B, C)``; the same columns, ``label`` the arg-max of the
  target and ``loss`` the cross-entropy against the distribution.
- ``"multilabel"``: logits ``(B, C)`` and 0/1 targets ``(B, C)``; columns ``label_prob loss wrong target_<c>
  pred_<c>``.
- ``"regression"``: outputs ``(B,)``, ``(B, 1)`` or ``(B, D)`` and targets of the same size; columns ``target
  prediction loss abs_error`` (one output) or ``loss abs_error`` (``D`` outputs).
- ``"unlabeled"``: logits and no targets; columns ``pred confidence margin entropy``.
- ``"loss"``: any outputs that ``loss_fn`` reads; column ``loss``.

``loss_fn(outputs, targets)`` replaces the ``loss`` column of any task with targets: it returns per-sample losses
``(B,)``, or an unreduced loss ``(B, ...)`` that is averaged over all but the batch dimension.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hardmine.scoring.measures import MEASURES, as_class_logits, compute_measures, num_classes_of

__all__ = [
    "FLAGS",
    "TASKS",
    "ClassificationTask",
    "LossTask",
    "MultiLabelTask",
    "ProbabilityOutputWarning",
    "RegressionTask",
    "SoftLabelTask",
    "Task",
    "UnlabeledTask",
    "looks_like_probabilities",
    "outputs_to_logits",
    "per_sample_loss",
    "resolve_task",
]

LossFn = Callable[[Any, Any], Tensor]
OutputsArg = Literal["logits", "probs"] | None

#: The bool flags a task's measures may hold, and what a ``False`` means (checked once, at the end of the pass).
FLAGS: dict[str, str] = {
    "finite": "the model returned NaN or infinite outputs",
    "finite_loss": "loss_fn returned NaN or infinite losses",
    "valid": "the targets do not fit the task",
}

#: The names ``task=`` accepts.
TASKS: tuple[str, ...] = ("classification", "soft", "multilabel", "regression", "unlabeled", "loss")
# The dense tasks of hardmine.scoring.dense (issue 17): segmentation, token classification, causal language models.
TASKS += ("segmentation", "tokens", "causal_lm")

#: Loss modules that mark a regression task when ``task`` is not given.
_REGRESSION_LOSSES: tuple[type[nn.Module], ...] = (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss)


class ProbabilityOutputWarning(UserWarning):
    """The model's outputs look like probabilities (rows in ``[0, 1]`` summing to 1) rather than logits."""


@runtime_checkable
class Task(Protocol):
    """What the scoring pass needs from a task (see the module doc)."""

    name: str

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Raise ``ValueError``/``TypeError`` naming ``where`` when the shapes do not fit the task."""

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results ``(B, ...)`` on the outputs' device, and the bool flags of :data:`FLAGS`."""

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns in order (``index`` and ``id`` excluded), from the whole pass's results."""


def per_sample_loss(loss_fn: LossFn, outputs: Any, targets: Any, batch_size: int, where: str) -> Tensor:
    """``loss_fn(outputs, targets)`` as one float loss per sample ``(B,)``.

    An unreduced loss ``(B, ...)`` is averaged over all but the batch dimension.

    Raises:
        ValueError: for a scalar (a reduced loss: pass ``reduction="none"``) or a first dimension that is not the
            batch size, naming ``where``.

    Example:
        >>> per_sample_loss(nn.MSELoss(reduction="none"), torch.zeros(2, 3), torch.ones(2, 3), 2, "batch 0").tolist()
        [1.0, 1.0]
    """
    loss = loss_fn(outputs, targets)
    if not isinstance(loss, Tensor):
        raise TypeError(f"Expected `loss_fn` to return a tensor, but it returned {type(loss).__name__} in {where}.")
    if loss.ndim == 0:
        raise ValueError(
            f"Expected `loss_fn` to return one loss per sample, shape ({batch_size},) or ({batch_size}, ...), but it "
            f"returned a scalar in {where}: build the loss with reduction='none'."
        )
    if loss.shape[0] != batch_size:
        raise ValueError(
            f"Expected `loss_fn` to return one loss per sample, shape ({batch_size},) or ({batch_size}, ...), but it "
            f"returned shape {tuple(loss.shape)} in {where}."
        )
    if not loss.is_floating_point():
        loss = loss.float()
    if loss.ndim > 1:
        loss = loss.reshape(batch_size, -1).mean(dim=1)
    return loss


def looks_like_probabilities(outputs: Tensor) -> bool:
    """Whether ``(B, C)`` outputs (``C >= 2``) all lie in ``[0, 1]`` and every row sums to 1 (within 1e-3).

    Example:
        >>> looks_like_probabilities(torch.tensor([[0.2, 0.8]]))
        True
        >>> looks_like_probabilities(torch.tensor([[2.0, -1.0]]))
        False
    """
    if outputs.ndim != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0 or not outputs.is_floating_point():
        return False
    o = outputs.detach().float()
    ok = (o >= 0).all() & (o <= 1).all() & ((o.sum(dim=1) - 1).abs() <= 1e-3).all()
    return bool(ok)


def outputs_to_logits(outputs: Tensor, *, per_label: bool = False) -> Tensor:
    """Probabilities to logits with the same softmax (or sigmoid).

    ``log p`` for ``(B, C)`` rows, ``logit p`` for a single probability per sample or per label (``per_label=True``,
    multi-label).

    Example:
        >>> torch.softmax(outputs_to_logits(torch.tensor([[0.25, 0.75]])), dim=1)
        tensor([[0.2500, 0.7500]])
    """
    p = outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    tiny = torch.finfo(p.dtype).tiny
    if per_label or p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p = p.clamp(tiny, 1 - torch.finfo(p.dtype).eps)
        return torch.log(p) - torch.log1p(-p)
    return torch.log(p.clamp_min(tiny))


def _finite_rows(x: Tensor) -> Tensor:
    return torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)


def _check_logits(outputs: Tensor, where: str, *, single_ok: bool = True) -> None:
    if not isinstance(outputs, Tensor) or not outputs.is_floating_point():
        raise TypeError(
            f"Expected the model to return float logits, but got {getattr(outputs, 'dtype', type(outputs))} in {where}."
        )
    if outputs.ndim not in (1, 2) or (not single_ok and (outputs.ndim != 2 or outputs.shape[1] < 2)):
        shapes = "(B,), (B, 1) or (B, C)" if single_ok else "(B, C)"
        raise ValueError(
            f"Expected logits of shape {shapes}, but the model returned shape {tuple(outputs.shape)} in {where}. For "
            "segmentation or detection outputs, reduce them to one row of logits per sample first, or pass "
            "`loss_fn=` (task='loss')."
        )


def _same_batch(outputs: Tensor, targets: Tensor, where: str) -> None:
    if outputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"The model returned {outputs.shape[0]} rows of logits for {targets.shape[0]} targets in {where}: outputs "
            "and targets must have the same batch size."
        )


class _WithLoss:
    """A task whose ``loss`` column may come from the user's ``loss_fn``."""

    name = "loss"

    def __init__(self, loss_fn: LossFn | None = None, *, outputs: OutputsArg = None) -> None:
        self.loss_fn = loss_fn
        self.outputs = outputs

    def _user_loss(self, raw: Tensor, targets: Any, m: dict[str, Tensor]) -> None:
        if self.loss_fn is not None:
            loss = per_sample_loss(self.loss_fn, raw, targets, raw.shape[0], self._where)
            m["loss"] = loss
            m["finite_loss"] = torch.isfinite(loss)

    _where = "a batch"


class ClassificationTask(_WithLoss):
    """Single-label classification: logits ``(B, C)`` (softmax) or ``(B,)``/``(B, 1)`` (sigmoid), indices ``(B,)``.

    Example:
        >>> m = ClassificationTask().measures(torch.tensor([[2.0, 0.0]]), torch.tensor([1]))
        >>> round(m["label_prob"].item(), 4), m["pred"].tolist()
        (0.1192, [0])
    """

    name = "classification"

    def __init__(self, loss_fn: LossFn | None = None, *, outputs: OutputsArg = None, keep_probs: bool = False) -> None:
        super().__init__(loss_fn, outputs=outputs)
        self.keep_probs = keep_probs
        self.num_classes = -1

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        _check_logits(outputs, where)
        if targets is None:
            raise ValueError(f"Expected targets for task='{self.name}', but the batch holds inputs only in {where}.")
        t = targets[:, 0] if targets.ndim == 2 and targets.shape[1] == 1 else targets
        if t.ndim != 1:
            raise ValueError(
                f"Expected targets holding one class index per sample, shape (B,), but got shape "
                f"{tuple(targets.shape)} in {where}. Multi-label 0/1 targets (B, C): task='multilabel'; soft labels "
                "(rows summing to 1): task='soft'."
            )
        _same_batch(outputs, t, where)
        c = num_classes_of(outputs)
        if self.num_classes >= 0 and c != self.num_classes:
            raise ValueError(
                f"The model returned logits for {c} classes in {where}, but for {self.num_classes} classes in the "
                "batches before."
            )
        self.num_classes = c
        self._where = where

    def _logits(self, outputs: Tensor) -> Tensor:
        z = outputs_to_logits(outputs) if self.outputs == "probs" else outputs
        return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        if targets is None:
            raise ValueError(f"Expected targets for task='{self.name}', but got none.")
        z = self._logits(outputs)
        t = targets.reshape(-1)
        m = compute_measures(z, t)
        m["label"] = t.long()
        if t.is_floating_point():  # float labels must hold whole numbers: keep their values for the error message
            m["label_value"] = t.double()
        self._user_loss(outputs, targets, m)
        if self.keep_probs:
            m["probs"] = torch.softmax(as_class_logits(z), dim=1)
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`Task`)."""
        cols: dict[str, np.ndarray] = {"label": results["label"].astype(np.int64)}
        cols["pred"] = results["pred"].astype(np.int64)
        for name in MEASURES:
            cols[name] = results[name].astype(np.float32, copy=False)
        _prob_columns(cols, results)
        return cols

    def invalid_message(self, buffers: Mapping[str, Tensor], rows: Tensor) -> tuple[str, str]:
        """``(what is wrong, what the samples hold)`` for the error about samples ``rows`` whose ``valid`` is False."""
        values = buffers["label_value"] if "label_value" in buffers else buffers["label"]
        shown = [int(v) if float(v).is_integer() else float(v) for v in values[rows].tolist()]
        return f"have labels that are not class indices of the model's outputs [0, {self.num_classes})", (
            f"with labels {shown}"
        )


def _prob_columns(cols: dict[str, np.ndarray], results: Mapping[str, np.ndarray]) -> None:
    probs = results.get("probs")
    if probs is not None:
        for c in range(probs.shape[1]):
            cols[f"prob_{c}"] = probs[:, c].astype(np.float32, copy=False)


class SoftLabelTask(ClassificationTask):
    """Soft labels: logits ``(B, C)`` and target distributions ``(B, C)`` whose rows sum to 1.

    ``loss`` is the cross-entropy against the distribution, ``label`` the arg-max of the target (``label_prob`` its
    probability, ``margin`` against it).

    Example:
        >>> m = SoftLabelTask().measures(torch.zeros(1, 2), torch.tensor([[0.3, 0.7]]))
        >>> m["label"].tolist(), round(m["loss"].item(), 4)  # log 2 whatever the distribution
        ([1], 0.6931)
    """

    name = "soft"

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        _check_logits(outputs, where, single_ok=False)
        if targets is None or targets.ndim != 2 or targets.shape[1] != outputs.shape[1]:
            raise ValueError(
                f"Expected soft-label targets of shape (B, {outputs.shape[1]}) beside logits {tuple(outputs.shape)}, "
                f"but got {None if targets is None else tuple(targets.shape)} in {where}."
            )
        _same_batch(outputs, targets, where)
        self.num_classes = int(outputs.shape[1])
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        if targets is None:
            raise ValueError("Expected soft-label targets, but got none.")
        z = self._logits(outputs)
        t = targets.to(z.dtype)
        label = t.argmax(dim=1)
        m = compute_measures(z, label)
        m["loss"] = -(t * torch.log_softmax(z, dim=1)).sum(dim=1)
        m["label"] = label
        m["valid"] = (t >= 0).all(dim=1) & ((t.sum(dim=1) - 1).abs() <= 1e-3)
        self._user_loss(outputs, targets, m)
        if self.keep_probs:
            m["probs"] = torch.softmax(z, dim=1)
        return m

    def invalid_message(self, buffers: Mapping[str, Tensor], rows: Tensor) -> tuple[str, str]:
        """``(what is wrong, what the samples hold)`` for the error about samples ``rows``."""
        return "have soft-label targets that are not distributions (negative entries or rows not summing to 1)", ""


class MultiLabelTask(_WithLoss):
    """Multi-label classification: one logit per label ``(B, C)`` (sigmoid each) and 0/1 targets ``(B, C)``.

    Per sample: ``loss`` the mean binary cross-entropy over the labels, ``label_prob`` the mean probability of the
    true value of each label, ``wrong`` the number of labels predicted wrong at probability 0.5; ``target_<c>`` and
    ``pred_<c>`` hold the targets and the predictions for the per-label report.

    Example:
        >>> m = MultiLabelTask().measures(torch.tensor([[2.0, -2.0, 0.5]]), torch.tensor([[1.0, 1.0, 0.0]]))
        >>> m["wrong"].tolist(), round(m["label_prob"].item(), 4)
        ([2], 0.4592)
    """

    name = "multilabel"

    def __init__(self, loss_fn: LossFn | None = None, *, outputs: OutputsArg = None, keep_probs: bool = False) -> None:
        super().__init__(loss_fn, outputs=outputs)
        self.keep_probs = keep_probs

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        _check_logits(outputs, where)
        if outputs.ndim != 2 or targets is None or tuple(targets.shape) != tuple(outputs.shape):
            raise ValueError(
                f"Expected multi-label outputs and targets of the same shape (B, C), but got outputs "
                f"{tuple(outputs.shape)} and targets {None if targets is None else tuple(targets.shape)} in {where}."
            )
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        if targets is None:
            raise ValueError("Expected multi-label targets, but got none.")
        z = outputs_to_logits(outputs, per_label=True) if self.outputs == "probs" else outputs
        z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
        t = targets.to(z.dtype)
        p = torch.sigmoid(z)
        pred = p >= 0.5
        truth = t >= 0.5
        m = {
            "label_prob": torch.where(truth, p, 1 - p).mean(dim=1),
            "loss": F.binary_cross_entropy_with_logits(z, t, reduction="none").mean(dim=1),
            "wrong": (pred != truth).sum(dim=1),
            "target": truth.to(torch.int8),
            "pred": pred.to(torch.int8),
            "valid": ((t == 0) | (t == 1)).all(dim=1),
            "finite": _finite_rows(z),
        }
        self._user_loss(outputs, targets, m)
        if self.keep_probs:
            m["probs"] = p
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`Task`)."""
        cols: dict[str, np.ndarray] = {
            "label_prob": results["label_prob"].astype(np.float32, copy=False),
            "loss": results["loss"].astype(np.float32, copy=False),
            "wrong": results["wrong"].astype(np.int64),
        }
        for c in range(results["target"].shape[1]):
            cols[f"target_{c}"] = results["target"][:, c].astype(np.int64)
        for c in range(results["pred"].shape[1]):
            cols[f"pred_{c}"] = results["pred"][:, c].astype(np.int64)
        _prob_columns(cols, results)
        return cols

    def invalid_message(self, buffers: Mapping[str, Tensor], rows: Tensor) -> tuple[str, str]:
        """``(what is wrong, what the samples hold)`` for the error about samples ``rows``."""
        return "have multi-label targets outside {0, 1}", ""


class RegressionTask(_WithLoss):
    """Regression: outputs ``(B,)``, ``(B, 1)`` or ``(B, D)`` and float targets of the same size per sample.

    ``loss`` is ``loss_fn`` (default: squared error, ``nn.MSELoss(reduction="none")``) per sample, averaged over
    ``D``, called with the targets reshaped to the outputs' shape (so ``(B, 1)`` outputs beside ``(B,)`` targets never
    broadcast to ``(B, B)``); ``abs_error`` the mean absolute error; with one output per sample also ``target`` and
    ``prediction``.

    Example:
        >>> m = RegressionTask().measures(torch.tensor([[1.0], [2.0]]), torch.tensor([1.5, 0.0]))
        >>> m["loss"].tolist(), m["abs_error"].tolist()
        ([0.25, 4.0], [0.5, 2.0])
    """

    name = "regression"

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        if not isinstance(outputs, Tensor) or not outputs.is_floating_point():
            raise TypeError(
                f"Expected the model to return float predictions, but got "
                f"{getattr(outputs, 'dtype', type(outputs))} in {where}."
            )
        if targets is None:
            raise ValueError(f"Expected regression targets, but the batch holds inputs only in {where}.")
        _same_batch(outputs, targets, where)
        if outputs.numel() != targets.numel():
            raise ValueError(
                f"Expected regression targets with as many values per sample as the outputs, but got outputs "
                f"{tuple(outputs.shape)} and targets {tuple(targets.shape)} in {where}."
            )
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        if targets is None:
            raise ValueError("Expected regression targets, but got none.")
        b = outputs.shape[0]
        pred = outputs.reshape(b, -1)
        pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
        t = targets.reshape(b, -1).to(pred.dtype)
        m: dict[str, Tensor] = {"abs_error": (pred - t).abs().mean(dim=1), "finite": _finite_rows(pred)}
        if self.loss_fn is None:
            loss = ((pred - t) ** 2).mean(dim=1)
            m["loss"] = loss
            m["finite_loss"] = torch.isfinite(loss)
        else:
            # Targets in the outputs' shape: (B, 1) outputs beside (B,) targets would broadcast to (B, B) losses.
            self._user_loss(outputs, targets.reshape(outputs.shape).to(outputs.dtype), m)
        if pred.shape[1] == 1:
            m["target"] = t[:, 0]
            m["prediction"] = pred[:, 0]
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`Task`)."""
        cols: dict[str, np.ndarray] = {}
        for key in ("target", "prediction", "loss", "abs_error"):
            if key in results:
                cols[key] = results[key].astype(np.float32, copy=False)
        return cols


class UnlabeledTask:
    """No targets: how sure the model is, for active learning. ``margin`` is the top-1 minus the top-2 probability.

    Example:
        >>> m = UnlabeledTask().measures(torch.log(torch.tensor([[0.7, 0.2, 0.1]])), None)
        >>> m["pred"].tolist(), round(m["margin"].item(), 4)
        ([0], 0.5)
    """

    name = "unlabeled"

    def __init__(self, *, outputs: OutputsArg = None, keep_probs: bool = False) -> None:
        self.outputs = outputs
        self.keep_probs = keep_probs
        self.num_classes = -1

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        _check_logits(outputs, where)
        c = num_classes_of(outputs)
        if self.num_classes >= 0 and c != self.num_classes:
            raise ValueError(
                f"The model returned logits for {c} classes in {where}, but for {self.num_classes} classes in the "
                "batches before."
            )
        self.num_classes = c

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        z = outputs_to_logits(outputs) if self.outputs == "probs" else outputs
        z = as_class_logits(z.float() if z.dtype in (torch.float16, torch.bfloat16) else z)
        log_p = torch.log_softmax(z, dim=1)
        p = log_p.exp()
        top = p.topk(2, dim=1)
        m = {
            "pred": top.indices[:, 0],
            "confidence": top.values[:, 0],
            "margin": top.values[:, 0] - top.values[:, 1],
            "entropy": -(torch.special.xlogy(p, p)).sum(dim=1),
            "finite": _finite_rows(z),
        }
        if self.keep_probs:
            m["probs"] = p
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`Task`)."""
        cols: dict[str, np.ndarray] = {"pred": results["pred"].astype(np.int64)}
        for key in ("confidence", "margin", "entropy"):
            cols[key] = results[key].astype(np.float32, copy=False)
        _prob_columns(cols, results)
        return cols


class LossTask(_WithLoss):
    """Any per-sample loss of any outputs: the table holds ``loss`` only (dense outputs, custom models).

    Example:
        >>> task = LossTask(nn.L1Loss(reduction="none"))
        >>> task.check(torch.zeros(2, 4, 4), torch.ones(2, 4, 4), "batch 0")
        >>> task.measures(torch.zeros(2, 4, 4), torch.ones(2, 4, 4))["loss"].tolist()
        [1.0, 1.0]
    """

    name = "loss"

    def __init__(self, loss_fn: LossFn | None = None, *, outputs: OutputsArg = None) -> None:
        if loss_fn is None:
            raise ValueError("Expected argument `loss_fn` with task='loss': the table's only column is its loss.")
        super().__init__(loss_fn, outputs=outputs)

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`Task`)."""
        if not isinstance(outputs, Tensor) or outputs.ndim == 0:
            raise TypeError(
                f"Expected the model to return a batch of outputs, but got {type(outputs).__name__} in {where}."
            )
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        m: dict[str, Tensor] = {}
        if outputs.is_floating_point():
            m["finite"] = _finite_rows(outputs)
        self._user_loss(outputs, targets, m)
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`Task`)."""
        return {"loss": results["loss"].astype(np.float32, copy=False)}


def _whole_numbers(t: Tensor) -> bool:
    return bool((t == t.round()).all())


def resolve_task(
    task: str | Task | None,
    outputs: Tensor,
    targets: Tensor | None,
    *,
    loss_fn: LossFn | None = None,
    outputs_kind: OutputsArg = None,
    keep_probs: bool = False,
    where: str = "the first batch",
) -> Task:
    """The task of a scoring pass: ``task`` itself, or the one the first batch's outputs and targets describe.

    Detection (``task=None``), one look at the first batch:

    - no targets: ``unlabeled``;
    - targets ``(B,)`` or ``(B, 1)``: ``classification`` when they are integers (or floats holding whole numbers)
      and ``loss_fn`` is not a regression loss (``nn.MSELoss``, ``L1Loss``, ``HuberLoss``, ``SmoothL1Loss``), else
      ``regression``;
    - targets of the outputs' shape with a regression loss: ``regression``;
    - targets ``(B, C)`` beside outputs ``(B, C)``: ``soft`` when every row
      is a distribution (non-negative, summing to 1: one-hot rows too); ``multilabel`` when every value is 0 or 1;
    - anything else: ``loss`` when ``loss_fn`` is given, else a ``ValueError`` naming ``where`` and the shapes.

    Example:
        >>> resolve_task(None, torch.zeros(4, 3), torch.tensor([[0.0, 1.0, 1.0]] * 4)).name
        'multilabel'
        >>> resolve_task(None, torch.zeros(4, 1), torch.tensor([0.5, 1.5, 2.0, 3.0])).name
        'regression'
    """
    if outputs_kind not in (None, "logits", "probs"):
        raise ValueError(f"Expected argument `outputs` to be 'logits', 'probs' or None, but got {outputs_kind!r}.")
    if task is not None and not isinstance(task, str):
        if not isinstance(task, Task):
            raise TypeError(
                f"Expected argument `task` to be one of {TASKS} or a Task object, but got {type(task).__name__}."
            )
        return task
    if task is not None and task not in TASKS:
        raise ValueError(f"Expected argument `task` to be one of {TASKS} or None (detect), but got {task!r}.")
    if targets is None:
        if task not in (None, "unlabeled"):
            raise ValueError(f"Expected targets for task={task!r}, but the batches hold inputs only in {where}.")
        if loss_fn is not None:
            raise ValueError(
                f"Expected targets for `loss_fn`, but the batches hold inputs only in {where}; drop `loss_fn` to score "
                "unlabeled data (confidence, margin, entropy)."
            )
        return UnlabeledTask(outputs=outputs_kind, keep_probs=keep_probs)
    if task is None:
        task = _detect(outputs, targets, loss_fn, where)
    if task == "classification":
        return ClassificationTask(loss_fn, outputs=outputs_kind, keep_probs=keep_probs)
    if task == "soft":
        return SoftLabelTask(loss_fn, outputs=outputs_kind, keep_probs=keep_probs)
    if task == "multilabel":
        return MultiLabelTask(loss_fn, outputs=outputs_kind, keep_probs=keep_probs)
    if task == "regression":
        return RegressionTask(loss_fn)
    if task == "unlabeled":
        return UnlabeledTask(outputs=outputs_kind, keep_probs=keep_probs)
    if task in ("segmentation", "tokens", "causal_lm"):
        from hardmine.scoring.dense import dense_task  # hardmine.scoring.dense builds on this module

        return dense_task(task, loss_fn)
    return LossTask(loss_fn)


def _detect(outputs: Any, targets: Tensor, loss_fn: LossFn | None, where: str) -> str:
    regression_loss = isinstance(loss_fn, _REGRESSION_LOSSES)
    out_shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else None
    per_sample = targets.ndim == 1 or (targets.ndim == 2 and targets.shape[1] == 1)
    if per_sample:
        if regression_loss:
            return "regression"
        if not targets.is_floating_point() or _whole_numbers(targets):
            return "classification"
        return "regression"
    if regression_loss and out_shape == tuple(targets.shape):
        return "regression"  # dense outputs beside targets of their shape, with a regression loss
    if targets.ndim == 2 and out_shape is not None and out_shape == tuple(targets.shape):
        if regression_loss:
            return "regression"
        t = targets.double()
        if bool((t >= 0).all() & ((t.sum(dim=1) - 1).abs() <= 1e-3).all()):
            return "soft"
        if bool(((t == 0) | (t == 1)).all()):
            return "multilabel"
    if loss_fn is None:
        from hardmine.scoring.dense import (
            detect_dense,  # segmentation (B, C, *S) / tokens (B, T, C) beside integer targets
        )

        dense = detect_dense(outputs, targets)
        if dense is not None:
            return dense
    if loss_fn is not None:
        return "loss"
    raise ValueError(
        f"The targets fit no task: outputs of shape {out_shape} and targets of shape {tuple(targets.shape)} "
        f"in {where}. hardmine reads class indices (B,), soft labels or 0/1 multi-labels (B, C) beside outputs (B, C), "
        "and regression targets; pass `task=` ('regression', 'multilabel', ...) to say which, or `loss_fn=` for any "
        "per-sample loss."
    )


def warn_if_probabilities(task: Task, outputs: Tensor, outputs_kind: OutputsArg) -> None:
    """Warn once per pass when ``outputs`` of a softmax task look like probabilities and ``outputs`` was not given."""
    if outputs_kind is not None or task.name not in ("classification", "soft", "unlabeled"):
        return
    if looks_like_probabilities(outputs):
        warnings.warn(
            "The model's outputs look like probabilities (every value in [0, 1], every row summing to 1), not "
            "logits: hardmine applies a softmax to them, which flattens every score. Pass outputs='probs' to "
            "hm.score if they are probabilities, or outputs='logits' to silence this warning.",
            ProbabilityOutputWarning,
            stacklevel=3,
        )
