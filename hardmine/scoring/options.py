"""The options of one scoring pass, in one frozen object that checks itself once.

:class:`ScoreOptions` holds every keyword of :func:`hardmine.score` that shapes the pass (device, mixed precision,
batch handling, the task and its loss, what to keep, the checkpoint folder). :func:`hardmine.score` keeps its keyword
signature and builds one ``ScoreOptions`` from it; everything below it (the pass, the checkpoint fingerprint, the
streamed pass, the miner) takes that object instead of threading seventeen keywords by hand.

Every value is checked with :mod:`hardmine.core.validate` when the object is made, so a bad value fails before any
batch is read, with the same error everywhere: :class:`TypeError` for a wrong type, :class:`ValueError` for a bad
value, naming the argument.

Example:
    >>> opts = ScoreOptions(batch_size=64, keep_probs=True)
    >>> opts.batch_size, opts.progress
    (64, True)
    >>> ScoreOptions(batch_size=True)
    Traceback (most recent call last):
        ...
    TypeError: `batch_size` must be an integer, got bool True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hardmine.core import validate
from hardmine.scoring.tasks import TASKS, LossFn, OutputsArg, Task

__all__ = ["AmpArg", "ScoreOptions"]

AmpArg = bool | str | torch.dtype
_AMP_NAMES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
}
#: ``task=`` values: the tasks of :mod:`hardmine.scoring.tasks`, and detection (its own pass).
_TASK_NAMES: tuple[str, ...] = (*TASKS, "detection")


@dataclass(frozen=True)
class ScoreOptions:
    """Every option of a scoring pass; the keywords of :func:`hardmine.score` (see there for each one's meaning).

    Attributes:
        device: where to run (``None``: the model's device).
        amp: ``False``, ``True``, ``"bf16"``/``"fp16"`` (and their long names) or ``torch.float16``/``bfloat16``.
        progress: show a progress bar.
        unpack: ``unpack(batch) -> (inputs, targets)`` for batches of your own layout.
        input_key: key of the inputs in dict batches.
        target_key: key of the targets in dict batches.
        batch_size: batch size of the pass (``None``: the loader's), >= 1.
        keep_probs: keep every class probability as ``prob_<c>`` columns.
        channels_last: feed 4-D inputs in ``torch.channels_last`` memory format.
        checkpoint_dir: folder that makes the pass resumable (``None``: not resumable).
        checkpoint_every: batches between checkpoint saves, >= 1.
        targets: ``False`` ignores the batches' targets (the unlabeled table).
        loss_fn: per-sample (or unreduced) loss ``loss_fn(outputs, targets)``.
        task: a task name, a :class:`hardmine.Task` object, or ``None`` to detect it.
        outputs: ``"logits"``, ``"probs"`` or ``None`` (warn when outputs look like probabilities).

    Example:
        >>> ScoreOptions(amp="bf16").amp_dtype(torch.device("cpu"))
        torch.bfloat16
        >>> ScoreOptions(outputs="log-probs")
        Traceback (most recent call last):
            ...
        ValueError: `outputs` must be one of 'logits', 'probs', None, got 'log-probs'
    """

    device: str | torch.device | None = None
    amp: AmpArg = False
    progress: bool = True
    unpack: Callable[[Any], tuple[Any, Tensor | None]] | None = None
    input_key: str | None = None
    target_key: str | None = None
    batch_size: int | None = None
    keep_probs: bool = False
    channels_last: bool = False
    checkpoint_dir: str | os.PathLike[str] | None = None
    checkpoint_every: int = 50
    targets: bool = True
    loss_fn: LossFn | None = None
    task: str | Task | None = None
    outputs: OutputsArg = None

    #: The options that do not change a single result (only how the pass runs): left out of the fingerprint.
    RUN_ONLY: ClassVar[tuple[str, ...]] = ("progress", "checkpoint_dir", "checkpoint_every")

    def __post_init__(self) -> None:
        checked = {
            "progress": validate.boolean("progress", self.progress),
            "keep_probs": validate.boolean("keep_probs", self.keep_probs),
            "channels_last": validate.boolean("channels_last", self.channels_last),
            "targets": validate.boolean("targets", self.targets),
            "batch_size": validate.optional(validate.integer, "batch_size", self.batch_size, min=1),
            "checkpoint_every": validate.integer("checkpoint_every", self.checkpoint_every, min=1),
            "outputs": validate.choice("outputs", self.outputs, ("logits", "probs", None)),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        for name in ("input_key", "target_key"):
            _optional_instance(name, getattr(self, name), str, "a string")
        _optional_instance("checkpoint_dir", self.checkpoint_dir, (str, os.PathLike), "a folder path")
        for name in ("unpack", "loss_fn"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"`{name}` must be callable or None, got {validate._got(value)}")
        if isinstance(self.task, str) or self.task is None:
            validate.optional(validate.choice, "task", self.task, options=_TASK_NAMES)
        elif not all(callable(getattr(self.task, m, None)) for m in ("check", "measures", "columns")):
            got = validate._got(self.task)
            raise TypeError(f"`task` must be a task name, a hardmine Task object or None, got {got}")
        self.torch_device()  # a device name torch cannot read fails here, before the pass
        if self.amp is not False and self.amp is not None:
            self.amp_dtype(torch.device("cpu"))

    # ------------------------------------------------------------------------------------------------ building

    @classmethod
    def of(cls, options: ScoreOptions | None = None, **keywords: Any) -> ScoreOptions:
        """``options`` when given (then every keyword must be left at its default), else ``ScoreOptions(**keywords)``.

        Raises:
            TypeError: ``options`` is not a ScoreOptions, or a keyword that is no option.
            ValueError: ``options`` together with keywords that change an option.

        Example:
            >>> ScoreOptions.of(None, keep_probs=True).keep_probs
            True
            >>> ScoreOptions.of(ScoreOptions(amp="bf16"), amp=False).amp
            'bf16'
        """
        if options is None:
            return cls(**keywords)
        if not isinstance(options, ScoreOptions):
            raise TypeError(f"`options` must be a hardmine ScoreOptions or None, got {validate._got(options)}")
        changed = cls(**keywords).changed()
        if changed:
            raise ValueError(
                f"`options` must come alone, got it together with {changed}: set them in the ScoreOptions instead"
            )
        return options

    def changed(self) -> list[str]:
        """The names of the options that differ from their defaults, in field order.

        Example:
            >>> ScoreOptions(keep_probs=True, batch_size=8).changed()
            ['batch_size', 'keep_probs']
        """
        return [f.name for f in fields(self) if not _same(getattr(self, f.name), f.default)]

    def but(self, **changes: Any) -> ScoreOptions:
        """A copy with ``changes`` (checked again).

        Example:
            >>> ScoreOptions(keep_probs=True).but(progress=False).changed()
            ['progress', 'keep_probs']
        """
        return replace(self, **changes)

    # ------------------------------------------------------------------------------------------------ reading

    def torch_device(self, model: nn.Module | None = None) -> torch.device:
        """``device`` as a ``torch.device``; without one, the device of ``model``'s first parameter (or buffer).

        Example:
            >>> ScoreOptions(device="cpu").torch_device()
            device(type='cpu')
        """
        if self.device is not None:
            try:
                return torch.device(self.device)
            except (RuntimeError, TypeError) as err:
                raise ValueError(f"`device` must name a torch device, got {validate._got(self.device)}") from err
        tensor: Tensor | None = None
        if model is not None:
            tensor = next(model.parameters(), None)
            if tensor is None:
                tensor = next(model.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def amp_dtype(self, device: torch.device) -> torch.dtype | None:
        """The autocast dtype on ``device`` (``None``: no autocast); ``amp=True`` is float16 on CUDA, else bfloat16.

        Example:
            >>> ScoreOptions(amp=True).amp_dtype(torch.device("cpu")), ScoreOptions().amp_dtype(torch.device("cpu"))
            (torch.bfloat16, None)
        """
        amp = self.amp
        if amp is False or amp is None:
            return None
        if amp is True:
            return torch.float16 if device.type == "cuda" else torch.bfloat16
        if isinstance(amp, torch.dtype):
            dtype = amp
        elif isinstance(amp, str):
            dtype = _AMP_NAMES[validate.choice("amp", amp.lower(), tuple(_AMP_NAMES))]
        else:
            raise TypeError(f"`amp` must be a bool, 'bf16', 'fp16' or a torch dtype, got {validate._got(amp)}")
        return validate.choice("amp", dtype, (torch.float16, torch.bfloat16))

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of the pass on ``device`` (a null context without ``amp``)."""
        dtype = self.amp_dtype(device)
        return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)

    def fingerprint(
        self, model: nn.Module, loader: DataLoader, *, device: torch.device, batch_size: int, world_size: int, rank: int
    ) -> dict[str, Any]:
        """Everything that decides the results of the pass, as a JSON-able dict (the checkpoint's fingerprint).

        The model and the data (:func:`hardmine.scoring.checkpoint.data_fingerprint`), the resolved ``device``
        type and ``batch_size``, the torch.distributed world, and every option except :attr:`RUN_ONLY`. ``targets``,
        ``loss_fn``, ``task`` and ``outputs`` enter only when one of them is set, so that checkpoints of plain
        classification passes of earlier versions keep matching.

        Example:
            >>> from torch.utils.data import TensorDataset
            >>> loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4)), batch_size=2)
            >>> fp = ScoreOptions(keep_probs=True).fingerprint(
            ...     nn.Linear(2, 2), loader, device=torch.device("cpu"), batch_size=2, world_size=1, rank=0)
            >>> fp["keep_probs"], fp["device_type"], "progress" in fp
            (True, 'cpu', False)
        """
        from hardmine.scoring.checkpoint import _describe, data_fingerprint

        out = data_fingerprint(model, loader)
        out.update(
            batch_size=int(batch_size),
            keep_probs=self.keep_probs,
            amp=str(self.amp),
            channels_last=self.channels_last,
            device_type=device.type,
            unpack=_describe(self.unpack),
            input_key=self.input_key,
            target_key=self.target_key,
            world_size=int(world_size),
            rank=int(rank),
        )
        if not self.targets or self.loss_fn is not None or self.task is not None or self.outputs is not None:
            out.update(
                targets=self.targets,
                loss_fn=None if self.loss_fn is None else _describe(self.loss_fn),
                task=self.task if self.task is None or isinstance(self.task, str) else _describe(self.task),
                outputs=self.outputs,
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        """The options as keywords of :func:`hardmine.score`.

        Example:
            >>> ScoreOptions(batch_size=8).as_dict()["batch_size"]
            8
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _optional_instance(name: str, value: Any, kinds: type | tuple[type, ...], what: str) -> None:
    if value is not None and not isinstance(value, kinds):
        raise TypeError(f"`{name}` must be {what} or None, got {validate._got(value)}")


def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if isinstance(default, (bool, int, str)) and type(value) is type(default):
        return bool(value == default)
    return False
