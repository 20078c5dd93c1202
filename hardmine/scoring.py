"""The scoring pass: every sample of a dataset through the model once, batched, on the device.

:func:`score_tensors` is the engine (torch only, results as tensors); :func:`score` builds the pandas table from it
once, at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hardmine.checkpoint import ScoringCheckpoint, scoring_fingerprint
from hardmine.data import (
    _check_map_style,
    call_model,
    dataset_ids,
    move_to_device,
    rebuild_loader,
    unpack_batch,
)
from hardmine.distributed import (
    all_gather_concat,
    get_rank,
    get_world_size,
    raise_if_any_rank_failed,
    shard_bounds,
)
from hardmine.measures import MEASURES, as_class_logits, compute_measures, num_classes_of
from hardmine.table import build_table

__all__ = ["score", "score_tensors"]

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
    unpack: Callable[[Any], tuple[Any, Tensor]] | None = None,
    input_key: str | None = None,
    target_key: str | None = None,
    batch_size: int | None = None,
    keep_probs: bool = False,
    channels_last: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
) -> pd.DataFrame:
    """Score every sample of ``loader.dataset`` once, in dataset index order, in one batched inference pass.

    The loader is rebuilt for scoring with a sequential sampler and ``drop_last=False``, keeping its ``collate_fn``,
    workers, pinning and batch size, so shuffling, custom samplers and ``drop_last`` of the training loader do not
    matter: every sample is scored exactly once. Under ``torchrun`` each rank scores a contiguous share and every rank
    gets the whole table; if any rank fails during its pass, every rank raises (none waits in a collective).

    The model is left exactly as it was: it runs in eval mode under ``torch.inference_mode()``, so no gradients are
    made and BatchNorm statistics do not move, and afterwards every submodule gets its own training flag back. If
    ``device`` differs from the model's device, the model is moved there for the pass and moved back afterwards.

    Batches may be ``(inputs, targets, ...)`` tuples, dicts (keys ``input_key``/``target_key`` or the usual names), or
    anything your ``unpack(batch) -> (inputs, targets)`` understands; dict inputs are passed as keyword arguments.
    The model may return logits ``(B,)`` or ``(B, 1)`` (binary, sigmoid) or ``(B, C)`` (softmax), or an object with
    ``.logits``.

    Args:
        model: the classifier.
        loader: a DataLoader over a map-style dataset (``__len__`` and ``__getitem__``).
        device: where to run; defaults to the device of the model's parameters. A device the weights cannot live
            on (``"meta"``) is refused before the model moves; a move that fails half-way is undone.
        amp: ``True`` (float16 on CUDA, bfloat16 on CPU), ``"bf16"``, ``"fp16"`` or a dtype for autocast;
            measures are always computed in float32 or wider.
        progress: show a ``tqdm`` progress bar.
        ids: one id per dataset sample (file paths, database keys); defaults to the file paths of ``ImageFolder``
            and ``DatasetFolder`` datasets (also inside ``Subset``/``ConcatDataset``), else the index as a string.
        unpack: ``unpack(batch) -> (inputs, targets)`` for batches of your own layout.
        input_key: key of the inputs in dict batches.
        target_key: key of the targets in dict batches.
        batch_size: batch size of the scoring pass; defaults to the loader's.
        keep_probs: also keep every class probability as columns ``prob_0 .. prob_{C-1}`` (needed by
            :func:`hardmine.threshold_sweep` for multi-class tasks and by label-issue finding).
        channels_last: feed 4-D inputs in ``torch.channels_last`` memory format (faster convolutions on GPUs).
        checkpoint_dir: make the pass resumable: every ``checkpoint_every`` batches the rows scored so far are
            saved atomically in this folder; a later call with the same folder and the same model, data and
            arguments scores only the rest and returns the same table as an uninterrupted run. A checkpoint made
            with anything else is refused with a ValueError. The folder's checkpoint files are removed when the pass
            completes. The folder must be new, empty or hardmine's own (a folder holding other files is refused),
            and one run at a time may use it (a lock file). See :mod:`hardmine.checkpoint`.
        checkpoint_every: batches between checkpoint saves (only with ``checkpoint_dir``).

    Returns:
        A DataFrame with one row per dataset sample, in index order: ``index`` (int64), ``id`` (str), ``label``
        (int64, the ground truth), ``pred`` (int64), ``confidence`` (probability of ``pred``), ``label_prob``
        (probability of ``label``), ``margin`` (``label_prob`` minus the largest other probability), ``entropy``
        (nats), ``loss`` (cross-entropy, nats), all float32.

    Raises:
        TypeError: for an IterableDataset, a non-module model, or batches it cannot read.
        ValueError: for an empty dataset, non-finite logits or labels outside the model's classes (naming the
            samples), logits and targets of different batch sizes (naming the batch).

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]), torch.tensor([0, 0, 1]))
        >>> table = score(nn.Identity(), DataLoader(ds, batch_size=2, shuffle=True), progress=False)
        >>> table[["index", "label", "pred"]].values.tolist()
        [[0, 0, 0], [1, 0, 1], [2, 1, 0]]
        >>> [round(p, 4) for p in table["label_prob"]]
        [0.8808, 0.1192, 0.2689]
    """
    result = score_tensors(
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
    )
    n = len(loader.dataset)  # type: ignore[arg-type]
    if ids is not None:
        if len(ids) != n:
            raise ValueError(f"Expected argument `ids` to have one id per dataset sample ({n}), but got {len(ids)}.")
        sample_ids: Sequence[Any] | None = ids
    else:
        sample_ids = dataset_ids(loader.dataset)
    arrays = {k: v.numpy() for k, v in result.items() if k != "probs_shape"}
    table = build_table(arrays, sample_ids)
    table.attrs["hardmine"] = {"num_classes": int(result["probs_shape"][1])}
    return table


def score_tensors(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: str | torch.device | None = None,
    amp: AmpArg = False,
    progress: bool = True,
    unpack: Callable[[Any], tuple[Any, Tensor]] | None = None,
    input_key: str | None = None,
    target_key: str | None = None,
    batch_size: int | None = None,
    keep_probs: bool = False,
    channels_last: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
) -> dict[str, Tensor]:
    """The engine behind :func:`score`: per-sample results as CPU tensors, in dataset index order.

    Results are written on the device into preallocated ``(N,)`` buffers and moved to the host once; there is no
    host synchronisation per batch (label and finiteness checks are collected on the device and read at the end);
    with ``checkpoint_dir`` the new rows go to the host every ``checkpoint_every`` batches to be saved.

    Returns:
        A dict of ``(N,)`` tensors: ``index``, ``label``, ``pred`` (int64) and the measures of
        :data:`hardmine.measures.MEASURES` (float32); ``probs`` ``(N, C)`` when ``keep_probs``; and ``probs_shape``
        (int64 ``(2,)``: ``N, C``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    _check_map_style(loader, "hm.score")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"Expected argument `batch_size` to be a positive int, but got {batch_size!r}.")
    num_samples = len(loader.dataset)  # type: ignore[arg-type]
    world, rank = get_world_size(), get_rank()
    start, stop = shard_bounds(num_samples, world, rank)
    scoring_loader = rebuild_loader(loader, sampler=range(start, stop), batch_size=batch_size, drop_last=False)

    run_device = _resolve_device(model, device)
    autocast = _autocast(amp, run_device)
    non_blocking = bool(getattr(loader, "pin_memory", False)) and run_device.type == "cuda"

    buffers: dict[str, Tensor] = {}
    num_classes = -1
    pos = 0
    done_batches = 0
    ckpt: ScoringCheckpoint | None = None
    if checkpoint_dir is not None:
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(
                f"Expected argument `checkpoint_every` to be a positive int, but got {checkpoint_every!r}."
            )
        fingerprint = scoring_fingerprint(
            model,
            loader,
            batch_size=int(scoring_loader.batch_size or 1),
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
        ckpt = ScoringCheckpoint(checkpoint_dir, fingerprint, rank=rank, world_size=world)
        state = ckpt.load()
        if state is not None and state.position > 0:
            pos, done_batches, num_classes = state.position, state.batches, state.num_classes
            buffers = _allocate(stop - start, num_classes, keep_probs, run_device)
            for key, rows in state.rows.items():
                if key not in buffers:  # a buffer made during the pass (label_value)
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
                        inputs, targets = _check_unpacked(unpack(batch), b)
                    else:
                        inputs, targets = unpack_batch(
                            batch, input_key=input_key, target_key=target_key, batch_number=b
                        )
                except (ValueError, TypeError, KeyError, IndexError) as err:
                    raise type(err)(f"{err} (batch {b}, samples {start + pos}..)") from err
                if not isinstance(targets, Tensor):
                    targets = torch.as_tensor(targets)
                inputs = move_to_device(inputs, run_device, non_blocking=non_blocking)
                if channels_last and isinstance(inputs, Tensor) and inputs.ndim == 4:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                logits = call_model(model, inputs)
                bsz = _check_batch(logits, targets, b, start + pos, num_classes)
                if num_classes < 0:
                    num_classes = num_classes_of(logits)
                    buffers = _allocate(stop - start, num_classes, keep_probs, run_device)
                if pos + bsz > stop - start:
                    raise ValueError(
                        f"The loader yielded more samples than the {stop - start} it was asked for (batch {b}); "
                        "does its collate_fn add samples?"
                    )
                targets = targets.to(run_device, non_blocking=non_blocking)
                low_precision = logits.dtype in (torch.float16, torch.bfloat16)
                m = compute_measures(logits.float() if low_precision else logits, targets)
                sl = slice(pos, pos + bsz)
                buffers["label"][sl] = targets.reshape(-1).long()
                if targets.is_floating_point() and "label_value" not in buffers:
                    # Float labels must hold whole numbers; keep their values so an error can show the real ones.
                    buffers["label_value"] = buffers["label"].double()
                if "label_value" in buffers:
                    buffers["label_value"][sl] = targets.reshape(-1).double()
                for key in ("pred", *MEASURES, "valid", "finite"):
                    buffers[key][sl] = m[key]
                if keep_probs:
                    buffers["probs"][sl] = torch.softmax(as_class_logits(logits.float()), dim=1)
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
    if not buffers:  # this rank had no samples (more ranks than samples)
        buffers = _allocate(0, 0, keep_probs, run_device)
    checked: dict[str, Tensor] = buffers
    if world > 1:
        # Ranks may differ in class count only if a rank had no samples; agree on it first. Then every rank checks
        # every rank's flags, so that a bad sample raises the same error on all ranks (a rank raising alone would
        # leave the others waiting in the gathers below).
        num_classes = int(all_gather_concat(torch.tensor([num_classes], device=run_device)).max().item())
        checked = {key: all_gather_concat(buffers[key].to(torch.uint8)).bool() for key in ("finite", "valid")}
        checked["label"] = all_gather_concat(buffers["label"])
        has_values = torch.tensor(["label_value" in buffers], dtype=torch.uint8, device=run_device)
        if bool(all_gather_concat(has_values).any()):
            checked["label_value"] = all_gather_concat(buffers.get("label_value", buffers["label"].double()))
    _check_results(checked, 0 if world > 1 else start, num_classes)
    if ckpt is not None:
        ckpt.finish()

    out: dict[str, Tensor] = {"index": torch.arange(start, stop, dtype=torch.int64)}
    keys = ["label", "pred", *MEASURES] + (["probs"] if keep_probs else [])
    if world > 1:
        if keep_probs and buffers["probs"].shape[1] != num_classes:
            buffers["probs"] = buffers["probs"].new_zeros((0, num_classes))
        out["index"] = torch.arange(num_samples, dtype=torch.int64)
        for key in keys:
            out[key] = (checked["label"] if key == "label" else all_gather_concat(buffers[key])).cpu()
    else:
        for key in keys:
            out[key] = buffers[key].cpu()
    out["probs_shape"] = torch.tensor([num_samples, num_classes], dtype=torch.int64)
    return out


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


def _check_batch(logits: Tensor, targets: Tensor, batch: int, first: int, num_classes: int) -> int:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(
            f"Expected the model to return float logits, but got {getattr(logits, 'dtype', type(logits))} "
            f"(batch {batch})."
        )
    if logits.ndim not in (1, 2):
        raise ValueError(
            f"Expected logits of shape (B,), (B, 1) or (B, C), but the model returned shape {tuple(logits.shape)} "
            f"(batch {batch}, samples {first}..). For segmentation or detection outputs, reduce them to one row of "
            "logits per sample first."
        )
    t = targets
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise ValueError(
            f"Expected targets holding one class index per sample, shape (B,), but got shape {tuple(targets.shape)} "
            f"(batch {batch}, samples {first}..). One-hot targets: unpack them with `targets.argmax(1)`."
        )
    if logits.shape[0] != t.shape[0]:
        raise ValueError(
            f"The model returned {logits.shape[0]} rows of logits for {t.shape[0]} targets in batch {batch} "
            f"(samples {first}..{first + t.shape[0] - 1}): logits and targets must have the same batch size."
        )
    if num_classes >= 0 and num_classes_of(logits) != num_classes:
        raise ValueError(
            f"The model returned logits for {num_classes_of(logits)} classes in batch {batch}, but for {num_classes} "
            "classes in the batches before."
        )
    return int(t.shape[0])


def _allocate(n: int, num_classes: int, keep_probs: bool, device: torch.device) -> dict[str, Tensor]:
    bufs = {key: torch.empty(n, dtype=torch.float32, device=device) for key in MEASURES}
    bufs["label"] = torch.empty(n, dtype=torch.int64, device=device)
    bufs["pred"] = torch.empty(n, dtype=torch.int64, device=device)
    bufs["valid"] = torch.empty(n, dtype=torch.bool, device=device)
    bufs["finite"] = torch.empty(n, dtype=torch.bool, device=device)
    if keep_probs:
        bufs["probs"] = torch.empty((n, max(num_classes, 0)), dtype=torch.float32, device=device)
    return bufs


def _check_results(buffers: dict[str, Tensor], first: int, num_classes: int) -> None:
    """The deferred checks: one host synchronisation for the whole pass."""
    bad_finite = ~buffers["finite"]
    bad_label = ~buffers["valid"]
    flags = torch.stack([bad_finite.any(), bad_label.any()]).cpu()
    if bool(flags[0]):
        idx = (bad_finite.nonzero()[:, 0][:10] + first).tolist()
        count = int(bad_finite.sum())
        raise ValueError(
            f"The model returned NaN or infinite logits for {count} sample(s), dataset indices {idx}"
            f"{' and more' if count > 10 else ''}. Check these inputs (and the model, e.g. with amp=False)."
        )
    if bool(flags[1]):
        local = bad_label.nonzero()[:, 0][:10]
        labels = buffers["label_value" if "label_value" in buffers else "label"][local].tolist()
        count = int(bad_label.sum())
        classes = f" [0, {num_classes})"
        raise ValueError(
            f"{count} sample(s) have labels that are not class indices of the model's outputs{classes}: dataset "
            f"indices {(local + first).tolist()} with labels {labels}{' and more' if count > 10 else ''}."
        )
