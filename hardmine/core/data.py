"""Batches, dataset indices and sample ids, and rebuilding a user's DataLoader with another sampler.

A built ``torch.utils.data.DataLoader`` refuses new values for its sampler, batch size and dataset, so hardmine never
edits a user's loader: it builds a new one that carries every other argument (collate_fn, workers, pinning, timeouts,
worker_init_fn, multiprocessing context, generator, prefetching, persistence, ``in_order``) and changes only how
samples are chosen. A ``DataLoader`` subclass comes back as a plain ``DataLoader``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, IterableDataset, Sampler, Subset

from hardmine.core import validate

__all__ = [
    "IndexedLoader",
    "call_model",
    "dataset_ids",
    "move_to_device",
    "rebuild_loader",
    "unpack_batch",
    "with_indices",
    "wrap",
]

#: DataLoader arguments that hardmine carries over when it rebuilds a loader, with torch's defaults.
_CARRIED_KWARGS: dict[str, Any] = {
    "num_workers": 0,
    "collate_fn": None,
    "pin_memory": False,
    "timeout": 0,
    "worker_init_fn": None,
    "multiprocessing_context": None,
    "generator": None,
    "prefetch_factor": None,
    "persistent_workers": False,
    "pin_memory_device": "",
}
if "in_order" in inspect.signature(DataLoader).parameters:  # torch >= 2.6
    _CARRIED_KWARGS["in_order"] = True

INPUT_KEYS: tuple[str, ...] = ("input", "inputs", "image", "images", "img", "x", "data", "pixel_values")
TARGET_KEYS: tuple[str, ...] = ("label", "labels", "target", "targets", "y")

UnpackFn = Callable[[Any], tuple[Any, Tensor]]


def _carried_kwargs(loader: DataLoader) -> dict[str, Any]:
    kwargs = {k: getattr(loader, k, default) for k, default in _CARRIED_KWARGS.items()}
    if kwargs["num_workers"] == 0:
        # torch refuses these without workers; a loader built with num_workers=0 has them at their defaults anyway.
        kwargs["prefetch_factor"] = None
        kwargs["persistent_workers"] = False
    # DataLoader stores the default collate as `default_collate`, which it accepts back unchanged.
    return kwargs


def _check_map_style(loader: DataLoader, what: str) -> None:
    if not isinstance(loader, DataLoader):
        raise TypeError(f"`loader` must be a torch.utils.data.DataLoader, got {type(loader).__name__}")
    if isinstance(loader.dataset, IterableDataset):
        raise TypeError(
            f"{what} needs a map-style dataset (one with __len__ and __getitem__, indexed 0..N-1) so that every sample "
            f"can be addressed by its index, but `loader.dataset` is an IterableDataset "
            f"({type(loader.dataset).__name__}). Wrap the data in a map-style torch.utils.data.Dataset."
        )
    try:
        n = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError as err:
        raise TypeError(f"{what} needs a dataset with __len__, but {type(loader.dataset).__name__} has none.") from err
    if n == 0:
        raise ValueError(f"{what} got an empty dataset: `loader.dataset` has 0 samples.")


def rebuild_loader(
    loader: DataLoader,
    *,
    sampler: Sampler[int] | Iterable[int] | None = None,
    batch_sampler: Sampler[list[int]] | Iterable[list[int]] | None = None,
    batch_size: int | None = None,
    drop_last: bool | None = None,
    dataset: Dataset | None = None,
    collate_fn: Callable[[Any], Any] | None = None,
) -> DataLoader:
    """A new DataLoader over the same data with every carried argument of ``loader`` and new sampling.

    Args:
        loader: the user's loader; it is not modified.
        sampler: yields dataset indices; mutually exclusive with ``batch_sampler``.
        batch_sampler: yields lists of dataset indices.
        batch_size: defaults to ``loader.batch_size`` (or 64 when the loader was built on a ``batch_sampler``); a
            loader without batching (``batch_size=None`` and no ``batch_sampler``) stays without it.
        drop_last: defaults to ``loader.drop_last``.
        dataset: defaults to ``loader.dataset``.
        collate_fn: defaults to ``loader.collate_fn``.

    Returns:
        A plain ``torch.utils.data.DataLoader``.
    """
    kwargs = _carried_kwargs(loader)
    if collate_fn is not None:
        kwargs["collate_fn"] = collate_fn
    ds = loader.dataset if dataset is None else dataset
    if batch_sampler is not None:
        return DataLoader(ds, batch_sampler=batch_sampler, **kwargs)
    if batch_size is None:
        batch_size = loader.batch_size
        if batch_size is None and loader.batch_sampler is not None:
            batch_size = getattr(loader.batch_sampler, "batch_size", 64)
    if batch_size is None:  # no batching: one sample at a time, as the user's loader does
        return DataLoader(ds, sampler=sampler, batch_size=None, **kwargs)
    return DataLoader(
        ds,
        sampler=sampler,
        batch_size=batch_size,
        drop_last=loader.drop_last if drop_last is None else drop_last,
        **kwargs,
    )


def wrap(
    loader: DataLoader,
    sampler: Sampler[int] | Iterable[int] | None = None,
    *,
    batch_sampler: Sampler[list[int]] | Iterable[list[int]] | None = None,
    indices: bool = False,
) -> DataLoader | IndexedLoader:
    """The user's DataLoader with its sampling replaced: same dataset, batch size, collate_fn, workers and the rest.

    Every argument of ``loader`` is carried over (``batch_size``, ``drop_last``, ``collate_fn``, ``num_workers``,
    ``pin_memory``, ``timeout``, ``worker_init_fn``, ``multiprocessing_context``, ``generator``, ``prefetch_factor``,
    ``persistent_workers``, ``pin_memory_device``, ``in_order``); ``shuffle`` is dropped because a sampler replaces it.
    A ``DataLoader`` subclass comes back as a plain ``DataLoader``.

    Args:
        loader: a DataLoader over a map-style dataset, built with ``batch_size`` (not a custom ``batch_sampler``).
        sampler: yields dataset indices, for example a :class:`hardmine.HardSampler`.
        batch_sampler: yields whole batches of indices instead (then ``batch_size`` and ``drop_last`` do not apply).
        indices: also yield each sample's dataset index first: ``for idx, x, y in wrap(loader, s, indices=True)``.

    Returns:
        A new DataLoader (or an :class:`IndexedLoader` when ``indices=True``).

    Raises:
        TypeError: for an IterableDataset, which takes no sampler.
        ValueError: for a loader built on a custom ``batch_sampler`` when only ``sampler`` is given, or when both
            or neither of ``sampler`` and ``batch_sampler`` are given.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.arange(6.0), torch.arange(6))
        >>> loader = DataLoader(ds, batch_size=2, shuffle=True)
        >>> [b[1].tolist() for b in wrap(loader, [5, 4, 3, 2, 1, 0])]
        [[5, 4], [3, 2], [1, 0]]
    """
    _check_map_style(loader, "hm.wrap")
    indices = validate.boolean("indices", indices)
    if (sampler is None) == (batch_sampler is None):
        raise ValueError(
            "Expected exactly one of `sampler` and `batch_sampler`, but got "
            f"{'both' if sampler is not None else 'neither'}."
        )
    if sampler is not None and loader.batch_size is None and loader.batch_sampler is not None:
        raise ValueError(
            "`loader` was built on a custom batch_sampler (its batch_size is None), so hm.wrap cannot tell which batch "
            "size to keep. Pass `batch_sampler=` to hm.wrap, or build the loader with `batch_size=`."
        )
    new = rebuild_loader(loader, sampler=sampler, batch_sampler=batch_sampler)
    return with_indices(new) if indices else new


class _IndexedDataset(Dataset):
    """Returns ``(index, sample)`` for the wrapped dataset's ``sample``; picklable for worker processes."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.dataset[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[int, Any]]:
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(indices) if getitems is not None else [self.dataset[i] for i in indices]
        return list(zip(indices, items, strict=True))


class _IndexedCollate:
    """Collates ``(index, sample)`` pairs into ``(int64 index tensor, collate_fn(samples))``."""

    def __init__(self, collate_fn: Callable[[list[Any]], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, pairs: list[tuple[int, Any]]) -> tuple[Tensor, Any]:
        return torch.tensor([i for i, _ in pairs], dtype=torch.int64), self.collate_fn([s for _, s in pairs])


class _IndexedConvert:
    """One ``(index, sample)`` pair of a loader without batching as ``(0-d int64 index, collate_fn(sample))``."""

    def __init__(self, collate_fn: Callable[[Any], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, pair: tuple[int, Any]) -> tuple[Tensor, Any]:
        return torch.tensor(pair[0], dtype=torch.int64), self.collate_fn(pair[1])


class IndexedLoader:
    """Iterates a DataLoader's batches with each sample's dataset index in front: ``(idx, *batch)``.

    Built by :func:`with_indices`. A batch that is a tuple or list ``(x, y, ...)`` comes as ``(idx, x, y, ...)``; any
    other batch (a dict, a tensor) comes as ``(idx, batch)``. ``idx`` is an int64 tensor ``(B,)`` on the CPU (pinned
    when the loader pins memory).

    Attributes:
        loader: the rebuilt DataLoader that yields ``(idx, batch)`` pairs.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for idx, batch in self.loader:
            if isinstance(batch, (tuple, list)):
                yield (idx, *batch)
            else:
                yield idx, batch

    @property
    def dataset(self) -> Dataset:
        """The user's dataset (not the index-returning wrapper)."""
        return self.loader.dataset.dataset  # type: ignore[attr-defined]

    @property
    def sampler(self) -> Any:
        """The sampler the batches are drawn with (the user's, shared, so ``set_epoch`` on it works as before)."""
        return self.loader.sampler

    @property
    def batch_sampler(self) -> Any:
        """The batch sampler the batches are drawn with."""
        return self.loader.batch_sampler


def with_indices(loader: DataLoader) -> IndexedLoader:
    """The same batches as ``loader``, each with its samples' dataset indices, without editing the user's Dataset.

    The user's sampler (or batch sampler) is reused as it is, so shuffling, ``DistributedSampler`` sharding and
    ``set_epoch`` behave exactly as before; each worker returns the indices it loaded, so the order survives
    ``num_workers > 0``.

    Args:
        loader: a DataLoader over a map-style dataset.

    Returns:
        An :class:`IndexedLoader` yielding ``(idx, *batch)``, ``idx`` an int64 tensor ``(B,)``; from a loader without
        batching (``batch_size=None``), ``(idx, *sample)`` with ``idx`` a 0-d int64 tensor.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.tensor([10.0, 11.0, 12.0]), torch.tensor([0, 1, 0]))
        >>> loader = DataLoader(ds, batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(0))
        >>> for idx, x, y in with_indices(loader):
        ...     assert (x == 10 + idx).all()
    """
    _check_map_style(loader, "hm.with_indices")
    ds = _IndexedDataset(loader.dataset)
    if loader.batch_size is None and loader.batch_sampler is None:  # no batching: one sample at a time
        convert = _IndexedConvert(loader.collate_fn)
        new = rebuild_loader(loader, sampler=loader.sampler, dataset=ds, collate_fn=convert)
    elif loader.batch_size is None:
        collate = _IndexedCollate(loader.collate_fn)
        new = rebuild_loader(loader, batch_sampler=loader.batch_sampler, dataset=ds, collate_fn=collate)
    else:
        new = rebuild_loader(loader, sampler=loader.sampler, dataset=ds, collate_fn=_IndexedCollate(loader.collate_fn))
    return IndexedLoader(new)


def dataset_ids(dataset: Dataset) -> list[str] | None:
    """Per-sample ids a dataset knows by itself: file paths for ``ImageFolder``/``DatasetFolder``.

    ``Subset`` and ``ConcatDataset`` of such datasets are followed. Returns ``None`` when the dataset has no ids.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> dataset_ids(TensorDataset(torch.zeros(2))) is None
        True
    """
    samples = getattr(dataset, "samples", None)
    if (
        isinstance(samples, Sequence)
        and len(samples) == len(dataset)  # type: ignore[arg-type]
        and all(isinstance(s, (tuple, list)) and s and isinstance(s[0], str) for s in samples[:1])
    ):
        return [str(s[0]) for s in samples]
    if isinstance(dataset, Subset):
        inner = dataset_ids(dataset.dataset)
        return None if inner is None else [inner[int(i)] for i in dataset.indices]
    if isinstance(dataset, ConcatDataset):
        parts = [dataset_ids(d) for d in dataset.datasets]
        if all(p is not None for p in parts):
            return [i for p in parts for i in p]  # type: ignore[union-attr]
    return None


def unpack_batch(
    batch: Any,
    *,
    input_key: str | None = None,
    target_key: str | None = None,
    batch_number: int | None = None,
    targets: bool = True,
) -> tuple[Any, Tensor | None]:
    """Split a batch into ``(inputs, targets)``; ``targets`` is ``None`` for a batch of inputs only.

    Understands:

    - ``(inputs, targets, ...)`` tuples and lists (extra items are ignored); a 1-tuple ``(inputs,)`` and a bare
      tensor are inputs only (unlabeled data);
    - dicts: the targets under ``target_key`` or the first of the usual names (``label``, ``labels``, ``target``,
      ``targets``, ``y``), none for a dict without one; the inputs under ``input_key`` or the first of the usual
      names (``input``, ``image``, ``x``, ``pixel_values`` ...), and when there is none **every other key**, as a
      dict that the model gets as keyword arguments: ``{"input_ids", "attention_mask", "labels"}`` calls
      ``model(input_ids=..., attention_mask=...)``.

    With ``targets=False`` the targets are never read (``None``). For anything else pass your own ``unpack`` to
    :func:`hardmine.score`.

    Example:
        >>> unpack_batch({"image": 1, "label": torch.tensor([2])})
        (1, tensor([2]))
        >>> unpack_batch({"input_ids": 1, "attention_mask": 2, "labels": torch.tensor([0])})
        ({'input_ids': 1, 'attention_mask': 2}, tensor([0]))
        >>> unpack_batch(torch.zeros(2, 3))[1] is None
        True
    """
    where = f" (batch {batch_number})" if batch_number is not None else ""
    if isinstance(batch, Mapping):
        keys = list(batch.keys())
        if target_key is not None and target_key not in batch:
            raise ValueError(
                f"Could not find the targets in a dict batch with keys {keys}{where}: `target_key` is {target_key!r}."
            )
        if input_key is not None and input_key not in batch:
            raise ValueError(
                f"Could not find the inputs in a dict batch with keys {keys}{where}: `input_key` is {input_key!r}."
            )
        tk = target_key or next((k for k in TARGET_KEYS if k in batch), None)
        ik = input_key or next((k for k in INPUT_KEYS if k in batch), None)
        if ik is not None:
            inputs: Any = batch[ik]
        else:
            inputs = {k: v for k, v in batch.items() if k != tk}
            if not inputs:
                raise ValueError(
                    f"Could not find the inputs in a dict batch with keys {keys}{where}: it holds only the targets."
                )
        if tk is None or not targets:
            return inputs, None
        return inputs, _as_tensor(batch[tk], where)
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0], None
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], (_as_tensor(batch[1], where) if targets else None)
    raise ValueError(
        f"Expected a batch of (inputs, targets), inputs only (a tensor or a 1-tuple) or a dict, but got "
        f"{type(batch).__name__}{where}. Pass `unpack=lambda batch: (inputs, targets)` to say how to read your "
        "batches."
    )


def _as_tensor(targets: Any, where: str) -> Tensor:
    if isinstance(targets, Tensor):
        return targets
    try:
        return torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(
            f"Expected the targets{where} to be a tensor (or a list of numbers), but got {type(targets).__name__}."
        ) from err


def move_to_device(obj: Any, device: torch.device, *, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) tuple, list or dict to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device, non_blocking=non_blocking) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to_device(v, device, non_blocking=non_blocking) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(move_to_device(v, device, non_blocking=non_blocking) for v in obj)
    return obj


def call_model(model: nn.Module | Callable[..., Any], inputs: Any) -> Tensor:
    """Call ``model`` on ``inputs`` and return its logits.

    A dict of inputs is passed as keyword arguments. The output may be the logits tensor, an object with a
    ``.logits`` attribute (Hugging Face models), a dict with a ``"logits"`` key (or ``"out"``, as torchvision's
    segmentation models), or a tuple whose first item is the logits.
    """
    if isinstance(inputs, Mapping):
        try:
            out = model(**inputs)
        except TypeError as err:
            if "argument" not in str(err):
                raise
            raise TypeError(
                f"{err}: the model was called with the keyword arguments {list(inputs)} of a dict batch (with no "
                f"known input key, every key but the targets goes to the model). Pass `input_key=` (and "
                "`target_key=`) to hm.score to name the model's input."
            ) from err
    else:
        out = model(inputs)
    if isinstance(out, Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(out, Mapping) and isinstance(out.get("logits"), Tensor):
        return out["logits"]
    if isinstance(out, Mapping) and isinstance(out.get("out"), Tensor):  # torchvision segmentation models
        return out["out"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(
        f"Expected the model to return logits (a tensor, an object with .logits, a dict with 'logits' or a tuple "
        f"starting with them), but it returned {type(out).__name__}."
    )
