"""hm.report: the self-contained interactive HTML report, checked in Python and in a real headless Chromium.

The browser tests drive the system Chromium through selenium. Without Chromium, its driver or selenium they skip
with the reason, unless HARDMINE_REQUIRE_BROWSER=1 (CI installs them with .ci/install-browser.sh and sets it).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image

import hardmine as hm
from hardmine.analysis.dynamics import dynamics_regions
from hardmine.analysis.interactive import Report

HOSTILE = '</script><img src=x onerror="window.__pwned=1">'


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    lp = rng.uniform(0.02, 0.98, n)
    pred = np.where(lp >= 0.5, label, 1 - label)
    t = pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [f"img_{i:04d}.png" for i in range(n)],
            "label": label.astype(np.int64),
            "pred": pred.astype(np.int64),
            "label_prob": lp.astype(np.float32),
            "loss": (-np.log(lp)).astype(np.float32),
        }
    )
    t.loc[3, "id"] = HOSTILE
    return hm.split(t, threshold=0.6)


def _payload(page: str, key: str = "hm-data") -> object:
    match = re.search(rf'<script type="application/json" id="{key}">(.*?)</script>', page, flags=re.S)
    assert match is not None
    return json.loads(match.group(1))


def _decode(uri: str) -> Image.Image:
    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


# ---------------------------------------------------------------- the page, read in Python
def test_every_row_and_column_is_embedded():
    t = _table()
    r = hm.report(t)
    assert isinstance(r, Report) and r.num_rows == len(t) and r.path is None
    data = _payload(r.html)
    assert data["n"] == len(t) and data["score"] == "label_prob"
    cols = {c["name"]: c for c in data["columns"]}
    assert list(cols) == list(t.columns)
    assert cols["id"]["values"] == t["id"].tolist()
    assert_array_equal(cols["label"]["values"], t["label"])
    assert_allclose(cols["label_prob"]["values"], t["label_prob"], rtol=1e-5)
    group = cols["group"]
    assert [group["categories"][k] for k in group["values"]] == t["group"].astype(str).tolist()


def test_user_data_cannot_break_out_of_the_page():
    t = _table(20)
    r = hm.report(t, classes=["<b>cat</b>", "dog&</script>"], title="<i>t</i>")
    assert HOSTILE not in r.html and "<b>cat</b>" not in r.html and "<i>t</i>" not in r.html
    assert r.html.count("</script>") == r.html.count("<script") == 3  # only the page's own script elements
    data = _payload(r.html)
    assert data["columns"][1]["values"][3] == HOSTILE and data["classes"][1] == "dog&</script>"
    assert "&lt;b&gt;cat&lt;/b&gt;" in r.html  # class names in the confusion matrix, escaped
    assert "default-src 'none'" in r.html  # no network: the Content-Security-Policy forbids it


def test_sections_match_the_numbers():
    from sklearn.metrics import average_precision_score, roc_auc_score

    t = _table(200, seed=3)
    r = hm.report(t, classes=["cat", "dog"])
    y = (t["label"] == 1).to_numpy()
    p = hm.positive_prob(t)
    assert f"AP {average_precision_score(y, p):.3f}" in r.html
    assert f"AUC {roc_auc_score(y, p):.3f}" in r.html
    assert hm.summary(t)._repr_html_() in r.html
    # the confusion grids: counts, then row-normalised
    mat = hm.confusion(t, by_class=True).to_numpy()
    grids = re.findall(r'<table class="cm-grid[^"]*" data-kind="(\w+)">(.*?)</table>', r.html, flags=re.S)
    assert [k for k, _ in grids] == ["counts", "normalised"]
    counts = [int(x) for x in re.findall(r'<td class="cm[^"]*"[^>]*>([\d.]+)</td>', grids[0][1])]
    assert_array_equal(np.reshape(counts, mat.shape), mat)
    norm = [float(x) for x in re.findall(r'<td class="cm[^"]*"[^>]*>([\d.]+)</td>', grids[1][1])]
    assert_allclose(np.reshape(norm, mat.shape), mat / mat.sum(1, keepdims=True), atol=0.005)
    # the histogram legend counts every group
    for g, count in t["group"].value_counts().items():
        assert f"{g} ({count})" in r.html
    assert "threshold 0.6" in r.html
    assert "data map" not in r.html  # no dynamics columns


def test_data_map_and_label_issues():
    t = _table(80, seed=1)
    rng = np.random.default_rng(1)
    t["mean_label_prob"] = rng.uniform(0, 1, len(t)).astype(np.float32)
    t["variability"] = rng.uniform(0, 0.45, len(t)).astype(np.float32)
    probs = np.stack([1 - t["label_prob"], t["label_prob"]], axis=1)
    probs = np.where(t["label"].to_numpy()[:, None] == 1, probs, probs[:, ::-1])
    issues = hm.label_issues(probs, t["label"].to_numpy(), method="confident_learning")
    r = hm.report(t, issues=issues)
    regions = dynamics_regions(t)["region"].value_counts()
    for name in ("easy-to-learn", "ambiguous", "hard-to-learn"):
        assert f"{name} ({regions[name]})" in r.html
    cols = {c["name"]: c for c in _payload(r.html)["columns"]}
    rank = dict(zip(issues["index"], range(1, len(issues) + 1), strict=True))
    assert cols["issue_rank"]["values"] == [rank[i] for i in t["index"]]
    assert sum(cols["is_issue"]["values"]) == int(issues["is_issue"].sum())
    assert "confident_learning" in r.html and 'id="hm-sort-issues"' in r.html


def test_thumbnails_from_a_dataset_reduced_with_pil():
    t = _table(6)
    g = torch.Generator().manual_seed(0)
    small = [torch.rand(1, 8, 8, generator=g) for _ in range(3)]
    big = [(torch.rand(3, 200, 100, generator=g), 0) for _ in range(3)]
    r = hm.report(t, dataset=small + big, thumbnail_size=32)
    thumbs = _payload(r.html, "hm-thumbs")
    assert r.num_images == 6 and len(thumbs) == 6
    img = _decode(thumbs[0])
    assert img.size == (8, 8)
    assert_array_equal(np.asarray(img), np.clip(small[0][0].numpy() * 255 + 0.5, 0, 255).astype(np.uint8))
    assert _decode(thumbs[4]).size == (16, 32)  # (W, H): 100 x 200 reduced to fit 32


def test_thumbnails_only_under_image_root(tmp_path):
    root = tmp_path / "scored"
    (root / "cls").mkdir(parents=True)
    secret = tmp_path / "secret.png"
    for p, v in ((root / "cls" / "a.png", 10), (root / "b.png", 20), (secret, 200)):
        Image.fromarray(np.full((4, 4), v, np.uint8)).save(p)
    (root / "link.png").symlink_to(secret)
    ids = ["cls/a.png", str(root / "b.png"), "../secret.png", str(secret), "link.png", "cls/missing.png"]
    t = pd.DataFrame({"index": range(6), "id": ids, "label": [0] * 6, "pred": [0] * 6, "label_prob": [0.5] * 6})
    r = hm.report(t, image_root=root)
    thumbs = _payload(r.html, "hm-thumbs")
    assert [x is not None for x in thumbs] == [True, True, False, False, False, False]
    assert np.asarray(_decode(thumbs[0])).max() == 10 and np.asarray(_decode(thumbs[1])).max() == 20
    assert any("3 image path(s) lie outside `image_root`" in n for n in r.notes)
    assert any("1 image file(s)" in n for n in r.notes)
    # no image_root: ids are never opened, and the page says how to get thumbnails
    bare = hm.report(t)
    assert bare.num_images == 0 and any("image_root=" in n for n in bare.notes)
    trusting = hm.report(t, image_root=root, allow_any_path=True)
    assert trusting.num_images == 5


def test_max_images_keeps_the_hardest():
    t = _table(30)
    r = hm.report(t, dataset=[torch.zeros(1, 4, 4)] * 30, max_images=5)
    thumbs = _payload(r.html, "hm-thumbs")
    with_image = {i for i, x in enumerate(thumbs) if x is not None}
    assert with_image == set(np.argsort(t["label_prob"].to_numpy(), kind="stable")[:5].tolist())


def test_save_repr_and_errors(tmp_path):
    t = _table(10)
    r = hm.report(t, tmp_path / "r.html")
    assert r.path == tmp_path / "r.html" and (tmp_path / "r.html").read_text(encoding="utf-8") == r.html
    assert os.listdir(tmp_path) == ["r.html"]
    frame = r._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and html.unescape(frame.split('"')[1]) == r.html
    assert repr(r).startswith("Report(rows=10, images=0,")
    with pytest.raises(TypeError, match="`table`"):
        hm.report([1, 2])
    with pytest.raises(ValueError, match="`thumbnail_size`"):
        hm.report(t, thumbnail_size=2)
    with pytest.raises(ValueError, match="`image_root`"):
        hm.report(t, image_root=tmp_path / "nope")
    with pytest.raises(ValueError, match="`issues`"):
        hm.report(t, issues=pd.DataFrame({"x": [1]}))


def _rgb(name: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    return ImageColor.getrgb(name)[:3]


def test_segmentation_thumbnails_show_image_target_and_prediction_side_by_side():
    from hardmine.analysis._draw import CLASS_COLORS

    g = torch.Generator().manual_seed(0)
    data = []
    for i in range(5):
        mask = torch.zeros(12, 16, dtype=torch.long)
        mask[2 : 6 + i, 3:9] = 1
        mask[0, :] = 255  # ignored
        data.append((torch.rand(3, 12, 16, generator=g), mask))
    model = torch.nn.Conv2d(3, 3, 1)
    table = hm.score(model, torch.utils.data.DataLoader(data, batch_size=2), task="segmentation", progress=False)
    preds = {i: (data[i][1] + i) % 3 for i in range(5)}  # a class the target does not have, and 255 -> a class
    r = hm.report(table, dataset=data, masks=lambda i: (data[i][1], preds[i]), thumbnail_size=16, max_images=3)
    thumbs = _payload(r.html, "hm-thumbs")
    shown = [i for i, x in enumerate(thumbs) if x is not None]
    assert r.num_images == 3 and shown == sorted(np.argsort(table["label_prob"].to_numpy(), kind="stable")[:3])
    assert _payload(r.html)["wide"] is True and "its target mask and the predicted mask" in r.html
    palette = np.asarray(CLASS_COLORS, dtype=np.uint8)
    for pos in shown:
        i = int(table["index"][pos])
        strip = np.asarray(_decode(thumbs[pos]).convert("RGB"))
        assert strip.shape == (12, 3 * 16 + 2 * 2, 3)  # image | target | prediction, 2-pixel gaps
        image = np.clip(data[i][0].permute(1, 2, 0).numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
        assert_array_equal(strip[:, :16], image)
        target = data[i][1].numpy()
        want = palette[target % 20]
        want[target == 255] = 0
        assert_array_equal(strip[:, 18:34], want)
        assert_array_equal(strip[:, 36:52], palette[preds[i].numpy()])
        assert (strip[:, 16:18] == 255).all()
    # a masks object of the wrong kind, or a pair that is not a pair
    with pytest.raises(TypeError, match="`masks`"):
        hm.report(table, dataset=data, masks=3)
    bad = hm.report(table, dataset=data, masks={i: data[i][1] for i in range(5)})
    assert bad.num_images == 0 and any("(target, prediction)" in n for n in bad.notes)


def test_detection_thumbnails_draw_ground_truth_misses_and_false_positives():
    from torch.utils.data import DataLoader

    from hardmine.analysis._draw import BOX_COLORS

    class Fixed(torch.nn.Module):  # finds the first box of image 0, and a box nowhere on image 1
        def forward(self, images):
            out = []
            for im in images:
                k = int(im[0, 0, 0].item() * 10 + 0.5)
                box = [[2.0, 2.0, 12.0, 12.0]] if k == 0 else [[20.0, 4.0, 30.0, 14.0]]
                out.append({"boxes": torch.tensor(box), "labels": torch.tensor([1]), "scores": torch.tensor([0.9])})
            return out

    data = []
    for i in range(2):
        image = torch.zeros(3, 32, 32)
        image[:, 0, 0] = i / 10
        gt = torch.tensor([[2.0, 2.0, 12.0, 12.0], [4.0, 18.0, 14.0, 28.0]])
        data.append((image, {"boxes": gt, "labels": torch.ones(2, dtype=torch.long)}))
    loader = DataLoader(data, batch_size=2, collate_fn=lambda b: tuple(zip(*b, strict=True)))
    table, boxes = hm.score_detection(Fixed(), loader, return_boxes=True, progress=False)
    assert boxes["kind"].tolist() == ["missed", "missed", "missed", "false_pos"]
    r = hm.report(table, dataset=data, boxes=boxes, thumbnail_size=32)
    thumbs = _payload(r.html, "hm-thumbs")
    assert r.num_images == 2 and "orange the confident false positives" in r.html and not _payload(r.html)["wide"]
    first, second = (np.asarray(_decode(t).convert("RGB")) for t in thumbs)
    assert first.shape == (32, 32, 3)
    green, red, orange = (_rgb(BOX_COLORS[k]) for k in ("gt", "missed", "false_pos"))
    assert tuple(first[2, 7]) == green and tuple(first[7, 2]) == green  # matched: ground truth only
    assert tuple(first[18, 4]) == red and tuple(first[28, 14]) == red  # missed, drawn over its ground truth
    assert tuple(second[2, 2]) == red and tuple(second[4, 20]) == orange and tuple(second[14, 30]) == orange
    assert tuple(first[7, 7]) == (0, 0, 0) and tuple(second[4, 20]) != tuple(first[4, 20])
    # a half-scale thumbnail puts the boxes at half the coordinates
    half = np.asarray(
        _decode(_payload(hm.report(table, dataset=data, boxes=boxes, thumbnail_size=16).html, "hm-thumbs")[1]).convert(
            "RGB"
        )
    )
    assert half.shape == (16, 16, 3) and tuple(half[2, 10]) == orange and tuple(half[7, 15]) == orange
    with pytest.raises(ValueError, match="`boxes`"):
        hm.report(table, dataset=data, boxes=boxes.drop(columns=["kind"]))
    with pytest.raises(TypeError, match="`boxes`"):
        hm.report(table, dataset=data, boxes=[1])
    with pytest.raises(ValueError, match="`masks`"):
        hm.report(table, dataset=data, boxes=boxes, masks=lambda i: (None, None))


def test_hm_report_stays_the_function_after_the_static_report_module_loads():
    import hardmine.app.cli  # noqa: F401
    import hardmine.app.html_report  # noqa: F401

    assert callable(hm.report) and hm.report.__module__ == "hardmine.analysis.interactive"


def test_multiclass_without_probabilities_says_how_to_get_curves():
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"index": range(50), "label": rng.integers(0, 5, 50), "pred": rng.integers(0, 5, 50)})
    r = hm.report(t, classes=list("abcde"))
    assert "precision-recall" not in r.html and any("keep_probs=True" in n or "positive" in n for n in r.notes)
    assert hm.confusion(t, by_class=True).shape == (5, 5) and r.html.count('<td class="cm') == 50


# ---------------------------------------------------------------- in a real browser
def _browser():
    """A headless Chromium driven by selenium, or a skip (a failure under HARDMINE_REQUIRE_BROWSER=1)."""
    required = os.environ.get("HARDMINE_REQUIRE_BROWSER") == "1"
    missing = []
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install selenium)")
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        missing.append("the system Chromium and chromedriver (.ci/install-browser.sh)")
    if missing:
        reason = "browser tests need " + " and ".join(missing)
        if required:
            pytest.fail(reason + ", and HARDMINE_REQUIRE_BROWSER=1 is set")
        pytest.skip(reason)
    opts = Options()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture(scope="module")
def browser():
    drv = _browser()
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory, browser):
    t = _table(120, seed=5)
    g = torch.Generator().manual_seed(0)
    dataset = [(torch.rand(1, 8, 8, generator=g), 0) for _ in range(len(t))]
    path = tmp_path_factory.mktemp("report") / "report.html"
    hm.report(t, path, dataset=dataset, classes=["cat", "dog"])
    browser.get(path.as_uri())
    return t


def _shown(browser, col: str) -> list[str]:
    return [td.text for td in browser.find_elements("css selector", f'#hm-table tbody td[data-col="{col}"]')]


def _count(browser) -> str:
    return browser.find_element("id", "hm-count").text


def _clear(element) -> None:
    """Empty an input the way a user does (selenium's clear() fires no input event)."""
    element.send_keys("\ue009a")  # Ctrl+A
    element.send_keys("\ue003")  # Backspace


def _select(browser, element_id: str, text: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", element_id)).select_by_visible_text(text)


def test_browser_sort_filter_search_lightbox_and_no_errors(browser, page):
    t = page
    assert _count(browser) == f"Showing 1–50 of {len(t)} matching rows ({len(t)} in all)"
    assert _shown(browser, "index")[:3] == ["0", "1", "2"]
    # sort: ascending, then descending on a second click
    header = browser.find_element("css selector", '#hm-table th[data-col="label_prob"]')
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    by_prob = t.sort_values(["label_prob", "index"], kind="stable")
    assert _shown(browser, "index")[:5] == [str(i) for i in by_prob["index"][:5]]
    header.click()
    desc = t.assign(k=-t["label_prob"]).sort_values(["k", "index"], kind="stable")
    assert _shown(browser, "index")[:5] == [str(i) for i in desc["index"][:5]]
    # filter by group and class
    _select(browser, "hm-filter-group", "hard_negative")
    sel = t[t["group"] == "hard_negative"]
    assert f"of {len(sel)} matching rows" in _count(browser)
    assert set(_shown(browser, "group")) == {"hard_negative"}
    _select(browser, "hm-filter-group", "all")
    _select(browser, "hm-filter-label", "dog")
    assert f"of {int((t['label'] == 1).sum())} matching rows" in _count(browser)
    assert set(_shown(browser, "label")) == {"dog"}
    _select(browser, "hm-filter-label", "all")
    # the score range
    browser.find_element("id", "hm-range-min").send_keys("0.2")
    browser.find_element("id", "hm-range-max").send_keys("0.4")
    inside = t[(t["label_prob"] >= 0.2) & (t["label_prob"] <= 0.4)]
    assert f"of {len(inside)} matching rows" in _count(browser)
    _clear(browser.find_element("id", "hm-range-min"))
    _clear(browser.find_element("id", "hm-range-max"))
    assert f"of {len(t)} matching rows" in _count(browser)
    # search ids: the hostile id is found and shown as text
    search = browser.find_element("id", "hm-search")
    search.send_keys("onerror")
    assert _count(browser) == f"Showing 1–1 of 1 matching rows ({len(t)} in all)"
    assert _shown(browser, "id") == [HOSTILE]
    _clear(search)
    search.send_keys("img_001")
    assert _shown(browser, "id") and all("img_001" in s for s in _shown(browser, "id"))
    assert f"of {int(t['id'].str.contains('img_001').sum())} matching" in _count(browser)
    _clear(search)
    assert f"of {len(t)} matching rows" in _count(browser)
    # the lightbox opens on a thumbnail with the row's fields, and Escape closes it
    box = browser.find_element("id", "hm-lightbox")
    assert not box.is_displayed()
    browser.find_element("css selector", "#hm-table tbody img").click()
    assert box.is_displayed()
    assert browser.find_element("id", "hm-lb-img").get_attribute("src").startswith("data:image/png;base64,")
    assert "label_prob" in browser.find_element("id", "hm-lb-info").text
    browser.find_element("tag name", "body").send_keys("\ue00c")  # Escape
    assert not box.is_displayed()
    # confusion: counts <-> row-normalised
    browser.find_element("css selector", "input[name=hm-cm][value=normalised]").click()
    assert browser.find_element("id", "hm-cm-normalised").is_displayed()
    assert not browser.find_element("id", "hm-cm-counts").is_displayed()
    # no injected script ran, no console errors
    assert browser.execute_script("return window.__pwned") is None
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_browser_pages(browser, page):
    browser.find_element("id", "hm-next").click()
    assert _count(browser).startswith(f"Showing 51–100 of {len(page)}")
    _select(browser, "hm-pagesize", "500")
    assert len(_shown(browser, "index")) == len(page)
    assert browser.get_log("browser") == []


def test_report_of_a_dynamics_summary_draws_its_data_map():
    dyn = hm.Dynamics(num_samples=40)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 3
    for _ in range(3):
        dyn.update(torch.arange(40), torch.randn(40, 3, generator=g), labels)
        dyn.end_epoch()
    summary = dyn.summary()
    r = hm.report(summary, issues=hm.label_issues(dyn))
    regions = dyn.regions()["region"].value_counts()
    for name in ("easy-to-learn", "ambiguous", "hard-to-learn"):
        assert f"{name} ({regions[name]})" in r.html
    # a score table's `confidence` is the top probability, not the dynamics' mean: no data map from it
    assert "data map" not in hm.report(_table(20).assign(variability=0.1)).html


def test_browser_minimal_table_without_groups_or_images(browser, tmp_path):
    rng = np.random.default_rng(4)
    t = pd.DataFrame({"index": range(30), "label": rng.integers(0, 60, 30), "pred": rng.integers(0, 60, 30)})
    hm.report(t, tmp_path / "bare.html").save(tmp_path / "bare.html")
    browser.get((tmp_path / "bare.html").as_uri())
    assert _count(browser) == "Showing 1–30 of 30 matching rows (30 in all)"
    browser.find_element("css selector", '#hm-table th[data-col="label"]').click()
    assert _shown(browser, "label") == [str(v) for v in sorted(t["label"])]
    assert browser.find_elements("css selector", "#hm-table tbody img") == []
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


@pytest.mark.parametrize("required", [False, True])
def test_missing_browser_skips_or_fails_when_required(monkeypatch, required):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("HARDMINE_REQUIRE_BROWSER", "1" if required else "0")
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match=r"Chromium and chromedriver \(\.ci/install-browser\.sh\)"):
        _browser()


def test_ipython_shows_the_report_in_an_iframe():
    formatters = pytest.importorskip("IPython.core.formatters")
    data, _ = formatters.DisplayFormatter().format(hm.report(_table(5)))
    assert data["text/html"].startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in data["text/html"]
