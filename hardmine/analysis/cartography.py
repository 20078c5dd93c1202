"""What is made of a training-dynamics table: the data map's regions, and dynamics columns on a score table.

:func:`dynamics_regions` places each sample of a :meth:`hardmine.Dynamics.summary` on the data map of dataset
cartography (Swayamdipta et al. 2020); :func:`add_dynamics` joins the dynamics' hardness columns onto a score table,
ready for :func:`hardmine.split`. Both are importable from :mod:`hardmine.analysis.dynamics` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hardmine.analysis._renames import mean_label_prob_column, renamed_threshold
from hardmine.core import validate

if TYPE_CHECKING:
    from hardmine.analysis.dynamics import Dynamics  # noqa: F401 - in the annotations

__all__ = ["HARDNESS_COLUMNS", "REGIONS", "add_dynamics", "dynamics_regions"]

#: The data-map regions of :meth:`Dynamics.regions`, in category order.
REGIONS: tuple[str, ...] = ("easy-to-learn", "ambiguous", "hard-to-learn")

#: Dynamics columns :func:`add_dynamics` can put into a score table, and the summary column each comes from (the same
#: names since 0.4.0, when the summary's ``confidence`` became ``mean_label_prob``: a score table's ``confidence`` is
#: the max-softmax probability of the current model).
HARDNESS_COLUMNS: dict[str, str] = {
    "aum": "aum",
    "mean_label_prob": "mean_label_prob",
    "variability": "variability",
    "correctness": "correctness",
    "forgetting": "forgetting",
}


def dynamics_regions(
    summary: pd.DataFrame,
    *,
    mean_label_prob_threshold: float | None = None,
    variability_threshold: float = 0.2,
    **renamed: Any,
) -> pd.DataFrame:
    """Add a ``region`` column to a dynamics summary: easy-to-learn, ambiguous or hard-to-learn.

    The data map of dataset cartography (Swayamdipta et al. 2020) places each sample by its ``mean_label_prob`` (mean
    label probability over epochs, the paper's "confidence") and ``variability`` (its standard deviation). With fixed,
    documented thresholds:

    - ``ambiguous``: ``variability >= variability_threshold`` (the model kept changing its mind);
    - ``easy-to-learn``: otherwise, ``mean_label_prob >= mean_label_prob_threshold`` (consistently right);
    - ``hard-to-learn``: otherwise, ``mean_label_prob < mean_label_prob_threshold`` (consistently not the label:
      often a mislabelled sample).

    ``variability`` of a probability is at most 0.5, so the default 0.2 marks clearly unstable samples. Samples never
    seen (NaN statistics) get a missing region.

    Args:
        summary: a table from :meth:`Dynamics.summary` (any table with ``mean_label_prob`` and ``variability``; a
            summary written before 0.4.0, whose column was named ``confidence``, is read with a
            ``DeprecationWarning``).
        mean_label_prob_threshold: in ``[0, 1]``; defaults to 0.5.
        variability_threshold: in ``[0, 0.5]``.
        **renamed: ``confidence_threshold=``, the deprecated name of ``mean_label_prob_threshold`` (warns).

    Returns:
        A copy of ``summary`` with a categorical ``region`` column (categories :data:`REGIONS`); the thresholds are in
        ``attrs["hardmine"]`` (``mean_label_prob_threshold``, ``variability_threshold``; ``confidence_threshold``
        too, the old key, for one release).

    Example:
        >>> t = pd.DataFrame({"mean_label_prob": [0.95, 0.5, 0.1], "variability": [0.02, 0.3, 0.05]})
        >>> dynamics_regions(t)["region"].tolist()
        ['easy-to-learn', 'ambiguous', 'hard-to-learn']
    """
    threshold = renamed_threshold("dynamics_regions", mean_label_prob_threshold, renamed)
    if threshold is None:
        threshold = 0.5
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"Expected argument `summary` to be a pandas DataFrame, but got {type(summary).__name__}.")
    threshold = validate.fraction("mean_label_prob_threshold", threshold)
    variability_threshold = validate.number("variability_threshold", variability_threshold, min=0.0, max=0.5)
    column = mean_label_prob_column(summary, "dynamics_regions") or "mean_label_prob"
    for col in (column, "variability"):
        if col not in summary.columns:
            raise ValueError(f"Expected a `{col}` column in `summary`, but the columns are {list(summary.columns)}.")
    mean = summary[column].to_numpy(dtype="float64")
    var = summary["variability"].to_numpy(dtype="float64")
    codes = pd.Series(-1, index=summary.index, dtype="int8")
    seen = ~(pd.isna(mean) | pd.isna(var))
    codes[seen & (var >= variability_threshold)] = 1
    codes[seen & (var < variability_threshold) & (mean >= threshold)] = 0
    codes[seen & (var < variability_threshold) & (mean < threshold)] = 2
    table = summary.copy()
    table["region"] = pd.Categorical.from_codes(codes.to_numpy(), categories=list(REGIONS))
    table.attrs["hardmine"] = {
        **summary.attrs.get("hardmine", {}),
        "mean_label_prob_threshold": threshold,
        "variability_threshold": variability_threshold,
        "confidence_threshold": threshold,  # the 0.3.0 key, still read by older code: removed in the next release
    }
    return table


def add_dynamics(
    scores: pd.DataFrame,
    dynamics: Dynamics | pd.DataFrame,
    *,
    columns: Sequence[str] = tuple(HARDNESS_COLUMNS),
) -> pd.DataFrame:
    """A copy of a score table with training-dynamics columns joined on ``index``, ready for ``split(by=...)``.

    This is how a score table (from :func:`hardmine.score`) gets dynamics-based hardness: ``aum``, ``correctness``
    and ``mean_label_prob`` are harder when lower, ``variability`` and ``forgetting`` when higher, and
    :func:`hardmine.split` and :func:`hardmine.weights` know those directions.

    Args:
        scores: a table with an ``index`` column (dataset indices).
        dynamics: a :class:`Dynamics` or its :meth:`Dynamics.summary`.
        columns: which of :data:`HARDNESS_COLUMNS` to add (names as in the result).

    Returns:
        ``scores`` with the requested columns added (float32; ``forgetting`` int64); NaN for samples the dynamics
        never saw (``hm.split`` names them if they are used).

    Raises:
        ValueError: for an unknown column, a name already in ``scores``, a missing ``index`` column or an index
            outside the dynamics' samples.

    Example:
        >>> import torch
        >>> from hardmine.analysis.dynamics import Dynamics
        >>> dyn = Dynamics(num_samples=2)
        >>> dyn.update(torch.tensor([0, 1]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        >>> dyn.end_epoch()
        >>> add_dynamics(pd.DataFrame({"index": [1, 0], "label": [0, 0]}), dyn, columns=["aum"])
           index  label  aum
        0      1      0 -1.0
        1      0      0  2.0
    """
    from hardmine.analysis.dynamics import Dynamics  # here: dynamics imports this module

    summary = dynamics.summary() if isinstance(dynamics, Dynamics) else dynamics
    if not isinstance(summary, pd.DataFrame) or not isinstance(scores, pd.DataFrame):
        raise TypeError(
            "Expected `scores` to be a DataFrame and `dynamics` a Dynamics or its summary, but got "
            f"{type(scores).__name__} and {type(dynamics).__name__}."
        )
    for name in columns:
        if name not in HARDNESS_COLUMNS:
            raise ValueError(f"Expected `columns` from {tuple(HARDNESS_COLUMNS)}, but got {name!r}.")
        if name in scores.columns:
            raise ValueError(f"Column `{name}` is already in `scores`; drop it first or pick other `columns`.")
    if "index" not in scores.columns:
        raise ValueError(f"Expected an `index` column in `scores`, but the columns are {list(scores.columns)}.")
    index = scores["index"].to_numpy()
    n = len(summary)
    bad = (index < 0) | (index >= n)
    if bad.any():
        raise ValueError(
            f"Expected `scores['index']` in [0, {n}) (the dynamics' samples), but got {index[bad][:10].tolist()}."
        )
    by_index = summary.set_index("index") if "index" in summary.columns else summary
    out = scores.copy()
    for name in columns:
        values = by_index[HARDNESS_COLUMNS[name]].to_numpy()[index]
        out[name] = values if name == "forgetting" else values.astype("float32")
    return out
