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
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import Tensor, nn

from hardmine.core import validate
from hardmine.scoring._task_base import (
    LossFn,
    OutputsArg,
    _whole_numbers,
    _WithLoss,  # noqa: F401 - the base of hardmine.scoring.dense's tasks
    looks_like_probabilities,
    outputs_to_logits,
    per_sample_loss,
)
from hardmine.scoring._task_classes import (
    ClassificationTask,
    LossTask,
    MultiLabelTask,
    RegressionTask,
    SoftLabelTask,
    UnlabeledTask,
)

__all__ = [
    "FLAGS",
    "LossFn",
    "OutputsArg",
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
        >>> import torch
        >>> resolve_task(None, torch.zeros(4, 3), torch.tensor([[0.0, 1.0, 1.0]] * 4)).name
        'multilabel'
        >>> resolve_task(None, torch.zeros(4, 1), torch.tensor([0.5, 1.5, 2.0, 3.0])).name
        'regression'
    """
    validate.choice("outputs", outputs_kind, ("logits", "probs", None))
    if task is not None and not isinstance(task, str):
        if not isinstance(task, Task):
            raise TypeError(
                f"Expected argument `task` to be one of {TASKS} or a Task object, but got {type(task).__name__}."
            )
        return task
    validate.optional(validate.choice, "task", task, options=TASKS)
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
