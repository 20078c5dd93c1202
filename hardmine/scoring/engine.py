"""The scoring pass: every sample of a dataset through the model once, batched, on the device.

:func:`score` is the verb: it checks its keywords once into a :class:`~hardmine.scoring.options.ScoreOptions`, runs the
pass (:func:`hardmine.scoring._pass.run_pass`) and builds the pandas table from its tensors once, at the end; with
``out=`` it streams to a Parquet dataset instead (:func:`hardmine.score_to_parquet`). :func:`score_tensors` is the
same pass with the results as tensors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hardmine.core.data import dataset_ids
from hardmine.core.frames import assemble_table
from hardmine.scoring._pass import model_for_scoring as _model_for_scoring  # noqa: F401 - detection, plot_dense
from hardmine.scoring._pass import run_pass
from hardmine.scoring.options import AmpArg, ScoreOptions
from hardmine.scoring.tasks import LossFn, OutputsArg, Task

if TYPE_CHECKING:
    from hardmine.analysis.bigtable import ScoreDataset

__all__ = ["dataset_classes", "score", "score_tensors"]


# The overloads tell the return type by `out` (a table in memory, or the handle of the folder it was streamed to).
@overload
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
    options: ScoreOptions | None = None,
    out: None = None,
) -> pd.DataFrame: ...


@overload
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
    options: ScoreOptions | None = None,
    out: str | os.PathLike[str],
) -> ScoreDataset: ...


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
    options: ScoreOptions | None = None,
    out: str | os.PathLike[str] | None = None,
) -> pd.DataFrame | ScoreDataset:
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
        options: every keyword above but ``ids`` and ``classes`` in one checked
            :class:`~hardmine.scoring.options.ScoreOptions` (then leave those keywords at their defaults).
        out: a folder: stream the table to a Parquet dataset there instead of returning it in memory, chunk by
            chunk, resumably (:func:`hardmine.score_to_parquet` with its default ``chunk_size``; call that for
            another one), and return it opened as a :class:`hardmine.ScoreDataset`.

    Returns:
        A DataFrame with one row per dataset sample, in index order, starting with ``index`` (int64) and ``id``
        (str); with ``out``, the :class:`hardmine.ScoreDataset` of the folder that holds it. For classification:
        ``label`` (int64, the ground truth), ``pred`` (int64), ``confidence`` (probability of ``pred``),
        ``label_prob`` (probability of ``label``), ``margin`` (``label_prob`` minus the largest other probability),
        ``entropy`` (nats), ``loss`` (cross-entropy, nats, or ``loss_fn``), all float32.
        Other tasks: see the tasks module. ``table.attrs["hardmine"]`` records ``task`` and ``num_classes``.

    Raises:
        TypeError: for an IterableDataset, a non-module model, batches it cannot read, or an option of the wrong type
            (``batch_size=True``).
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
    opts = ScoreOptions.of(
        options,
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
    if out is not None:
        from hardmine.scoring.streamed import score_to_parquet  # it calls score per chunk

        return score_to_parquet(model, loader, out, ids=ids, classes=classes, options=opts)
    if opts.task == "detection":
        return _score_detection(model, loader, opts, ids=ids, classes=classes)
    result, resolved = run_pass(model, loader, opts)
    return _table(result, resolved, loader.dataset, ids=ids, classes=classes)


def _score_detection(
    model: nn.Module, loader: DataLoader, opts: ScoreOptions, *, ids: Sequence[Any] | None, classes: Any
) -> pd.DataFrame:
    """``task="detection"``: lists of images and of box dicts, :func:`hardmine.score_detection`'s own pass."""
    from hardmine.scoring.detection import score_detection

    unused = [name for name in opts.changed() if name not in ("device", "batch_size", "progress", "task")]
    if unused:
        raise ValueError(
            f"Arguments {unused} do not apply to task='detection' (hm.score_detection "
            "takes device, batch_size, progress, ids, classes and its own thresholds)."
        )
    return score_detection(
        model, loader, device=opts.device, batch_size=opts.batch_size, progress=opts.progress, ids=ids, classes=classes
    )


def _table(
    result: dict[str, Tensor], task: Task, dataset: Any, *, ids: Sequence[Any] | None, classes: Sequence[Any] | None
) -> pd.DataFrame:
    """The score table from the pass's tensors: ``index``, ``id``, the task's columns, and the settings in attrs."""
    n = len(dataset)
    if ids is not None:
        if len(ids) != n:
            raise ValueError(f"Expected argument `ids` to have one id per dataset sample ({n}), but got {len(ids)}.")
        sample_ids: Sequence[Any] | None = ids
    else:
        sample_ids = dataset_ids(dataset)
    arrays = {k: v.numpy() for k, v in result.items() if k not in ("probs_shape", "index")}
    table = assemble_table(result["index"].numpy(), sample_ids, task.columns(arrays))
    settings: dict[str, Any] = {"num_classes": int(result["probs_shape"][1]), "task": task.name}
    if settings["num_classes"] < 0:  # dense outputs (segmentation, sequences): the task knows its class count
        settings["num_classes"] = int(getattr(task, "num_classes", -1))
    names = list(classes) if classes is not None else dataset_classes(dataset)
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
    model: nn.Module, loader: DataLoader, options: ScoreOptions | None = None, **keywords: Any
) -> dict[str, Tensor]:
    """The pass behind :func:`score`: per-sample results as CPU tensors, in dataset index order.

    Results are written on the device into preallocated ``(N, ...)`` buffers and moved to the host once; there is no
    host synchronisation per batch (target and finiteness checks are collected on the device and read at the end;
    the task is detected from the first batch, one look); with ``checkpoint_dir`` the new rows go to the host every
    ``checkpoint_every`` batches to be saved.

    Args:
        model: the model.
        loader: a DataLoader over a map-style dataset.
        options: the options of the pass; or leave it out and give them as keywords.
        **keywords: the keywords of :class:`~hardmine.scoring.options.ScoreOptions` (those of :func:`score` but
            ``ids``, ``classes`` and ``out``).

    Returns:
        A dict of ``(N, ...)`` tensors: ``index`` and the task's results; for classification ``label``, ``pred``
        (int64) and the measures of :data:`hardmine.scoring.measures.MEASURES` (float32), ``probs`` ``(N, C)`` when
        ``keep_probs``; and ``probs_shape`` (int64 ``(2,)``: ``N, C``).

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
        >>> out = score_tensors(nn.Identity(), DataLoader(ds), ScoreOptions(progress=False))
        >>> out["pred"].tolist(), out["probs_shape"].tolist()
        ([0, 1], [2, 2])
    """
    return run_pass(model, loader, ScoreOptions.of(options, **keywords))[0]


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``, or the device of the model's weights (CPU for a model without any)."""
    return ScoreOptions(device=device).torch_device(model)
