"""hardmine.app.html_report: the text and HTML reports of a split table, checked against hand-counted values."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hardmine.analysis.io import to_csv
from hardmine.analysis.splitting import split
from hardmine.app.html_report import (
    hardest,
    load_report,
    per_class,
    read_skipped,
    report_html,
    report_text,
    skipped_path,
    write_html,
    write_skipped,
)


def _table(ids: list[str] | None = None) -> pd.DataFrame:
    # 6 samples, classes 0/1/2, positive = 2; hard = label_prob below 0.5.
    label = [0, 0, 1, 1, 2, 2]
    pred = [0, 2, 1, 0, 2, 1]
    label_prob = np.float32([0.9, 0.2, 0.8, 0.3, 0.7, 0.1])
    return split(
        pd.DataFrame(
            {
                "index": np.arange(6),
                "id": ids or [f"img{i}.png" for i in range(6)],
                "label": label,
                "pred": pred,
                "label_name": ["007", "007", "cat", "cat", "dog", "dog"],
                "pred_name": ["007", "dog", "cat", "007", "dog", "cat"],
                "confidence": np.float32([0.9, 0.6, 0.8, 0.5, 0.7, 0.8]),
                "label_prob": label_prob,
                "margin": np.float32([0.8, -0.4, 0.6, -0.2, 0.4, -0.7]),
                "entropy": np.float32([0.3] * 6),
                "loss": -np.log(label_prob),
            }
        ),
        threshold=0.5,
        positive=2,
    )


def test_hardest_orders_by_the_direction_of_the_score():
    t = _table()
    assert hardest(t, 3)["index"].tolist() == [5, 1, 3]  # lowest label_prob first
    assert hardest(t, 2, by="loss")["index"].tolist() == [5, 1]  # highest loss first
    assert hardest(t, 0).empty
    with pytest.raises(ValueError, match=r"Expected argument `by` to name a score column of the table, but got 'x'"):
        hardest(t, 3, by="x")
    with pytest.raises(ValueError, match=r"`n` must be >= 0, got -1"):
        hardest(t, -1)


def test_per_class_counts_by_hand():
    pc = per_class(_table())
    assert pc["name"].tolist() == ["007", "cat", "dog"]
    assert pc["count"].tolist() == [2, 2, 2]
    assert pc["hard"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(pc["accuracy"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(pc["mean_label_prob"], [0.55, 0.55, 0.4], rtol=1e-6)


def test_report_text_values(tmp_path):
    text = report_text(_table(), top=2, skipped=[("bad.png", "OSError: truncated")], source="x.csv")
    assert text.splitlines()[0] == "hardmine report: x.csv"
    assert "6 samples" in text and "positive class(es): [2]" in text
    # positive = dog (2): TP 1 (index 4), FN 1 (index 5 predicted cat), FP 1 (index 1 predicted dog), TN 3.
    assert re.search(r"positive\s+1\s+1\n.*negative\s+1\s+3", text)
    assert "precision 0.500  recall 0.500  f1 0.500  accuracy 0.667  (support 2)" in text
    # groups: hard_positive 1 (5), easy_positive 1 (4), hard_negative 2 (1, 3), easy_negative 2 (0, 2)
    for group, count in (("hard_positive", 1), ("easy_positive", 1), ("hard_negative", 2), ("easy_negative", 2)):
        assert re.search(rf"{group}\s+{count}\s", text)
    block = text[text.index("hardest 2 (lowest label_prob first)") :]
    assert block.index("img5.png") < block.index("img1.png") and "img3.png" not in block
    assert "skipped files (1, not scored: unreadable images)\n  bad.png  (OSError: truncated)" in text


def test_skipped_sidecar_round_trip(tmp_path):
    out = tmp_path / "hard.csv"
    assert skipped_path(out) == tmp_path / "hard.csv.skipped.txt"
    assert read_skipped(out) == []
    items = [("a b/x.png", "OSError: broken\nsecond line"), ("y.jpg", "UnidentifiedImageError: no")]
    assert write_skipped(out, items) == skipped_path(out)
    assert read_skipped(out) == [("a b/x.png", "OSError: broken second line"), ("y.jpg", "UnidentifiedImageError: no")]
    assert write_skipped(out, []) is None and not skipped_path(out).exists()  # a rerun without bad files cleans up


def test_load_report_keeps_class_names_as_text(tmp_path):
    out = tmp_path / "t.csv"
    to_csv(_table(), out)
    report = load_report(out)
    assert report.table["label_name"].tolist() == ["007", "007", "cat", "cat", "dog", "dog"]
    assert report.skipped == [] and report.source == str(out)
    with pytest.raises(FileNotFoundError, match="No such file"):
        load_report(tmp_path / "missing.csv")


def test_html_gallery_embeds_thumbnails_and_resolves_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    for i in range(6):
        Image.new("RGBA" if i % 2 else "L", (400, 300), color=40 * i).save(tmp_path / "imgs" / f"{i}.png")
    ids = [f"imgs/{i}.png" for i in range(6)]
    ids[1] = str(tmp_path / "imgs" / "gone.png")  # a file that was moved away
    out = tmp_path / "t.csv"
    to_csv(_table(ids), out)
    monkeypatch.chdir("/")  # relative ids are found next to the table
    page_path = write_html(load_report(out), tmp_path / "r.html", top=3)
    page = page_path.read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in srcs] == ["imgs/5.png", "imgs/3.png"]  # the 3 hardest: 5, 1 (gone), 3
    assert page.count("image not available") == 1
    thumb = Image.open(io.BytesIO(base64.b64decode(srcs[0][0].split(",", 1)[1])))
    assert thumb.size == (160, 120) and thumb.mode == "RGB"
    assert "label dog (2) &rarr; predicted cat (1)" in page
    with pytest.raises(FileNotFoundError, match=r"the folder .*nowhere' does not exist"):
        write_html(load_report(out), tmp_path / "nowhere" / "r.html")


def test_report_html_of_a_table_without_names_or_ids():
    t = _table().drop(columns=["label_name", "pred_name", "id"])
    page = report_html(t, top=2)
    assert page.count('<figure class="sample">') == 2 and "label 2 &rarr; predicted 1" in page
    assert page.count("image not available") == 2
