"""hardmine.analysis.plot: each function returns a figure whose artists carry exactly the table's numbers."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from numpy.testing import assert_allclose, assert_array_equal

import hardmine.analysis.plot as hp
from hardmine.analysis.dynamics import Dynamics, add_dynamics, dynamics_regions
from hardmine.analysis.metrics import confusion, threshold_sweep
from hardmine.analysis.metrics import positive_prob as hm_positive_prob
from hardmine.analysis.splitting import split
from hardmine.core.columns import COLUMNS, GROUPS, value_range

matplotlib.use("Agg")


def _scores(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A binary score table like hm.score's: labels 0/1, label_prob, predictions consistent with it."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    label_prob = rng.uniform(0.02, 0.98, n).astype(np.float32)
    pred = np.where(label_prob >= 0.5, label, 1 - label)
    conf = np.maximum(label_prob, 1 - label_prob)
    return pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [str(i) for i in range(n)],
            "label": label.astype(np.int64),
            "pred": pred.astype(np.int64),
            "confidence": conf.astype(np.float32),
            "label_prob": label_prob,
            "margin": (2 * label_prob - 1).astype(np.float32),
            "entropy": np.zeros(n, np.float32),
            "loss": (-np.log(label_prob)).astype(np.float32),
        }
    )


@pytest.fixture
def table() -> pd.DataFrame:
    return split(_scores(), threshold=0.6)


# ---------------------------------------------------------------- label_prob_histogram
def test_histogram_bars_per_group_equal_counts(table):
    fig = hp.label_prob_histogram(table, bins=10)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    edges = np.linspace(0.0, 1.0, 11)
    drawn = [g for g in GROUPS if (table["group"] == g).any()]
    # step outlines, not translucent bars: no blended colour that the legend does not hold
    assert len(ax.patches) == len(drawn) == 4 and not ax.containers
    for group, step in zip(drawn, ax.patches, strict=True):
        values, step_edges, _ = step.get_data()
        assert_allclose(step_edges, edges)
        expected, _ = np.histogram(table.loc[table["group"] == group, "label_prob"], bins=edges)
        assert_array_equal(values, expected)
        assert step.get_label() == f"{group} ({(table['group'] == group).sum()})"
        assert matplotlib.colors.to_hex(step.get_edgecolor()) == hp.GROUP_COLORS[group].lower()
        assert not step.get_fill()
    (line,) = ax.lines
    assert_array_equal(line.get_xdata(), [0.6, 0.6])
    assert ax.get_yscale() == "log"


def test_histogram_unsplit_table_one_histogram_and_explicit_threshold():
    scores = _scores(40)
    fig = hp.label_prob_histogram(scores, by="loss", bins=5, threshold=1.0, log=False)
    ax = fig.axes[0]
    (step,) = ax.patches
    expected, _ = np.histogram(scores["loss"], bins=5, range=(scores["loss"].min(), scores["loss"].max()))
    assert_array_equal(step.get_data().values, expected)
    assert_array_equal(ax.lines[0].get_xdata(), [1.0, 1.0])
    assert "above" in ax.get_xlabel()  # loss: hard when above the threshold
    assert ax.get_yscale() == "linear"


def test_histogram_no_threshold_line_for_hard_fraction():
    fig = hp.label_prob_histogram(split(_scores(), hard_fraction=0.2))
    assert len(fig.axes[0].lines) == 0


@settings(deadline=None, max_examples=15)
@given(st.lists(st.floats(0.0, 1.0, width=32), min_size=1, max_size=40), st.floats(0.05, 0.95), st.integers(1, 12))
def test_histogram_counts_every_sample_once(probs, threshold, bins):
    n = len(probs)
    t = split(
        pd.DataFrame({"index": range(n), "label": [i % 2 for i in range(n)], "label_prob": probs}), threshold=threshold
    )
    ax = hp.label_prob_histogram(t, bins=bins, log=False).axes[0]
    present = [g for g in GROUPS if (t["group"] == g).any()]
    assert len(ax.patches) == len(present)
    for group, step in zip(present, ax.patches, strict=True):
        assert step.get_data().values.sum() == (t["group"] == group).sum()


def test_histogram_errors(table):
    with pytest.raises(ValueError, match="`bins`"):
        hp.label_prob_histogram(table, bins=0)
    with pytest.raises(ValueError, match="columns"):
        hp.label_prob_histogram(table, by="nope")
    with pytest.raises(TypeError, match="DataFrame"):
        hp.label_prob_histogram([0.1, 0.2])


def test_draws_on_given_ax(table):
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert hp.label_prob_histogram(table, ax=ax) is fig
    assert fig.axes == [ax] and len(ax.patches) == 4
    assert hp.pr_curve(table, ax=fig.add_subplot(1, 2, 1)) is fig
    sub = Figure().subfigures(1, 2)[0]
    assert (
        hp.data_map(
            pd.DataFrame({"mean_label_prob": [0.5], "variability": [0.1], "correctness": [1.0]}), ax=sub.add_subplot()
        )
        is sub.figure
    )
    with pytest.raises(TypeError, match="`ax`"):
        hp.confusion(table, ax="left")


# ---------------------------------------------------------------- pr_curve
@pytest.mark.parametrize("kind", ["threshold", "pr"])
def test_pr_curve_best_point_is_the_sweeps_best_row(table, kind):
    sweep = threshold_sweep(table)
    best = sweep[sweep["best"]].iloc[0]
    ax = hp.pr_curve(table, kind=kind).axes[0]
    (point,) = [ln for ln in ax.lines if ln.get_label() == "best F1"]
    expected = (best["threshold"], best["f1"]) if kind == "threshold" else (best["recall"], best["precision"])
    assert_allclose(point.get_xydata(), [expected])
    curves = {ln.get_label().split(" (")[0]: ln for ln in ax.lines}
    called = (sweep["tp"] + sweep["fp"] > 0).to_numpy()
    assert not called.all()  # the highest thresholds call nothing positive: no precision to draw
    if kind == "threshold":
        for name, col in (("precision", "precision"), ("recall", "recall"), ("F1", "f1")):
            assert_allclose(curves[name].get_xdata(), sweep["threshold"])
            expected = np.where(called, sweep[col], np.nan) if name == "precision" else sweep[col]
            assert_allclose(curves[name].get_ydata(), expected)
    else:
        from sklearn.metrics import average_precision_score, precision_recall_curve

        y, p = (table["label"] == 1).to_numpy(), hm_positive_prob(table)
        precision, recall, _ = precision_recall_curve(y, p)
        assert_allclose(curves["precision-recall"].get_xdata(), recall)
        assert_allclose(curves["precision-recall"].get_ydata(), precision)
        assert curves["precision-recall"].get_label() == f"precision-recall (AP {average_precision_score(y, p):.3f})"
        assert precision.min() > 0  # no precision 0 where nothing is called positive
    (note,) = ax.texts
    assert f"{best['f1']:.3f}" in note.get_text()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    box = matplotlib.text.Text.get_window_extent(note, renderer=canvas.get_renderer())  # the text, not the arrow
    frame = ax.get_window_extent()
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1  # inside the axes


def test_pr_curve_accepts_a_sweep_and_multiclass_probs():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 50).astype(np.float32)
    scores = pd.DataFrame({"label": rng.integers(0, 3, 50), "pred": probs.argmax(1)})
    for c in range(3):
        scores[f"prob_{c}"] = probs[:, c]
    sweep = threshold_sweep(scores, positive=2, thresholds=11)
    best = sweep[sweep["best"]].iloc[0]
    for source in (sweep, scores):
        ax = hp.pr_curve(source, positive=2, thresholds=11).axes[0]
        (point,) = [ln for ln in ax.lines if ln.get_label() == "best F1"]
        assert_allclose(point.get_xydata(), [[best["threshold"], best["f1"]]])
        assert "[2]" in ax.get_title()


def test_pr_curve_errors(table):
    with pytest.raises(ValueError, match="`kind`"):
        hp.pr_curve(table, kind="roc")
    with pytest.raises(ValueError, match="multi-class"):
        hp.pr_curve(pd.DataFrame({"label": [0, 3], "label_prob": [0.5, 0.5]}))


# ---------------------------------------------------------------- confusion
@pytest.mark.parametrize("by_class", [False, True], ids=["positive", "by_class"])
def test_confusion_heat_map_matches_counts(by_class):
    rng = np.random.default_rng(2)
    t = pd.DataFrame({"label": rng.integers(0, 4, 80), "pred": rng.integers(0, 4, 80)})
    mat = confusion(t, positive=3, by_class=by_class)
    ax = hp.confusion(t, positive=3, by_class=by_class).axes[0]
    (image,) = ax.images
    assert_array_equal(image.get_array(), mat.to_numpy())
    texts = {(round(x.get_position()[1]), round(x.get_position()[0])): x.get_text() for x in ax.texts}
    assert texts == {(i, j): str(v) for (i, j), v in np.ndenumerate(mat.to_numpy())}
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in mat.columns]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(c) for c in mat.index]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "ground truth"


def test_confusion_error():
    with pytest.raises(ValueError, match="pred"):
        hp.confusion(pd.DataFrame({"label": [0, 1]}))


# ---------------------------------------------------------------- gallery
def _hardest(table: pd.DataFrame, group: str, n: int) -> pd.DataFrame:
    rows = table[table["group"] == group]
    return rows.sort_values(["label_prob", "index"], kind="stable").head(n)


def test_gallery_hardest_first_with_label_pred_score(table):
    images = torch.rand(len(table), 1, 6, 5, generator=torch.Generator().manual_seed(0))
    dataset = [(images[i], int(table["label"].iloc[i])) for i in range(len(table))]
    n_hard_neg = int((table["group"] == "hard_negative").sum())
    n = min(5, n_hard_neg)
    fig = hp.gallery(table, dataset, group="hard_negative", n=n, ncols=3)
    expected = _hardest(table, "hard_negative", n)
    assert len(fig.axes) == n
    for ax, row in zip(fig.axes, expected.itertuples(), strict=True):
        title = ax.get_title()
        assert title == f"#{row.index} label {row.label} pred {row.pred}\nlabel_prob {row.label_prob:.2f}"
        assert_allclose(ax.images[0].get_array(), images[row.index, 0].numpy())
    assert "hard_negative" in fig._suptitle.get_text()


def test_gallery_fewer_rows_than_n_and_class_names(table):
    dataset = [(torch.zeros(3, 4, 4), 0)] * len(table)
    k = int((table["group"] == "hard_positive").sum())
    fig = hp.gallery(table, dataset, n=k + 10, classes=["cat", "dog"])
    assert len(fig.axes) == k
    assert all("label dog" in ax.get_title() for ax in fig.axes)  # hard positives are class 1
    assert fig.axes[0].images[0].get_array().shape == (4, 4, 3)


def test_gallery_pil_numpy_and_normalised_images():
    from PIL import Image

    t = split(
        pd.DataFrame({"index": [0, 1, 2], "label": [1, 1, 1], "pred": [0, 0, 0], "label_prob": [0.00012, 0.2, 0.3]}),
        threshold=0.5,
    )
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    normalised = torch.linspace(-2.0, 2.0, 16).reshape(1, 4, 4).to(torch.bfloat16)
    dataset = [Image.fromarray(pixels).convert("P"), {"image": pixels[..., 0]}, (normalised, 1)]
    fig = hp.gallery(t, dataset, n=3)
    assert fig.axes[0].get_title().endswith("label_prob 0.00012")  # not "0.00"
    arrays = [ax.images[0].get_array() for ax in fig.axes]
    assert_allclose(arrays[0], np.asarray(Image.fromarray(pixels).convert("P").convert("RGB")) / 255.0)
    assert_allclose(arrays[1], pixels[..., 0] / 255.0)
    assert_allclose(arrays[2], ((normalised[0].float() + 2) / 4).numpy(), atol=1e-6)


def test_gallery_opens_id_paths(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        p = tmp_path / f"img_{i}.png"
        Image.fromarray(np.full((5, 5), 40 * i, dtype=np.uint8)).save(p)
        paths.append(str(p))
    t = split(
        pd.DataFrame({"index": [0, 1, 2], "id": paths, "label": [0, 0, 0], "pred": [1, 1, 1], "loss": [0.5, 2.0, 1.0]}),
        threshold=0.1,
        by="loss",
        positive=1,
    )
    fig = hp.gallery(t, group="hard", n=2)
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["#1", "#2"]  # loss: highest first
    assert_allclose(fig.axes[0].images[0].get_array(), np.full((5, 5), 40 / 255.0))
    with pytest.raises(ValueError, match="`id`"):
        hp.gallery(t.drop(columns="id"), group="hard")


def test_gallery_empty_group_and_errors(table):
    t = split(_scores(), threshold=0.0)  # nothing is hard
    fig = hp.gallery(t, [None] * len(t), group="hard")
    assert len(fig.axes) == 1 and "no samples" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="`n`"):
        hp.gallery(table, [], n=0)
    with pytest.raises(ValueError, match="`only`"):
        hp.gallery(table, [], group="very_hard")
    with pytest.raises(ValueError, match="shape"):
        hp.gallery(table, [(torch.zeros(2, 2, 2, 2), 0)] * len(table), group="hard")


# ---------------------------------------------------------------- data_map
def test_data_map_offsets_and_colours():
    t = pd.DataFrame(
        {
            "index": [0, 1, 2, 3],
            "mean_label_prob": [0.9, 0.4, np.nan, 0.1],
            "variability": [0.05, 0.3, np.nan, 0.02],
            "correctness": [1.0, 0.5, np.nan, 0.0],
            "aum": [2.0, 0.1, np.nan, -1.0],
            "forgetting": [0, 2, 0, 0],
        }
    )
    fig = hp.data_map(t)
    ax = fig.axes[0]
    (dots,) = ax.collections
    seen = t.dropna()
    assert_allclose(dots.get_offsets(), seen[["variability", "mean_label_prob"]].to_numpy())
    assert_allclose(dots.get_array(), seen["correctness"].to_numpy())
    assert dots.get_clim() == (0.0, 1.0)
    assert dots.get_cmap().name == "cividis"  # colour-blind safe, not red/green
    # the default regions (0.5 confidence, 0.2 variability), labelled with their counts; the x axis shows all of
    # the ambiguous region
    assert_array_equal(ax.lines[0].get_xdata(), [0.2, 0.2])
    assert_array_equal(ax.lines[1].get_ydata(), [0.5, 0.5])
    assert [x.get_text() for x in ax.texts] == ["easy-to-learn (1)", "hard-to-learn (1)", "ambiguous (1)"]
    assert ax.get_xlim() == (0.0, 0.5)
    assert len(fig.axes) == 2  # the colour bar


def test_data_map_from_dynamics_with_region_lines():
    dyn = Dynamics(num_samples=4)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        dyn.update(torch.arange(4), torch.randn(4, 3, generator=g), torch.tensor([0, 1, 2, 0]))
        dyn.end_epoch()
    summary = dyn.summary()
    ax = hp.data_map(dynamics_regions(summary, mean_label_prob_threshold=0.4, variability_threshold=0.1)).axes[0]
    assert_allclose(ax.collections[0].get_offsets(), summary[["variability", "mean_label_prob"]].to_numpy())
    xs = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_xdata()[0] == ln.get_xdata()[1])
    ys = sorted(ln.get_ydata()[0] for ln in ax.lines if ln.get_ydata()[0] == ln.get_ydata()[1])
    assert xs == [0.1] and ys == [0.4]


def test_data_map_error_says_how_to_record_dynamics():
    with pytest.raises(ValueError, match=r"correctness.*hm\.Dynamics.*hm\.add_dynamics"):
        hp.data_map(pd.DataFrame({"mean_label_prob": [0.5], "variability": [0.1]}))
    with pytest.raises(ValueError, match="training dynamics"):
        hp.data_map(_scores())


def test_data_map_of_a_score_table_with_dynamics_columns():
    dyn = Dynamics(num_samples=6)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        dyn.update(torch.arange(6), torch.randn(6, 2, generator=g), torch.tensor([0, 1, 0, 1, 0, 1]))
        dyn.end_epoch()
    scores = add_dynamics(_scores(6), dyn)
    ax = hp.data_map(scores).axes[0]
    summary = dyn.summary()
    assert_allclose(ax.collections[0].get_offsets(), summary[["variability", "mean_label_prob"]].to_numpy(), rtol=1e-6)
    regions = dynamics_regions(summary)["region"].value_counts()
    assert [x.get_text() for x in ax.texts] == [
        f"{r} ({regions[r]})" for r in ("easy-to-learn", "hard-to-learn", "ambiguous")
    ]


# ---------------------------------------------------------------- the optional extra
@pytest.mark.slow  # a fresh interpreter imports torch: several seconds on 2 busy cores
def test_core_never_imports_matplotlib():
    code = (
        "import sys, hardmine, hardmine.analysis.plot, hardmine.feedback.miner, hardmine.app.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_matplotlib_names_the_extra(table, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'hardmine\[plot\]'"):
        hp.label_prob_histogram(table)


# ---------------------------------------------------------------- display, palette, resolution
def test_figures_display_in_jupyter_without_the_magic(table, tmp_path):
    import base64
    import io

    from PIL import Image

    fig = hp.label_prob_histogram(table)
    png = fig._repr_png_()
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
    html = fig._repr_html_()
    assert html.startswith('<img src="data:image/png;base64,') and 'width="640"' in html
    hi_res = base64.b64decode(html.split(",", 1)[1].split('"', 1)[0])
    assert Image.open(io.BytesIO(hi_res)).size[0] > Image.open(io.BytesIO(png)).size[0]  # 150 dpi vs 100
    fig.savefig(tmp_path / "h.png")  # saves at 150 dpi by default
    assert Image.open(tmp_path / "h.png").size == (round(6.4 * 150), round(3.6 * 150))
    for make in (lambda: hp.pr_curve(table), lambda: hp.roc_curve(table), lambda: hp.confusion(table)):
        assert make()._repr_png_().startswith(b"\x89PNG")


def test_palette_is_okabe_ito():
    assert set(hp.GROUP_COLORS.values()) <= set(hp.OKABE_ITO.values())
    assert set(hp.REGION_COLORS.values()) <= set(hp.OKABE_ITO.values())
    assert len(set(hp.GROUP_COLORS.values())) == 4 and "#2ca02c" not in hp.GROUP_COLORS.values()  # no red/green


# ---------------------------------------------------------------- roc_curve and the curves' requirements
def test_roc_curve_equals_sklearn(table):
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    y, p = (table["label"] == 1).to_numpy(), hm_positive_prob(table)
    fpr, tpr, _ = sk_roc_curve(y, p, drop_intermediate=False)
    ax = hp.roc_curve(table).axes[0]
    curve = ax.lines[0]
    assert_allclose(curve.get_xdata(), fpr)
    assert_allclose(curve.get_ydata(), tpr)
    assert curve.get_label() == f"ROC (AUC {roc_auc_score(y, p):.3f})"
    assert_array_equal(ax.lines[1].get_xydata(), [[0, 0], [1, 1]])


def test_curves_say_how_to_get_probabilities():
    rng = np.random.default_rng(0)
    multi = pd.DataFrame({"label": rng.integers(0, 4, 30), "pred": rng.integers(0, 4, 30)})
    for plot in (hp.pr_curve, hp.roc_curve):
        with pytest.raises(ValueError, match=r"needs the probability of the positive class.*keep_probs=True"):
            plot(multi, positive=2)
    with pytest.raises(ValueError, match="only one class"):
        hp.roc_curve(pd.DataFrame({"label": [1, 1], "label_prob": [0.2, 0.9]}))


# ---------------------------------------------------------------- confusion at many classes
def test_confusion_normalised_and_readable_at_60_classes():
    rng = np.random.default_rng(3)
    k = 60
    label = rng.integers(0, k, 3000)
    pred = np.where(rng.random(3000) < 0.7, label, rng.integers(0, k, 3000))
    t = pd.DataFrame({"label": label, "pred": pred})
    counts = confusion(t, by_class=True).to_numpy()
    names = [f"class number {c}" for c in range(k)]
    fig = hp.confusion(t, by_class=True, normalize=True, classes=names)
    ax = fig.axes[0]
    assert_allclose(ax.images[0].get_array(), counts / counts.sum(1, keepdims=True))
    assert ax.images[0].get_clim() == (0.0, 1.0)
    width, height = fig.get_size_inches()
    assert height <= hp.MAX_CONFUSION_INCHES and width <= hp.MAX_CONFUSION_INCHES + 1
    assert len(ax.texts) == 0  # 60 x 60 numbers would not be readable
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) <= hp.MAX_TICK_LABELS and ticks[:2] == ["class number 0", "class number 2"]
    few = hp.confusion(t[(t["label"] < 3) & (t["pred"] < 3)], by_class=True, normalize=True).axes[0]
    sub = confusion(t[(t["label"] < 3) & (t["pred"] < 3)], by_class=True).to_numpy()
    assert [x.get_text() for x in few.texts] == [f"{v:.2f}" for v in (sub / sub.sum(1, keepdims=True)).ravel()]


# ---------------------------------------------------------------- gallery titles and sources
def test_gallery_wraps_long_class_names(table):
    dataset = [(torch.zeros(1, 4, 4), 0)] * len(table)
    names = ["a very long class name indeed", "another quite long class name"]
    fig = hp.gallery(table, dataset, group="hard", n=4, classes=names)
    for ax in fig.axes:
        lines = ax.get_title().split("\n")
        assert 2 <= len(lines) <= 4 and all(len(line) <= 22 for line in lines[:-1])
        assert lines[-1].startswith("label_prob ")


def test_gallery_on_index_ids_says_pass_dataset_or_root(table, tmp_path):
    with pytest.raises(ValueError, match=r"'\d+' is not a file.*`dataset=`.*`root=`"):
        hp.gallery(table, group="hard")
    from PIL import Image

    for i in table["index"]:
        Image.fromarray(np.full((3, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
    t = table.assign(id=[f"{i}.png" for i in table["index"]])
    fig = hp.gallery(t, group="hard", n=2, root=tmp_path)
    first = _hardest(t[t["difficulty"] == "hard"].assign(group="hard"), "hard", 1)["index"].iloc[0]
    assert_allclose(fig.axes[0].images[0].get_array(), np.full((3, 3), first / 255.0))


def test_ipython_shows_the_figure_as_an_image_not_its_repr(table):
    formatters = pytest.importorskip("IPython.core.formatters")
    data, _ = formatters.DisplayFormatter().format(
        hp.data_map(pd.DataFrame({"mean_label_prob": [0.5], "variability": [0.1], "correctness": [1.0]}))
    )
    assert data["image/png"].startswith(b"\x89PNG") and data["text/html"].startswith("<img src=")


def test_plots_follow_the_no_positive_rule_for_multiclass_tables():
    # Issue 14: a multi-class table split without `positive` has hard/easy only; the plots draw that.
    rng = np.random.default_rng(0)
    t = pd.DataFrame(
        {
            "index": range(30),
            "label": rng.integers(0, 3, 30),
            "pred": rng.integers(0, 3, 30),
            "label_prob": rng.random(30),
        }
    )
    table = split(t, threshold=0.5)
    fig = hp.label_prob_histogram(table)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == [
        f"hard ({int((t['label_prob'] < 0.5).sum())})",
        f"easy ({int((t['label_prob'] >= 0.5).sum())})",
    ]
    fig = hp.confusion(table)
    from sklearn.metrics import confusion_matrix

    assert fig.axes[0].images[0].get_array().tolist() == confusion_matrix(t["label"], t["pred"]).tolist()
    assert fig.axes[0].get_title() == "confusion by class"
    assert hp.confusion(split(t, threshold=0.5, positive=2)).axes[0].images[0].get_array().shape == (2, 2)


# ---------------------------------------------------------------- renamed in 0.4.0: the old names warn
def test_confidence_histogram_is_a_deprecated_alias_of_label_prob_histogram():
    table = split(_scores(), threshold=0.7)
    with pytest.warns(DeprecationWarning, match=r"confidence_histogram is deprecated.*label_prob_histogram"):
        old = hp.confidence_histogram(table, bins=7, log=False)
    new = hp.label_prob_histogram(table, bins=7, log=False)
    assert [p.get_data().values.tolist() for p in old.axes[0].patches] == [
        p.get_data().values.tolist() for p in new.axes[0].patches
    ]
    assert sum(p.get_data().values.sum() for p in new.axes[0].patches) == len(table)


def test_data_map_reads_an_old_summary_and_the_old_threshold_name_with_a_warning():
    old = pd.DataFrame({"confidence": [0.9, 0.3], "variability": [0.05, 0.1], "correctness": [1.0, 0.0]})
    with pytest.warns(DeprecationWarning, match=r"`confidence` column is named `mean_label_prob`"):
        ax = hp.data_map(old).axes[0]
    assert_allclose(ax.collections[0].get_offsets(), [[0.05, 0.9], [0.1, 0.3]])
    new = old.rename(columns={"confidence": "mean_label_prob"})
    with pytest.warns(
        DeprecationWarning, match=r"`confidence_threshold=` of data_map is deprecated.*use `mean_label_prob_threshold=`"
    ):
        ax = hp.data_map(new, confidence_threshold=0.35).axes[0]
    assert [x.get_text() for x in ax.texts] == ["easy-to-learn (1)", "hard-to-learn (1)", "ambiguous (0)"]
    with pytest.raises(
        TypeError, match=r"got both `mean_label_prob_threshold` and its old name `confidence_threshold`"
    ):
        hp.data_map(new, confidence_threshold=0.35, mean_label_prob_threshold=0.4)


@pytest.mark.parametrize(
    "col", sorted(c for c, spec in COLUMNS.items() if spec.range is not None and all(map(np.isfinite, spec.range)))
)
def test_histogram_bins_span_the_registry_range_of_a_bounded_score(col):
    lo, hi = value_range(col)
    t = pd.DataFrame({col: np.linspace(lo + (hi - lo) / 4, hi - (hi - lo) / 4, 5)})
    (step,) = hp.label_prob_histogram(t, by=col, bins=4, log=False).axes[0].patches
    assert step.get_data().edges.tolist() == np.linspace(lo, hi, 5).tolist()
