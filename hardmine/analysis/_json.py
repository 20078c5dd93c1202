"""Plain Python structures for strict JSON: the table sidecars and the summaries' ``to_dict``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON takes it: numpy scalars as Python ones, NaN and infinities as ``None``.

    Tuples become lists, mappings keep their (converted) keys, and any other object becomes its ``str``.

    Example:
        >>> jsonable({np.int64(3): (np.float32(0.5), float("nan")), "classes": ["cat"], "dtype": np.dtype("int8")})
        {3: [0.5, None], 'classes': ['cat'], 'dtype': 'int8'}
    """
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key(key: Any) -> Any:
    key = key.item() if isinstance(key, np.generic) else key
    return key if key is None or isinstance(key, (str, int, float, bool)) else str(key)
