"""The scoring pass: one batched inference pass gives every sample its scores.

- :mod:`hardmine.scoring.engine`: :func:`~hardmine.scoring.engine.score`, the pass itself (device, AMP, no per-batch
  host sync, sharding under torchrun, resumable with a checkpoint folder); its steps are in ``_pass`` and
  ``_errors``.
- :mod:`hardmine.scoring.options`: :class:`~hardmine.scoring.options.ScoreOptions`, every option of the pass in one
  checked object, and the checkpoint fingerprint made from it.
- :mod:`hardmine.scoring.measures`: the per-sample measures from logits and labels.
- :mod:`hardmine.scoring.tasks`: how a task turns outputs and targets into those measures.
- :mod:`hardmine.scoring.dense`, :mod:`hardmine.scoring.detection`: segmentation, sequences and detection.
- :mod:`hardmine.scoring.checkpoint`: the resumable pass's folder; :mod:`hardmine.scoring.streamed`: the pass streamed
  to a Parquet dataset.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    """``from hardmine.scoring import score`` (the 0.3.0 module path) keeps working, with a DeprecationWarning."""
    engine = importlib.import_module("hardmine.scoring.engine")
    if name.startswith("__") or not hasattr(engine, name):
        raise AttributeError(f"module 'hardmine.scoring' has no attribute {name!r}")
    warnings.warn(
        f"hardmine.scoring.{name} moved to hardmine.scoring.engine.{name}; the old path is deprecated and will be "
        "removed in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(engine, name)
