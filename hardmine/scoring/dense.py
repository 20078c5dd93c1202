"""Dense tasks as :class:`Task` classes: semantic segmentation (a row per image) and sequences (a row per sequence).

Both plug into :func:`hardmine.score` through ``task=`` (a name or an object of these classes, for options such as
``ignore_index``), or are detected from the first batch when ``loss_fn`` is not given:

- ``"segmentation"`` (:class:`SegmentationTask`): logits ``(B, C, *spatial)`` (any number of spatial dimensions,
  ``C >= 2``) and integer targets ``(B, *spatial)`` (or ``(B, 1, *spatial)``). Pixels equal to ``ignore_index``
  (default 255) or to -100 (torch's own default, never a class) are ignored. Columns, per image, over its valid
  pixels:

  - ``loss``: mean pixel cross-entropy (nats); ``label_prob``: mean probability of the true class;
  - ``pixel_accuracy``: share of pixels whose arg-max is the true class;
  - ``hard_pixel_fraction``: share of pixels whose true-class probability is below ``hard_threshold`` (0.7, the OHEM
    pixel threshold of :func:`hardmine.ohem_pixel_loss`);
  - ``miou``: mean IoU over the classes present in the image's target **or** prediction (valid pixels only): for each
    such class ``c``, ``|pred = c and target = c| / |pred = c or target = c|``; classes in neither are left out (so a
    perfect image has ``miou`` 1 and a class the model imagines counts as IoU 0);
  - ``valid_pixels``: the count of valid pixels (int64);
  - ``inter_<c>`` and ``union_<c>`` (int64, one pair per class): the image's pixel counts behind the IoU, which
    :func:`segmentation_summary` sums over any set of rows for the per-class IoU of that set.

  An image without a valid pixel has nothing to get wrong: ``loss`` 0, ``label_prob``, ``pixel_accuracy`` and ``miou``
  1, ``hard_pixel_fraction`` 0, ``valid_pixels`` 0 (easy by every measure; filter ``valid_pixels == 0`` to find them).

- ``"tokens"`` and ``"causal_lm"`` (:class:`SequenceTask`): logits ``(B, T, C)`` and labels ``(B, T)`` the Hugging Face
  way: labels of -100 are ignored, and so are positions whose ``attention_mask`` (from a dict batch) is 0.
  ``"causal_lm"`` shifts as the models do: the logits at position ``t`` predict the label at ``t + 1``. Columns, per
  sequence, over its counted tokens: ``loss`` (mean token cross-entropy, equal to the model's own loss for a batch of
  one), ``perplexity`` (``exp(loss)``), ``label_prob`` (mean true-token probability), ``token_accuracy``, ``tokens``
  (int64). A sequence without a counted token gets ``loss`` 0, ``perplexity``, ``label_prob`` and ``token_accuracy``
  1 and ``tokens`` 0.

Labels outside ``[0, C)`` that are not ignored raise a ``ValueError`` at the end of the pass naming the images (or
sequences); masks of another size than the logits raise at once naming the batch. Every measure is computed on the
logits' device without a host synchronisation; no per-pixel tensor outlives its batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.core import validate
from hardmine.scoring.tasks import LossFn, _WithLoss

__all__ = [
    "DENSE_TASKS",
    "SegmentationTask",
    "SequenceTask",
    "dense_task",
    "detect_dense",
    "segmentation_summary",
]

#: The ``task=`` names this module adds.
DENSE_TASKS: tuple[str, ...] = ("segmentation", "tokens", "causal_lm")

_IGNORED_ALWAYS = -100


def _upcast(z: Tensor) -> Tensor:
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def _check_float(outputs: Any, where: str) -> None:
    if not isinstance(outputs, Tensor) or not outputs.is_floating_point():
        raise TypeError(
            f"Expected the model to return float logits, but got {getattr(outputs, 'dtype', type(outputs))} in {where}."
        )


def _check_int_targets(targets: Tensor | None, task: str, where: str) -> Tensor:
    if targets is None:
        raise ValueError(f"Expected targets for task='{task}', but the batch holds inputs only in {where}.")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"Expected integer class-index targets for task='{task}', but got {targets.dtype} in {where}.")
    return targets


def _mask_of(outputs: Tensor, targets: Tensor) -> Tensor:
    """Masks ``(B, 1, *spatial)`` (a channel dimension, as ``ToTensor`` gives them) as ``(B, *spatial)``."""
    if targets.ndim == outputs.ndim and targets.ndim >= 3 and targets.shape[1] == 1:
        return targets[:, 0]
    return targets


def _first_argmax(shifted: Tensor) -> Tensor:
    """``argmax(dim=1)`` of ``(B, C, P)`` logits minus their maximum over dim 1 (0 at the maximum): ``(B, P)``.

    Ties go to the first class, as ``argmax``; a pixel with a NaN logit matches no class and gets 0 (the ``finite``
    flag reports it). ``argmax`` (or ``max`` with indices) over dim 1 of this layout takes several times as long on
    CPU as this: mark the classes at the maximum, weight class ``k`` by ``C - k`` and take the largest weight. The
    classes come as ``uint8`` (up to 255 classes) or ``int32``.

    Example:
        >>> z = torch.tensor([[[1.0, 5.0, 2.0], [3.0, 5.0, 2.0]]])  # (1, 2, 3): pixel 1 ties, pixel 2 says class 0
        >>> _first_argmax(z - z.amax(dim=1, keepdim=True)).tolist()
        [[1, 0, 0]]
    """
    c = int(shifted.shape[1])
    dtype = torch.uint8 if c <= 255 else torch.int32
    weight = torch.arange(c, 0, -1, dtype=dtype, device=shifted.device).view(1, c, 1)
    best = (shifted == 0).to(dtype).mul_(weight).amax(dim=1)
    return torch.sub(c, best).masked_fill_(best == 0, 0)  # no class at the maximum (NaN): weight 0 -> class 0


#: Up to this many bins, the per-image confusion counts come from one ``bincount`` of (image, target, prediction).
_MAX_JOINT_BINS = 1 << 22


def _pixel_counts(tc: Tensor, pred: Tensor, valid: Tensor, c: int) -> tuple[Tensor, Tensor]:
    """Per-image, per-class pixel counts over the valid pixels: ``(intersection, union)``, int64 ``(B, C)`` each.

    Counted on the device without a host synchronisation: one ``bincount`` of the image's (target, prediction)
    confusion cell (the invalid pixels go to one extra bin), or three ``scatter_add_`` for many classes.

    Example:
        >>> target, pred = torch.tensor([[0, 1, 1]]), torch.tensor([[0, 0, 1]])
        >>> inter, union = _pixel_counts(target, pred, torch.ones(1, 3, dtype=torch.bool), 2)
        >>> inter.tolist(), union.tolist()
        ([[1, 1]], [[2, 2]])
    """
    b = int(tc.shape[0])
    base = torch.arange(b, device=tc.device).unsqueeze(1) * c
    if b * c * c <= _MAX_JOINT_BINS:
        cell = torch.where(valid, (base + tc) * c + pred, b * c * c).reshape(-1)
        confusion = torch.bincount(cell, minlength=b * c * c + 1)[: b * c * c].reshape(b, c, c)
        inter = confusion.diagonal(dim1=1, dim2=2)
        return inter, confusion.sum(dim=2) + confusion.sum(dim=1) - inter
    at_target = (base + tc).reshape(-1)
    counted = valid.long().reshape(-1)
    zeros = torch.zeros(b * c, dtype=torch.long, device=tc.device)
    inter = zeros.clone().scatter_add_(0, at_target, ((pred == tc) & valid).long().reshape(-1)).reshape(b, c)
    t_count = zeros.clone().scatter_add_(0, at_target, counted).reshape(b, c)
    p_count = zeros.scatter_add_(0, (base + pred).reshape(-1), counted).reshape(b, c)
    return inter, t_count + p_count - inter


class SegmentationTask(_WithLoss):
    """Semantic segmentation, one row per image (see the module doc for the columns and the IoU rule).

    Args:
        loss_fn: optional ``loss_fn(logits, targets)`` replacing the ``loss`` column (unreduced ``(B, ...)`` losses are
            averaged per image over every position, ignored pixels included: mask them in ``loss_fn``).
        ignore_index: the target value of pixels to ignore (default 255); -100 is always ignored too.
        hard_threshold: a pixel is hard when its true-class probability is below this (default 0.7).

    Example:
        >>> logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 2.0]]]])  # (1, 2, 1, 2): pixel 0 says class 0, pixel 1 class 1
        >>> m = SegmentationTask().measures(logits, torch.tensor([[[0, 0]]]))
        >>> m["pixel_accuracy"].tolist(), m["miou"].tolist()  # class 0: 1/2; class 1: 0/1
        ([0.5], [0.25])
    """

    name = "segmentation"

    def __init__(self, loss_fn: LossFn | None = None, *, ignore_index: int = 255, hard_threshold: float = 0.7) -> None:
        super().__init__(loss_fn)
        validate.integer("ignore_index", ignore_index)
        validate.fraction("hard_threshold", hard_threshold, open_low=True)
        self.ignore_index = ignore_index
        self.hard_threshold = float(hard_threshold)
        self.num_classes = -1

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`hardmine.Task`)."""
        _check_float(outputs, where)
        t = _mask_of(outputs, _check_int_targets(targets, self.name, where))
        if outputs.ndim < 3 or outputs.shape[1] < 2:
            raise ValueError(
                f"Expected segmentation logits of shape (B, C, *spatial) with C >= 2, but the model returned shape "
                f"{tuple(outputs.shape)} in {where}."
            )
        if tuple(t.shape) != (outputs.shape[0], *outputs.shape[2:]):
            raise ValueError(
                f"Expected target masks of shape {(outputs.shape[0], *outputs.shape[2:])} (B, *spatial) beside "
                f"logits {tuple(outputs.shape)}, but got masks of shape {tuple(t.shape)} in {where}: resize the masks "
                "(nearest) or upsample the logits to the mask size first."
            )
        c = int(outputs.shape[1])
        if self.num_classes >= 0 and c != self.num_classes:
            raise ValueError(
                f"The model returned logits for {c} classes in {where}, but for {self.num_classes} classes before."
            )
        self.num_classes = c
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-image results of one batch (see :class:`hardmine.Task`)."""
        if targets is None:
            raise ValueError("Expected segmentation targets, but got none.")
        z = _upcast(outputs)
        b, c = int(z.shape[0]), int(z.shape[1])
        t = _mask_of(outputs, targets).reshape(b, -1).long()
        zf = z.reshape(b, c, -1)
        ignored = (t == self.ignore_index) | (t == _IGNORED_ALWAYS)
        in_range = (t >= 0) & (t < c)
        valid = ~ignored & in_range
        tc = torch.where(valid, t, torch.zeros_like(t))
        # The logits minus their maximum serve both the arg-max (the first class at 0) and the true-class
        # log-probability, (z_true - max) - log(sum exp(z - max)) as log_softmax computes it, exp'ed in place: one
        # full-size temporary where log_softmax, gather and a class-by-class arg-max took more passes (the per-pixel
        # work is most of the cost of scoring a light model such as LR-ASPP).
        shifted = zf - zf.amax(dim=1, keepdim=True)  # (B, C, P), 0 at the maximum
        pred = _first_argmax(shifted)
        log_pt = shifted.gather(1, tc.unsqueeze(1))[:, 0] - shifted.exp_().sum(dim=1).log_()  # (B, P)
        n = valid.sum(dim=1).to(log_pt.dtype)
        denom = n.clamp_min(1)
        empty = n == 0
        one = torch.ones_like(n)
        invalid = ~valid
        log_pt.masked_fill_(invalid, 0.0)  # ignored pixels add nothing to the loss, and are never hard (p = 1)
        p_true = log_pt.exp()
        hard = torch.count_nonzero(p_true < self.hard_threshold, dim=1).to(n.dtype)
        inter, union = _pixel_counts(tc, pred, valid, c)
        m: dict[str, Tensor] = {
            "loss": -log_pt.sum(dim=1) / denom,
            "label_prob": torch.where(empty, one, p_true.masked_fill_(invalid, 0.0).sum(dim=1) / denom),
            "pixel_accuracy": torch.where(empty, one, inter.sum(dim=1).to(n.dtype) / denom),
            "hard_pixel_fraction": hard / denom,
        }
        present = union > 0
        iou = inter.to(n.dtype) / union.clamp_min(1).to(n.dtype)
        k = present.sum(dim=1)
        m["miou"] = torch.where(empty, one, (iou * present).sum(dim=1) / k.clamp_min(1).to(n.dtype))
        m["valid_pixels"] = n.long()
        m["inter"] = inter
        m["union"] = union
        m["valid"] = (ignored | in_range).all(dim=1)
        m["finite"] = torch.isfinite(zf.reshape(b, -1).sum(dim=1))  # a NaN or infinite logit makes the sum one
        self._user_loss(outputs, targets, m)
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`hardmine.Task`)."""
        cols: dict[str, np.ndarray] = {}
        for key in ("loss", "label_prob", "pixel_accuracy", "hard_pixel_fraction", "miou"):
            cols[key] = results[key].astype(np.float32, copy=False)
        cols["valid_pixels"] = results["valid_pixels"].astype(np.int64)
        for key in ("inter", "union"):
            for cls in range(results[key].shape[1]):
                cols[f"{key}_{cls}"] = results[key][:, cls].astype(np.int64)
        return cols

    def invalid_message(self, buffers: Mapping[str, Tensor], rows: Tensor) -> tuple[str, str]:
        """``(what is wrong, detail)`` for the error about images ``rows`` whose ``valid`` is False."""
        return (
            f"have mask values outside the classes [0, {self.num_classes}) that are not ignore_index "
            f"({self.ignore_index}) or -100",
            "",
        )


class SequenceTask(_WithLoss):
    """Token classification (``"tokens"``) or causal language modelling (``"causal_lm"``), one row per sequence.

    See the module doc for the columns. ``attention_mask`` comes from the batch's inputs (a dict batch) through
    :meth:`see_inputs`, which :func:`hardmine.score` calls before every batch's measures.

    Args:
        loss_fn: optional ``loss_fn(logits, labels)`` replacing the ``loss`` column.
        causal: shift the labels by one (``task="causal_lm"``).
        ignore_index: the label of tokens to ignore (default -100, as in Hugging Face).

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))  # (1, 3, 2)
        >>> m = SequenceTask().measures(logits, torch.tensor([[0, 0, -100]]))
        >>> [round(v, 4) for v in (m["label_prob"].item(), m["token_accuracy"].item())], m["tokens"].tolist()
        ([0.7, 1.0], [2])
    """

    name = "tokens"

    def __init__(self, loss_fn: LossFn | None = None, *, causal: bool = False, ignore_index: int = -100) -> None:
        super().__init__(loss_fn)
        self.causal = bool(causal)
        self.name = "causal_lm" if causal else "tokens"
        self.ignore_index = int(ignore_index)
        self.num_classes = -1
        self._mask: Tensor | None = None

    def see_inputs(self, inputs: Any) -> None:
        """Remember the batch's ``attention_mask`` (a dict batch's key), or forget the last one."""
        mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
        self._mask = mask if isinstance(mask, Tensor) else None

    def check(self, outputs: Tensor, targets: Tensor | None, where: str) -> None:
        """Shapes and dtypes of one batch (see :class:`hardmine.Task`)."""
        _check_float(outputs, where)
        t = _check_int_targets(targets, self.name, where)
        if outputs.ndim != 3 or tuple(t.shape) != tuple(outputs.shape[:2]):
            raise ValueError(
                f"Expected logits (B, T, C) and labels (B, T) for task='{self.name}', but got logits "
                f"{tuple(outputs.shape)} and labels {tuple(t.shape)} in {where}."
            )
        if self._mask is not None and tuple(self._mask.shape) != tuple(t.shape):
            raise ValueError(
                f"Expected the attention_mask to have the labels' shape {tuple(t.shape)}, but got "
                f"{tuple(self._mask.shape)} in {where}."
            )
        self.num_classes = int(outputs.shape[2])
        self._where = where

    def measures(self, outputs: Tensor, targets: Tensor | None) -> dict[str, Tensor]:
        """Per-sequence results of one batch (see :class:`hardmine.Task`)."""
        if targets is None:
            raise ValueError(f"Expected labels for task='{self.name}', but got none.")
        z = _upcast(outputs)
        t = targets.long()
        mask = self._mask
        if self.causal:
            z, t = z[:, :-1], t[:, 1:]
            mask = mask[:, 1:] if mask is not None else None
        c = int(z.shape[2])
        counted = t != self.ignore_index
        if mask is not None:
            counted = counted & (mask != 0)
        in_range = (t >= 0) & (t < c)
        use = counted & in_range
        tc = torch.where(use, t, torch.zeros_like(t))
        log_p = torch.log_softmax(z, dim=2)
        log_pt = log_p.gather(2, tc.unsqueeze(2)).squeeze(2)
        w = use.to(log_pt.dtype)
        n = w.sum(dim=1)
        denom = n.clamp_min(1)
        one = torch.ones_like(n)
        empty = n == 0
        loss = -(log_pt * w).sum(dim=1) / denom
        correct = (z.argmax(dim=2) == tc) & use
        m: dict[str, Tensor] = {
            "loss": loss,
            "perplexity": loss.exp(),
            "label_prob": torch.where(empty, one, (log_pt.exp() * w).sum(dim=1) / denom),
            "token_accuracy": torch.where(empty, one, correct.to(n.dtype).sum(dim=1) / denom),
            "tokens": n.long(),
            "valid": (~counted | in_range).all(dim=1),
            "finite": torch.isfinite(z).reshape(z.shape[0], -1).all(dim=1),
        }
        self._user_loss(outputs, targets, m)
        if self.loss_fn is not None:
            m["perplexity"] = m["loss"].exp()
        return m

    def columns(self, results: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The table columns, in order (see :class:`hardmine.Task`)."""
        cols = {k: results[k].astype(np.float32, copy=False) for k in ("loss", "perplexity", "label_prob")}
        cols["token_accuracy"] = results["token_accuracy"].astype(np.float32, copy=False)
        cols["tokens"] = results["tokens"].astype(np.int64)
        return cols

    def invalid_message(self, buffers: Mapping[str, Tensor], rows: Tensor) -> tuple[str, str]:
        """``(what is wrong, detail)`` for the error about sequences ``rows`` whose ``valid`` is False."""
        return f"have labels outside the vocabulary/classes [0, {self.num_classes}) that are not -100", ""


def dense_task(name: str, loss_fn: LossFn | None = None) -> SegmentationTask | SequenceTask:
    """The task object for a name of :data:`DENSE_TASKS`, with its defaults.

    Example:
        >>> dense_task("causal_lm").causal
        True
    """
    if name == "segmentation":
        return SegmentationTask(loss_fn)
    if name in ("tokens", "causal_lm"):
        return SequenceTask(loss_fn, causal=name == "causal_lm")
    raise ValueError(f"Expected a dense task name, one of {DENSE_TASKS}, but got {name!r}.")


def detect_dense(outputs: Any, targets: Tensor) -> str | None:
    """``"segmentation"`` or ``"tokens"`` when integer targets fit dense logits by shape; ``None`` otherwise.

    Logits ``(B, C, *S)`` beside targets ``(B, *S)`` are segmentation; ``(B, T, C)`` beside ``(B, T)`` are tokens.
    When both fit (``(B, K, K)`` beside ``(B, K)``) it raises a ``ValueError`` asking for ``task=``.

    Example:
        >>> detect_dense(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
        'segmentation'
    """
    if not isinstance(outputs, Tensor) or outputs.ndim < 3 or targets.is_floating_point():
        return None
    seg = tuple(_mask_of(outputs, targets).shape) == (outputs.shape[0], *outputs.shape[2:])
    tok = outputs.ndim == 3 and tuple(targets.shape) == tuple(outputs.shape[:2])
    if seg and tok:
        raise ValueError(
            f"Logits {tuple(outputs.shape)} beside targets {tuple(targets.shape)} fit both segmentation (B, C, L) and "
            "token classification (B, T, C): pass task='segmentation' or task='tokens'."
        )
    return "segmentation" if seg else "tokens" if tok else None


def segmentation_summary(table: pd.DataFrame, classes: Sequence[Any] | None = None) -> pd.DataFrame:
    """Per-class IoU of the rows of a segmentation table: summed intersections over summed unions.

    Pass any subset of rows (the hard images of :func:`hardmine.split`, say) for that subset's IoU.

    Args:
        table: a table from ``hm.score(..., task="segmentation")`` (columns ``inter_<c>`` and ``union_<c>``).
        classes: class names; default: ``table.attrs["hardmine"]["classes"]`` when recorded, else the indices.

    Returns:
        One row per class: ``class`` (index), ``name``, ``intersection``, ``union`` (pixel counts, int64), ``iou``
        (float64, NaN for a class in no target and no prediction) and ``images`` (rows whose target or prediction
        holds the class); ``attrs["miou"]`` is the mean of the non-NaN IoUs.

    Raises:
        ValueError: when the table has no ``inter_<c>``/``union_<c>`` columns.

    Example:
        >>> t = pd.DataFrame({"inter_0": [3, 1], "union_0": [4, 2], "inter_1": [0, 0], "union_1": [1, 0]})
        >>> segmentation_summary(t)[["class", "iou", "images"]].values.tolist()
        [[0.0, 0.6666666666666666, 2.0], [1.0, 0.0, 1.0]]
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    n = 0
    while f"inter_{n}" in table.columns and f"union_{n}" in table.columns:
        n += 1
    if n == 0:
        raise ValueError(
            "Expected a segmentation table with `inter_<c>` and `union_<c>` columns (hm.score with "
            f"task='segmentation'), but the columns are {list(table.columns)[:12]}."
        )
    if classes is None:
        classes = table.attrs.get("hardmine", {}).get("classes")
    names = [str(c) for c in classes] if classes is not None and len(classes) == n else [str(c) for c in range(n)]
    inter = np.array([table[f"inter_{c}"].to_numpy(np.int64).sum() for c in range(n)], dtype=np.int64)
    union = np.array([table[f"union_{c}"].to_numpy(np.int64).sum() for c in range(n)], dtype=np.int64)
    images = np.array([(table[f"union_{c}"].to_numpy() > 0).sum() for c in range(n)], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    out = pd.DataFrame(
        {"class": np.arange(n), "name": names, "intersection": inter, "union": union, "iou": iou, "images": images}
    )
    seen = iou[~np.isnan(iou)]
    out.attrs["miou"] = float(seen.mean()) if seen.size else float("nan")
    return out
