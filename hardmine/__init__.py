"""hardmine: hard-example mining for PyTorch.

Score every sample in one batched pass, split positive/negative and easy/hard, and feed the hard ones back.

Example:
    >>> import hardmine as hm
    >>> sorted(n for n in ("score", "split", "summary", "to_csv", "read_csv") if n in hm.__all__)
    ['read_csv', 'score', 'split', 'summary', 'to_csv']
"""

from hardmine import functional
from hardmine.data import IndexedLoader, with_indices, wrap
from hardmine.io import read_csv, read_parquet, select, to_csv, to_parquet
from hardmine.measures import HARDER_WHEN, MEASURES
from hardmine.metrics import Summary, confusion, positive_prob, precision_recall_f1, summary, threshold_sweep
from hardmine.scoring import score
from hardmine.split import split

__version__ = "0.1.0"

__all__ = [
    "HARDER_WHEN",
    "MEASURES",
    "IndexedLoader",
    "Summary",
    "__version__",
    "confusion",
    "functional",
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
    "with_indices",
    "wrap",
]
