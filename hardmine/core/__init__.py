"""The primitives every part of hardmine shares.

- :mod:`hardmine.core.columns`: the per-sample table's columns and what each one means (the column registry).
- :mod:`hardmine.core.data`: batch unpacking, dataset indices and ids, rebuilding a user's DataLoader.
- :mod:`hardmine.core.distributed`: the rank, the world size and the collectives, read when an epoch starts.

Nothing here imports another part of hardmine.
"""
