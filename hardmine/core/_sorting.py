"""A fast exact stable sort of float32 keys on the CPU, for the samplers that rank every sample at each refresh."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def descending_order(keys: Tensor) -> Tensor:
    """The indices that sort ``keys`` from largest to smallest, ties in index order.

    The same as ``torch.sort(keys, descending=True, stable=True).indices``, about 6x faster for 30,000 keys on one
    CPU thread: the float32 keys are mapped to unsigned 32-bit integers in the same order, then sorted by two stable
    16-bit radix passes (numpy's stable sort of 16-bit integers is a radix sort). ``-0.0`` and ``0.0`` count as equal,
    as they compare.

    Args:
        keys: float32 tensor ``(M,)`` on the CPU, without NaN (``-inf`` and ``inf`` are fine).

    Returns:
        Int64 tensor ``(M,)`` on the CPU.

    Example:
        >>> descending_order(torch.tensor([0.5, 2.0, -1.0, 2.0])).tolist()
        [1, 3, 0, 2]
    """
    if keys.dtype != torch.float32 or keys.device.type != "cpu":
        raise TypeError(f"Expected float32 keys on the CPU, but got {keys.dtype} on {keys.device}.")
    x = (keys.detach().reshape(-1) + 0.0).numpy()  # + 0.0 turns -0.0 into 0.0 (and copies)
    bits = x.view(np.int32)
    # Non-negative floats keep their bit order; negative ones reverse it. Flip them, then shift to unsigned.
    ordered = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).view(np.uint32) ^ np.uint32(0x80000000)
    key = ~ordered  # ascending in `key` is descending in `keys`, ties still in index order
    low = (key & np.uint32(0xFFFF)).astype(np.uint16)
    high = (key >> np.uint32(16)).astype(np.uint16)
    by_low = np.argsort(low, kind="stable")
    order = by_low[np.argsort(high[by_low], kind="stable")]
    return torch.from_numpy(order.astype(np.int64, copy=False))
