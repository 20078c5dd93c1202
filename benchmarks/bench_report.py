"""How big and how fast is the interactive report (``hm.report``) for large tables?

For tables of 10**3 to 10**5 rows (binary, split, with dynamics columns so that every chart is drawn) and 28 x 28
images from an in-memory dataset, it measures:

- ``build_s``: ``hm.report(table, path, dataset=...)`` in Python, thumbnails included (``max_images`` of them, the
  hardest rows first; 10,000 by default);
- ``html_mb``: the size of the one HTML file;
- in headless Chromium (when it and selenium are installed): ``open_s``, from ``driver.get`` to the loaded page
  with its first rows shown; ``sort_ms``, ``filter_ms`` and ``search_ms``, one click on a column header, one group
  filter and one id search, each measured in the page from the event to the new rows laid out.

Run ``python benchmarks/bench_report.py`` (``--quick`` for a 2,000-row smoke run). Results go to
``benchmarks/results/bench_report.{json,md}`` (``bench_report_quick`` for the quick run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hardmine as hm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when imported by the smoke test
from _common import RESULTS, save_results  # noqa: E402


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """A split binary table of ``n`` rows with dynamics columns (every section of the report is drawn)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    lp = rng.beta(4, 1.5, n).clip(1e-4, 1 - 1e-4)
    pred = np.where(lp >= 0.5, label, 1 - label)
    table = pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "id": [f"train/{'cat' if y else 'dog'}/{i:06d}.png" for i, y in enumerate(label)],
            "label": label.astype(np.int64),
            "pred": pred.astype(np.int64),
            "confidence": np.maximum(lp, 1 - lp).astype(np.float32),
            "label_prob": lp.astype(np.float32),
            "margin": (2 * lp - 1).astype(np.float32),
            "loss": (-np.log(lp)).astype(np.float32),
            "mean_label_prob": rng.uniform(0, 1, n).astype(np.float32),
            "variability": rng.uniform(0, 0.45, n).astype(np.float32),
        }
    )
    return hm.split(table, threshold=0.5)


class Images:
    """``n`` 28 x 28 grey images made on demand (indexable like a dataset, no memory for all of them)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng(i)
        return rng.integers(0, 256, (28, 28), dtype=np.uint8), 0


def _browser() -> Any:
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if chrome is None or driver is None:
        return None
    opts = Options()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


_TIMED = """
const t0 = performance.now();
%s
document.body.offsetHeight;  // force the layout of the new rows
return performance.now() - t0;
"""


def measure_browser(browser: Any, path: Path) -> dict[str, float]:
    """Open the page and time a sort, a filter and a search, in the page itself."""
    t0 = time.perf_counter()
    browser.get(path.as_uri())
    shown = browser.find_element("id", "hm-count").text
    open_s = time.perf_counter() - t0
    if not shown.startswith("Showing 1"):
        raise RuntimeError(f"The report did not render its rows: {shown!r}")
    sort_ms = browser.execute_script(
        _TIMED % "document.querySelector('#hm-table th[data-col=\"label_prob\"]').click();"
    )
    filter_ms = browser.execute_script(
        _TIMED
        % """const s = document.getElementById("hm-filter-group");
        s.selectedIndex = 1; s.dispatchEvent(new Event("change"));"""
    )
    search_ms = browser.execute_script(
        _TIMED
        % """const q = document.getElementById("hm-search");
        q.value = "0042"; q.dispatchEvent(new Event("input"));"""
    )
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        raise RuntimeError(f"The report logged errors in the browser: {errors}")
    return {"open_s": open_s, "sort_ms": float(sort_ms), "filter_ms": float(filter_ms), "search_ms": float(search_ms)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns what it saved."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 2,000-row table, a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the result files")
    parser.add_argument("--no-browser", action="store_true", help="measure only the Python side")
    args = parser.parse_args(argv)
    sizes = [2_000] if args.quick else [1_000, 10_000, 100_000]
    browser = None if args.no_browser else _browser()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                table = make_table(n)
                path = Path(tmp) / f"report_{n}.html"
                t0 = time.perf_counter()
                rep = hm.report(table, path, dataset=Images(n), thumbnail_size=64)
                row: dict[str, Any] = {
                    "rows": n,
                    "thumbnails": rep.num_images,
                    "build_s": time.perf_counter() - t0,
                    "html_mb": path.stat().st_size / 1e6,
                }
                if browser is not None:
                    row.update(measure_browser(browser, path))
                rows.append(row)
                print(row, flush=True)
    finally:
        if browser is not None:
            browser.quit()
    head = (
        "| rows | thumbnails | build (s) | HTML (MB) | open in Chromium (s) | sort (ms) | filter (ms) | search (ms) |"
    )
    lines = ["# Interactive report benchmark", "", head, "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tail = (
            f"{r['open_s']:.2f} | {r['sort_ms']:.0f} | {r['filter_ms']:.0f} | {r['search_ms']:.0f}"
            if "open_s" in r
            else "- | - | - | -"
        )
        lines.append(f"| {r['rows']:,} | {r['thumbnails']:,} | {r['build_s']:.2f} | {r['html_mb']:.1f} | {tail} |")
    lines += [
        "",
        "Thumbnails: 28 x 28 grey images from an in-memory dataset, for the `max_images` (10,000) hardest rows. "
        "Open: from `driver.get` to the loaded page with its first 50 rows. Sort, filter and search are timed in "
        "the page, from the event to the new rows laid out (headless Chromium, 1300 x 900 window).",
    ]
    if browser is None:
        lines.append("The browser columns are empty: Chromium, chromedriver or selenium was not available.")
    stem = "bench_report_quick" if args.quick else "bench_report"
    save_results(args.out, stem, rows, "\n".join(lines) + "\n", quick=args.quick, browser=browser is not None)
    print("\n".join(lines))
    return {"rows": rows, "browser": browser is not None}


if __name__ == "__main__":
    main(sys.argv[1:])
