"""torch.distributed helpers: who am I, which samples are mine, and gathering per-sample results.

Everything works without torch.distributed (a world of one). Under ``torchrun`` hardmine reads the rank and world
size from the initialised default process group.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from hardmine.core import validate

__all__ = [
    "all_gather_concat",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "is_main_process",
    "local_only",
    "raise_if_any_rank_failed",
    "shard_bounds",
]


_LOCAL: contextvars.ContextVar[bool] = contextvars.ContextVar("hardmine_local_only", default=False)


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Inside this block hardmine acts as a world of one: rank 0 of 1, no collectives, whatever torchrun started.

    For work that each rank does on its own share and writes itself, with nothing gathered (for example
    :func:`hardmine.score_to_parquet`, where every rank scores whole chunks of its own). Only hardmine's own
    view changes: the process group stays as it is.

    Example:
        >>> with local_only():
        ...     get_world_size(), get_rank(), is_distributed()
        (1, 0, False)
    """
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


def is_distributed() -> bool:
    """True when torch.distributed is available, initialised, and has more than one process (and not local_only)."""
    return get_world_size() > 1


def get_world_size() -> int:
    """Number of processes in the default group (1 without torch.distributed, and inside :func:`local_only`)."""
    if _LOCAL.get():
        return 1
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    """This process's rank in the default group (0 without torch.distributed, and inside :func:`local_only`)."""
    if _LOCAL.get():
        return 0
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0, and always without torch.distributed."""
    return get_rank() == 0


def shard_bounds(num_samples: int, num_replicas: int, rank: int) -> tuple[int, int]:
    """The contiguous ``[start, stop)`` share of ``range(num_samples)`` that ``rank`` scores, with no padding.

    Shares differ in length by at most one sample, so every sample is scored exactly once (unlike
    ``DistributedSampler``, which pads with repeated samples).

    Example:
        >>> [shard_bounds(10, 3, r) for r in range(3)]
        [(0, 4), (4, 7), (7, 10)]
    """
    num_samples = validate.integer("num_samples", num_samples, min=0)
    num_replicas = validate.integer("num_replicas", num_replicas, min=1)
    rank = validate.integer("rank", rank, min=0, max=num_replicas - 1)
    base, extra = divmod(num_samples, num_replicas)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def all_gather_concat(tensor: Tensor) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order; ranks may hold different lengths.

    Without torch.distributed this returns ``tensor`` itself. With the gloo backend tensors are gathered on the CPU;
    with NCCL on the current CUDA device.
    """
    if not is_distributed():
        return tensor
    world = dist.get_world_size()
    comm_device = torch.device("cpu") if dist.get_backend() == "gloo" else tensor.device
    local = tensor.to(comm_device)
    size = torch.tensor([local.shape[0]], device=comm_device, dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    longest = max(lengths)
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[: local.shape[0]] = local
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded)
    return torch.cat([o[:n] for o, n in zip(out, lengths, strict=True)]).to(tensor.device)


def raise_if_any_rank_failed(error: BaseException | None, what: str = "hm.score") -> None:
    """Make every rank raise when any rank failed, so that no rank waits forever in a later collective.

    Every rank calls this at the same point, with the exception it caught (or ``None``). A rank that failed re-raises
    its own exception; the others raise a ``RuntimeError`` that names the first failed rank and its error. Without
    torch.distributed it just re-raises ``error`` if there is one.

    Example:
        >>> raise_if_any_rank_failed(None)  # one process, no error: nothing happens
    """
    if not is_distributed():
        if error is not None:
            raise error
        return
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [(r, m) for r, m in enumerate(messages) if m is not None]
    if failed:
        rank, message = failed[0]
        raise RuntimeError(f"{what} failed on rank {rank} (of {len(messages)}): {message}")
