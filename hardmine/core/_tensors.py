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


def check_int_tensor(name: str, value: Any, what: str) -> Tensor:
    """``value`` itself if it is an integer tensor (not bool), else a :class:`TypeError` naming ``name`` and ``what``.

    Example:
        >>> check_int_tensor("indices", torch.tensor([3, 1]), "dataset indices")
        tensor([3, 1])
        >>> check_int_tensor("indices", torch.tensor([0.5]), "dataset indices")
        Traceback (most recent call last):
            ...
        TypeError: Expected argument `indices` to be an int tensor of dataset indices, but got torch.float32.
    """
    if (
        not isinstance(value, Tensor)
        or value.dtype.is_floating_point
        or value.dtype.is_complex
        or value.dtype == torch.bool
    ):
        shown = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"Expected argument `{name}` to be an int tensor of {what}, but got {shown}.")
    return value


def check_index_vector(name: str, value: Any, what: str) -> Tensor:
    """``value`` itself if it is a one-dimensional integer tensor ``(B,)``: one index per sample, never flattened.

    A :class:`TypeError` as :func:`check_int_tensor` gives, or a :class:`ValueError` for another number of dimensions
    (a ``(B, 1)`` or ``(B, K)`` tensor would line up with the wrong samples once flattened).

    Example:
        >>> check_index_vector("indices", torch.tensor([[3], [1]]), "dataset indices")
        Traceback (most recent call last):
            ...
        ValueError: Expected argument `indices` of shape (B,), but got shape (2, 1).
    """
    check_int_tensor(name, value, what)
    if value.ndim != 1:
        raise ValueError(f"Expected argument `{name}` of shape (B,), but got shape {tuple(value.shape)}.")
    return value


def check_float_tensor(name: str, value: Any, what: str) -> Tensor:
    """``value`` itself if it is a floating point tensor, else a :class:`TypeError` naming ``name`` and ``what``.

    Example:
        >>> check_float_tensor("logits", torch.tensor([1]), "model outputs")
        Traceback (most recent call last):
            ...
        TypeError: Expected argument `logits` to be a floating point tensor of model outputs, but got torch.int64.
    """
    if not isinstance(value, Tensor) or not value.is_floating_point():
        shown = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"Expected argument `{name}` to be a floating point tensor of {what}, but got {shown}.")
    return value


def check_range(name: str, values: Tensor, stop: int, what: str = "") -> None:
    """A :class:`ValueError` if an int CPU tensor ``values`` has an entry outside ``[0, stop)``; free of any sync.

    On an accelerator nothing is checked (it would cost a host synchronisation per call; the indexing that follows
    reports a bad index there). The message names ``name``, ``what`` it should be, and the first 10 bad values.

    Example:
        >>> check_range("targets", torch.tensor([0, 3, 7]), 5, "to be class indices")
        Traceback (most recent call last):
            ...
        ValueError: Expected `targets` to be class indices in [0, 5), but got [7].
    """
    if values.device.type != "cpu" or not values.numel():
        return
    low, high = torch.aminmax(values)
    if bool(low < 0) or bool(high >= stop):
        bad = values[(values < 0) | (values >= stop)][:10].tolist()
        raise ValueError(f"Expected `{name}` {what + ' ' if what else ''}in [0, {stop}), but got {bad}.")
