"""Tensor-level functions: per-sample score functions of ``(logits, labels)`` and the hard-example losses.

Every score function maps logits ``(N,)``, ``(N, 1)`` or ``(N, C)`` and labels ``(N,)`` to a score ``(N,)`` on the
logits' device, so any of them (or your own function of the same shape) can rank samples.
"""

from hardmine.feedback.losses import focal_loss, ohem_loss, per_sample_cross_entropy, weighted_loss
from hardmine.scoring.measures import (
    as_class_logits,
    compute_measures,
    confidence_score,
    entropy_score,
    label_prob_score,
    loss_score,
    margin_score,
)

__all__ = [
    "as_class_logits",
    "compute_measures",
    "confidence_score",
    "entropy_score",
    "focal_loss",
    "label_prob_score",
    "loss_score",
    "margin_score",
    "ohem_loss",
    "per_sample_cross_entropy",
    "weighted_loss",
]
