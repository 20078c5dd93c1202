"""Resumable scoring: the partial per-sample results of a scoring pass, saved atomically every few batches.

``hm.score(model, loader, checkpoint_dir="ckpt")`` writes, every ``checkpoint_every`` batches, the rows scored since
the last save as one small torch file (``rows-<first>-<stop>.pt``) and then a ``meta.json`` that records how far the
pass got (the sample *position* ``P``) and a *fingerprint* of everything that decides the results: the dataset (length,
type, a hash of its ids, targets and transform), the model (class and a hash of every tensor of its ``state_dict``),
and the scoring arguments (``batch_size``, ``keep_probs``, ``amp``, ``channels_last``, the device type, ``unpack``,
``input_key``, ``target_key``, the torch.distributed world size and rank). Both writes go to a temporary file that
replaces the destination in one ``os.replace``, so a process killed at any moment (SIGKILL included) leaves either the
previous state or the new one.

A later call with the same ``checkpoint_dir`` and a matching fingerprint loads rows ``0..P-1`` and scores only the
samples ``P..N-1``; its table equals an uninterrupted run's. A checkpoint made with other arguments, another model or
another dataset is refused with a ``ValueError`` naming what differs, never mixed in. When the pass completes, the
files hardmine wrote are removed (and the folder, if that leaves it empty): a checkpoint only ever holds an unfinished
pass. Under torch.distributed each rank keeps its own files (``rank<r>.meta.json`` ...).

The folder belongs to hardmine: it carries a marker file (``.hardmine-checkpoint``), a lock file per rank
(``lock``, ``rank<r>.lock``: the host and process id of the run using it) refuses a second run while the first is
alive, and only files of hardmine's own names are ever deleted. A folder that holds anything else (your own files)
is refused with a ``ValueError`` naming them, before anything is written or deleted.

Writing only the new rows each time keeps the total I/O at one copy of the results, whatever ``checkpoint_every``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hardmine.core._files import _pid_alive, atomic_path
from hardmine.core.data import dataset_ids

__all__ = ["CheckpointState", "ScoringCheckpoint", "data_fingerprint", "saved_position", "scoring_fingerprint"]

_FORMAT = "hardmine-scoring-checkpoint"
_VERSION = 1
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: The marker file of a checkpoint folder that hardmine owns.
MARKER = ".hardmine-checkpoint"
#: Names of the files hardmine writes in a checkpoint folder (and its temporary files, of 0.2.0 and of now).
_OWN = re.compile(
    r"^(?:\.hardmine-checkpoint"
    r"|(?:rank\d+\.)?(?:meta\.json|lock|rows-\d{12}-\d{12}\.pt)"
    r"|\.(?:rank\d+\.)?(?:meta\.json|rows-\d{12}-\d{12}\.pt|\.hardmine-checkpoint)\..+\.(?:tmp|hardmine-tmp))$"
)


def _sha256_strings(items: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(str(item).encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _tensor_bytes(t: Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data if flat.numel() else memoryview(b"")


def model_hash(model: nn.Module) -> str:
    """A sha256 over every tensor of ``model.state_dict()``: names, dtypes, shapes and values.

    Example:
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> model_hash(a) == model_hash(a), model_hash(a) == model_hash(b)
        (True, False)
    """
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        if isinstance(value, Tensor):
            h.update(f"{value.dtype}{tuple(value.shape)}".encode())
            h.update(_tensor_bytes(value))
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def _targets_hash(dataset: Any) -> str | None:
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, Tensor):
        return hashlib.sha256(_tensor_bytes(targets)).hexdigest()
    if isinstance(targets, Sequence) and not isinstance(targets, str):
        return _sha256_strings(targets)
    return None


def _hash_obj(h: Any, obj: Any) -> None:
    if isinstance(obj, Tensor):
        h.update(f"T{obj.dtype}{tuple(obj.shape)}".encode())
        h.update(_tensor_bytes(obj))
    elif isinstance(obj, Mapping):
        for key in sorted(obj, key=str):
            h.update(f"K{key}".encode())
            _hash_obj(h, obj[key])
    elif isinstance(obj, (tuple, list)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _hash_obj(h, item)
    elif hasattr(obj, "tobytes") and callable(obj.tobytes):  # numpy arrays, PIL images
        h.update(repr(getattr(obj, "shape", getattr(obj, "size", ""))).encode())
        h.update(obj.tobytes())
    else:
        h.update(_ADDRESS.sub("", repr(obj)).encode())


def _samples_hash(dataset: Any, n: int, probes: int = 5) -> str:
    """A hash of a few evenly spaced samples (first and last included): catches another dataset of the same length."""
    h = hashlib.sha256()
    for i in sorted({round(k * (n - 1) / max(probes - 1, 1)) for k in range(probes)} if n else set()):
        h.update(f"#{i}".encode())
        _hash_obj(h, dataset[i])
    return h.hexdigest()


def _files_hash(dataset: Any) -> str | None:
    """A hash of ``(path, size, mtime_ns)`` of every file of an ImageFolder-like dataset (``samples``), or ``None``.

    One ``stat`` per file (no file is read), so a file changed after a save is caught, whichever it is.
    """
    samples = getattr(dataset, "samples", None)
    if not isinstance(samples, Sequence) or not samples:
        return None
    h = hashlib.sha256()
    for item in samples:
        path = item[0] if isinstance(item, (tuple, list)) and item else item
        if not isinstance(path, (str, os.PathLike)):
            return None
        try:
            st = os.stat(path)
            h.update(f"{os.fspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogatepass"))
        except OSError:
            h.update(f"{os.fspath(path)}\0missing\0".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _describe(obj: Any) -> str | None:
    """A process-independent description of a transform or function (memory addresses removed)."""
    if obj is None:
        return None
    name = getattr(obj, "__qualname__", None)
    if name is not None and callable(obj):
        return f"{getattr(obj, '__module__', '')}.{name}"
    return _ADDRESS.sub("", repr(obj))


def data_fingerprint(model: nn.Module, loader: DataLoader) -> dict[str, Any]:
    """The model and the data of a scoring pass, as a JSON-able dict of strings and numbers.

    The dataset is described by its length, type, a hash of its ids (file paths for ``ImageFolder``), of its
    ``targets`` and the ``repr`` of its ``transform`` when it has them, and a hash of five evenly spaced samples (the
    first and the last included; a dataset with random augmentations therefore never matches, as its scores would
    not either), and, for an ImageFolder-like dataset (a ``samples`` list of file paths), the path, size and
    modification time of every file; the model by its class and a hash of its ``state_dict``. Hashing the model
    reads every weight once (about 0.2 s per 100 MB). The options of the pass are added by
    :meth:`hardmine.scoring.options.ScoreOptions.fingerprint`.
    """
    dataset = loader.dataset
    ids = dataset_ids(dataset)
    n = len(dataset)  # type: ignore[arg-type]
    return {
        "num_samples": n,
        "dataset_type": type(dataset).__qualname__,
        "dataset_ids": _sha256_strings(ids) if ids is not None else None,
        "dataset_targets": _targets_hash(dataset),
        "dataset_transform": _describe(getattr(dataset, "transform", None)),
        "dataset_samples": _samples_hash(dataset, n),
        "dataset_files": _files_hash(dataset),
        "model": type(model).__qualname__,
        "model_state": model_hash(model),
    }


def scoring_fingerprint(
    model: nn.Module,
    loader: DataLoader,
    *,
    batch_size: int,
    device: torch.device,
    world_size: int,
    rank: int,
    **options: Any,
) -> dict[str, Any]:
    """Everything that decides the results of a scoring pass: :meth:`ScoreOptions.fingerprint` of ``options``.

    ``options`` are keywords of :class:`hardmine.scoring.options.ScoreOptions` (``keep_probs``, ``amp``, ...);
    ``batch_size`` and ``device`` are the resolved ones of the pass.
    """
    from hardmine.scoring.options import ScoreOptions

    return ScoreOptions(**options).fingerprint(
        model, loader, device=device, batch_size=batch_size, world_size=world_size, rank=rank
    )


_LABELS: dict[str, str] = {
    "dataset_files": "dataset files (path, size, modification time)",
    "num_samples": "dataset length",
    "dataset_type": "dataset type",
    "dataset_ids": "dataset ids (file paths)",
    "dataset_targets": "dataset targets",
    "dataset_transform": "dataset transform",
    "dataset_samples": "dataset samples (first, last and three between)",
    "model": "model class",
    "model_state": "model weights",
    "batch_size": "batch_size",
    "keep_probs": "keep_probs",
    "amp": "amp",
    "channels_last": "channels_last",
    "device_type": "device type",
    "unpack": "unpack",
    "input_key": "input_key",
    "target_key": "target_key",
    "world_size": "world size",
    "rank": "rank",
}
_SHOW_VALUES = (
    "num_samples",
    "dataset_type",
    "model",
    "batch_size",
    "keep_probs",
    "amp",
    "channels_last",
    "device_type",
    "input_key",
    "target_key",
    "world_size",
    "rank",
)


@dataclass
class CheckpointState:
    """What a checkpoint holds: the first ``position`` rows of the pass, as CPU tensors.

    Attributes:
        position: samples done (rows ``0..position-1`` of this rank's share).
        batches: batches done.
        num_classes: the model's class count ``C``.
        rows: ``label``, ``pred`` (int64), the measures (float32), ``valid``, ``finite`` (bool), each ``(position,)``,
            and ``probs`` ``(position, C)`` when the pass keeps probabilities.
    """

    position: int
    batches: int
    num_classes: int
    rows: dict[str, Tensor]


class ScoringCheckpoint:
    """The checkpoint folder of one scoring pass (one rank's files under torch.distributed).

    Args:
        directory: the folder; created on the first save.
        fingerprint: from :func:`scoring_fingerprint`; a saved checkpoint must match it exactly.
        rank: this process's rank; ``world_size > 1`` gives each rank its own file names.
        world_size: the number of ranks.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ck = ScoringCheckpoint(d, {"batch_size": 2})
        ...     ck.save({"label": torch.tensor([3, 1, 4])}, position=2, batches=1, num_classes=5)
        ...     state = ScoringCheckpoint(d, {"batch_size": 2}).load()
        ...     print(state.position, state.rows["label"].tolist())
        ...     ck.finish()
        2 [3, 1]
    """

    def __init__(
        self, directory: str | os.PathLike[str], fingerprint: Mapping[str, Any], *, rank: int = 0, world_size: int = 1
    ) -> None:
        self.directory = Path(directory)
        self.fingerprint = dict(fingerprint)
        self._prefix = f"rank{rank}." if world_size > 1 else ""
        self._saved = 0
        self._chunks: list[list[Any]] = []
        self._locked = False

    @property
    def lock_path(self) -> Path:
        """The lock file of this rank: it names the host and process of the run using the folder."""
        return self.directory / f"{self._prefix}lock"

    def _claim(self) -> None:
        """Make the folder ours (refusing one with other files in it) and take this rank's lock."""
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(
                f"Expected argument `checkpoint_dir` to be a folder, but {str(self.directory)!r} is a file."
            )
        if self.directory.is_dir():
            foreign = sorted(name for name in os.listdir(self.directory) if not _OWN.match(name))
            if foreign:
                shown = ", ".join(repr(n) for n in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
                raise ValueError(
                    f"Expected argument `checkpoint_dir` to be a folder of hardmine's own (new, empty, or used only "
                    f"for hardmine checkpoints), but {str(self.directory)!r} holds {len(foreign)} other file(s): "
                    f"{shown}. hardmine deletes its checkpoint files when the pass completes and will not risk "
                    "yours: name a new folder."
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.directory / MARKER).is_file():
            with atomic_path(self.directory / MARKER, what="the checkpoint marker") as tmp:
                tmp.write_text(json.dumps({"format": "hardmine-checkpoint-folder"}) + "\n", encoding="utf-8")
        self._lock()

    def _lock(self) -> None:
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    holder = self.lock_path.read_text(encoding="utf-8").strip()
                except OSError:
                    holder = ""
                host, _, pid = holder.rpartition(" ")
                if holder == me:  # this process: a pass that failed earlier, now resumed
                    self._locked = True
                    return
                if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
                    with contextlib.suppress(FileNotFoundError):
                        self.lock_path.unlink()  # left by a run that was killed
                    continue
                raise ValueError(
                    f"The scoring checkpoint in {str(self.directory)!r} is in use by another hardmine run "
                    f"(process {pid or '?'} on {host or 'an unknown host'}, see {str(self.lock_path)!r}). Two runs "
                    "must not share a checkpoint folder: wait for it, or name another folder. If no such run is "
                    "alive, delete the lock file."
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(me + "\n")
            self._locked = True
            return

    def release(self) -> None:
        """Give up this rank's lock (the files stay, to be resumed)."""
        if self._locked:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()
            self._locked = False

    @property
    def meta_path(self) -> Path:
        """The ``meta.json`` that records the position and the fingerprint."""
        return self.directory / f"{self._prefix}meta.json"

    def _fail(self, problem: str) -> ValueError:
        return ValueError(
            f"The scoring checkpoint in {str(self.directory)!r} {problem}. Delete that folder (or pass another "
            "checkpoint folder) to start over."
        )

    def load(self) -> CheckpointState | None:
        """The saved state, or ``None`` when there is none; ``ValueError`` when it is for another pass or broken.

        Claims the folder first: a folder holding other files, or in use by another live run, is refused.
        """
        self._claim()
        if not self.meta_path.is_file():
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise self._fail(f"has an unreadable {self.meta_path.name} ({err})") from err
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise self._fail(f"has a {self.meta_path.name} that hardmine did not write")
        if meta.get("version") != _VERSION:
            raise self._fail(f"was written by another hardmine version (format {meta.get('version')})")
        saved = meta.get("fingerprint", {})
        diffs = [k for k in sorted(set(saved) | set(self.fingerprint)) if saved.get(k) != self.fingerprint.get(k)]
        if diffs:
            parts = []
            for k in diffs:
                label = _LABELS.get(k, k)
                if k in _SHOW_VALUES:
                    parts.append(f"{label} {saved.get(k)!r} (checkpoint) vs {self.fingerprint.get(k)!r} (now)")
                else:
                    parts.append(f"{label} differ")
            raise self._fail("was made with other arguments or data, so it is not resumed: " + "; ".join(parts))
        rows: dict[str, list[Tensor]] = {}
        position = 0
        chunks = meta.get("chunks", [])
        for first, stop, name in chunks:
            if first != position:
                raise self._fail(f"has a gap before row {first}")
            try:
                chunk = torch.load(self.directory / name, map_location="cpu", weights_only=True)
            except (OSError, RuntimeError, ValueError) as err:
                raise self._fail(f"has a missing or unreadable file {name!r} ({err})") from err
            for key, value in chunk.items():
                rows.setdefault(key, []).append(value)
            position = stop
        if position != meta.get("position"):
            raise self._fail(f"records position {meta.get('position')} but holds rows up to {position}")
        self._saved = position
        self._chunks = [list(c) for c in meta.get("chunks", [])]
        return CheckpointState(
            position=position,
            batches=int(meta.get("batches", 0)),
            num_classes=int(meta["num_classes"]),
            # A buffer that the pass made after an earlier save (label_value) is not in every chunk: leave it out.
            rows={k: torch.cat(v) for k, v in rows.items() if len(v) == len(chunks)},
        )

    def save(self, buffers: Mapping[str, Tensor], *, position: int, batches: int, num_classes: int) -> None:
        """Save rows ``[last saved position, position)`` of ``buffers``, then the new position, each atomically.

        ``buffers`` are the pass's preallocated ``(N,)`` (and ``(N, C)``) tensors, on any device; only the new rows
        are copied to the host and written.
        """
        if position <= self._saved:
            return
        if not self._locked:
            self._claim()
        name = f"{self._prefix}rows-{self._saved:012d}-{position:012d}.pt"
        chunk = {k: v[self._saved : position].detach().to("cpu").clone() for k, v in buffers.items()}
        with atomic_path(self.directory / name) as tmp:
            torch.save(chunk, tmp)
        chunks = [*self._chunks, [self._saved, position, name]]
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "position": position,
            "batches": batches,
            "num_classes": num_classes,
            "chunks": chunks,
            "fingerprint": self.fingerprint,
        }
        with atomic_path(self.meta_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        self._chunks = chunks
        self._saved = position

    def finish(self) -> None:
        """Remove this pass's files (only files of hardmine's own names), the lock, and the folder when it is empty."""
        if not self.directory.is_dir():
            self._saved, self._chunks, self._locked = 0, [], False
            return
        own = re.compile(
            rf"^(?:{re.escape(self._prefix)}rows-\d{{12}}-\d{{12}}\.pt"
            rf"|\.{re.escape(self._prefix)}(?:rows-\d{{12}}-\d{{12}}\.pt|meta\.json)\..+\.(?:tmp|hardmine-tmp))$"
        )
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
        for name in os.listdir(self.directory):
            if own.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / name).unlink()
        self.release()
        rest = os.listdir(self.directory)
        if rest == [MARKER]:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / MARKER).unlink()
        with contextlib.suppress(OSError):
            self.directory.rmdir()
        self._saved = 0
        self._chunks = []


def saved_position(directory: str | os.PathLike[str], *, rank: int = 0, world_size: int = 1) -> int | None:
    """How many samples a checkpoint folder holds (``None`` when it holds no readable checkpoint); no checks.

    Example:
        >>> saved_position("/nonexistent") is None
        True
    """
    prefix = f"rank{rank}." if world_size > 1 else ""
    try:
        meta = json.loads((Path(directory) / f"{prefix}meta.json").read_text(encoding="utf-8"))
        return int(meta["position"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
