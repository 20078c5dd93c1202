"""hardmine: hard-example mining for PyTorch.

Score every sample in one batched pass, split positive/negative and easy/hard, and feed the hard ones back into
training; tell hard samples from mislabelled ones with training dynamics.

Example:
    >>> import hardmine as hm
    >>> sorted(n for n in ("score", "split", "summary", "to_csv", "HardMiner") if n in hm.__all__)
    ['HardMiner', 'score', 'split', 'summary', 'to_csv']
"""

from hardmine import functional, plot
from hardmine.data import IndexedLoader, with_indices, wrap
from hardmine.dynamics import Dynamics, add_dynamics, dynamics_regions
from hardmine.io import read_csv, read_parquet, select, to_csv, to_parquet
from hardmine.labels import confident_thresholds, cross_val_scores, issue_indices, label_issues, label_quality
from hardmine.losses import focal_loss, ohem_loss, weighted_loss
from hardmine.measures import HARDER_WHEN, MEASURES
from hardmine.metrics import Summary, confusion, positive_prob, precision_recall_f1, summary, threshold_sweep
from hardmine.miner import HardMiner, ShareBatchSampler, importance_weights
from hardmine.sampling import HardSampler
from hardmine.scoring import score
from hardmine.splitting import split
from hardmine.weighting import HardSetCollapseWarning, weights

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

__version__ = "0.2.0"

__all__ = [
    "HARDER_WHEN",
    "MEASURES",
    "Dynamics",
    "HardMiner",
    "HardSampler",
    "HardSetCollapseWarning",
    "IndexedLoader",
    "ShareBatchSampler",
    "Summary",
    "__version__",
    "add_dynamics",
    "confident_thresholds",
    "confusion",
    "cross_val_scores",
    "dynamics_regions",
    "focal_loss",
    "functional",
    "importance_weights",
    "issue_indices",
    "label_issues",
    "label_quality",
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
]
