"""The scoring pass: every sample of a dataset through the model once, batched, on the device.

:func:`score_tensors` is the engine (torch only, results as tensors); :func:`score` builds the pandas table from it
once, at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hardmine.core.columns import assemble_table
from hardmine.core.data import (
    _check_map_style,
    call_model,
    dataset_ids,
    move_to_device,
    rebuild_loader,
    unpack_batch,
)
from hardmine.core.distributed import (
    all_gather_concat,
    get_rank,
    get_world_size,
    raise_if_any_rank_failed,
    shard_bounds,
)
from hardmine.scoring.checkpoint import ScoringCheckpoint, _describe, scoring_fingerprint
from hardmine.scoring.measures import num_classes_of
from hardmine.scoring.tasks import (
    FLAGS,
    TASKS,
    ClassificationTask,
    LossFn,
    OutputsArg,
    Task,
    resolve_task,
    warn_if_probabilities,
)

__all__ = ["dataset_classes", "score", "score_tensors"]

AmpArg = bool | str | torch.dtype
_AMP_NAMES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
}


def score(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = None,
    amp: AmpArg = False,
    progress: bool = True,
    ids: Sequence[Any] | None = None,
    unpack: Callable[[Any], tuple[Any, Tensor | None]] | None = None,
    input_key: str | None = None,
    target_key: str | None = None,
    batch_size: int | None = None,
    keep_probs: bool = False,
    channels_last: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
    targets: bool = True,
    loss_fn: LossFn | None = None,
    task: str | Task | None = None,
    outputs: OutputsArg = None,
    classes: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Score every sample of ``loader.dataset`` once, in dataset index order, in one batched inference pass.

    The loader is rebuilt for scoring with a sequential sampler and ``drop_last=False``, keeping its ``collate_fn``,
    workers, pinning and batch size, so shuffling, custom samplers and ``drop_last`` of the training loader do not
    matter: every sample is scored exactly once. Under ``torchrun`` each rank scores a contiguous share and every rank
    gets the whole table; if any rank fails during its pass, every rank raises (none waits in a collective).

    The model is left exactly as it was: it runs in eval mode under ``torch.inference_mode()``, so no gradients are
    made and BatchNorm statistics do not move, and afterwards every submodule gets its own training flag back. If
    ``device`` differs from the model's device, the model is moved there for the pass and moved back afterwards.

    Batches may be ``(inputs, targets, ...)`` tuples, inputs only (a tensor or a 1-tuple: unlabeled data), dicts
    (keys ``input_key``/``target_key`` or the usual names; without a known input key every non-label key goes to
    the model as a keyword argument, so ``{"input_ids", "attention_mask", "labels"}`` works as it is), or anything
    your ``unpack(batch) -> (inputs, targets)`` understands. The model may return a tensor, an object with
    ``.logits`` or a dict with ``"logits"``.

    What the table holds depends on the task (``task=``, else detected from the first batch; see
    the tasks module): classification, soft labels, multi-label, regression, unlabeled data, or any per-sample
    loss (``loss_fn``).

    Args:
        model: the model.
        loader: a DataLoader over a map-style dataset (``__len__`` and ``__getitem__``), or a
            :class:`hardmine.HardMiner` (its ``score_loader`` is scored).
        device: where to run; defaults to the device of the model's parameters. A device the weights cannot live
            on (``"meta"``) is refused before the model moves; a move that fails half-way is undone.
        amp: ``True`` (float16 on CUDA, bfloat16 on CPU), ``"bf16"``, ``"fp16"`` or a dtype for autocast;
            measures are always computed in float32 or wider.
        progress: show a ``tqdm`` progress bar.
        ids: one id per dataset sample (file paths, database keys); defaults to the file paths of ``ImageFolder``
            and ``DatasetFolder`` datasets (also inside ``Subset``/``ConcatDataset``), else the index as a string.
        unpack: ``unpack(batch) -> (inputs, targets)`` for batches of your own layout (``targets`` may be ``None``).
        input_key: key of the inputs in dict batches.
        target_key: key of the targets in dict batches.
        batch_size: batch size of the scoring pass; defaults to the loader's.
        keep_probs: also keep every class (or label) probability as columns ``prob_0 .. prob_{C-1}`` (needed by
            :func:`hardmine.threshold_sweep` for multi-class tasks and by label-issue finding).
        channels_last: feed 4-D inputs in ``torch.channels_last`` memory format (faster convolutions on GPUs).
        checkpoint_dir: make the pass resumable: every ``checkpoint_every`` batches the rows scored so far are
            saved atomically in this folder; a later call with the same folder and the same model, data and
            arguments scores only the rest and returns the same table as an uninterrupted run. A checkpoint made
            with anything else is refused with a ValueError. The folder's checkpoint files are removed when the pass
            completes. The folder must be new, empty or hardmine's own (a folder holding other files is refused),
            and one run at a time may use it (a lock file). See :mod:`hardmine.scoring.checkpoint`.
        checkpoint_every: batches between checkpoint saves (only with ``checkpoint_dir``).
        targets: ``False`` ignores the batches' targets: the unlabeled table (``pred``, ``confidence``, ``margin``
            as top-1 minus top-2 probability, ``entropy``), for active learning.
        loss_fn: ``loss_fn(outputs, targets)`` giving per-sample losses ``(B,)``, or an unreduced loss ``(B, ...)``
            that is averaged over all but the batch dimension: the ``loss`` column is then that loss (label
            smoothing, class weights, focal loss, ``nn.MSELoss(reduction="none")`` for regression ...).
        task: ``"classification"``, ``"soft"``, ``"multilabel"``, ``"regression"``, ``"unlabeled"``, ``"loss"``, a
            :class:`hardmine.Task` object, or ``None`` to detect it (:func:`hardmine.scoring.tasks.resolve_task`).
        outputs: ``"probs"`` when the model returns probabilities (they are turned into logits with the same
            softmax or sigmoid), ``"logits"`` to say they are logits; ``None`` warns once
            (:class:`hardmine.ProbabilityOutputWarning`) when they look like probabilities.
        classes: class names (``classes[c]`` names class ``c``), recorded in ``table.attrs["hardmine"]["classes"]``
            for :func:`hardmine.summary`; defaults to the dataset's ``classes`` (an ImageFolder's folder names).

    Returns:
        A DataFrame with one row per dataset sample, in index order, starting with ``index`` (int64) and ``id``
        (str). For classification: ``label`` (int64, the ground truth), ``pred`` (int64), ``confidence``
        (probability of ``pred``), ``label_prob`` (probability of ``label``), ``margin`` (``label_prob`` minus the
        largest other probability), ``entropy`` (nats), ``loss`` (cross-entropy, nats, or ``loss_fn``), all float32.
        Other tasks: see the tasks module. ``table.attrs["hardmine"]`` records ``task`` and ``num_classes``.

    Raises:
        TypeError: for an IterableDataset, a non-module model, or batches it cannot read.
        ValueError: for an empty dataset, non-finite outputs or losses, or targets that do not fit the task (naming
            the samples and the batch), outputs and targets of different batch sizes, a ``loss_fn`` of the wrong
            shape, or targets whose shape fits no task (naming the batch).

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]), torch.tensor([0, 0, 1]))
        >>> table = score(nn.Identity(), DataLoader(ds, batch_size=2, shuffle=True), progress=False)
        >>> table[["index", "label", "pred"]].values.tolist()
        [[0, 0, 0], [1, 0, 1], [2, 1, 0]]
        >>> [round(p, 4) for p in table["label_prob"]]
        [0.8808, 0.1192, 0.2689]
        >>> unlabeled = score(nn.Identity(), DataLoader(ds, batch_size=2), targets=False, progress=False)
        >>> list(unlabeled.columns)
        ['index', 'id', 'pred', 'confidence', 'margin', 'entropy']
    """
    if task == "detection":  # lists of images and of box dicts: hardmine.scoring.detection's own pass (issue 17)
        from hardmine.scoring.detection import score_detection

        unused = {
            "amp": amp is not False,
            "unpack": unpack is not None,
            "input_key": input_key is not None,
            "target_key": target_key is not None,
            "keep_probs": keep_probs,
            "channels_last": channels_last,
            "checkpoint_dir": checkpoint_dir is not None,
            "targets": targets is not True,
            "loss_fn": loss_fn is not None,
            "outputs": outputs is not None,
        }
        if any(unused.values()):
            raise ValueError(
                f"Arguments {[k for k, v in unused.items() if v]} do not apply to task='detection' (hm.score_detection "
                "takes device, batch_size, progress, ids, classes and its own thresholds)."
            )
        return score_detection(
            model, loader, device=device, batch_size=batch_size, progress=progress, ids=ids, classes=classes
        )
    result, resolved = _run_pass(
        model,
        loader,
        device=device,
        amp=amp,
        progress=progress,
        unpack=unpack,
        input_key=input_key,
        target_key=target_key,
        batch_size=batch_size,
        keep_probs=keep_probs,
        channels_last=channels_last,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        targets=targets,
        loss_fn=loss_fn,
        task=task,
        outputs=outputs,
    )
    n = len(loader.dataset)  # type: ignore[arg-type]
    if ids is not None:
        if len(ids) != n:
            raise ValueError(f"Expected argument `ids` to have one id per dataset sample ({n}), but got {len(ids)}.")
        sample_ids: Sequence[Any] | None = ids
    else:
        sample_ids = dataset_ids(loader.dataset)
    arrays = {k: v.numpy() for k, v in result.items() if k not in ("probs_shape", "index")}
    table = assemble_table(result["index"].numpy(), sample_ids, resolved.columns(arrays))
    settings: dict[str, Any] = {"num_classes": int(result["probs_shape"][1]), "task": resolved.name}
    if settings["num_classes"] < 0:  # dense outputs (segmentation, sequences): the task knows its class count
        settings["num_classes"] = int(getattr(resolved, "num_classes", -1))
    names = list(classes) if classes is not None else dataset_classes(loader.dataset)
    if names is not None:
        settings["classes"] = [str(c) for c in names]
    table.attrs["hardmine"] = settings
    return table


def dataset_classes(dataset: Any) -> list[str] | None:
    """The class names a dataset knows by itself (an ImageFolder's ``classes``), through ``Subset``; else ``None``.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> dataset_classes(TensorDataset(torch.zeros(2))) is None
        True
    """
    names = getattr(dataset, "classes", None)
    if isinstance(names, (list, tuple)) and names and all(isinstance(c, str) for c in names):
        return list(names)
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset:
        return dataset_classes(inner)
    return None


def score_tensors(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = None,
    amp: AmpArg = False,
    progress: bool = True,
    unpack: Callable[[Any], tuple[Any, Tensor | None]] | None = None,
    input_key: str | None = None,
    target_key: str | None = None,
    batch_size: int | None = None,
    keep_probs: bool = False,
    channels_last: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
    targets: bool = True,
    loss_fn: LossFn | None = None,
    task: str | Task | None = None,
    outputs: OutputsArg = None,
) -> dict[str, Tensor]:
    """The engine behind :func:`score`: per-sample results as CPU tensors, in dataset index order.

    Results are written on the device into preallocated ``(N, ...)`` buffers and moved to the host once; there is no
    host synchronisation per batch (target and finiteness checks are collected on the device and read at the end;
    the task is detected from the first batch, one look); with ``checkpoint_dir`` the new rows go to the host every
    ``checkpoint_every`` batches to be saved.

    Returns:
        A dict of ``(N, ...)`` tensors: ``index`` and the task's results; for classification ``label``, ``pred``
        (int64) and the measures of :data:`hardmine.scoring.measures.MEASURES` (float32), ``probs`` ``(N, C)`` when
        ``keep_probs``; and ``probs_shape`` (int64 ``(2,)``: ``N, C``).
    """
    return _run_pass(
        model,
        loader,
        device=device,
        amp=amp,
        progress=progress,
        unpack=unpack,
        input_key=input_key,
        target_key=target_key,
        batch_size=batch_size,
        keep_probs=keep_probs,
        channels_last=channels_last,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        targets=targets,
        loss_fn=loss_fn,
        task=task,
        outputs=outputs,
    )[0]


def _run_pass(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None,
    amp: AmpArg,
    progress: bool,
    unpack: Callable[[Any], tuple[Any, Tensor | None]] | None,
    input_key: str | None,
    target_key: str | None,
    batch_size: int | None,
    keep_probs: bool,
    channels_last: bool,
    checkpoint_dir: str | os.PathLike[str] | None,
    checkpoint_every: int,
    targets: bool,
    loss_fn: LossFn | None,
    task: str | Task | None,
    outputs: OutputsArg,
) -> tuple[dict[str, Tensor], Task]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    loader = _as_loader(loader)
    _check_map_style(loader, "hm.score")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"Expected argument `batch_size` to be a positive int, but got {batch_size!r}.")
    if outputs not in (None, "logits", "probs"):
        raise ValueError(f"Expected argument `outputs` to be 'logits', 'probs' or None, but got {outputs!r}.")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"Expected argument `loss_fn` to be callable, but got {type(loss_fn).__name__}.")
    if isinstance(task, str) and task not in TASKS:
        raise ValueError(f"Expected argument `task` to be one of {TASKS} or None (detect), but got {task!r}.")
    num_samples = len(loader.dataset)  # type: ignore[arg-type]
    world, rank = get_world_size(), get_rank()
    start, stop = shard_bounds(num_samples, world, rank)
    scoring_loader = rebuild_loader(loader, sampler=range(start, stop), batch_size=batch_size, drop_last=False)
    step = int(scoring_loader.batch_size or 1)

    run_device = _resolve_device(model, device)
    autocast = _autocast(amp, run_device)
    non_blocking = bool(getattr(loader, "pin_memory", False)) and run_device.type == "cuda"

    buffers: dict[str, Tensor] = {}
    num_classes = -1
    pos = 0
    done_batches = 0
    resolved: Task | None = task if task is not None and not isinstance(task, str) else None
    ckpt: ScoringCheckpoint | None = None
    if checkpoint_dir is not None:
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(
                f"Expected argument `checkpoint_every` to be a positive int, but got {checkpoint_every!r}."
            )
        fingerprint = scoring_fingerprint(
            model,
            loader,
            batch_size=step,
            keep_probs=keep_probs,
            amp=amp,
            channels_last=channels_last,
            device=run_device,
            unpack=unpack,
            input_key=input_key,
            target_key=target_key,
            world_size=world,
            rank=rank,
        )
        if not targets or loss_fn is not None or task is not None or outputs is not None:
            # Only when used, so that checkpoints of plain classification passes keep matching.
            fingerprint.update(
                targets=bool(targets),
                loss_fn=None if loss_fn is None else _describe(loss_fn),
                task=task if task is None or isinstance(task, str) else _describe(task),
                outputs=outputs,
            )
        ckpt = ScoringCheckpoint(checkpoint_dir, fingerprint, rank=rank, world_size=world)
        state = ckpt.load()
        if state is not None and state.position > 0:
            pos, done_batches, num_classes = state.position, state.batches, state.num_classes
            for key, rows in state.rows.items():
                buffers[key] = torch.empty((stop - start, *rows.shape[1:]), dtype=rows.dtype, device=run_device)
                buffers[key][:pos] = rows.to(run_device)
            scoring_loader = rebuild_loader(
                loader, sampler=range(start + pos, stop), batch_size=batch_size, drop_last=False
            )
    # Under torchrun a rank that fails alone would leave the others waiting in the gathers below: every rank learns
    # whether any rank failed, and all raise.
    failure: Exception | None = None
    try:
        with _model_for_scoring(model, run_device), torch.inference_mode(), autocast:
            batches = tqdm(
                _batches_naming_errors(scoring_loader),
                total=len(scoring_loader),
                disable=not progress,
                desc="hardmine: scoring",
                unit="batch",
                leave=False,
            )
            for b, batch in enumerate(batches, start=done_batches):
                try:
                    if unpack is not None:
                        inputs, target = _check_unpacked(unpack(batch), b)
                    else:
                        inputs, target = unpack_batch(
                            batch, input_key=input_key, target_key=target_key, batch_number=b, targets=targets
                        )
                except (ValueError, TypeError, KeyError, IndexError) as err:
                    raise type(err)(f"{err} (batch {b}, samples {start + pos}..)") from err
                if not targets:
                    target = None
                if target is not None and not isinstance(target, Tensor):
                    target = torch.as_tensor(target)
                inputs = move_to_device(inputs, run_device, non_blocking=non_blocking)
                if channels_last and isinstance(inputs, Tensor) and inputs.ndim == 4:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                out = call_model(model, inputs)
                bsz = int(out.shape[0]) if isinstance(out, Tensor) and out.ndim > 0 else 0
                if target is not None:
                    bsz = int(target.shape[0]) if target.ndim > 0 else bsz
                where = f"batch {b} (samples {start + pos}..{start + pos + bsz - 1})"
                if target is not None:
                    target = target.to(run_device, non_blocking=non_blocking)
                first = resolved is None or not buffers
                if resolved is None:
                    resolved = resolve_task(
                        task, out, target, loss_fn=loss_fn, outputs_kind=outputs, keep_probs=keep_probs, where=where
                    )
                if first and isinstance(out, Tensor):
                    warn_if_probabilities(resolved, out, outputs)
                see_inputs = getattr(resolved, "see_inputs", None)  # tasks that read the inputs (attention_mask)
                if see_inputs is not None:
                    see_inputs(inputs)
                resolved.check(out, target, where)
                if pos + bsz > stop - start:
                    raise ValueError(
                        f"The loader yielded more samples than the {stop - start} it was asked for (batch {b}); "
                        "does its collate_fn add samples?"
                    )
                m = resolved.measures(out, target)
                if not buffers:
                    buffers = _allocate(stop - start, m, run_device)
                    num_classes = _width(out)
                missing = [k for k in m if k not in buffers]
                if missing:
                    raise ValueError(
                        f"The task's results in {where} hold {missing}, which the batches before did not; were they "
                        "scored with other arguments?"
                    )
                sl = slice(pos, pos + bsz)
                for key, value in m.items():
                    buffers[key][sl] = value
                pos += bsz
                if ckpt is not None and (b + 1) % checkpoint_every == 0:
                    ckpt.save(buffers, position=pos, batches=b + 1, num_classes=num_classes)
        if pos != stop - start:
            raise ValueError(
                f"The loader yielded {pos} samples for the {stop - start} dataset samples it was asked for; does its "
                "collate_fn drop samples? hm.score never drops data silently."
            )
    except Exception as err:
        if world == 1:
            raise
        failure = err
    if world > 1:
        raise_if_any_rank_failed(failure)
    checked: dict[str, Tensor] = buffers
    if world > 1:
        # Every rank must run the same gathers in the same order: agree on the task, the class count and the result
        # columns (their names, trailing shapes and dtypes) first; a rank without samples (more ranks than samples)
        # takes them from the others.
        specs = {key: (tuple(v.shape[1:]), str(v.dtype).removeprefix("torch.")) for key, v in buffers.items()}
        mine = (resolved.name if resolved is not None else None, num_classes, specs)
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, mine)
        num_classes = max(int(o[1]) for o in everyone)
        if resolved is None:
            name = next((o[0] for o in everyone if o[0] is not None), None)
            resolved = _task_by_name(name, task, loss_fn=loss_fn, outputs=outputs, keep_probs=keep_probs)
        union: dict[str, tuple[tuple[int, ...], str]] = {}
        for o in everyone:
            for key, spec in o[2].items():
                union.setdefault(key, spec)
        for key in sorted(union):
            shape, dtype = union[key]
            if key == "probs":
                shape = (num_classes,)
            if key not in buffers:
                buffers[key] = torch.zeros((0, *shape), dtype=getattr(torch, dtype), device=run_device)
            elif key == "probs" and buffers[key].shape[1] != num_classes:
                buffers[key] = buffers[key].new_zeros((0, num_classes))
        buffers = {key: buffers[key] for key in sorted(buffers)}
        # Then every rank checks every rank's flags, so that a bad sample raises the same error on all ranks (a rank
        # raising alone would leave the others waiting in the gathers below).
        checked = {key: all_gather_concat(buffers[key].to(torch.uint8)).bool() for key in FLAGS if key in buffers}
        for key in ("label_value", "label"):
            if key in buffers:
                checked[key] = all_gather_concat(buffers[key])
    if resolved is None:
        resolved = _task_by_name(None, task, loss_fn=loss_fn, outputs=outputs, keep_probs=keep_probs)
    flag_keys = [k for k in FLAGS if k in buffers]
    if isinstance(resolved, ClassificationTask) and resolved.num_classes < 0:
        resolved.num_classes = num_classes
    _check_results(checked, flag_keys, resolved, 0 if world > 1 else start, _locator(num_samples, world, step))
    if ckpt is not None:
        ckpt.finish()

    out_tensors: dict[str, Tensor] = {"index": torch.arange(start, stop, dtype=torch.int64)}
    keys = [k for k in buffers if k not in FLAGS]
    if world > 1:
        out_tensors["index"] = torch.arange(num_samples, dtype=torch.int64)
        for key in keys:
            out_tensors[key] = all_gather_concat(buffers[key]).cpu()
    else:
        for key in keys:
            out_tensors[key] = buffers[key].cpu()
    out_tensors["probs_shape"] = torch.tensor([num_samples, num_classes], dtype=torch.int64)
    return out_tensors, resolved


def _task_by_name(
    name: str | None, task: str | Task | None, *, loss_fn: LossFn | None, outputs: OutputsArg, keep_probs: bool
) -> Task:
    """The task of a rank that saw no batch: the one another rank detected, else ``task``, else classification."""
    if task is not None and not isinstance(task, str):
        return task
    chosen = name or task or "classification"
    empty = torch.zeros(0)
    targets = None if chosen == "unlabeled" else empty
    return resolve_task(chosen, empty, targets, loss_fn=loss_fn, outputs_kind=outputs, keep_probs=keep_probs)


def _width(outputs: Any) -> int:
    """``C`` of class outputs (2 for one binary logit), the last size of other 2-D outputs, else -1."""
    if isinstance(outputs, Tensor) and outputs.ndim in (1, 2):
        return num_classes_of(outputs)
    return -1


def _as_loader(loader: Any) -> Any:
    """A loader-like object that scores through a DataLoader of its own (a HardMiner's ``score_loader``) gives it."""
    inner = getattr(loader, "score_loader", None)
    if not isinstance(loader, DataLoader) and isinstance(inner, DataLoader):
        return inner
    return loader


def _check_unpacked(out: Any, batch: int) -> tuple[Any, Any]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise ValueError(f"Expected argument `unpack` to return a pair (inputs, targets), but it returned {got}.")
    return out[0], out[1]


def _rebuilt(err: BaseException, message: str) -> Exception:
    """``err``'s type with ``message`` when that type takes one message, else a RuntimeError."""
    try:
        new = type(err)(message)
    except Exception:  # noqa: BLE001 - exception types with other constructors
        return RuntimeError(message)
    if isinstance(new, Exception) and (str(new) == message or new.args == (message,)):
        return new
    return RuntimeError(message)


def _dataset_error(dataset: Any, indices: Sequence[int], err: Exception) -> Exception:
    """An error that names the dataset sample that failed: each index of the failed batch is read again, alone."""
    n = len(dataset)
    for i in indices:
        try:
            dataset[i]
        except Exception as inner:  # noqa: BLE001 - any error of the user's dataset; it is named and re-raised
            samples: Any = getattr(dataset, "samples", None)
            path = ""
            with contextlib.suppress(Exception):
                path = f", file {str(samples[i][0])!r}"
            if f"sample {i}" in str(inner) or f"index {i}" in str(inner):
                return inner  # it already names the sample (hardmine's own image folder does)
            reason = f"{type(inner).__name__}: {str(inner).strip().splitlines()[0] if str(inner).strip() else ''}"
            if isinstance(inner, IndexError):
                return _rebuilt(
                    inner,
                    f"The dataset ({type(dataset).__name__}) says it has {n} samples (its __len__), but reading "
                    f"sample {i} raised {reason}: is its __len__ longer than its data?",
                )
            return _rebuilt(
                inner, f"Reading sample {i} of the dataset ({type(dataset).__name__}{path}) failed: {reason}"
            )
    first = f"{indices[0]}..{indices[-1]}" if len(indices) else "?"
    return _rebuilt(err, f"{str(err).strip()} (while loading the batch of samples {first})")


def _batches_naming_errors(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches; an error while loading one names the sample (index, and file when there is one)."""
    iterator = iter(loader)
    size = loader.batch_size or 1
    order = loader.sampler
    b = 0
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as err:
            if not isinstance(order, range):
                raise
            raise _dataset_error(loader.dataset, order[b * size : (b + 1) * size], err) from err
        yield batch
        b += 1


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"Expected argument `device` to name a torch device, but got {device!r}.") from err
    tensor: Tensor | None = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _autocast(amp: AmpArg, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if amp is False or amp is None:
        return contextlib.nullcontext()
    if amp is True:
        dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    elif isinstance(amp, torch.dtype):
        dtype = amp
    elif isinstance(amp, str) and amp.lower() in _AMP_NAMES:
        dtype = _AMP_NAMES[amp.lower()]
    else:
        raise ValueError(f"Expected argument `amp` to be a bool, 'bf16', 'fp16' or a torch dtype, but got {amp!r}.")
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"Expected argument `amp` to ask for float16 or bfloat16, but got {dtype}.")
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _model_for_scoring(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode (and ``device``) for the pass; every submodule's training flag and the device restored after."""
    modes = [(m, m.training) for m in model.modules()]
    param = next(model.parameters(), None)
    home = param.device if param is not None else None
    moved = home is not None and home != device
    if moved and device.type == "meta":
        raise ValueError(
            "Expected argument `device` to be a device that can hold the model's weights, but got 'meta' (tensors "
            "without data): moving the model there would erase its weights."
        )
    if moved:
        try:
            model.to(device)
        except Exception as err:
            with contextlib.suppress(Exception):
                model.to(home)  # a move that failed half-way: every tensor back where it was
            raise RuntimeError(f"Cannot move the model to device {str(device)!r} for scoring: {err}") from err
    try:
        model.eval()
        yield
    finally:
        for module, was_training in modes:
            module.training = was_training
        if moved:
            model.to(home)


def _allocate(n: int, first: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Preallocated ``(n, ...)`` buffers shaped like one batch's results ``first``."""
    return {key: torch.empty((n, *value.shape[1:]), dtype=value.dtype, device=device) for key, value in first.items()}


def _locator(num_samples: int, world: int, step: int) -> Callable[[int], str]:
    """``where(i)``: the batch of the pass (and the rank, under torchrun) that held dataset index ``i``."""
    bounds = [shard_bounds(num_samples, world, r) for r in range(world)]

    def where(i: int) -> str:
        r = next(r for r, (lo, hi) in enumerate(bounds) if lo <= i < hi)
        lo, hi = bounds[r]
        b = (i - lo) // step
        first = lo + b * step
        rank = f" of rank {r}" if world > 1 else ""
        return f" (first in batch {b}{rank}, samples {first}..{min(first + step, hi) - 1})"

    return where


def _check_results(
    buffers: Mapping[str, Tensor], flags: Sequence[str], task: Task, first: int, where_is: Callable[[int], str]
) -> None:
    """The deferred checks: one host synchronisation for the whole pass.

    ``first`` is the dataset index of row 0; ``where_is(i)`` names the batch that held dataset index ``i``.
    """
    if not flags:
        return
    bad = {key: ~buffers[key] for key in flags}
    any_bad = torch.stack([v.any() for v in bad.values()]).cpu().tolist()
    for (key, rows), found in zip(bad.items(), any_bad, strict=True):
        if not found:
            continue
        local = rows.nonzero()[:, 0][:10]
        count = int(rows.sum())
        idx = (local + first).tolist()
        more = " and more" if count > 10 else ""
        where = where_is(idx[0])
        if key == "finite":
            what = "logits" if task.name in ("classification", "soft", "multilabel", "unlabeled") else "outputs"
            raise ValueError(
                f"The model returned NaN or infinite {what} for {count} sample(s), dataset indices {idx}{more}{where}. "
                "Check these inputs (and the model, e.g. with amp=False)."
            )
        if key == "finite_loss":
            raise ValueError(
                f"`loss_fn` returned NaN or infinite losses for {count} sample(s), dataset indices {idx}{more}{where}. "
                "Check these samples' outputs and targets."
            )
        message = getattr(task, "invalid_message", None)
        what, detail = message(buffers, local) if message is not None else ("have targets that do not fit the task", "")
        raise ValueError(
            f"{count} sample(s) {what}: dataset indices {idx}{f' {detail}' if detail else ''}{more}{where}."
        )
