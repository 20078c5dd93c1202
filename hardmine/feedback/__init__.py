"""Feeding the hard samples back into training.

- :mod:`hardmine.feedback.weighting`: per-sample weights from a split table.
- :mod:`hardmine.feedback.sampling`, :mod:`hardmine.feedback.sharded`: samplers that draw by those weights.
- :mod:`hardmine.feedback.miner`: :class:`~hardmine.feedback.miner.HardMiner`, the epoch loop that re-scores and
  re-weights.
- :mod:`hardmine.feedback.online`, :mod:`hardmine.feedback.selection`: scores observed from the training step, and
  in-batch selection.
- :mod:`hardmine.feedback.losses`: weighted, OHEM and focal losses.
"""
