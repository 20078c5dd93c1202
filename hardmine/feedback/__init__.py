"""Feeding the hard samples back into training.

- :mod:`hardmine.feedback.weighting`: per-sample weights from a split table.
- :mod:`hardmine.feedback.sampling`, :mod:`hardmine.feedback.sharded`: samplers that draw by those weights.
- :mod:`hardmine.feedback.miner`: :class:`~hardmine.feedback.miner.HardMiner`, the epoch loop that re-scores and
  re-weights, and its parts: :mod:`~hardmine.feedback.miner_settings` (frozen settings),
  :mod:`~hardmine.feedback.apply_modes`, :mod:`~hardmine.feedback.label_policy`, :mod:`~hardmine.feedback.rescoring`,
  :mod:`~hardmine.feedback.history` and :mod:`~hardmine.feedback.batching` (``ShareBatchSampler``, the draws).
- :mod:`hardmine.feedback.online`, :mod:`hardmine.feedback.selection`: scores observed from the training step, and
  in-batch selection.
- :mod:`hardmine.feedback.losses`: weighted, OHEM and focal losses.
- :mod:`hardmine.feedback.early_learning`: early-learning regularization against wrong labels.
"""
