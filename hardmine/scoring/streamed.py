"""Score a dataset chunk by chunk into a Parquet dataset, resumably: memory bounded by the chunk, not by N.

:func:`score_to_parquet` drives :func:`hardmine.score` over consecutive chunks of the dataset (a ``Subset`` per
chunk) and writes each chunk's table as its own Parquet file, ``part-<k>.parquet``, atomically (a temporary file
moved into place), with the settings, the chunk's bounds and ``N`` in the file's metadata. A run that is killed
resumes from its last complete chunk: a chunk whose file is complete is not scored again. The result opens as a
:class:`hardmine.ScoreDataset` for the out-of-core steps.

Under ``torchrun`` every rank calls it the same way. Rank ``k % world_size`` scores chunk ``k`` whole, on its own
(inside :func:`hardmine.core.distributed.local_only`), and writes its file: nothing is gathered across ranks, and each
rank's memory is bounded by one chunk. Pick ``chunk_size`` at most ``N / world_size`` so that every rank has work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from torch import nn
from torch.utils.data import DataLoader, Subset

from hardmine.core import distributed, validate
from hardmine.core._files import atomic_path
from hardmine.core.data import dataset_ids
from hardmine.scoring.engine import score
from hardmine.scoring.options import ScoreOptions

if TYPE_CHECKING:  # the table layer sits above scoring: imported where it is used
    from hardmine.analysis.bigtable import ScoreDataset

__all__ = ["score_to_parquet"]

PathLike = str | os.PathLike[str]
_LOADER_KWARGS = ("num_workers", "collate_fn", "pin_memory", "timeout", "worker_init_fn", "prefetch_factor")


def _chunk_loader(loader: DataLoader, lo: int, hi: int) -> DataLoader:
    kwargs: dict[str, Any] = {k: getattr(loader, k) for k in _LOADER_KWARGS if hasattr(loader, k)}
    if not kwargs.get("num_workers"):
        kwargs.pop("prefetch_factor", None)
    return DataLoader(Subset(loader.dataset, range(lo, hi)), batch_size=loader.batch_size or 1, **kwargs)


def _chunk_of(path: Path) -> dict[str, int] | None:
    """The chunk a finished file holds (``start``, ``stop``, ``num_samples``), or None for an unreadable file."""
    import pyarrow.parquet as pq

    from hardmine.analysis.bigtable import _file_settings

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
        chunk = dict(_file_settings(path).get("chunk", {}))
    except Exception:  # an unreadable file (a partial copy) is scored again
        return None
    return chunk if chunk and rows == chunk.get("stop", -1) - chunk.get("start", 0) else None


def _barrier() -> None:
    if distributed.is_distributed():
        import torch.distributed as dist

        dist.barrier()


def _broadcast(value: list[int]) -> list[int]:
    if not distributed.is_distributed():
        return value
    import torch.distributed as dist

    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return list(box[0])


def score_to_parquet(
    model: nn.Module,
    loader: DataLoader,
    out: PathLike,
    *,
    chunk_size: int = 1_000_000,
    ids: Sequence[Any] | None = None,
    classes: Sequence[Any] | None = None,
    options: ScoreOptions | None = None,
    **score_kwargs: Any,
) -> ScoreDataset:
    """Score ``loader``'s dataset into a folder of Parquet files, one per chunk of ``chunk_size`` samples.

    Args:
        model: the classifier, as for :func:`hardmine.score`.
        loader: a DataLoader over a map-style dataset; its batch size, workers and collate function are used for
            every chunk (its sampler is not: every sample is scored once, in index order).
        out: the output folder (created if missing). Files already there from the same run (same ``N`` and
            ``chunk_size``) are kept and their chunks skipped.
        chunk_size: samples per chunk and file; memory is bounded by one chunk's table (about 108 bytes a row).
        ids: one id per dataset sample; defaults to the dataset's own (``ImageFolder`` paths) or the index.
        classes: class names, as for :func:`hardmine.score`.
        options: the options of every chunk's pass (:class:`~hardmine.scoring.options.ScoreOptions`); or leave it
            out and give them as keywords.
        **score_kwargs: the options as keywords of :func:`hardmine.score` (``device``, ``amp``, ``keep_probs``,
            ``batch_size`` ...); checked once, before any chunk.

    Returns:
        The folder opened with :func:`hardmine.open_scores`.

    Raises:
        TypeError: a ``chunk_size`` or an option of the wrong type.
        ValueError: a bad ``chunk_size`` or option, ``ids`` of the wrong length, or files in ``out`` from a run with
            another ``N`` or ``chunk_size``.

    Example:
        >>> import tempfile, torch
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.randn(10, 3), torch.randint(0, 3, (10,)))
        >>> ds = score_to_parquet(torch.nn.Linear(3, 3), DataLoader(data, batch_size=4), tempfile.mkdtemp(),
        ...                       chunk_size=4, progress=False)
        >>> len(ds), len(ds.files)
        (10, 3)
    """
    from hardmine.analysis.bigtable import open_scores

    chunk_size = validate.integer("chunk_size", chunk_size, min=1)
    opts = ScoreOptions.of(options, **score_kwargs)
    n = len(loader.dataset)  # type: ignore[arg-type]
    if ids is not None and len(ids) != n:
        raise ValueError(f"Expected argument `ids` to have one id per dataset sample ({n}), but got {len(ids)}.")
    all_ids = list(ids) if ids is not None else dataset_ids(loader.dataset)
    folder = Path(out)
    rank, world = distributed.get_rank(), distributed.get_world_size()
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    _barrier()
    bounds = [(lo, min(lo + chunk_size, n)) for lo in range(0, n, chunk_size)]
    names = [folder / f"part-{k:06d}.parquet" for k in range(len(bounds))]
    wanted = {p.name: {"start": lo, "stop": hi, "num_samples": n} for p, (lo, hi) in zip(names, bounds, strict=True)}
    todo = list(range(len(bounds)))
    if rank == 0:  # rank 0 decides which chunks are left; every rank follows it
        done = set()
        for file in sorted(folder.glob("*.parquet")):
            chunk = _chunk_of(file)
            if chunk is None and file.name in wanted:
                continue  # an unreadable chunk file of this run: scored again
            if chunk != wanted.get(file.name):
                raise ValueError(
                    f"Expected `out` to hold only this run's chunks (N={n}, chunk_size={chunk_size}), but "
                    f"{file.name} holds {chunk}: use a new folder or remove the old files."
                )
            done.add(file.name)
        todo = [k for k in todo if names[k].name not in done]
    todo = _broadcast(todo)
    failure: Exception | None = None
    with distributed.local_only():  # this rank's chunks, scored whole: no collective, nothing gathered
        for k in todo:
            if k % world != rank:
                continue
            lo, hi = bounds[k]
            chunk_ids = None if all_ids is None else all_ids[lo:hi]
            try:
                table = score(model, _chunk_loader(loader, lo, hi), ids=chunk_ids, classes=classes, options=opts)
            except Exception as err:  # every rank must still reach the barrier below, then all raise
                failure = err
                break
            table["index"] += lo
            if all_ids is None:
                table["id"] = pd.Series([str(i) for i in range(lo, hi)], dtype=object)
            table.attrs["hardmine"] = {
                **table.attrs.get("hardmine", {}),
                "chunk": {"start": lo, "stop": hi, "num_samples": n},
            }
            with atomic_path(names[k], suffix=".parquet.tmp") as tmp:
                table.to_parquet(tmp, index=False)
    distributed.raise_if_any_rank_failed(failure, "hm.score_to_parquet")  # every rank raises, or none
    _barrier()
    return open_scores(folder)
