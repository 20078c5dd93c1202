"""One place that checks the arguments of every public function, so that the same bad value gets the same error.

Each checker takes the argument's name and value and returns the value, converted (``numpy`` scalars become Python
numbers). A value of the wrong type raises :class:`TypeError`, a value of the right type outside its range raises
:class:`ValueError`; both messages name the argument, what was expected and what came in::

    TypeError: `threshold` must be a real number, got list [0.5]
    ValueError: `hard_weight` must be >= 0, got -3

``bool`` is never accepted where a number is expected (``True`` is an ``int`` to Python, not to a user).

Example:
    >>> integer("batch_size", 64, min=1)
    64
    >>> number("floor", 0.05, min=0, max=1)
    0.05
    >>> integer("batch_size", True, min=1)
    Traceback (most recent call last):
        ...
    TypeError: `batch_size` must be an integer, got bool True
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Collection
from fractions import Fraction
from typing import Any, TypeVar

__all__ = ["boolean", "choice", "fraction", "fraction_count", "integer", "number", "optional", "renamed_keywords"]

T = TypeVar("T")


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _bounds(name: str, value: float, min: float | None, max: float | None, min_open: bool, max_open: bool) -> None:
    low_ok = min is None or (value > min if min_open else value >= min)
    high_ok = max is None or (value < max if max_open else value <= max)
    if low_ok and high_ok:
        return

    def shown_bound(bound: float) -> str:  # an int bound in full (2**63 - 1, not 9.22337e+18)
        return repr(bound) if isinstance(bound, int) else f"{bound:g}"

    if min is not None and max is not None:
        expected = f"in {'(' if min_open else '['}{shown_bound(min)}, {shown_bound(max)}{')' if max_open else ']'}"
    elif min is not None:
        expected = f"{'>' if min_open else '>='} {shown_bound(min)}"
    elif max is not None:
        expected = f"{'<' if max_open else '<='} {shown_bound(max)}"
    shown = int(value) if isinstance(value, int) else value
    raise ValueError(f"`{name}` must be {expected}, got {shown!r}")


def integer(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as an ``int`` (Python or numpy integer, never ``bool``), within ``[min, max]``.

    Example:
        >>> integer("epoch", 3, min=0)
        3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {_got(value)}")
    out = int(value)
    _bounds(name, out, min, max, False, False)
    return out


def number(
    name: str,
    value: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a ``float`` (any real number, never ``bool``), finite unless ``finite=False``, within the bounds.

    ``min_open``/``max_open`` exclude the bound itself (``min=0, min_open=True``: strictly positive).

    Example:
        >>> number("gamma", 2, min=0)
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {_got(value)}")
    out = float(value)
    if math.isnan(out) or (finite and math.isinf(out)):
        raise ValueError(f"`{name}` must be a finite number, got {out!r}")
    _bounds(name, out, min, max, min_open, max_open)
    return out


def fraction(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (``open_low``/``open_high`` exclude 0 or 1).

    Example:
        >>> fraction("hard_fraction", 0.2, open_low=True)
        0.2
    """
    return number(name, value, min=0.0, max=1.0, min_open=open_low, max_open=open_high)


def fraction_count(name: str, value: Any, n: int) -> int:
    """``ceil(value * n)`` for a fraction ``value`` in ``(0, 1]``, at least 1, without float rounding error.

    The product is taken exactly on the decimal ``value`` is written as (``str(value)``: ``0.07`` is 7/100, and a
    ``numpy.float32(0.07)`` is too, not the binary value just above it), and a product within ``1e-9`` above an
    integer counts as that integer (``0.1 + 0.2`` of 10 is 3). So 0.07 of 100 is 7, not the 8 of
    ``math.ceil(0.07 * 100)``. The count of ``select_batch``'s and ``ohem_loss``'s ``keep`` and of the batch shares.

    Raises:
        ValueError: ``value`` outside ``(0, 1]`` or not finite.
        TypeError: ``value`` not a real number.

    Example:
        >>> fraction_count("keep", 0.07, 100), fraction_count("keep", 0.25, 10), fraction_count("keep", 0.001, 10)
        (7, 3, 1)
    """
    checked = fraction(name, value, open_low=True)
    try:
        exact = Fraction(str(value))  # the decimal as written: 0.07 -> 7/100 (float(0.07) * 100 = 7.000000000000001)
    except ValueError:  # a real number without a decimal str
        exact = Fraction(checked)
    return max(1, math.ceil(exact * n - Fraction(1, 10**9)))


def boolean(name: str, value: Any) -> bool:
    """``value``, which must be ``True`` or ``False`` (numpy ``bool_`` too).

    Example:
        >>> boolean("keep_probs", False)
        False
    """
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):  # numpy.bool_ (numpy 2: bool)
        return bool(value)
    raise TypeError(f"`{name}` must be True or False, got {_got(value)}")


def choice(name: str, value: Any, options: Collection[T]) -> T:
    """``value``, which must be one of ``options`` (compared with ``==``; strings are not matched loosely).

    Example:
        >>> choice("reduction", "mean", ("mean", "sum", "none"))
        'mean'
    """
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set
        ok = False
    if not ok:
        shown = ", ".join(repr(o) for o in options)
        raise ValueError(f"`{name}` must be one of {shown}, got {value!r}")
    return value


def optional(check: Any, name: str, value: Any, **bounds: Any) -> Any:
    """``None``, or ``value`` checked by ``check`` (one of the checkers above) with ``bounds``.

    Example:
        >>> optional(integer, "rescore_every", None, min=1) is None, optional(integer, "rescore_every", 2, min=1)
        (True, 2)
    """
    return None if value is None else check(name, value, **bounds)


def renamed_keywords(
    func: str,
    renamed: dict[str, Any],
    values: dict[str, Any],
    defaults: dict[str, Any],
    names: dict[str, str],
    *,
    stacklevel: int = 3,
) -> dict[str, Any]:
    """``values`` with keywords passed under their old names (``renamed``, a function's ``**renamed``) mapped on.

    Each old name warns (:class:`DeprecationWarning`, for one release); an unknown keyword, or a keyword passed under
    both names, is a :class:`TypeError`, as Python's own would be.

    Args:
        func: the function's public name, for the messages (``"hardmine.sample_weights"``).
        renamed: the extra keywords the call got.
        values: the new keywords' values as passed.
        defaults: the new keywords' defaults: a value that is its default (by identity) counts as not passed.
        names: old name -> new name.
        stacklevel: where the warning points: 3 is the caller of the function that calls this one.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     names = {"hard": "hard_weight"}
        ...     renamed_keywords("f", {"hard": 2}, {"hard_weight": None}, {"hard_weight": None}, names)
        {'hard_weight': 2}
    """
    out = dict(values)
    for old, value in renamed.items():
        new = names.get(old)
        if new is None:
            raise TypeError(f"{func}() got an unexpected keyword argument {old!r}")
        if values[new] is not defaults[new]:
            raise TypeError(f"{func}() got both `{new}` and its old name `{old}`: pass `{new}` only")
        warnings.warn(
            f"`{old}=` of {func} is deprecated and will be removed in the next release: use `{new}=`",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        out[new] = value
    return out
