"""State that ``torch.load(..., weights_only=True)`` accepts: tensors, numbers, strings, lists and dicts only.

``torch.load`` refuses pickled pandas and numpy objects by default (``weights_only=True`` since torch 2.6), so a
``state_dict`` holding a DataFrame or a numpy scalar cannot be resumed from. :func:`frame_to_state` turns a DataFrame
into plain values (numeric columns as tensors, bit for bit; other columns as lists; categoricals with their
categories) and :func:`frame_from_state` turns it back; :func:`plain` converts numpy scalars and tuples in nested
dicts and lists.

Example:
    >>> import io
    >>> frame = pd.DataFrame({"index": [0, 1], "loss": [0.5, 1.5], "group": pd.Categorical(["a", "b"])})
    >>> buffer = io.BytesIO()
    >>> torch.save(frame_to_state(frame), buffer)
    >>> _ = buffer.seek(0)
    >>> frame_from_state(torch.load(buffer, weights_only=True)).equals(frame)
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = ["frame_from_state", "frame_to_state", "plain"]


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and pandas NA turned into Python numbers, lists and None."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, (int, str)) else k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return math.nan
    return value


def frame_to_state(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as ``{"columns", "data", "kinds", "categories", "attrs"}`` of tensors, lists and strings."""
    data: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    categories: dict[str, Any] = {}
    for name in frame.columns:
        col = frame[name]
        key = str(name)
        if isinstance(col.dtype, pd.CategoricalDtype):
            kinds[key] = "category"
            categories[key] = {"values": plain(list(col.cat.categories)), "ordered": bool(col.cat.ordered)}
            data[key] = torch.from_numpy(col.cat.codes.to_numpy(dtype=np.int64, copy=True))
        elif isinstance(col.dtype, np.dtype) and col.dtype.kind in "biuf":
            kinds[key] = str(col.dtype)
            data[key] = torch.from_numpy(col.to_numpy(copy=True))
        else:
            kinds[key] = str(col.dtype)
            data[key] = plain(col.tolist())
    return {
        "columns": [str(c) for c in frame.columns],
        "data": data,
        "kinds": kinds,
        "categories": categories,
        "attrs": plain(dict(frame.attrs)),
    }


def frame_from_state(state: Mapping[str, Any]) -> pd.DataFrame:
    """The DataFrame of :func:`frame_to_state`, with the same dtypes, values and ``attrs``."""
    columns: dict[str, Any] = {}
    for name in state["columns"]:
        kind = state["kinds"][name]
        values = state["data"][name]
        if kind == "category":
            cats = state["categories"][name]
            codes = values.numpy()
            columns[name] = pd.Categorical.from_codes(codes, categories=cats["values"], ordered=cats["ordered"])
        elif isinstance(values, torch.Tensor):
            columns[name] = values.numpy().astype(kind, copy=True)
        else:
            columns[name] = pd.Series(values, dtype=object if kind == "object" else kind)
    frame = pd.DataFrame(columns, columns=state["columns"])
    frame.attrs.update(state.get("attrs", {}))
    return frame
