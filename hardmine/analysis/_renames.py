"""The names renamed in 0.4.0, and what keeps the old ones working (with a ``DeprecationWarning``) for one release.

- :meth:`hardmine.Dynamics.summary`'s ``confidence`` column is ``mean_label_prob`` (a score table's ``confidence`` is
  the final model's top probability; the dynamics' is the mean probability of the label over the epochs), and the
  ``confidence_threshold=`` argument of the data-map regions is ``mean_label_prob_threshold=``.
- ``hm.plot.confidence_histogram`` is :func:`hardmine.plot.label_prob_histogram`.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed_argument("f", "old", "new", 0.3, None, default=0.5)
    0.3
    >>> str(caught[0].message)
    'f(old=...) is deprecated and will be removed in the next release: use f(new=...)'
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

__all__ = ["mean_label_prob_column", "renamed_argument"]


def renamed_argument(where: str, old: str, new: str, old_value: Any, new_value: Any, *, default: Any) -> Any:
    """The value of a renamed keyword argument: ``new_value``, else ``old_value`` with a warning, else ``default``.

    ``old_value`` and ``new_value`` are ``None`` when not given; giving both is a ``TypeError``, as Python says for a
    keyword given twice.
    """
    if old_value is None:
        return default if new_value is None else new_value
    if new_value is not None:
        raise TypeError(f"{where}() got both `{new}` and its deprecated name `{old}`: pass `{new}` only")
    warnings.warn(
        f"{where}({old}=...) is deprecated and will be removed in the next release: use {where}({new}=...)",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def mean_label_prob_column(table: pd.DataFrame, where: str) -> str | None:
    """The column of ``table`` that holds the dynamics' mean label probability, or ``None`` when it has none.

    ``mean_label_prob`` (of :meth:`hardmine.Dynamics.summary`, or of a score table from :func:`hardmine.add_dynamics`);
    else, as before 0.4.0, ``confidence`` next to ``variability`` (a dynamics summary written with the old name), with
    a ``DeprecationWarning``.
    """
    if "mean_label_prob" in table.columns:
        return "mean_label_prob"
    if "confidence" in table.columns and "variability" in table.columns:
        warnings.warn(
            f"{where}: the dynamics summary's `confidence` column is named `mean_label_prob` since hardmine 0.4.0; "
            "a table with the old name is read for one more release: rename the column (or record the dynamics "
            "again).",
            DeprecationWarning,
            stacklevel=3,
        )
        return "confidence"
    return None
