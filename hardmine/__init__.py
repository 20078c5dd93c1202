"""hardmine: hard-example mining for PyTorch.

Score every sample in one batched pass, split positive/negative and easy/hard, and feed the hard ones back into
training; tell hard samples from mislabelled ones with training dynamics.

The package is laid out by the parts of the data flow (see the architecture page of the docs):

- :mod:`hardmine.core`: the primitives every part shares: the column registry, loaders and indices, torch.distributed,
  validation, atomic files, state dicts.
- :mod:`hardmine.scoring`: the scoring pass: per-sample measures, the tasks, dense outputs, resumable and streamed
  passes.
- :mod:`hardmine.analysis`: what people do with a score table: split, metrics, dynamics, label issues, tables on disk,
  plots and the interactive report.
- :mod:`hardmine.feedback`: feeding the hard samples back: weights, samplers, the miner, online scores, in-batch
  selection, losses.
- :mod:`hardmine.app`: the application: the command line, image folders, the HTML report, the demo.

The top level is the verbs users call. It imports lazily: ``import hardmine`` loads no torch, and each name loads its
module on first use, so the command line answers ``--help`` without importing torch.

Example:
    >>> import hardmine as hm
    >>> sorted(n for n in ("score", "split", "summary", "to_csv", "HardMiner") if n in hm.__all__)
    ['HardMiner', 'score', 'split', 'summary', 'to_csv']
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from hardmine._compat import install_old_module_paths

__version__ = "0.4.0"

# Each public name and the module that defines it. Modules load on first use of one of their names (PEP 562).
_PUBLIC: dict[str, str] = {
    name: module
    for module, names in [
        ("hardmine.core.data", "with_indices wrap"),
        ("hardmine.scoring.engine", "score"),
        ("hardmine.scoring.options", "ScoreOptions"),
        ("hardmine.scoring.tasks", "ProbabilityOutputWarning Task"),
        ("hardmine.scoring.dense", "SegmentationTask SequenceTask segmentation_summary"),
        ("hardmine.scoring.detection", "score_detection"),
        ("hardmine.scoring.streamed", "score_to_parquet"),
        ("hardmine.analysis.splitting", "select split"),
        (
            "hardmine.analysis.metrics",
            "Summary classification_report confusion multilabel_report positive_prob precision_recall_f1 "
            "regression_metrics summary threshold_sweep",
        ),
        ("hardmine.analysis.io", "read_csv read_parquet to_csv to_parquet"),
        ("hardmine.analysis.dynamics", "Dynamics add_dynamics"),
        ("hardmine.analysis.labels", "cross_val_scores issue_indices label_issues"),
        ("hardmine.analysis.interactive", "Report report"),
        ("hardmine.analysis.bigtable", "ScoreDataset open_scores"),
        ("hardmine.feedback.weighting", "HardSetCollapseWarning sample_weights"),
        ("hardmine.feedback.sampling", "DoubleShardingWarning HardSampler"),
        ("hardmine.feedback.sharded", "ShardedSampler"),
        ("hardmine.feedback.miner", "HardMiner MinerSampler"),
        ("hardmine.feedback.online", "ObservedScores"),
        ("hardmine.feedback.pruning", "PruningSampler"),
        ("hardmine.feedback.priority", "PrioritySampler"),
        ("hardmine.feedback.selection", "LossHistory select_batch"),
        ("hardmine.feedback.losses", "focal_loss ohem_loss ohem_pixel_loss weighted_loss"),
        ("hardmine.feedback.early_learning", "EarlyLearningLoss"),
    ]
    for name in names.split()
}

# Public submodules, reachable as attributes (``hm.plot.scores(...)``).
_SUBMODULES: dict[str, str] = {
    "functional": "hardmine.functional",
    "plot": "hardmine.analysis.plot",
    "plot_dense": "hardmine.analysis.plot_dense",
    "tasks": "hardmine.scoring.tasks",
}

# Names that were in ``hardmine.__all__`` in 0.2.0 but are internals: they live in their modules. The old top-level
# names keep working for one release, with a DeprecationWarning that names the new location.
_MOVED: dict[str, str] = {
    "HARDER_WHEN": "hardmine.scoring.measures",
    "MEASURES": "hardmine.scoring.measures",
    "IndexedLoader": "hardmine.core.data",
    "ShareBatchSampler": "hardmine.feedback.batching",
    "importance_weights": "hardmine.feedback.apply_modes",
    "confident_thresholds": "hardmine.analysis.labels",
    "label_quality": "hardmine.analysis.labels",
    "dynamics_regions": "hardmine.analysis.dynamics",
}

# Public names renamed in 0.4.0: the old name keeps working for one release, with a DeprecationWarning naming the new.
_RENAMED: dict[str, str] = {
    "weights": "sample_weights",  # `weights` collided with every `weights` variable of a training loop
}

__all__ = sorted([*_PUBLIC, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use; resolve a name moved out of the top level, with a warning."""
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    elif name in _MOVED:
        warnings.warn(
            f"hardmine.{name} is deprecated and will be removed from the top level in the next release: "
            f"use `from {_MOVED[name]} import {name}`",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    elif name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"hardmine.{name} is deprecated and will be removed in the next release: use hardmine.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_PUBLIC[new]), new)
    else:
        raise AttributeError(f"module 'hardmine' has no attribute {name!r}")
    globals()[name] = value  # later uses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


install_old_module_paths()

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from hardmine import functional
    from hardmine.analysis import plot, plot_dense
    from hardmine.analysis.bigtable import ScoreDataset, open_scores
    from hardmine.analysis.dynamics import Dynamics, add_dynamics
    from hardmine.analysis.interactive import Report, report
    from hardmine.analysis.io import read_csv, read_parquet, to_csv, to_parquet
    from hardmine.analysis.labels import cross_val_scores, issue_indices, label_issues
    from hardmine.analysis.metrics import (
        Summary,
        classification_report,
        confusion,
        multilabel_report,
        positive_prob,
        precision_recall_f1,
        regression_metrics,
        summary,
        threshold_sweep,
    )
    from hardmine.analysis.splitting import select, split
    from hardmine.core.data import with_indices, wrap
    from hardmine.feedback.early_learning import EarlyLearningLoss
    from hardmine.feedback.losses import focal_loss, ohem_loss, ohem_pixel_loss, weighted_loss
    from hardmine.feedback.miner import HardMiner, MinerSampler
    from hardmine.feedback.online import ObservedScores
    from hardmine.feedback.priority import PrioritySampler
    from hardmine.feedback.pruning import PruningSampler
    from hardmine.feedback.sampling import DoubleShardingWarning, HardSampler
    from hardmine.feedback.selection import LossHistory, select_batch
    from hardmine.feedback.sharded import ShardedSampler
    from hardmine.feedback.weighting import HardSetCollapseWarning, sample_weights
    from hardmine.scoring import tasks
    from hardmine.scoring.dense import SegmentationTask, SequenceTask, segmentation_summary
    from hardmine.scoring.detection import score_detection
    from hardmine.scoring.engine import score
    from hardmine.scoring.options import ScoreOptions
    from hardmine.scoring.streamed import score_to_parquet
    from hardmine.scoring.tasks import ProbabilityOutputWarning, Task
