"""The names renamed in 0.4.0, and what keeps the old ones working (with a ``DeprecationWarning``) for one release.

- :meth:`hardmine.Dynamics.summary`'s ``confidence`` column is ``mean_label_prob`` (a score table's ``confidence`` is
  the final model's top probability; the dynamics' is the mean probability of the label over the epochs), and the
  ``confidence_threshold=`` argument of the data-map regions is ``mean_label_prob_threshold=``.
- ``hm.plot.confidence_histogram`` is :func:`hardmine.plot.label_prob_histogram`.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed_threshold("f", None, {"confidence_threshold": 0.3})
    0.3
    >>> str(caught[0].message).endswith("use `mean_label_prob_threshold=`")
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from hardmine.core import validate

__all__ = ["RENAMED_KEYWORDS", "mean_label_prob_column", "renamed_threshold"]


#: The keyword arguments renamed in 0.4.0: old name -> new name.
RENAMED_KEYWORDS: dict[str, str] = {"confidence_threshold": "mean_label_prob_threshold"}


def renamed_threshold(where: str, value: float | None, renamed: dict[str, Any]) -> float | None:
    """``mean_label_prob_threshold`` as passed, or as passed under its old name ``confidence_threshold`` (warns).

    ``renamed`` is the function's ``**renamed`` keywords, checked by :func:`hardmine.core.validate.renamed_keywords`
    (an unknown keyword, or both names, is a ``TypeError``); ``None`` when neither name was passed.
    """
    new = "mean_label_prob_threshold"
    return validate.renamed_keywords(where, renamed, {new: value}, {new: None}, RENAMED_KEYWORDS, stacklevel=4)[new]


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
