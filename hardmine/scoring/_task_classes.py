"""The built-in tasks: classification, soft labels, multi-label, regression, unlabeled data and any per-sample loss.

One class per task (see :mod:`hardmine.scoring.tasks` for the protocol they follow and how a pass picks one); the
public names are re-exported there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hardmine.scoring._task_base import (
    LossFn,
    OutputsArg,
    _check_logits,
    _finite_rows,
    _same_batch,
    _WithLoss,
    outputs_to_logits,
)
from hardmine.scoring.measures import MEASURES, as_class_logits, compute_measures, num_classes_of

__all__ = [
    "ClassificationTask",
    "LossTask",
    "MultiLabelTask",
    "RegressionTask",
    "SoftLabelTask",
    "UnlabeledTask",
]


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
        self.num_classes = _same_classes(outputs, self.num_classes, where)
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
        targets = self._required(targets, "soft-label")
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
            raise _mismatch("multi-label outputs and targets of the same shape (B, C)", outputs, targets, where)
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        targets = self._required(targets, "multi-label")
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
            raise _mismatch("regression targets with as many values per sample as the outputs", outputs, targets, where)
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sample results of one batch (see :class:`Task`)."""
        targets = self._required(targets, "regression")
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
        self.num_classes = _same_classes(outputs, self.num_classes, where)

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
        >>> task = LossTask(torch.nn.L1Loss(reduction="none"))
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


def _mismatch(expected: str, outputs: Tensor, targets: Tensor | None, where: str) -> ValueError:
    """The error for outputs and targets whose shapes do not fit each other."""
    shape = None if targets is None else tuple(targets.shape)
    return ValueError(f"Expected {expected}, but got outputs {tuple(outputs.shape)} and targets {shape} in {where}.")


def _same_classes(outputs: Tensor, before: int, where: str) -> int:
    """``C`` of the class ``outputs``, which must equal ``before`` (the batches before; -1: none yet)."""
    c = num_classes_of(outputs)
    if before >= 0 and c != before:
        raise ValueError(
            f"The model returned logits for {c} classes in {where}, but for {before} classes in the batches before."
        )
    return c
