"""Errors of the scoring pass that name the sample: a dataset sample that fails to load, and the deferred checks.

The pass reads no value back from the device per batch: target and finiteness flags are collected on the device and
:func:`check_results` reads them once, at the end, raising for the first bad kind with the dataset indices of the bad
samples and the batch (and rank) that held them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from hardmine.core.distributed import shard_bounds
from hardmine.scoring.tasks import Task

__all__ = ["batches_naming_errors", "check_results", "locator"]


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


def batches_naming_errors(loader: DataLoader) -> Iterator[Any]:
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


def locator(num_samples: int, world: int, step: int) -> Callable[[int], str]:
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


def check_results(
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
