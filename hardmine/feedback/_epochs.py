"""What :class:`~hardmine.feedback.sampling.HardSampler` and :class:`~hardmine.feedback.sharded.ShardedSampler` share.

- :class:`ResumableEpochs`: the epoch and the position in a pass: ``set_epoch``, how many indices a pass has yielded,
  the checks of a saved state and the resume from it;
- :func:`check_replicas`: the ``num_replicas``/``rank`` arguments;
- :func:`mix`: seeds from integers (seed, epoch, chunk), so that every rank draws the same global epoch;
- :class:`DoubleShardingWarning` and :func:`framework_sharding`: a sharding sampler iterated by a framework that
  shards its indices again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from types import FrameType
from typing import Any

from torch.utils.data import DistributedSampler

from hardmine.core import validate

__all__ = ["DoubleShardingWarning", "ResumableEpochs", "check_replicas", "framework_sharding", "mix"]

_MASK64 = (1 << 64) - 1


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 over each), so nearby seeds and epochs give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


class ResumableEpochs(ABC):
    """The epoch of a sampler and its position in the pass under way, saved and restored exactly.

    A subclass sets ``seed`` and calls :meth:`_start_epochs` in its ``__init__``, yields through :meth:`_yield_chunks`,
    and checks a saved state with :meth:`_check_state` before :meth:`_restore_position`.
    """

    seed: int
    epoch: int

    def _start_epochs(self) -> None:
        self.epoch = 0
        self._resume = 0
        self._pass_pos: tuple[int, Iterator[int], int] | None = None

    @abstractmethod
    def __len__(self) -> int:
        """Indices one pass yields on this rank (the resume check reads it)."""

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch`` on the next pass (a fresh, reproducible draw per epoch, the same on every rank)."""
        epoch = validate.integer("epoch", epoch, min=0)
        if epoch != self.epoch:  # another epoch: a pass of the old one cut short is over, nothing of the new is drawn
            self._resume = 0
            self._pass_pos = None
        self.epoch = epoch

    def _yielded(self) -> int:
        """Indices the pass under way has handed out (the resume point of a saved state)."""
        if self._pass_pos is None:
            return self._resume
        base, it, chunk_len = self._pass_pos
        return base + chunk_len - it.__length_hint__()  # type: ignore[attr-defined]

    def _yield_chunks(self, epoch: int, start: int, chunks: Iterable[Any]) -> Iterator[int]:
        """The ints of ``chunks`` (from position ``start`` of epoch ``epoch``); the position tracked, then next epoch.

        ``chunks`` are tensors or arrays; after the last one the pass is over and the sampler moves to the next epoch.
        """
        base = start
        for chunk in chunks:
            values = chunk.tolist()
            it = iter(values)
            self._pass_pos = (base, it, len(values))
            yield from it
            base += len(values)
        self._pass_pos = None
        self._resume = 0
        if self.epoch == epoch:
            self.epoch = epoch + 1

    def _check_state(self, state: Mapping[str, Any], owner: str, mine: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless ``state`` is ``owner.state_dict()``'s, saved with the settings ``mine``."""
        keys = ("epoch", "seed", "yielded", *mine)
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"Expected argument `state` to come from {owner}.state_dict(), but it lacks {missing}.")
        for key, value in mine.items():
            if state[key] != value:
                raise ValueError(
                    f"Expected a state saved with {key}={value!r} like this sampler's, but got {state[key]!r}."
                )
        if not 0 <= int(state["yielded"]) <= len(self):
            raise ValueError(f"Expected `yielded` in [0, {len(self)}], but got {state['yielded']}.")

    def _restore_position(self, state: Mapping[str, Any]) -> None:
        """The seed, epoch and position of a checked ``state``: the next pass yields the rest of its epoch."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._resume = int(state["yielded"])
        self._pass_pos = None


def check_replicas(num_replicas: Any, rank: Any) -> tuple[int | None, int | None]:
    """``num_replicas`` (>= 1) and ``rank`` (>= 0, below ``num_replicas``), each may be ``None``.

    Example:
        >>> check_replicas(4, 3), check_replicas(None, None)
        ((4, 3), (None, None))
    """
    num_replicas = validate.optional(validate.integer, "num_replicas", num_replicas, min=1)
    rank = validate.optional(validate.integer, "rank", rank, min=0)
    if num_replicas is not None and rank is not None:
        validate.integer("rank", rank, max=num_replicas - 1)
    return num_replicas, rank


class DoubleShardingWarning(UserWarning):
    """A hardmine sampler that shards across ranks is iterated by a framework that shards the indices again."""


#: Modules whose frames iterate a sampler to shard its indices across ranks, and the names they go by.
_SHARDING_FRAMEWORKS: tuple[tuple[str, str], ...] = (
    ("lightning.fabric.utilities.distributed", "Lightning's DistributedSamplerWrapper (use_distributed_sampler)"),
    ("lightning_fabric.utilities.distributed", "Lightning's DistributedSamplerWrapper (use_distributed_sampler)"),
    ("pytorch_lightning.overrides.distributed", "Lightning's DistributedSamplerWrapper (use_distributed_sampler)"),
    ("accelerate.data_loader", "accelerate's BatchSamplerShard (Hugging Face Trainer / accelerate.prepare)"),
)


def framework_sharding(frame: FrameType | None, depth: int = 8) -> str | None:
    """The framework that shards the indices of the sampler being iterated from ``frame``, or ``None``.

    Looks at most ``depth`` frames up for one of the known sharding wrappers (Lightning's ``DistributedSamplerWrapper``,
    accelerate's ``BatchSamplerShard``) or a ``torch.utils.data.DistributedSampler`` subclass iterating it.

    Example:
        >>> import sys
        >>> framework_sharding(sys._getframe()) is None   # a plain call: no framework
        True
    """
    for _ in range(depth):
        if frame is None:
            return None
        module = frame.f_globals.get("__name__", "")
        for prefix, name in _SHARDING_FRAMEWORKS:
            if module == prefix:
                return name
        owner = frame.f_locals.get("self")
        if isinstance(owner, DistributedSampler):
            return f"a DistributedSampler ({type(owner).__name__})"
        frame = frame.f_back
    return None
