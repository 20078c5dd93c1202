"""hardmine: hard-example mining for PyTorch.

Score every sample in one batched pass, split positive/negative and easy/hard, and feed the hard ones back into
training; tell hard samples from mislabelled ones with training dynamics.

Example:
    >>> import hardmine as hm
    >>> sorted(n for n in ("score", "split", "summary", "to_csv", "HardMiner") if n in hm.__all__)
    ['HardMiner', 'score', 'split', 'summary', 'to_csv']
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

__version__ = "0.3.0"


def _started_as_cli() -> bool:
    """Whether this process is the ``hardmine`` command (``hardmine ...`` or ``python -m hardmine ...``).

    Then the package defers its torch-importing names until the command needs them (``--help``, ``--version`` and
    ``completion`` never do): :func:`hardmine.cli.main` calls :func:`_finish_import` after parsing the arguments.
    """
    argv = list(getattr(sys, "orig_argv", ()))
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] in ("hardmine", "hardmine.cli"):
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("hardmine", "hardmine.exe", "hardmine-script.py")


# True while the CLI start-up defers the imports; _finish_import's re-run of this file sets _FINISHING first.
_DEFERRED: bool = _started_as_cli() and not globals().get("_FINISHING", False)


def _finish_import() -> None:
    """Import the public names the CLI start-up deferred (a no-op when they are imported)."""
    if _DEFERRED:
        globals()["_FINISHING"] = True
        importlib.reload(sys.modules[__name__])


if not _DEFERRED:
    from hardmine import functional, plot
    from hardmine.data import with_indices, wrap
    from hardmine.dynamics import Dynamics, add_dynamics
    from hardmine.io import read_csv, read_parquet, select, to_csv, to_parquet
    from hardmine.labels import cross_val_scores, issue_indices, label_issues
    from hardmine.losses import focal_loss, ohem_loss, weighted_loss
    from hardmine.metrics import Summary, confusion, positive_prob, precision_recall_f1, summary, threshold_sweep
    from hardmine.miner import HardMiner, MinerSampler

    # Mining that pays (issue 15): in-batch selection and observed scores.
    from hardmine.online import ObservedScores
    from hardmine.sampling import DoubleShardingWarning, HardSampler
    from hardmine.scoring import score
    from hardmine.selection import LossHistory, select_batch
    from hardmine.splitting import split
    from hardmine.weighting import HardSetCollapseWarning, weights

    # --- the interactive report (issue 16) ---
    # The static report module loads first, so that a later `import hardmine.report` finds it loaded and leaves
    # `hm.report` the function below (Python binds a submodule to its package's attribute when it first loads it).
    import hardmine.report as _static_report  # noqa: E402, F401  isort: skip
    from hardmine.interactive import Report, report  # noqa: E402  isort: skip

    # isort: split
    # Tasks beyond one positive class (issue 14): the task layer and the per-class, multi-label and regression reports.
    from hardmine import tasks
    from hardmine.metrics import classification_report, multilabel_report, regression_metrics
    from hardmine.tasks import ProbabilityOutputWarning, Task

    # isort: split
    # Dense tasks (issue 17): segmentation, sequences, detection.
    from hardmine import plot_dense
    from hardmine.dense import SegmentationTask, SequenceTask, segmentation_summary
    from hardmine.detection import score_detection
    from hardmine.losses import ohem_pixel_loss

    # --- past one machine's memory (issue 18) ---
    from hardmine.bigtable import ScoreDataset, open_scores  # noqa: E402  isort: skip
    from hardmine.sharded import ShardedSampler  # noqa: E402  isort: skip
    from hardmine.streamed import score_to_parquet  # noqa: E402  isort: skip

__all__ = [
    "Dynamics",
    "HardMiner",
    "HardSampler",
    "HardSetCollapseWarning",
    "Summary",
    "__version__",
    "add_dynamics",
    "confusion",
    "cross_val_scores",
    "focal_loss",
    "functional",
    "issue_indices",
    "label_issues",
    "ohem_loss",
    "plot",
    "positive_prob",
    "precision_recall_f1",
    "read_csv",
    "read_parquet",
    "score",
    "select",
    "split",
    "summary",
    "threshold_sweep",
    "to_csv",
    "to_parquet",
    "weighted_loss",
    "weights",
    "with_indices",
    "wrap",
    # the interactive report (issue 16)
    "Report",
    "report",
    # training loops (issue 13): the miner as a sampler for other people's DataLoaders, the double-sharding warning
    "DoubleShardingWarning",
    "MinerSampler",
    # Tasks beyond one positive class (issue 14)
    "ProbabilityOutputWarning",
    "Task",
    "classification_report",
    "multilabel_report",
    "regression_metrics",
    "tasks",
    # Dense tasks (issue 17)
    "SegmentationTask",
    "SequenceTask",
    "ohem_pixel_loss",
    "plot_dense",
    "score_detection",
    "segmentation_summary",
    # past one machine's memory (issue 18)
    "ScoreDataset",
    "ShardedSampler",
    "open_scores",
    "score_to_parquet",
    # Mining that pays (issue 15): in-batch selection and observed scores.
    "LossHistory",
    "ObservedScores",
    "select_batch",
]

# Names that were in ``hardmine.__all__`` in 0.2.0 but are internals: they live in their modules. The old top-level
# names keep working for one release, with a DeprecationWarning that names the new location.
_MOVED: dict[str, str] = {
    "HARDER_WHEN": "hardmine.measures",
    "MEASURES": "hardmine.measures",
    "IndexedLoader": "hardmine.data",
    "ShareBatchSampler": "hardmine.miner",
    "importance_weights": "hardmine.miner",
    "confident_thresholds": "hardmine.labels",
    "label_quality": "hardmine.labels",
    "dynamics_regions": "hardmine.dynamics",
}


def __getattr__(name: str) -> Any:
    """Resolve a name moved out of the top level (0.2.0 -> 0.3.0), warning where it lives now."""
    if _DEFERRED and not name.startswith("__"):  # the CLI start-up deferred the imports: finish them first
        _finish_import()
        return getattr(sys.modules[__name__], name)
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'hardmine' has no attribute {name!r}")
    warnings.warn(
        f"hardmine.{name} is deprecated and will be removed from the top level in the next release: "
        f"use `from {module} import {name}`",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
