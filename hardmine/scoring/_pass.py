"""The scoring pass in its steps: resume from a checkpoint, the batch loop, the gather across ranks, the checks.

:func:`run_pass` is the engine behind :func:`hardmine.score` and :func:`hardmine.scoring.engine.score_tensors`. Each
rank's progress lives in one :class:`PassState`; every step is a small function of it:

1. :func:`resume`: with ``checkpoint_dir``, load the rows a checkpoint holds and start after them;
2. :func:`batch_loop`: every batch through the model, its results written into preallocated device buffers (no host
   synchronisation per batch);
3. :func:`agree_and_gather_flags` (under torchrun): every rank agrees on the task and the result columns, and sees
   every rank's flags;
4. :func:`hardmine.scoring._errors.check_results`: the deferred target and finiteness checks, one host read;
5. :func:`collect`: the results on the host, gathered across ranks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hardmine.core.data import _check_map_style, call_model, move_to_device, rebuild_loader, unpack_batch
from hardmine.core.distributed import (
    all_gather_concat,
    get_rank,
    get_world_size,
    raise_if_any_rank_failed,
    shard_bounds,
)
from hardmine.scoring._errors import batches_naming_errors, check_results, locator
from hardmine.scoring.checkpoint import ScoringCheckpoint
from hardmine.scoring.measures import num_classes_of
from hardmine.scoring.options import ScoreOptions
from hardmine.scoring.tasks import FLAGS, ClassificationTask, Task, resolve_task, warn_if_probabilities

__all__ = ["PassState", "model_for_scoring", "run_pass"]


@dataclass
class PassState:
    """One rank's scoring pass: its share of the dataset and the results so far.

    Attributes:
        start: first dataset index of this rank's share.
        stop: one past its last.
        num_samples: samples in the whole dataset.
        world: torch.distributed world size (1 without torchrun).
        device: where the model runs and the buffers live.
        step: batch size of the pass.
        buffers: preallocated ``(stop - start, ...)`` result tensors, on ``device``.
        pos: rows of the share done.
        done_batches: batches done (counted on from a checkpoint).
        num_classes: ``C`` of class outputs, -1 until known.
        task: the task, once given or detected.
        ckpt: the checkpoint folder, with ``checkpoint_dir``.
    """

    start: int
    stop: int
    num_samples: int
    world: int
    device: torch.device
    step: int = 1
    buffers: dict[str, Tensor] = field(default_factory=dict)
    pos: int = 0
    done_batches: int = 0
    num_classes: int = -1
    task: Task | None = None
    ckpt: ScoringCheckpoint | None = None

    @property
    def size(self) -> int:
        """Samples in this rank's share."""
        return self.stop - self.start


def run_pass(model: nn.Module, loader: Any, options: ScoreOptions) -> tuple[dict[str, Tensor], Task]:
    """Score every sample of ``loader.dataset`` once with ``options``: the results as CPU tensors, and the task.

    Returns:
        ``index`` (int64 ``(N,)``), the task's results ``(N, ...)`` and ``probs_shape`` (int64 ``(2,)``: ``N, C``);
        and the task that made them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    if options.task == "detection":
        raise ValueError("`task` must not be 'detection' here: detection is scored by hm.score or hm.score_detection")
    loader = _as_loader(loader)
    _check_map_style(loader, "hm.score")
    num_samples = len(loader.dataset)
    world, rank = get_world_size(), get_rank()
    start, stop = shard_bounds(num_samples, world, rank)
    state = PassState(start, stop, num_samples, world, options.torch_device(model))
    options.amp_dtype(state.device)
    if options.task is not None and not isinstance(options.task, str):
        state.task = options.task
    scoring_loader = rebuild_loader(loader, sampler=range(start, stop), batch_size=options.batch_size, drop_last=False)
    state.step = int(scoring_loader.batch_size or 1)
    scoring_loader = resume(state, model, loader, options) or scoring_loader
    # Under torchrun a rank that fails alone would leave the others waiting in the gathers below: every rank learns
    # whether any rank failed, and all raise.
    failure: Exception | None = None
    try:
        batch_loop(state, model, scoring_loader, options, pinned=bool(getattr(loader, "pin_memory", False)))
    except Exception as err:
        if world == 1:
            raise
        failure = err
    if world > 1:
        raise_if_any_rank_failed(failure)
    checked = agree_and_gather_flags(state, options) if world > 1 else state.buffers
    task = state.task or _task_by_name(None, options)
    if isinstance(task, ClassificationTask) and task.num_classes < 0:
        task.num_classes = state.num_classes
    flags = [k for k in FLAGS if k in state.buffers]
    check_results(checked, flags, task, 0 if world > 1 else start, locator(num_samples, world, state.step))
    if state.ckpt is not None:
        state.ckpt.finish()
    return collect(state), task


# ------------------------------------------------------------------------------------------------------ 1. resume


def resume(state: PassState, model: nn.Module, loader: DataLoader, options: ScoreOptions) -> DataLoader | None:
    """With ``checkpoint_dir``, claim the folder; when it holds rows of this pass, load them: a loader for the rest."""
    if options.checkpoint_dir is None:
        return None
    fingerprint = options.fingerprint(
        model, loader, device=state.device, batch_size=state.step, world_size=state.world, rank=get_rank()
    )
    state.ckpt = ScoringCheckpoint(options.checkpoint_dir, fingerprint, rank=get_rank(), world_size=state.world)
    saved = state.ckpt.load()
    if saved is None or saved.position <= 0:
        return None
    state.pos, state.done_batches, state.num_classes = saved.position, saved.batches, saved.num_classes
    for key, rows in saved.rows.items():
        state.buffers[key] = torch.empty((state.size, *rows.shape[1:]), dtype=rows.dtype, device=state.device)
        state.buffers[key][: state.pos] = rows.to(state.device)
    rest = range(state.start + state.pos, state.stop)
    return rebuild_loader(loader, sampler=rest, batch_size=options.batch_size, drop_last=False)


# -------------------------------------------------------------------------------------------------- 2. batch loop


def batch_loop(state: PassState, model: nn.Module, loader: DataLoader, options: ScoreOptions, *, pinned: bool) -> None:
    """Every batch of ``loader`` through ``model``; its results into ``state.buffers``, a checkpoint every few."""
    non_blocking = pinned and state.device.type == "cuda"
    with model_for_scoring(model, state.device), torch.inference_mode(), options.autocast(state.device):
        batches = tqdm(
            batches_naming_errors(loader),
            total=len(loader),
            disable=not options.progress,
            desc="hardmine: scoring",
            unit="batch",
            leave=False,
        )
        for b, batch in enumerate(batches, start=state.done_batches):
            inputs, target = _read_batch(batch, b, state, options)
            inputs = move_to_device(inputs, state.device, non_blocking=non_blocking)
            if options.channels_last and isinstance(inputs, Tensor) and inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            out = call_model(model, inputs)
            if target is not None:
                target = target.to(state.device, non_blocking=non_blocking)
            _store(state, b, inputs, out, target, options)
            if state.ckpt is not None and (b + 1) % options.checkpoint_every == 0:
                state.ckpt.save(state.buffers, position=state.pos, batches=b + 1, num_classes=state.num_classes)
    if state.pos != state.size:
        raise ValueError(
            f"The loader yielded {state.pos} samples for the {state.size} dataset samples it was asked for; does its "
            "collate_fn drop samples? hm.score never drops data silently."
        )


def _read_batch(batch: Any, b: int, state: PassState, options: ScoreOptions) -> tuple[Any, Tensor | None]:
    """``(inputs, targets)`` of batch ``b`` (targets a tensor, or ``None`` without targets)."""
    try:
        if options.unpack is not None:
            inputs, target = _check_unpacked(options.unpack(batch))
        else:
            inputs, target = unpack_batch(
                batch,
                input_key=options.input_key,
                target_key=options.target_key,
                batch_number=b,
                targets=options.targets,
            )
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise type(err)(f"{err} (batch {b}, samples {state.start + state.pos}..)") from err
    if not options.targets:
        return inputs, None
    if target is not None and not isinstance(target, Tensor):
        target = torch.as_tensor(target)
    return inputs, target


def _store(state: PassState, b: int, inputs: Any, out: Any, target: Tensor | None, options: ScoreOptions) -> None:
    """Check batch ``b``'s outputs and targets, and write its results into the buffers (allocated on the first)."""
    bsz = int(out.shape[0]) if isinstance(out, Tensor) and out.ndim > 0 else 0
    if target is not None:
        bsz = int(target.shape[0]) if target.ndim > 0 else bsz
    first_row = state.start + state.pos
    where = f"batch {b} (samples {first_row}..{first_row + bsz - 1})"
    first = state.task is None or not state.buffers
    if state.task is None:
        state.task = resolve_task(
            options.task,
            out,
            target,
            loss_fn=options.loss_fn,
            outputs_kind=options.outputs,
            keep_probs=options.keep_probs,
            where=where,
        )
    task = state.task
    if first and isinstance(out, Tensor):
        warn_if_probabilities(task, out, options.outputs)
    see_inputs = getattr(task, "see_inputs", None)  # tasks that read the inputs (attention_mask)
    if see_inputs is not None:
        see_inputs(inputs)
    task.check(out, target, where)
    if state.pos + bsz > state.size:
        raise ValueError(
            f"The loader yielded more samples than the {state.size} it was asked for (batch {b}); "
            "does its collate_fn add samples?"
        )
    m = task.measures(out, target)
    if not state.buffers:
        state.buffers = _allocate(state.size, m, state.device)
        state.num_classes = _width(out)
    missing = [k for k in m if k not in state.buffers]
    if missing:
        raise ValueError(
            f"The task's results in {where} hold {missing}, which the batches before did not; were they "
            "scored with other arguments?"
        )
    rows = slice(state.pos, state.pos + bsz)
    for key, value in m.items():
        state.buffers[key][rows] = value
    state.pos += bsz


# ---------------------------------------------------------------------------------------------- 3. across ranks


def agree_and_gather_flags(state: PassState, options: ScoreOptions) -> dict[str, Tensor]:
    """Under torchrun: every rank agrees on the task, ``C`` and the result columns; every rank's flags and labels.

    Every rank must run the same gathers in the same order, so the task, the class count and the result columns
    (names, trailing shapes and dtypes) are agreed first; a rank without samples (more ranks than samples) takes them
    from the others. Then every rank sees every rank's flags, so that a bad sample raises the same error on all ranks
    (a rank raising alone would leave the others waiting in the gathers of :func:`collect`).
    """
    buffers = state.buffers
    specs = {key: (tuple(v.shape[1:]), str(v.dtype).removeprefix("torch.")) for key, v in buffers.items()}
    mine = (state.task.name if state.task is not None else None, state.num_classes, specs)
    everyone: list[Any] = [None] * state.world
    dist.all_gather_object(everyone, mine)
    state.num_classes = max(int(o[1]) for o in everyone)
    if state.task is None:
        state.task = _task_by_name(next((o[0] for o in everyone if o[0] is not None), None), options)
    union: dict[str, tuple[tuple[int, ...], str]] = {}
    for o in everyone:
        for key, spec in o[2].items():
            union.setdefault(key, spec)
    for key in sorted(union):
        shape, dtype = union[key]
        if key == "probs":
            shape = (state.num_classes,)
        if key not in buffers:
            buffers[key] = torch.zeros((0, *shape), dtype=getattr(torch, dtype), device=state.device)
        elif key == "probs" and buffers[key].shape[1] != state.num_classes:
            buffers[key] = buffers[key].new_zeros((0, state.num_classes))
    state.buffers = {key: buffers[key] for key in sorted(buffers)}
    checked = {key: all_gather_concat(state.buffers[key].to(torch.uint8)).bool() for key in FLAGS if key in buffers}
    for key in ("label_value", "label"):
        if key in state.buffers:
            checked[key] = all_gather_concat(state.buffers[key])
    return checked


# ---------------------------------------------------------------------------------------------------- 5. collect


def collect(state: PassState) -> dict[str, Tensor]:
    """The results on the host: this rank's share, or under torchrun every rank's, in dataset index order."""
    keys = [k for k in state.buffers if k not in FLAGS]
    if state.world > 1:
        out = {"index": torch.arange(state.num_samples, dtype=torch.int64)}
        out.update({key: all_gather_concat(state.buffers[key]).cpu() for key in keys})
    else:
        out = {"index": torch.arange(state.start, state.stop, dtype=torch.int64)}
        out.update({key: state.buffers[key].cpu() for key in keys})
    out["probs_shape"] = torch.tensor([state.num_samples, state.num_classes], dtype=torch.int64)
    return out


# ------------------------------------------------------------------------------------------------------ helpers


def _task_by_name(name: str | None, options: ScoreOptions) -> Task:
    """The task of a rank that saw no batch: the one another rank detected, else ``task``, else classification."""
    task = options.task
    if task is not None and not isinstance(task, str):
        return task
    chosen = name or task or "classification"
    empty = torch.zeros(0)
    targets = None if chosen == "unlabeled" else empty
    return resolve_task(
        chosen, empty, targets, loss_fn=options.loss_fn, outputs_kind=options.outputs, keep_probs=options.keep_probs
    )


def _width(outputs: Any) -> int:
    """``C`` of class outputs (2 for one binary logit), the last size of other 2-D outputs, else -1."""
    if isinstance(outputs, Tensor) and outputs.ndim in (1, 2):
        return num_classes_of(outputs)
    return -1


def _allocate(n: int, first: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Preallocated ``(n, ...)`` buffers shaped like one batch's results ``first``."""
    return {key: torch.empty((n, *value.shape[1:]), dtype=value.dtype, device=device) for key, value in first.items()}


def _as_loader(loader: Any) -> Any:
    """A loader-like object that scores through a DataLoader of its own (a HardMiner's ``score_loader``) gives it."""
    inner = getattr(loader, "score_loader", None)
    if not isinstance(loader, DataLoader) and isinstance(inner, DataLoader):
        return inner
    return loader


def _check_unpacked(out: Any) -> tuple[Any, Any]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise ValueError(f"Expected argument `unpack` to return a pair (inputs, targets), but it returned {got}.")
    return out[0], out[1]


@contextlib.contextmanager
def model_for_scoring(model: nn.Module, device: torch.device) -> Iterator[None]:
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
