"""Positive/negative by ground truth, easy/hard by a threshold on a score.

Polarity depends only on the ground-truth label; difficulty depends on the model's score and changes as it trains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from hardmine.core import validate
from hardmine.core.columns import DIFFICULTIES, GROUPS, POLARITIES, default_threshold, harder_when
from hardmine.core.columns import value_range as column_range
from hardmine.core.frames import categorical

__all__ = [
    "DEFAULT_BY",
    "OnlyArg",
    "default_by",
    "fixed_threshold",
    "parse_only",
    "positive_classes",
    "select",
    "split",
]

ThresholdArg = float | Literal["per_class"] | None
OnlyArg = str | Iterable[str] | None


def split(
    scores: pd.DataFrame,
    threshold: ThresholdArg = None,
    *,
    by: str | None = None,
    hard_fraction: float | None = None,
    positive: int | Iterable[int] | None = None,
    hard_when: Literal["lower", "higher"] | None = None,
) -> pd.DataFrame:
    """Add ``difficulty`` (and, when the task has a positive class, ``polarity`` and ``group``) columns to a table.

    Which columns come depends on whether there is a positive class, the same rule in :func:`split`,
    :func:`hardmine.summary`, :class:`hardmine.HardMiner`, the command line and the plots:

    - binary labels (``{0, 1}``): the positive class defaults to 1;
    - multi-class labels with ``positive=``: one-vs-rest, as below;
    - multi-class labels without ``positive``, and tables without a ``label`` column (unlabeled, regression,
      multi-label, any loss): **easy/hard only**: ``difficulty`` is added, no ``polarity`` and no ``group``
      (``settings["positive"]`` is ``None``). :func:`hardmine.summary` then reports per class (or per task).

    - ``polarity``: ``"positive"`` when the ground-truth ``label`` is one of the ``positive`` classes, else
      ``"negative"`` (one-vs-rest for multi-class tasks). It never depends on the model.
    - ``difficulty``: ``"hard"`` or ``"easy"`` by the score column ``by``. For ``label_prob``, ``confidence``,
      ``margin`` (and ``aum``, ``correctness`` and columns hardmine does not know) lower is harder: a sample is hard
      when its score is **below** the threshold. For ``loss`` and ``entropy`` (and ``variability``, ``forgetting``)
      higher is harder: hard when the score is **above** it. A score equal to the threshold is easy. ``hard_when``
      overrides the direction.
    - ``group``: ``hard_positive``, ``easy_positive``, ``hard_negative`` or ``easy_negative``.

    Exactly one way of setting the threshold applies:

    - ``threshold=<float>``: a fixed value inside the score's range (``[0, 1]`` for probabilities, ``[-1, 1]`` for
      margin, ``[0, inf)`` for loss, ``[0, log C]`` for entropy). Defaults to 0.5 for ``label_prob`` and
      ``confidence`` and 0 for ``margin`` (a wrong prediction) when neither option is given.
    - ``hard_fraction=q``: the hardest ``round(q * N)`` samples are hard (ties broken by dataset index).
    - ``threshold="per_class"``: each class's own threshold is the mean score of the samples labelled with it, as
      confident learning sets per-class thresholds on self-confidence.

    Why ``label_prob`` and not ``confidence`` by default: ``confidence`` is the probability of the *predicted* class,
    the classic tutorial definition, and it is high for a confidently wrong prediction. A mislabelled sample that the
    model classifies "correctly" (as its true class) gets a high confidence and a low ``label_prob``: on digits with
    10% flipped labels, ranking by ``label_prob`` finds the flipped samples with AUROC about 0.98 while max-softmax
    confidence is at chance. Pass ``by="confidence"`` for the classic definition.

    Args:
        scores: a table from :func:`hardmine.score` (or any table with ``label`` and the ``by`` column).
        threshold: a float, ``"per_class"``, or ``None`` for the default of ``by``.
        by: the score column that decides difficulty; defaults to the task's: ``label_prob`` for classification,
            soft and multi-label tables, ``confidence`` for unlabeled tables, ``loss`` for regression and any-loss
            tables.
        hard_fraction: the fraction of samples to call hard, in ``[0, 1]``.
        positive: the class (or classes) of interest. Defaults to 1 for binary tasks (labels in ``{0, 1}``); a
            multi-class table without it is split easy/hard only. A class that the table does not hold is an error.
        hard_when: ``"lower"`` or ``"higher"``: which direction of ``by`` is hard, when the default is not right.

    Returns:
        A copy of ``scores`` with categorical ``difficulty`` (and ``polarity`` and ``group``) columns; the settings used
        are in ``table.attrs["hardmine"]`` (``by``, ``threshold``, ``hard_when``, ``positive``, ...).

    Raises:
        ValueError: for a missing column, NaN scores (naming the rows), a threshold outside the score's range, a
            ``hard_fraction`` outside ``[0, 1]``, both or an invalid threshold option, or a ``positive`` class the
            table does not hold.
        TypeError: when ``scores`` is not a DataFrame.

    Example:
        >>> scores = pd.DataFrame({"index": [0, 1, 2, 3], "label": [1, 1, 0, 0],
        ...                        "label_prob": [0.9, 0.4, 0.8, 0.6]})
        >>> split(scores, threshold=0.7)["group"].tolist()
        ['easy_positive', 'hard_positive', 'easy_negative', 'hard_negative']
        >>> split(scores, hard_fraction=0.25)["difficulty"].tolist()
        ['easy', 'hard', 'easy', 'easy']
        >>> multi = pd.DataFrame({"index": [0, 1, 2], "label": [0, 1, 2], "label_prob": [0.9, 0.2, 0.7]})
        >>> list(split(multi).columns)  # three classes, no positive: easy/hard only
        ['index', 'label', 'label_prob', 'difficulty']
    """
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(
            f"Expected argument `scores` to be a pandas DataFrame (from hm.score), but got {type(scores).__name__}."
        )
    if by is None:
        by = default_by(scores)
    for col in (by,):
        if col not in scores.columns:
            raise ValueError(f"Expected a `{col}` column in `scores`, but the columns are {list(scores.columns)}.")
    direction = harder_when(by) if hard_when is None else validate.choice("hard_when", hard_when, ("lower", "higher"))
    if hard_fraction is not None:
        hard_fraction = validate.fraction("hard_fraction", hard_fraction)
    values = scores[by].to_numpy(dtype=np.float64)
    nan = np.isnan(values)
    if nan.any():
        rows = np.flatnonzero(nan)[:10].tolist()
        raise ValueError(
            f"Column `{by}` has {int(nan.sum())} NaN value(s), in rows {rows}: score them again or drop "
            "them explicitly before hm.split."
        )
    labels = scores["label"].to_numpy() if "label" in scores.columns else None
    classes = positive_classes(scores, positive)
    settings: dict[str, Any] = {"by": by, "hard_when": direction, "positive": classes}

    if hard_fraction is not None:
        if threshold is not None:
            raise ValueError(
                "Expected only one of `threshold` and `hard_fraction`, but got both "
                f"(threshold={threshold!r}, hard_fraction={hard_fraction!r})."
            )
        hard = _hardest(values, hard_fraction, direction)
        settings["hard_fraction"] = float(hard_fraction)
        settings["threshold"] = None
    elif isinstance(threshold, str):
        validate.choice("threshold", threshold, ("per_class",))
        if labels is None:
            raise ValueError("Expected a `label` column for threshold='per_class', but this table has none.")
        per_class = {int(c): float(values[labels == c].mean()) for c in np.unique(labels)}
        cut = np.vectorize(per_class.__getitem__, otypes=[np.float64])(labels) if len(labels) else values
        hard = values < cut if direction == "lower" else values > cut
        settings["threshold"] = "per_class"
        settings["per_class_thresholds"] = per_class
    else:
        t = fixed_threshold(threshold, by, scores)
        hard = values < t if direction == "lower" else values > t
        settings["threshold"] = t

    table = scores.copy()
    table["difficulty"] = categorical(np.where(hard, 0, 1).astype(np.int8), "difficulty")
    if classes is None or labels is None:  # easy/hard only: no positive class
        table = table.drop(columns=[c for c in ("polarity", "group") if c in table.columns])
        table.attrs["hardmine"] = {**scores.attrs.get("hardmine", {}), **settings}
        return table
    is_pos = np.isin(labels, classes)
    table["polarity"] = categorical(np.where(is_pos, 0, 1).astype(np.int8), "polarity")
    table["difficulty"] = table.pop("difficulty")  # column order: polarity, difficulty, group
    # GROUPS order: hard_positive, easy_positive, hard_negative, easy_negative.
    codes = np.where(is_pos, 0, 2) + np.where(hard, 0, 1)
    table["group"] = categorical(codes.astype(np.int8), "group")
    table.attrs["hardmine"] = {**scores.attrs.get("hardmine", {}), **settings}
    return table


@overload
def positive_classes(
    table: pd.DataFrame, positive: int | Iterable[int] | None = None, *, required: Literal[True]
) -> list[int]: ...


@overload
def positive_classes(
    table: pd.DataFrame, positive: int | Iterable[int] | None = None, *, required: bool = False
) -> list[int] | None: ...


def positive_classes(
    table: pd.DataFrame, positive: int | Iterable[int] | None = None, *, required: bool = False
) -> list[int] | None:
    """The positive class list: ``positive`` itself, else the table's split settings, else 1 for binary labels.

    A multi-class table without ``positive`` has no positive class: ``None`` (or, with ``required=True``, a
    ``ValueError`` that asks for one). A ``positive`` class that is neither a label of the table nor one of the model's
    classes (``table.attrs["hardmine"]["num_classes"]``) is a ``ValueError`` naming the classes present: it would
    otherwise give zero positives without a word.

    Example:
        >>> positive_classes(pd.DataFrame({"label": [0, 1, 1]}))
        [1]
        >>> positive_classes(pd.DataFrame({"label": [0, 5, 3]}), [5, 3])
        [3, 5]
        >>> positive_classes(pd.DataFrame({"label": [0, 1, 2]})) is None
        True
    """
    if "label" not in table.columns:
        if positive is not None or required:
            raise ValueError(
                "Expected a `label` column to tell positives from negatives, but this table has none (an unlabeled, "
                "regression or multi-label table): leave `positive` out."
            )
        return None
    labels = table["label"].to_numpy()
    settings = table.attrs.get("hardmine", {})
    if positive is None:
        if "positive" in settings:
            found_setting = settings["positive"]
            if found_setting is not None:
                return list(found_setting)
        elif "polarity" in table.columns:
            pos_labels = table.loc[table["polarity"] == "positive", "label"]
            if len(pos_labels):
                return sorted(int(c) for c in pd.unique(pos_labels))
        num_classes = settings.get("num_classes")
        if (num_classes is None or num_classes <= 2) and np.isin(labels, (0, 1)).all():
            return [1]
        if not required:
            return None
        found = sorted(int(c) for c in pd.unique(labels))
        raise ValueError(
            f"This is a multi-class table (labels {found[:10]}{' ...' if len(found) > 10 else ''}) without a positive "
            "class: name the class or classes of interest with `positive=` (one-vs-rest), e.g. positive=3 or "
            "positive=[3, 5]."
        )
    if isinstance(positive, (str, bytes)):
        raise TypeError(
            f"Expected argument `positive` to be a class index or a list of them, but got the string {positive!r}: "
            "tables hold class indices; map a class name to its index first (e.g. `classes.index(name)`)."
        )
    items = [positive] if isinstance(positive, (int, np.integer)) else list(positive)
    if not items:
        raise ValueError("Expected argument `positive` to name at least one class, but got an empty list.")
    chosen = sorted({validate.integer("positive", c) for c in items})
    present = {int(c) for c in pd.unique(labels)}
    if "pred" in table.columns:
        present |= {int(c) for c in pd.unique(table["pred"])}
    num_classes = settings.get("num_classes")
    unknown = [c for c in chosen if c not in present and not (num_classes is not None and 0 <= c < num_classes)]
    if unknown:
        shown = sorted(present)
        listed = f"{shown[:20]}{' ...' if len(shown) > 20 else ''}"
        model = f" nor the model classes 0..{num_classes - 1}" if num_classes is not None else ""
        raise ValueError(
            f"Expected argument `positive` to name classes of the table, but {unknown} "
            f"{'is' if len(unknown) == 1 else 'are'} not among its classes {listed}{model}: that split would have "
            "no positives."
        )
    return chosen


#: The score column each task is split by when ``by`` is not given.
DEFAULT_BY: dict[str, str] = {
    "classification": "label_prob",
    "soft": "label_prob",
    "multilabel": "label_prob",
    "unlabeled": "confidence",
    "regression": "loss",
    "loss": "loss",
}

# The dense tasks (issue 17): segmentation and token tables by the mean true-class probability, language models by
# their loss, detection by mistakenness (1 - IoU-weighted F1 of the image; hard above 0.5 by default).
DEFAULT_BY.update(
    {"segmentation": "label_prob", "tokens": "label_prob", "causal_lm": "loss", "detection": "mistakenness"}
)


def default_by(table: pd.DataFrame) -> str:
    """The column a table is split by when ``by`` is not given: the task's (see :data:`DEFAULT_BY`).

    Example:
        >>> default_by(pd.DataFrame({"loss": [0.1]})), default_by(pd.DataFrame({"label_prob": [0.5]}))
        ('loss', 'label_prob')
    """
    task = table.attrs.get("hardmine", {}).get("task")
    if task in DEFAULT_BY:
        return DEFAULT_BY[task]
    for col in ("label_prob", "confidence", "loss"):
        if col in table.columns:
            return col
    return "label_prob"


def _hardest(values: np.ndarray, fraction: float, direction: str) -> np.ndarray:
    k = int(round(fraction * len(values)))
    order = np.argsort(values if direction == "lower" else -values, kind="stable")
    hard = np.zeros(len(values), dtype=bool)
    hard[order[:k]] = True
    return hard


def _check_range(t: float, by: str, scores: pd.DataFrame) -> None:
    """``t`` must lie in the range of column ``by`` (:func:`hardmine.core.columns.value_range`), when it has one."""
    bounds = column_range(by, num_classes=scores.attrs.get("hardmine", {}).get("num_classes"))
    if bounds is None:
        return
    try:
        validate.number("threshold", t, min=bounds[0], max=bounds[1])
    except ValueError as err:
        raise ValueError(f"{err} (the range of `{by}`)") from None


def fixed_threshold(threshold: Any, by: str, table: pd.DataFrame) -> float:
    """A fixed threshold for column ``by``: ``threshold`` checked against the column's range, or its default.

    The default and the range are the column registry's (:func:`hardmine.core.columns.default_threshold`,
    :func:`hardmine.core.columns.value_range`); ``table`` gives the range's context (its settings, e.g. the class
    count for ``entropy``). Shared by :func:`split` and the out-of-core split of :class:`hardmine.ScoreDataset`.

    Raises:
        TypeError: when ``threshold`` is not a real number (a list, a bool, a string other than ``"per_class"``).
        ValueError: when it is NaN, infinite or outside the column's range, or ``by`` has no default threshold.

    Example:
        >>> fixed_threshold(None, "label_prob", pd.DataFrame()), fixed_threshold(0.3, "label_prob", pd.DataFrame())
        (0.5, 0.3)
    """
    if threshold is None:
        threshold = default_threshold(by)
        if threshold is None:
            raise ValueError(f"Column `{by}` has no default threshold: pass `threshold=` or `hard_fraction=`.")
    t = validate.number("threshold", threshold)
    _check_range(t, by, table)
    return t


def select(table: pd.DataFrame, only: OnlyArg = None) -> pd.DataFrame:
    """The rows of a split table in the named difficulty or groups.

    Args:
        table: a table from :func:`hardmine.split`.
        only: ``None`` (all rows), ``"hard"``/``"easy"`` (by difficulty), ``"positive"``/``"negative"`` (by
            polarity), a group name (``"hard_positive"`` ...) or a list of group names.

    Raises:
        ValueError: for an unknown ``only``, or a table without the column it selects on (not split yet).

    Example:
        >>> t = pd.DataFrame({"index": [0, 1], "difficulty": ["hard", "easy"],
        ...                   "group": ["hard_negative", "easy_negative"]})
        >>> select(t, "hard")["index"].tolist()
        [0]
    """
    if only is None:
        return table
    column, values = parse_only(only)
    if column not in table.columns:
        raise ValueError(
            f"only={only!r} needs the `{column}` column of a split table: call hm.split(scores, ...) first."
        )
    return table[table[column].isin(values)]


def parse_only(only: str | Iterable[str]) -> tuple[str, list[str]]:
    """``(column, values)`` that ``only`` selects: ``difficulty``, ``polarity`` or ``group``, and the values kept.

    Example:
        >>> parse_only("hard"), parse_only(["hard_positive", "easy_positive"])
        (('difficulty', ['hard']), ('group', ['hard_positive', 'easy_positive']))
    """
    if isinstance(only, str):
        if only in DIFFICULTIES:
            return "difficulty", [only]
        if only in POLARITIES:
            return "polarity", [only]
        names = [only]
    else:
        names = list(only)
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise ValueError(
            f"Expected argument `only` to be 'hard', 'easy', 'positive', 'negative', a group name {list(GROUPS)} or a "
            f"list of group names, but got {only!r}."
        )
    return "group", names
