"""The ``hardmine score`` / ``hardmine report`` command line, end to end on an ImageFolder tree of digits PNGs.

Most runs go through ``hardmine.app.cli.main([...])`` in-process; the real ``python -m hardmine`` process runs in
tests/test_resume.py (kill and resume). Every bad input a new user might try gives its one-line message and exit code.
"""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).parent))
from image_tree import CLASSES, make_digits_tree, save_weights, score_argv  # noqa: E402

from hardmine.analysis.io import read_csv  # noqa: E402
from hardmine.app.cli import main  # noqa: E402
from hardmine.app.html_report import read_skipped  # noqa: E402

ARCH = "resnet18"
SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tree = make_digits_tree(root / "data")
    state = save_weights(ARCH, len(CLASSES), root / "ckpt.pt", wrap="model")
    return root, tree, state


def _score(root: Path, out: Path, *extra: str) -> int:
    return main(score_argv(root, out, "--batch-size", "8", *extra, arch=ARCH, size=SIZE))


def _reference(tree, state, num_classes: int | None = None) -> pd.DataFrame:
    """A plain per-image loop: open, RGB, resize 37 / crop 32 / normalize, model(x[None]), softmax."""
    model = torchvision.models.get_model(ARCH, weights=None, num_classes=num_classes or len(CLASSES))
    model.load_state_dict(state)
    model.eval()
    tf = transforms.Compose(
        [
            transforms.Resize(37),
            transforms.CenterCrop(32),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    rows = []
    with torch.no_grad():
        for path in tree.good:
            label = CLASSES.index(Path(path).parent.name)
            probs = torch.softmax(model(tf(Image.open(path).convert("RGB"))[None]), dim=1)[0]
            rows.append(
                {
                    "id": os.path.abspath(path),
                    "label": label,
                    "pred": int(probs.argmax()),
                    "label_prob": float(probs[label]),
                    "confidence": float(probs.max()),
                }
            )
    return pd.DataFrame(rows)


def test_score_end_to_end(setup, tmp_path, capsys):
    root, tree, state = setup
    out = tmp_path / "hard.csv"
    assert _score(root, out, "--positive", "2", "--threshold", "0.4") == 0
    captured = capsys.readouterr()
    # Each corrupt file is named in a warning; the non-image file is mentioned; the summary is printed.
    for path in tree.corrupt:
        assert f"skipped unreadable image {os.path.abspath(path)!r}" in captured.err
    assert "notes.txt" in captured.err
    assert "hardmine summary: 36 samples" in captured.out
    assert f"wrote {out}" in captured.out

    table = read_csv(out)
    ref = _reference(tree, state)
    assert table["id"].tolist() == ref["id"].tolist()  # every readable image, with its path, in ImageFolder order
    # `index` is each image's index in ImageFolder(DATA_DIR): the corrupt files leave gaps (not renumbered).
    from torchvision.datasets import ImageFolder

    folder = [os.path.abspath(p) for p, _ in ImageFolder(str(root / "data")).samples]
    assert table["index"].tolist() == [folder.index(os.path.abspath(p)) for p in ref["id"]]
    assert table["index"].tolist() != list(range(len(ref)))
    assert table["label"].tolist() == ref["label"].tolist()
    assert table["pred"].tolist() == ref["pred"].tolist()
    np.testing.assert_allclose(table["label_prob"], ref["label_prob"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table["confidence"], ref["confidence"], rtol=1e-4, atol=1e-5)
    assert table["label_name"].astype(str).tolist() == [CLASSES[k] for k in ref["label"]]
    # Grayscale, RGBA and palette files were read (converted to RGB), not skipped.
    modes = {tree.modes[p] for p in tree.good}
    assert modes == {"RGB", "L", "RGBA", "P"}
    # Split as hm.split: positive = digit 2, hard = label_prob below 0.4.
    expected_hard = ref["label_prob"] < 0.4
    assert (table["difficulty"] == "hard").tolist() == expected_hard.tolist()
    assert (table["polarity"] == "positive").tolist() == (ref["label"] == 2).tolist()
    # The skipped files are listed beside the table.
    assert [p for p, _ in read_skipped(out)] == [os.path.abspath(p) for p in tree.corrupt]


def test_score_and_report_without_positive_report_per_class(setup, tmp_path, capsys):
    # Issue 14: a 3-class folder without --positive is split easy/hard only and reported per class, as hm.summary.
    from sklearn.metrics import balanced_accuracy_score, classification_report

    root, _, _ = setup
    out = tmp_path / "scores.csv"
    assert _score(root, out, "--threshold", "0.4") == 0
    printed = capsys.readouterr().out
    table = read_csv(out)
    assert "polarity" not in table.columns and "group" not in table.columns
    assert (table["difficulty"] == "hard").tolist() == (table["label_prob"] < 0.4).tolist()
    ref = classification_report(table["label"], table["pred"], output_dict=True, zero_division=0)
    bal = balanced_accuracy_score(table["label"], table["pred"])
    assert "no positive class (easy/hard only)" in printed
    assert f"balanced_accuracy {bal:.3f}" in printed and f"macro_f1 {ref['macro avg']['f1-score']:.3f}" in printed
    assert main(["report", str(out), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "per class" in text and f"accuracy {ref['accuracy']:.3f}" in text


def test_score_only_hard_and_positive_by_name(setup, tmp_path, capsys):
    root, _, _ = setup
    full, hard = tmp_path / "all.csv", tmp_path / "hard.csv"
    assert _score(root, full, "--positive", "1,2", "--hard-fraction", "0.25") == 0
    assert _score(root, hard, "--positive", "1", "--positive", "2", "--hard-fraction", "0.25", "--only", "hard") == 0
    capsys.readouterr()
    a, h = read_csv(full), read_csv(hard)
    assert sorted(set(a.loc[a["polarity"] == "positive", "label"])) == [1, 2]
    assert (a["difficulty"] == "hard").sum() == round(0.25 * len(a))
    pd.testing.assert_frame_equal(h.reset_index(drop=True), a[a["difficulty"] == "hard"].reset_index(drop=True))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[dict] = []
        self.figures = 0
        self.items: list[str] = []
        self.h2: list[str] = []
        self._in: str | None = None
        self.errors: list[str] = []

    _VOID = {"meta", "img", "br", "link", "input", "hr"}

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "figure":
            self.figures += 1
        if tag not in self._VOID:
            self.stack.append(tag)
        self._in = tag

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in == "h2":
            self.h2.append(data)
        if self._in == "code" and self.stack[-2:-1] == ["li"]:
            self.items.append(data)


def test_report_text_and_html(setup, tmp_path, capsys):
    import base64
    import io

    root, tree, _ = setup
    out, page = tmp_path / "scores.csv", tmp_path / "report.html"
    assert _score(root, out, "--positive", "2") == 0
    capsys.readouterr()
    assert main(["report", str(out), "--top", "5", "--html", str(page)]) == 0
    text = capsys.readouterr().out
    table = read_csv(out)
    for section in (
        "groups",
        "confusion (rows: ground truth, columns: predicted)",
        "positive class: precision",
        "per class",
        "hardest 5 (lowest label_prob first)",
        "skipped files (3",
    ):
        assert section in text
    # The hardest five by label_prob, with their paths, in order.
    hardest = table.sort_values("label_prob", kind="stable").head(5)["id"].tolist()
    positions = [text.index(Path(p).name, text.index("hardest 5")) for p in hardest]
    assert positions == sorted(positions)
    for path in tree.corrupt:
        assert os.path.abspath(path) in text
    # Counts are the real counts of the table.
    tp = int(((table["label"] == 2) & (table["pred"] == 2)).sum())
    assert re.search(rf"positive\s+{tp}\s+{int((table['label'] == 2).sum()) - tp}", text)

    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.errors == [] and parser.stack == []
    assert parser.figures == 5 and len(parser.images) == 5
    for img, path in zip(parser.images, hardest, strict=True):
        assert img["alt"] == path
        assert img["src"].startswith("data:image/png;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert thumb.format == "PNG" and max(thumb.size) <= 160
    assert any(h.startswith("Skipped files (3)") for h in parser.h2)
    assert parser.items == [os.path.abspath(p) for p in tree.corrupt]


def test_report_escapes_and_only_hard_rows(tmp_path, capsys):
    from hardmine.analysis.io import to_csv
    from hardmine.analysis.splitting import split

    t = split(
        pd.DataFrame(
            {
                "index": [0, 1, 2, 3],
                "id": ["<script>x</script>.png", "b.png", "c.png", "d&e.png"],
                "label": [1, 1, 0, 0],
                "pred": [0, 1, 0, 1],
                "confidence": np.float32([0.8, 0.9, 0.7, 0.6]),
                "label_prob": np.float32([0.2, 0.9, 0.7, 0.4]),
                "margin": np.float32([-0.6, 0.8, 0.4, -0.2]),
                "entropy": np.float32([0.5] * 4),
                "loss": np.float32([1.6, 0.1, 0.36, 0.9]),
            }
        ),
        threshold=0.5,
    )
    out, page = tmp_path / "hard.csv", tmp_path / "r.html"
    to_csv(t, out, only="hard")
    assert main(["report", str(out), "--html", str(page)]) == 0
    text = capsys.readouterr().out
    assert "2 rows, all hard: this file holds only the hard samples" in text
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;.png" in html and "d&amp;e.png" in html
    assert html.count("image not available") == 2  # ids that are not image files get a placeholder


def test_help_texts(capsys):
    assert main([]) == 2  # no command: the overview, and the usage-error code
    assert "COMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "score", "report"):
        assert re.search(rf"^\s+{command}\s+\w", out, re.M), out
    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--arch",
        "--weights",
        "--out",
        "--image-size",
        "--batch-size",
        "--workers",
        "--device",
        "--amp",
        "--threshold",
        "--hard-fraction",
        "--per-class",
        "--positive",
        "--resume",
        "--strict",
        "--debug",
    ):
        assert option in out
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0 and "--html" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--arch", "resnet181"],
            r"--arch 'resnet181' is not a torchvision classification architecture; did you "
            r"mean resnet18",
        ),
        (["--positive", "seven"], r"--positive 'seven' is neither a class folder name nor a class index"),
        (["--positive", "1", "--batch-size", "0"], r"--batch-size: invalid _positive_int value|expected a positive"),
        (["--positive", "1", "--threshold", "0.3", "--hard-fraction", "0.2"], r"not allowed with argument"),
        (["--positive", "1", "--hard-fraction", "1.5"], r"--hard-fraction must be in \[0, 1\]"),
        (["--positive", "1", "--device", "gpu0"], r"--device 'gpu0' is not a torch device"),
        (["--positive", "1", "--threshold", "1.5"], r"--threshold 1.5 is outside the range of label_prob, \[0.0, 1"),
        (["--positive", "1", "--by", "loss", "--threshold", "-1"], r"--threshold -1.0 is outside the range of loss"),
    ],
    ids=[
        "arch",
        "positive",
        "batch-size",
        "exclusive",
        "fraction",
        "device",
        "threshold",
        "loss-threshold",
    ],
)
def test_usage_errors_exit_2(setup, tmp_path, capsys, extra, message):
    root, _, _ = setup
    argv = score_argv(root, tmp_path / "o.csv", arch=ARCH, size=SIZE)
    if "--arch" in extra:
        argv[3] = extra[1]
        extra = extra[2:]
    with pytest.raises(SystemExit) as exc:
        main([*argv, *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err


def _one_line_error(capsys, code: int, argv: list[str], message: str) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hardmine: error:")]
    assert len(lines) == 1, err
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in err
    return lines[0]


def _score_options(weights: Path, out: Path, arch: str = ARCH) -> list[str]:
    """The options of a quiet ``hardmine score`` run of the test model (positive class 1), after DATA_DIR."""
    return [
        "--arch",
        arch,
        "--weights",
        str(weights),
        "--out",
        str(out),
        "--image-size",
        str(SIZE),
        "--no-progress",
        "--positive",
        "1",
    ]


def test_data_errors_exit_1(setup, tmp_path, capsys):
    root, tree, _ = setup
    base = _score_options(root / "ckpt.pt", tmp_path / "o.csv")
    # A folder that does not exist, an empty folder, a folder of loose images (no class sub-folders).
    _one_line_error(capsys, 1, ["score", str(tmp_path / "nope"), *base], r"image folder .*nope' does not exist")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, 1, ["score", str(tmp_path / "empty"), *base], r"has no class folders \(it is empty\)")
    loose = tmp_path / "loose"
    loose.mkdir()
    for i in range(3):
        Image.new("L", (8, 8)).save(loose / f"{i}.png")
    _one_line_error(
        capsys,
        1,
        ["score", str(loose), *base],
        r"has no class folders \(it holds 3 image file\(s\) directly and no sub-folder\)\. Expected an "
        r"ImageFolder tree",
    )
    only_dirs = tmp_path / "only_dirs"
    (only_dirs / "a").mkdir(parents=True)
    (only_dirs / "b").mkdir()
    _one_line_error(capsys, 1, ["score", str(only_dirs), *base], r"holds no image files")
    # --strict refuses the first corrupt file, naming it.
    _one_line_error(
        capsys,
        1,
        ["score", str(root / "data"), *base, "--strict"],
        rf"Cannot read image {re.escape(repr(os.path.abspath(tree.corrupt[0])))}",
    )


def test_checkpoint_errors_exit_1(setup, tmp_path, capsys):
    root, _, state = setup
    data = str(root / "data")

    def run(weights: Path, arch: str = ARCH) -> list[str]:
        return ["score", data, *_score_options(weights, tmp_path / "o.csv", arch)]

    # Another class count: the classifier keys are named with both shapes.
    save_weights(ARCH, 5, tmp_path / "five.pt", wrap="state_dict")
    _one_line_error(
        capsys,
        1,
        run(tmp_path / "five.pt"),
        r"does not fit resnet18 with 3 classes: keys 2 with another shape \(fc\.weight \(5, 512\) in the "
        r"file vs \(3, 512\) in the model, fc\.bias \(5,\) in the file vs \(3,\) in the model\)",
    )
    # Another architecture: missing and unexpected keys, first few named.
    save_weights("squeezenet1_1", 3, tmp_path / "sq.pt", wrap=None)
    _one_line_error(
        capsys,
        1,
        run(tmp_path / "sq.pt"),
        r"does not fit resnet18 with 3 classes: keys \d+ missing \(conv1\.weight, bn1\.weight, .* and \d+ "
        r"more\); \d+ unexpected \(features\.0\.weight, .*\)\. Is it for another architecture",
    )
    # A whole pickled module is refused by the weights-only load: hardmine never unpickles code.
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    _one_line_error(capsys, 1, run(tmp_path / "module.pt"), r"holds Python objects that a weights-only load refuses")
    (tmp_path / "text.pt").write_text("hello")
    _one_line_error(capsys, 1, run(tmp_path / "text.pt"), r"is not a readable PyTorch checkpoint")
    torch.save({"optimizer": {"lr": torch.tensor(0.1)}, "epoch": 3}, tmp_path / "nostate.pt")
    _one_line_error(
        capsys,
        1,
        run(tmp_path / "nostate.pt"),
        r"holds a dict without a state_dict: .* its keys are "
        r"\['optimizer', 'epoch'\]",
    )
    _one_line_error(capsys, 1, run(tmp_path / "missing.pt"), r"weights file .*missing\.pt' does not exist")
    # DDP checkpoints ("module." prefix) load.
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pt")
    assert main(run(tmp_path / "ddp.pt")) == 0
    capsys.readouterr()


def test_output_location_errors(setup, tmp_path, capsys, monkeypatch):
    root, _, _ = setup
    args = [
        "--arch",
        ARCH,
        "--weights",
        str(root / "ckpt.pt"),
        "--image-size",
        str(SIZE),
        "--no-progress",
        "--positive",
        "1",
    ]
    _one_line_error(
        capsys,
        1,
        ["score", str(root / "data"), *args, "--out", str(tmp_path / "no" / "o.csv")],
        r"Cannot write the output .*o\.csv': the folder .*no' does not exist",
    )
    _one_line_error(
        capsys, 1, ["score", str(root / "data"), *args, "--out", str(tmp_path)], r"is a folder; name a file in it"
    )
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits; show the check what an ordinary user's process sees
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real_access(p, mode, **kw))
    _one_line_error(
        capsys,
        1,
        ["score", str(root / "data"), *args, "--out", str(ro / "o.csv")],
        r"Cannot write the output .*o\.csv': no permission to write in .*ro'",
    )
    assert not list(ro.iterdir())
    _one_line_error(capsys, 1, ["report", str(tmp_path / "none.csv")], r"No such file: .*none\.csv")


def test_debug_shows_the_traceback(setup, tmp_path, capsys):
    root, _, _ = setup
    argv = [
        "score",
        str(tmp_path / "nope"),
        "--arch",
        ARCH,
        "--weights",
        str(root / "ckpt.pt"),
        "--out",
        str(tmp_path / "o.csv"),
        "--positive",
        "1",
    ]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main([*argv, "--debug"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["--debug", *argv])


def test_report_needs_a_split_table(tmp_path, capsys):
    pd.DataFrame({"index": [0], "id": ["a"], "label": [0], "pred": [0]}).to_csv(tmp_path / "s.csv", index=False)
    _one_line_error(
        capsys,
        1,
        ["report", str(tmp_path / "s.csv")],
        r"has no difficulty column\(s\): the report needs a "
        r"split table",
    )


# The worker case is slow only because torch's DataLoader takes 5-10 s to shut down a worker whose batch failed,
# when the garbage collector gets to it later in the session.
@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["main-process", "worker"])
def test_file_broken_after_the_scan_is_named(setup, tmp_path, capsys, monkeypatch, workers):
    """A file that fails while scoring (changed after the check) stops the run with its name, also from a worker."""
    import hardmine.app.images

    root, tree, _ = setup
    monkeypatch.setattr(hardmine.app.images, "_check_image", lambda path: None)  # the up-front check lets it through
    argv = score_argv(root, tmp_path / "o.csv", "--positive", "1", "--workers", str(workers), arch=ARCH, size=SIZE)
    _one_line_error(
        capsys,
        1,
        argv,
        rf"error: Cannot read image {re.escape(repr(os.path.abspath(tree.corrupt[0])))} "
        r"\(sample \d+\): OSError",
    )
    assert not (tmp_path / "o.csv").exists()


def test_hidden_files_and_folders_are_not_read(tmp_path):
    from hardmine.app.images import scan_image_folder

    (tmp_path / "b" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / ".cache").mkdir()  # not a class
    for path in (tmp_path / "a" / "1.png", tmp_path / "b" / "2.png", tmp_path / "b" / ".ipynb_checkpoints" / "2.png"):
        Image.new("L", (4, 4)).save(path)
    (tmp_path / "b" / "._2.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata, not an image
    scan = scan_image_folder(tmp_path)
    assert scan.classes == ["a", "b"]
    assert scan.samples == [(str(tmp_path / "a" / "1.png"), 0), (str(tmp_path / "b" / "2.png"), 1)]
    assert scan.skipped == []
    assert sorted(scan.ignored) == sorted(
        [str(tmp_path / "b" / "._2.png"), str(tmp_path / "b" / ".ipynb_checkpoints" / "2.png")]
    )


def test_num_classes_for_a_checkpoint_with_more_classes_than_folders(setup, tmp_path, capsys):
    root, tree, _ = setup
    wide = tmp_path / "wide.pt"
    wide_state = save_weights(ARCH, 5, wide, wrap="model")  # trained on 5 classes; the folder holds 3 of them
    out = tmp_path / "wide.csv"
    argv = score_argv(root, out, "--batch-size", "8", "--positive", "1", arch=ARCH, size=SIZE, weights=wide)
    assert main([*argv, "--num-classes", "5"]) == 0
    table = read_csv(out)
    ref = _reference(tree, wide_state, num_classes=5)  # the reference loop with the 5-class weights
    assert table["pred"].tolist() == ref["pred"].tolist()
    np.testing.assert_allclose(table["label_prob"], ref["label_prob"], rtol=1e-4, atol=1e-5)
    assert set(table["label"]) <= {0, 1, 2}
    capsys.readouterr()
    # Without --num-classes the 3-output model does not fit the 5-class checkpoint: a data error naming the keys.
    assert main(argv) == 1
    assert "fc." in capsys.readouterr().err
    # Fewer outputs than folders is a usage error.
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--num-classes", "2"])
    assert exc.value.code == 2
    assert "--num-classes 2 is fewer than the 3 class folders" in capsys.readouterr().err


# --- the CLI as people script it (issue 16): short options, --json, stdin, Parquet, fast start, progress, completion,
# Ctrl-C ---

PYTHON = [sys.executable]


def _env() -> dict[str, str]:
    """The environment of a `python -m hardmine` subprocess: this checkout first on the path, one thread."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1"}


def test_short_options_match_the_long_ones(setup, tmp_path, capsys):
    root, _, _ = setup
    long_out, short_out = tmp_path / "long.csv", tmp_path / "short.csv"
    assert _score(root, long_out, "--positive", "2", "--workers", "0") == 0
    long_text = capsys.readouterr().out
    argv = ["score", str(root / "data"), "--arch", ARCH, "--weights", str(root / "ckpt.pt"), "--image-size", "32"]
    # The same batch size as `_score`'s: on AVX-512 CPUs the batch size moves the scores in the 8th digit.
    assert main([*argv, "--batch-size", "8", "-o", str(short_out), "-q", "-j", "0", "--positive", "2"]) == 0
    quiet = capsys.readouterr()
    pd.testing.assert_frame_equal(read_csv(short_out), read_csv(long_out))
    assert "hardmine summary" in long_text and quiet.out == ""  # -q: no summary text; the warnings stay on stderr
    assert "skipped unreadable image" in quiet.err
    assert main(["report", str(long_out), "-n", "2", "-q"]) == 0 and capsys.readouterr().out == ""
    assert main(["report", str(long_out), "-n", "2"]) == 0
    two = capsys.readouterr().out
    assert main(["report", str(long_out), "--top", "2"]) == 0 and capsys.readouterr().out == two


def test_score_json_is_the_summary_of_the_written_table(setup, tmp_path, capsys):
    import json

    import hardmine as hm

    root, tree, _ = setup
    out = tmp_path / "s.csv"
    assert _score(root, out, "--positive", "2", "--threshold", "0.4", "--only", "hard", "--json") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout holds the JSON only; the human text went to stderr
    assert "hardmine summary" in captured.err and f"wrote {out}" in captured.err
    table = read_csv(out)
    assert data["rows_written"] == len(table) == int((table["difficulty"] == "hard").sum())
    assert data["only"] == "hard" and data["out"] == str(out) and data["classes"] == list(CLASSES)
    assert data["images"] == {
        "found": len(tree.good) + len(tree.corrupt),
        "scored": len(tree.good),
        "skipped": len(tree.corrupt),
    }
    assert [s["path"] for s in data["skipped"]] == [os.path.abspath(p) for p in tree.corrupt]
    # The summary is of every scored row (the split), not only of the rows written.
    groups = {g["group"]: g["count"] for g in data["summary"]["groups"]}
    assert groups["hard_positive"] + groups["hard_negative"] == len(table)
    assert sum(groups.values()) == len(tree.good)
    # Against the full table scored without --only: the JSON is exactly hm.summary(table).to_dict().
    full_out = tmp_path / "all.csv"
    assert _score(root, full_out, "--positive", "2", "--threshold", "0.4", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == json.loads(json.dumps(hm.summary(read_csv(full_out)).to_dict()))
    assert data["summary"]["groups"] and data["rows_written"] == len(tree.good)
    # --json and --out - would both write to stdout: a usage error.
    with pytest.raises(SystemExit) as exc:
        _score(root, Path("-"), "--json")
    assert exc.value.code == 2 and "--json and --out - both write to stdout" in capsys.readouterr().err


def test_report_reads_parquet_and_stdin_and_prints_json(setup, tmp_path, capsys, monkeypatch):
    import io
    import json

    import hardmine as hm

    root, _, _ = setup
    csv = tmp_path / "t.csv"
    assert _score(root, csv, "--positive", "2", "--hard-fraction", "0.3") == 0
    capsys.readouterr()
    table = read_csv(csv)
    parquet = tmp_path / "t.parquet"
    hm.to_parquet(table, parquet)
    from hardmine.app.html_report import skipped_path

    skipped_path(parquet).write_bytes(skipped_path(csv).read_bytes())  # the skipped-files list beside each table
    assert main(["report", str(csv), "-n", "5"]) == 0
    csv_text = capsys.readouterr().out
    assert main(["report", str(parquet), "-n", "5"]) == 0
    parquet_text = capsys.readouterr().out
    assert parquet_text.replace(str(parquet), str(csv)) == csv_text  # the same report, from the Parquet file
    expected = json.loads(json.dumps(hm.summary(table).to_dict()))
    ranked = table.sort_values("label_prob", kind="stable").head(5)
    assert all(path in csv_text for path in ranked["id"])
    for source in (csv, parquet):
        assert main(["report", str(source), "--json", "-n", "5"]) == 0
        captured = capsys.readouterr()
        data = json.loads(captured.out)
        assert captured.err.startswith(f"hardmine report: {source}")  # the text report goes to stderr with --json
        assert data["summary"] == expected and data["rows"] == len(table) and data["source"] == str(source)
        assert [r["index"] for r in data["hardest"]] == ranked["index"].tolist()
        np.testing.assert_allclose([r["label_prob"] for r in data["hardest"]], ranked["label_prob"], rtol=1e-6)
    # '-': the table on stdin, CSV or Parquet. A CSV on stdin comes without its sidecar (the split settings): its
    # summary is that of the same CSV copied alone; Parquet keeps its settings inside.
    bare = tmp_path / "bare" / "t.csv"
    bare.parent.mkdir()
    bare.write_bytes(csv.read_bytes())
    bare_expected = json.loads(json.dumps(hm.summary(read_csv(bare)).to_dict()))
    assert bare_expected["groups"] == expected["groups"] and bare_expected["settings"] != expected["settings"]
    for raw, want in ((csv.read_bytes(), bare_expected), (parquet.read_bytes(), expected)):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        assert main(["report", "-", "--json", "-q", "-n", "5"]) == 0
        captured = capsys.readouterr()
        data = json.loads(captured.out)
        assert captured.err == "" and data["summary"] == want and data["source"] == "<stdin>"
        assert [r["index"] for r in data["hardest"]] == ranked["index"].tolist()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["report", "-"]) == 1 and "the table on stdin ('-') is empty" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(csv.read_bytes())))
    with pytest.raises(SystemExit) as exc:
        main(["report", "-", "--json", "--html", "-"])
    assert exc.value.code == 2 and "both write to stdout" in capsys.readouterr().err


def test_score_to_stdout_piped_into_report_from_stdin(setup, tmp_path):
    """The real processes: `hardmine score ... -o - | hardmine report - --json`."""
    import json
    import subprocess

    root, tree, _ = setup
    score_argv = ["score", str(root / "data"), "--arch", ARCH, "--weights", str(root / "ckpt.pt"), "--image-size"]
    first = subprocess.run(
        [*PYTHON, "-m", "hardmine", *score_argv, "32", "--positive", "2", "-o", "-"],
        capture_output=True,
        env=_env(),
        timeout=300,
        check=True,
    )
    second = subprocess.run(
        [*PYTHON, "-m", "hardmine", "report", "-", "--json"],
        input=first.stdout,
        capture_output=True,
        env=_env(),
        timeout=300,
    )
    assert second.returncode == 0, second.stderr.decode()
    data = json.loads(second.stdout)
    assert data["rows"] == len(tree.good) and data["source"] == "<stdin>"
    assert b"\r" not in first.stderr + second.stderr  # no progress bar off a terminal


def test_measures_and_groups_written_out_in_the_cli_agree():
    from hardmine.app import cli
    from hardmine.core.columns import GROUPS
    from hardmine.scoring.measures import MEASURES

    assert cli._MEASURES == tuple(MEASURES) and cli._GROUPS == tuple(GROUPS)


def _without_torch(tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """Run the CLI as a `hardmine` entry-point script; its stdout and the torch modules loaded by the end."""
    import subprocess

    script = tmp_path / "hardmine"  # the name the console script has: the package defers its imports for it
    script.write_text(
        "import sys\n"
        "try:\n"
        "    from hardmine.app._entry import run\n"  # what the console script calls (pyproject.toml)
        "    code = run()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('TORCH', sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([*PYTHON, str(script), *args], capture_output=True, text=True, env=_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    text, _, loaded = run.stdout.rpartition("TORCH ")
    return text, eval(loaded)


def test_help_version_and_completion_import_no_torch(tmp_path):
    import subprocess

    from hardmine import __version__

    for args in (["--help"], ["-V"], ["score", "--help"], ["report", "-h"], ["completion", "bash"]):
        text, torch_modules = _without_torch(tmp_path, *args)
        assert torch_modules == [], args
        assert text.strip(), args
    assert _without_torch(tmp_path, "--version")[0].strip() == f"hardmine {__version__}"
    # `python -m hardmine`, as the issue measures it: -X importtime lists every module imported.
    run = subprocess.run(
        [*PYTHON, "-X", "importtime", "-m", "hardmine", "--help"], capture_output=True, text=True, env=_env()
    )
    assert run.returncode == 0 and "usage: hardmine" in run.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line]
    assert "argparse" in imported and "hardmine.app.cli" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "numpy", "pandas")]


def test_import_is_lazy_and_the_first_name_loads_its_module(tmp_path):
    """`import hardmine` loads no torch; a public name loads its module on first use, and the rest follow."""
    import subprocess

    code = (
        "import sys\n"
        "import hardmine as hm\n"
        "assert 'torch' not in sys.modules and 'hardmine.feedback.miner' not in sys.modules\n"
        "import hardmine.app.html_report\n"  # the static report module: hm.report must still be the function
        "miner = hm.HardMiner\n"
        "assert 'torch' in sys.modules and 'hardmine.feedback.miner' in sys.modules\n"
        "assert callable(hm.report) and hm.report.__module__ == 'hardmine.analysis.interactive', hm.report\n"
        "assert set(hm.__all__) <= set(dir(hm)), set(hm.__all__) - set(dir(hm))\n"
        "assert all(getattr(hm, name) is not None for name in hm.__all__)\n"
        "print('ok', miner.__name__)\n"
    )
    run = subprocess.run([*PYTHON, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok HardMiner"


def test_progress_bar_only_on_a_terminal(setup, tmp_path, capsys, monkeypatch):
    root, _, _ = setup
    argv = ["score", str(root / "data"), "--arch", ARCH, "--weights", str(root / "ckpt.pt"), "--image-size", "32"]
    assert main([*argv, "-o", str(tmp_path / "a.csv"), "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "hardmine: scoring" not in err  # stderr is not a terminal here: no bar
    # The same run with stderr a terminal draws the bar (so the check above can fail).
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main([*argv, "-o", str(tmp_path / "b.csv"), "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "hardmine: scoring" in err
    assert main([*argv, "-o", str(tmp_path / "c.csv"), "--batch-size", "8", "--no-progress"]) == 0
    assert "\r" not in capsys.readouterr().err


def _completion_script(shell: str, tmp_path, capsys) -> str:
    """Write ``hardmine completion SHELL``'s output to a file; returns its path."""
    assert main(["completion", shell]) == 0
    script = tmp_path / f"hardmine.{shell}"
    script.write_text(capsys.readouterr().out)
    return str(script)


def _sourced(shell: str, script: str, command: str):
    """Run ``command`` in ``shell`` after sourcing ``script``; returns the finished process (stdout/stderr text)."""
    import subprocess

    return subprocess.run(
        [shell, "-c", f'source "$1"; {command}', shell, script], capture_output=True, text=True, timeout=60
    )


def _complete(script: str, *words: str) -> list[str]:
    """Candidates bash's completion function offers for the command line `words` (the last one being typed)."""
    import shlex

    line = " ".join(shlex.quote(w) for w in words)
    run = _sourced(
        "bash",
        script,
        f'COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _hardmine_complete; printf "%s\\n" "${{COMPREPLY[@]}}"',
    )
    assert run.returncode == 0, run.stderr
    return [w for w in run.stdout.splitlines() if w]


@pytest.mark.skipif(not __import__("shutil").which("bash"), reason="needs bash")
def test_bash_completion_completes_commands_options_and_values(tmp_path, capsys):
    script = _completion_script("bash", tmp_path, capsys)
    registered = _sourced("bash", script, "complete -p hardmine")
    assert registered.returncode == 0 and "-F _hardmine_complete hardmine" in registered.stdout
    assert _complete(script, "hardmine", "") == [
        "-h",
        "--help",
        "-V",
        "--version",
        "--debug",
        "demo",
        "score",
        "report",
        "completion",
    ]
    assert _complete(script, "hardmine", "re") == ["report"]
    assert _complete(script, "hardmine", "score", "--b") == ["--batch-size", "--by"]
    assert _complete(script, "hardmine", "report", "--j") == ["--json"]
    assert _complete(script, "hardmine", "score", "--by", "") == list(cli_measures())
    assert _complete(script, "hardmine", "score", "--only", "hard_") == ["hard_positive", "hard_negative"]
    assert _complete(script, "hardmine", "completion", "") == ["bash", "zsh"]
    (tmp_path / "scores.csv").write_text("x")
    found = _complete(script, "hardmine", "report", str(tmp_path / "sco"))
    assert found == [str(tmp_path / "scores.csv")]  # file names for the positional
    # Every option of every sub-command is offered (the script is generated from the parser).
    from hardmine.app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name, p in sub.choices.items():
        options = [o for a in p._actions for o in a.option_strings]
        assert _complete(script, "hardmine", name, "-") == options, name


def cli_measures() -> tuple[str, ...]:
    """The --by choices: the classification measures, then the segmentation and the detection columns."""
    from hardmine.scoring.measures import MEASURES

    segmentation = ("pixel_accuracy", "hard_pixel_fraction", "miou")
    detection = ("mistakenness", "det_recall", "det_precision", "missed", "false_pos", "mean_iou")
    return (*MEASURES, *segmentation, *detection)


@pytest.mark.skipif(not __import__("shutil").which("zsh"), reason="needs zsh")
def test_zsh_completion_registers(tmp_path, capsys):
    script = _completion_script("zsh", tmp_path, capsys)
    run = _sourced("zsh", script, "print -r -- ${_comps[hardmine]}")
    assert run.returncode == 0 and run.stdout.strip(), run.stderr


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C's default action, as under a terminal.

    A test run started in the background of a non-interactive shell (``cmd &``) inherits SIGINT ignored, and Python
    installs no KeyboardInterrupt handler for a signal ignored at start-up: the child would never see the Ctrl-C.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_start_up_imports_exits_130_with_one_line():
    """SIGINT to `python -m hardmine report -` right after hardmine.app.cli is imported, as torch starts importing."""
    import signal
    import subprocess

    proc = subprocess.Popen(
        [*PYTHON, "-X", "importtime", "-m", "hardmine", "report", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        preexec_fn=_default_sigint,
    )
    seen = []
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # -X importtime reports each module when its import ends
            seen.append(raw.decode())
            if seen[-1].rstrip().endswith("| hardmine.app.cli"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [*seen, *err.decode().splitlines(keepends=True)]
    modules = [line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")]
    assert proc.returncode == 130, "".join(lines)
    # The Ctrl-C lands in `report`'s first import (hardmine.analysis.io, torch under it) or just before it: it is raised
    # when that import statement returns, whole, and the command's next import never starts.
    assert "hardmine.app.cli" in modules and "hardmine.app.html_report" not in modules
    assert "torch" not in modules or "hardmine.analysis.io" in modules
    assert [line.rstrip("\n") for line in lines if not line.startswith("import time:")] == ["hardmine: interrupted"]
    assert out == b""


def test_ctrl_c_while_waiting_on_stdin_exits_130_with_one_line():
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(
        [*PYTHON, "-m", "hardmine", "report", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        preexec_fn=_default_sigint,
    )
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)  # during the imports or on the read of stdin (left open): the same answer
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert err.decode().splitlines() == ["hardmine: interrupted"] and out == b""


_SWALLOWED_CTRL_C = """
import os, signal, sys, time, weakref

import hardmine.app.cli as cli
from hardmine.app._entry import run


def swallowed_by_a_weakref_callback():
    def callback(_):  # as importlib's module locks do: Python only reports an exception raised in here
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(3))  # the handler runs by this call at the latest, inside the callback

    class Lock:
        pass

    lock = Lock()
    ref = weakref.ref(lock, callback)
    del lock
    time.sleep(10)  # the Ctrl-C lands here, in the code the callback interrupted, not after the command
    print("went on after the callback", file=sys.stderr)
    return 1


def swallowed_by_a_bare_except():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(3))
    except BaseException:  # a library's `except:` around an optional import
        pass
    return cli._read_report("-")  # hardmine stops before it waits on stdin


def during_an_import():
    sys.path.insert(0, sys.argv[2])
    import slow_init  # noqa: F401  (it sends the Ctrl-C and goes on initialising for 0.3 s)

    print("went on after the import", file=sys.stderr)
    return 1


def twice_during_an_import():
    sys.path.insert(0, sys.argv[2])
    import slow_init_twice  # noqa: F401

    return 1


def swallowed_at_the_end():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(3))
    except BaseException:
        pass
    print("hardmine: error: something", file=sys.stderr)
    return 1


cli.main = globals()[sys.argv[1]]
run()
"""


@pytest.mark.parametrize(
    ("how", "lines"),
    [
        ("swallowed_by_a_weakref_callback", ["hardmine: interrupted"]),
        ("swallowed_by_a_bare_except", ["hardmine: interrupted"]),
        ("swallowed_at_the_end", ["hardmine: error: something", "hardmine: interrupted"]),
        ("during_an_import", ["initialised", "hardmine: interrupted"]),
        ("twice_during_an_import", ["hardmine: interrupted"]),
    ],
)
def test_a_ctrl_c_that_python_or_a_library_swallows_still_exits_130(tmp_path, how, lines):
    """The class of the stdin test's rare failure, made certain: a SIGINT whose KeyboardInterrupt lands in a weakref
    callback (Python prints "Exception ignored" and goes on) or in a bare except is not lost."""
    import subprocess

    script = tmp_path / "swallow.py"
    script.write_text(_SWALLOWED_CTRL_C)
    # Modules whose import a Ctrl-C interrupts (as torch's would): it is raised when the import statement returns, a
    # second one at once, so that no KeyboardInterrupt lands in Python code that C++ initialisation calls.
    busy = "deadline = time.monotonic() + {s}\nwhile time.monotonic() < deadline:\n    sum(range(3))\n"
    kill = "os.kill(os.getpid(), signal.SIGINT)\n"
    head = "import os, signal, sys, time\n"
    (tmp_path / "slow_init.py").write_text(head + kill + busy.format(s=0.3) + "print('initialised', file=sys.stderr)\n")
    (tmp_path / "slow_init_twice.py").write_text(
        head + kill + busy.format(s=0.1) + kill + busy.format(s=0.1) + "print('initialised', file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [*PYTHON, str(script), how, str(tmp_path)],
        stdin=subprocess.PIPE,  # left open: a lost Ctrl-C would block on it until the timeout
        capture_output=True,
        env=_env(),
        preexec_fn=_default_sigint,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr.decode()
    assert proc.stderr.decode().splitlines() == lines and proc.stdout == b""


def test_an_error_that_a_ctrl_c_caused_is_answered_as_the_interruption(monkeypatch, capsys):
    from hardmine.app import cli

    def wrapped(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:  # as an extension module that failed to load reports it
            raise ImportError("\nIMPORTANT: the extension module failed to load") from None

    def plain(args):
        raise ImportError("no module named 'pyarrow'")

    monkeypatch.setattr(cli, "_cmd_report", wrapped)
    assert main(["report", "t.csv"]) == 130
    assert capsys.readouterr().err.splitlines() == ["hardmine: interrupted"]
    monkeypatch.setattr(cli, "_cmd_report", plain)  # an error of its own stays one
    assert main(["report", "t.csv"]) == 1
    assert capsys.readouterr().err.splitlines() == ["hardmine: error: no module named 'pyarrow'"]


def test_the_entry_leaves_the_signals_alone_off_the_main_thread():
    import signal
    import threading

    from hardmine.app import _entry

    before, errors = signal.getsignal(signal.SIGINT), []

    def install():
        try:
            _entry._install()
        except BaseException as err:  # signal.signal refuses threads other than the main one
            errors.append(err)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert errors == [] and not _entry._state["installed"] and signal.getsignal(signal.SIGINT) is before


def test_a_sigint_ignored_at_start_up_stays_ignored(tmp_path):
    import subprocess

    script = tmp_path / "ignored.py"
    script.write_text(
        "import os, signal, sys\n"
        "import hardmine.app.cli as cli\n"
        "from hardmine.app._entry import run\n"
        "def main():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    sum(range(3))\n"
        "    print('finished', file=sys.stderr)\n"
        "    return 0\n"
        "cli.main = main\n"
        "run()\n"
    )
    ignore = __import__("signal").SIG_IGN
    proc = subprocess.run(
        [*PYTHON, str(script)],
        capture_output=True,
        env=_env(),
        preexec_fn=lambda: __import__("signal").signal(__import__("signal").SIGINT, ignore),
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr.decode().splitlines() == ["finished"]


def test_demo_logs_each_epoch_on_stderr_and_is_quiet_with_q(tmp_path, capsys):
    from hardmine.app.demo import run_demo

    assert main(["demo", "--epochs", "2", "-o", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert [re.sub(r"[\d.]+$", "X", line) for line in lines] == [
        "hardmine demo: epoch 1/2: mean loss X",
        "hardmine demo: epoch 2/2: mean loss X",
        "hardmine demo: scoring the 1437 training samples",
    ]
    first, second = (float(line.rsplit(" ", 1)[1]) for line in lines[:2])
    assert 0 < second < first < np.log(10) + 0.5  # cross-entropy of 10 classes starts near log(10) and falls
    assert "\r" not in captured.err and "hard.csv" in captured.out
    assert main(["demo", "--epochs", "2", "-q", "-o", str(tmp_path / "b")]) == 0
    assert capsys.readouterr() == ("", "")
    # Logging does not change the run: the same table as the library call without a log.
    run_demo(tmp_path / "c", epochs=2)
    for name in ("a", "b"):
        pd.testing.assert_frame_equal(read_csv(tmp_path / name / "scores.csv"), read_csv(tmp_path / "c" / "scores.csv"))
