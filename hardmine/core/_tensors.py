"""One reading of "a tensor or a sequence of numbers" for the functions that take per-sample values."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def real_tensor(name: str, values: Any, expected: str) -> Tensor:
    """``values`` as a tensor of real numbers: a tensor as it is, anything else read as float64.

    Args:
        name: the argument name, for the error messages.
        values: a tensor, an array or a (nested) sequence of numbers.
        expected: what the argument may be, for the message when ``values`` cannot be read
            (``"a 1-D tensor or sequence of numbers"``).

    Returns:
        The tensor (a tensor input unchanged, any dtype but bool and complex; others float64 on the CPU).

    Raises:
        TypeError: ``values`` is not readable as numbers, or is a bool or complex tensor.

    Example:
        >>> real_tensor("weights", [1, 2.5], "a sequence of numbers")
        tensor([1.0000, 2.5000], dtype=torch.float64)
    """
    if isinstance(values, Tensor):
        t = values
    else:
        try:
            t = torch.as_tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"Expected argument `{name}` to be {expected}, but got {type(values).__name__}.") from err
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"Expected argument `{name}` to be real-valued, but got dtype {t.dtype}.")
    return t
