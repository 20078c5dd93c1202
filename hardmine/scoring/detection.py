"""Object detection: one row per image from a detection model's predictions matched to the ground truth.

Works with torchvision's detection models (``fasterrcnn_*``, ``retinanet_*``, ``fcos_*``, ``ssd*``) and any model
that, in eval mode, takes a list of images ``(C, H, W)`` and returns one dict per image with ``boxes`` ``(K, 4)``
(``x1, y1, x2, y2``), ``labels`` ``(K,)`` and ``scores`` ``(K,)``. Batches are ``(images, targets)`` as torchvision's
references collate them (``collate_fn=lambda b: tuple(zip(*b))``): a tuple or list of images (or one ``(B, C, H, W)``
tensor) and a tuple or list of dicts with ``boxes`` ``(N, 4)`` and ``labels`` ``(N,)``.

**Matching** (per image, as COCO matches): the *confident* predictions (``score >= score_threshold``, default 0.5),
taken in order of decreasing score, each match the unmatched ground-truth box of the same class with the largest IoU,
when that IoU is at least ``iou_threshold`` (default 0.5). Then, per image:

- ``gt_boxes`` and ``predictions`` (confident ones), int64;
- ``det_recall``: matched ground-truth boxes over ``gt_boxes`` (1 for an image without ground truth);
- ``det_precision``: matched predictions over ``predictions`` (1 for an image without confident predictions);
- ``missed``: ground-truth boxes left unmatched; ``false_pos``: confident predictions that match nothing (an image
  without ground truth still counts its false positives);
- ``mean_iou``: mean IoU of the matches (NaN for an image without matches);
- ``mistakenness``: ``1 - 2 * sum(IoU of the matches) / (gt_boxes + predictions)``, in ``[0, 1]``: 1 minus the image's
  F1 score with every match weighted by its IoU, so misses, false positives and loose boxes all raise it; 0 for an
  image with no ground truth and no confident prediction. Higher is harder; it is the default ``by`` of
  :func:`hardmine.split` for these tables.

The per-box table (``return_boxes=True``) lists the misses (``kind="missed"``: the ground-truth box, its label,
``best_iou`` with any confident prediction of its class) and the confident false positives (``kind="false_pos"``,
the hard negatives: the predicted box, label and score, ``best_iou`` with any ground-truth box of its class); write it
with ``boxes.to_csv(path, index=False)``.

Under ``torchrun`` (an initialised process group of more than one process) each rank scores its contiguous share of
the images and the rows are gathered (``all_gather_object``, in rank order), so every rank holds the whole table.

The model comes back exactly as it was: it runs in eval mode under ``torch.inference_mode()`` (BatchNorm statistics
untouched) and every submodule gets its training flag back. Predictions go to the host once per batch for matching
(detection outputs vary in size per image; torchvision's own post-processing already synchronises).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hardmine.core import validate
from hardmine.core.data import _check_map_style, dataset_ids, move_to_device, rebuild_loader
from hardmine.core.distributed import get_rank, get_world_size, raise_if_any_rank_failed, shard_bounds
from hardmine.core.frames import assemble_table
from hardmine.scoring.engine import _model_for_scoring, _resolve_device, dataset_classes

__all__ = ["BOX_COLUMNS", "DETECTION_COLUMNS", "box_iou", "match_image", "score_detection"]

#: The per-image columns of a detection table, in order (after ``index`` and ``id``).
DETECTION_COLUMNS: tuple[str, ...] = (
    "gt_boxes",
    "predictions",
    "det_recall",
    "det_precision",
    "missed",
    "false_pos",
    "mean_iou",
    "mistakenness",
)
#: The columns of the per-box table.
BOX_COLUMNS: tuple[str, ...] = ("index", "id", "kind", "label", "score", "x1", "y1", "x2", "y2", "best_iou")


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every box of ``a`` ``(N, 4)`` with every box of ``b`` ``(M, 4)`` (``x1, y1, x2, y2``): ``(N, M)``.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]])).tolist()
        [[0.3333333432674408]]
    """
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def match_image(
    pred_boxes: Tensor,
    pred_labels: Tensor,
    pred_scores: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> dict[str, Any]:
    """Greedy COCO-style matching of one image's confident predictions to its ground truth (see the module doc).

    Returns:
        A dict with the per-image measures of :data:`DETECTION_COLUMNS` and ``gt_matched`` (bool ``(N,)``),
        ``confident`` (the indices of the confident predictions, by decreasing score), ``pred_matched`` (bool, one per
        confident prediction), ``gt_best_iou`` and ``pred_best_iou`` (best same-class IoU, float64).

    Example:
        >>> gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
        >>> pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
        >>> m = match_image(pred, torch.tensor([1, 1]), torch.tensor([0.9, 0.8]), gt, torch.tensor([1, 1]))
        >>> m["missed"], m["false_pos"], m["mistakenness"]
        (1, 1, 0.5)
    """
    order = torch.argsort(pred_scores.double(), descending=True, stable=True)
    confident = order[pred_scores[order] >= score_threshold]
    boxes = pred_boxes[confident].double()
    labels = pred_labels[confident]
    gtb = gt_boxes.double()
    n_gt, n_pred = int(gtb.shape[0]), int(boxes.shape[0])
    iou = box_iou(boxes, gtb) if n_gt and n_pred else torch.zeros((n_pred, n_gt), dtype=torch.float64)
    same = labels[:, None] == gt_labels[None, :]
    iou_same = torch.where(same, iou, torch.zeros_like(iou)).numpy()
    gt_matched = np.zeros(n_gt, dtype=bool)
    pred_matched = np.zeros(n_pred, dtype=bool)
    matched_iou: list[float] = []
    for i in range(n_pred):
        if n_gt == 0:
            break
        cand = np.where(gt_matched, -1.0, iou_same[i])
        j = int(cand.argmax())
        if cand[j] >= iou_threshold:
            gt_matched[j] = True
            pred_matched[i] = True
            matched_iou.append(float(cand[j]))
    tp = len(matched_iou)
    total = n_gt + n_pred
    return {
        "gt_boxes": n_gt,
        "predictions": n_pred,
        "det_recall": tp / n_gt if n_gt else 1.0,
        "det_precision": tp / n_pred if n_pred else 1.0,
        "missed": n_gt - tp,
        "false_pos": n_pred - tp,
        "mean_iou": float(np.mean(matched_iou)) if tp else math.nan,
        "mistakenness": 1.0 - 2.0 * float(np.sum(matched_iou)) / total if total else 0.0,
        "gt_matched": gt_matched,
        "pred_matched": pred_matched,
        "confident": confident,
        "gt_best_iou": iou_same.max(axis=0) if n_pred and n_gt else np.zeros(n_gt),
        "pred_best_iou": iou_same.max(axis=1) if n_pred and n_gt else np.zeros(n_pred),
    }


def _split_batch(batch: Any, b: int) -> tuple[list[Tensor], list[Mapping[str, Any]]]:
    if isinstance(batch, Mapping) or not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(
            f"Expected detection batches of (images, targets), as collate_fn=lambda b: tuple(zip(*b)) makes them, "
            f"but got {type(batch).__name__} in batch {b}."
        )
    images, targets = batch[0], batch[1]
    if isinstance(images, Tensor):
        images = list(images.unbind(0)) if images.ndim == 4 else [images]
    if not isinstance(images, (tuple, list)) or not all(isinstance(im, Tensor) for im in images):
        raise TypeError(f"Expected a list of image tensors (C, H, W) in batch {b}, but got {type(images).__name__}.")
    if isinstance(targets, Mapping):
        targets = [targets]
    if not isinstance(targets, (tuple, list)) or not all(isinstance(t, Mapping) for t in targets):
        raise TypeError(
            f"Expected the targets of batch {b} as a list of dicts with 'boxes' and 'labels', but got "
            f"{type(targets).__name__}; with the default collate_fn boxes of different counts cannot be batched: use "
            "collate_fn=lambda b: tuple(zip(*b))."
        )
    if len(images) == 0 or len(targets) == 0:
        raise ValueError(f"Expected at least one image and its target in batch {b}, but got an empty list.")
    if len(images) != len(targets):
        raise ValueError(
            f"Expected one target dict per image in batch {b}, but got {len(images)} images and {len(targets)} targets."
        )
    return list(images), list(targets)


def _check_target(t: Mapping[str, Any], where: str) -> tuple[Tensor, Tensor]:
    if "boxes" not in t or "labels" not in t:
        raise ValueError(f"Expected a target dict with 'boxes' and 'labels' for {where}, but got keys {list(t)}.")
    boxes = torch.as_tensor(t["boxes"]).detach().cpu()
    labels = torch.as_tensor(t["labels"]).detach().cpu()
    if boxes.numel() == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"Expected ground-truth boxes of shape (N, 4) for {where}, but got {tuple(boxes.shape)}.")
    if labels.reshape(-1).shape[0] != boxes.shape[0]:
        raise ValueError(
            f"Expected one label per ground-truth box for {where}, but got {boxes.shape[0]} boxes and "
            f"{labels.numel()} labels."
        )
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"Expected ground-truth boxes as (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1 for {where}, but box {first} "
            f"is {boxes[first].tolist()} (convert (x, y, w, h) boxes with torchvision.ops.box_convert)."
        )
    return boxes, labels.reshape(-1)


def _check_prediction(p: Any, where: str) -> tuple[Tensor, Tensor, Tensor]:
    if (
        isinstance(p, Mapping)
        and "boxes" not in p
        and p
        and all(isinstance(v, Tensor) and v.ndim == 0 for v in p.values())
    ):
        raise ValueError(
            f"The model returned losses ({sorted(p)}) instead of predictions for {where}, although it runs in eval "
            "mode: hardmine needs its predictions (a list of dicts with 'boxes', 'labels', 'scores'). Does the model "
            "override eval()/train(), or wrap a detector that always computes losses?"
        )
    if not isinstance(p, Mapping) or not all(k in p for k in ("boxes", "labels", "scores")):
        raise TypeError(
            f"Expected one dict with 'boxes', 'labels' and 'scores' per image from the model for {where}, but got "
            f"{type(p).__name__}{' with keys ' + str(list(p)) if isinstance(p, Mapping) else ''}."
        )
    return p["boxes"].detach().float().cpu(), p["labels"].detach().cpu(), p["scores"].detach().float().cpu()


def _score_shard(
    model: nn.Module,
    loader: DataLoader,
    run_device: torch.device,
    start: int,
    stop: int,
    iou_threshold: float,
    score_threshold: float,
    progress: bool,
    world: int,
    rank: int,
) -> tuple[dict[str, list[float]], list[tuple[Any, ...]]]:
    """Score dataset images ``[start, stop)`` (this rank's share): the per-image measures and the per-box rows."""
    rows: dict[str, list[float]] = {k: [] for k in DETECTION_COLUMNS}
    boxes_rows: list[tuple[Any, ...]] = []
    pos = start
    of_rank = f" of rank {rank}" if world > 1 else ""
    with _model_for_scoring(model, run_device), torch.inference_mode():
        for b, batch in enumerate(tqdm(loader, disable=not progress, desc="hardmine: detection", leave=False)):
            images, targets = _split_batch(batch, b)
            checked = [_check_target(t, f"image {pos + i} (batch {b}{of_rank})") for i, t in enumerate(targets)]
            preds = model(move_to_device(images, run_device))
            if isinstance(preds, Mapping):
                _check_prediction(preds, f"batch {b}{of_rank}")
            if not isinstance(preds, (list, tuple)) or len(preds) != len(images):
                raise TypeError(
                    f"Expected the model to return a list of {len(images)} prediction dicts for batch {b}{of_rank}, "
                    f"but got {type(preds).__name__}{f' of {len(preds)}' if isinstance(preds, (list, tuple)) else ''}."
                )
            for i, (p, (gt_b, gt_l)) in enumerate(zip(preds, checked, strict=True)):
                pb, pl, ps = _check_prediction(p, f"image {pos + i} (batch {b}{of_rank})")
                m = match_image(pb, pl, ps, gt_b, gt_l, iou_threshold=iou_threshold, score_threshold=score_threshold)
                for k in DETECTION_COLUMNS:
                    rows[k].append(m[k])
                boxes_rows.extend(_box_rows(pos + i, m, gt_b, gt_l, pb, pl, ps))
            pos += len(images)
    if pos != stop:
        raise ValueError(
            f"The loader yielded {pos - start} images for the {stop - start} dataset samples it was asked for; does "
            "its collate_fn drop some?"
        )
    return rows, boxes_rows


def _box_rows(
    idx: int, m: dict[str, Any], gt_b: Tensor, gt_l: Tensor, pb: Tensor, pl: Tensor, ps: Tensor
) -> list[tuple[Any, ...]]:
    """The per-box rows of one image: its missed ground-truth boxes, then its confident false positives."""
    out: list[tuple[Any, ...]] = []
    for j in np.flatnonzero(~m["gt_matched"]):
        x1, y1, x2, y2 = gt_b[j].tolist()
        out.append((idx, "missed", int(gt_l[j]), math.nan, x1, y1, x2, y2, float(m["gt_best_iou"][j])))
    conf = m["confident"]
    for j in np.flatnonzero(~m["pred_matched"]):
        q = int(conf[j])
        x1, y1, x2, y2 = pb[q].tolist()
        out.append((idx, "false_pos", int(pl[q]), float(ps[q]), x1, y1, x2, y2, float(m["pred_best_iou"][j])))
    return out


@overload
def score_detection(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = ...,
    batch_size: int | None = ...,
    iou_threshold: float = ...,
    score_threshold: float = ...,
    progress: bool = ...,
    ids: Sequence[Any] | None = ...,
    classes: Sequence[Any] | None = ...,
    return_boxes: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def score_detection(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = ...,
    batch_size: int | None = ...,
    iou_threshold: float = ...,
    score_threshold: float = ...,
    progress: bool = ...,
    ids: Sequence[Any] | None = ...,
    classes: Sequence[Any] | None = ...,
    return_boxes: Literal[True],
) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def score_detection(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    progress: bool = True,
    ids: Sequence[Any] | None = None,
    classes: Sequence[Any] | None = None,
    return_boxes: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Score every image of ``loader.dataset`` once, in dataset order: one row of detection measures per image.

    The loader is rebuilt with a sequential sampler (its collate_fn, workers and batch size kept), so every image is
    scored once. Under ``torchrun`` each rank scores a contiguous share of the images and every rank gets the whole
    table (and per-box table), every image exactly once, as :func:`hardmine.score` does; if any rank fails during
    its pass, every rank raises (none waits in the gather). See the module doc for the batch layout, the matching
    rule and the columns.

    Args:
        model: a detection model (torchvision's, or one with the same eval-mode interface).
        loader: a DataLoader over a map-style dataset of ``(image, target)`` pairs.
        device: where to run; defaults to the model's device.
        batch_size: batch size of the pass; defaults to the loader's.
        iou_threshold: the IoU at or above which a prediction matches a ground-truth box of its class.
        score_threshold: predictions with a score at or above this are confident: only they are matched and counted.
        progress: show a progress bar.
        ids: one id per image; defaults to the dataset's file paths when it has them, else the index.
        classes: class names, recorded in ``table.attrs["hardmine"]["classes"]``.
        return_boxes: also return the per-box table of misses and confident false positives.

    Returns:
        The per-image table (``index``, ``id`` and :data:`DETECTION_COLUMNS`; ``attrs["hardmine"]`` records
        ``task="detection"`` and the thresholds), or ``(table, boxes)`` with ``return_boxes``.

    Raises:
        TypeError: for batches that are not ``(images, list of target dicts)`` or predictions that are not dicts.
        ValueError: for an empty batch or dataset, boxes that are not ``(N, 4)`` or have ``x2 < x1``/``y2 < y1``,
            labels that do not match the boxes, or a model that returns losses in eval mode (each naming the image).

    Example:
        >>> class Oracle(nn.Module):  # predicts the ground truth it is given, for the example
        ...     def forward(self, images):
        ...         return [{"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "labels": torch.tensor([1]),
        ...                  "scores": torch.tensor([0.9])} for _ in images]
        >>> one = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "labels": torch.tensor([1])}
        >>> none = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
        >>> data = [(torch.zeros(3, 8, 8), one), (torch.zeros(3, 8, 8), none)]
        >>> loader = DataLoader(data, batch_size=2, collate_fn=lambda b: tuple(zip(*b)))
        >>> table = score_detection(Oracle(), loader, progress=False)
        >>> table[["det_recall", "false_pos", "mistakenness"]].values.tolist()
        [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    _check_map_style(loader, "hm.score_detection")
    validate.fraction("iou_threshold", iou_threshold)
    validate.fraction("score_threshold", score_threshold)
    n = len(loader.dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("Expected a dataset with at least one image, but `loader.dataset` is empty.")
    validate.optional(validate.integer, "batch_size", batch_size, min=1)
    world, rank = get_world_size(), get_rank()
    start, stop = shard_bounds(n, world, rank)
    scoring_loader = rebuild_loader(loader, sampler=range(start, stop), batch_size=batch_size, drop_last=False)
    run_device = _resolve_device(model, device)
    # Under torchrun a rank that fails alone would leave the others waiting in the gather below: every rank learns
    # whether any rank failed, and all raise.
    failure: Exception | None = None
    try:
        rows, boxes_rows = _score_shard(
            model, scoring_loader, run_device, start, stop, iou_threshold, score_threshold, progress, world, rank
        )
    except Exception as err:
        if world == 1:
            raise
        failure = err
    if world > 1:
        raise_if_any_rank_failed(failure, "hm.score_detection")
        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, (rows, boxes_rows))  # in rank order: the shares are contiguous and ordered
        rows = {k: [v for part in parts for v in part[0][k]] for k in DETECTION_COLUMNS}
        boxes_rows = [r for part in parts for r in part[1]]
    sample_ids: Sequence[Any] | None = ids if ids is not None else dataset_ids(loader.dataset)
    if sample_ids is not None and len(sample_ids) != n:
        raise ValueError(f"Expected argument `ids` to have one id per image ({n}), but got {len(sample_ids)}.")
    cols: dict[str, np.ndarray] = {}
    for k in DETECTION_COLUMNS:
        ints = k in ("gt_boxes", "predictions", "missed", "false_pos")
        cols[k] = np.asarray(rows[k], dtype=np.int64 if ints else np.float32)
    table = assemble_table(np.arange(n, dtype=np.int64), sample_ids, cols)
    settings: dict[str, Any] = {
        "task": "detection",
        "iou_threshold": float(iou_threshold),
        "score_threshold": float(score_threshold),
    }
    names = list(classes) if classes is not None else dataset_classes(loader.dataset)
    if names is not None:
        settings["classes"] = [str(c) for c in names]
    table.attrs["hardmine"] = settings
    if not return_boxes:
        return table
    id_list = table["id"].tolist()
    box_table = pd.DataFrame([(r[0], id_list[r[0]], *r[1:]) for r in boxes_rows], columns=list(BOX_COLUMNS)).astype(
        {"index": np.int64, "label": np.int64, "score": np.float64, "best_iou": np.float64}
    )
    return table, box_table
