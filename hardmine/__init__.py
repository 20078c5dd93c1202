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

# Mining that pays (issue 15): in-batch selection and observed scores.
from hardmine.online import ObservedScores
from hardmine.sampling import HardSampler
from hardmine.scoring import score
from hardmine.selection import LossHistory, select_batch
from hardmine.splitting import split
from hardmine.weighting import HardSetCollapseWarning, weights

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
    # Mining that pays (issue 15): in-batch selection and observed scores.
    "LossHistory",
    "ObservedScores",
    "select_batch",
]
