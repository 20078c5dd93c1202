"""Issue 11, "nothing lost, nothing silent": every fault it names, tried again, each with its expected outcome.

One parametrized test, one id per case (``pytest tests/test_faults.py -q`` shows the count). A case is a function
that sets up the fault and asserts what must happen: the data is intact, the result is right or refused, the error
names its subject. docs/reliability.md quotes the count.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_dataset, make_model
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).parent))
from image_tree import CLASSES, make_digits_tree, save_weights, score_argv  # noqa: E402

import hardmine as hm  # noqa: E402
from hardmine.analysis.io import check_table, read_csv, read_parquet, sidecar_path, to_csv, to_parquet  # noqa: E402
from hardmine.app.cli import main  # noqa: E402
from hardmine.app.html_report import Report, report_html, write_html  # noqa: E402
from hardmine.app.images import CheckedImageFolder, scan_image_folder  # noqa: E402
from hardmine.core._files import TEMP_SUFFIX, _host_tag, atomic_path  # noqa: E402
from hardmine.scoring.checkpoint import ScoringCheckpoint, scoring_fingerprint  # noqa: E402

ARCH = "resnet18"
SIZE = 32


@dataclass
class Ctx:
    tmp: Path
    capsys: Any
    monkeypatch: Any
    cli: tuple[Path, Any] | None = None


CASES: dict[str, Callable[[Ctx], None]] = {}


def case(name: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def register(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        assert name not in CASES
        CASES[name] = fn
        return fn

    return register


@pytest.fixture(scope="module")
def cli_tree(tmp_path_factory):
    """An ImageFolder tree of digits (3 corrupt files among them) and a resnet18 checkpoint for it."""
    root = tmp_path_factory.mktemp("faults_cli")
    tree = make_digits_tree(root / "data", per_class=4)
    save_weights(ARCH, len(CLASSES), root / "ckpt.pt", wrap="model")
    return root, tree


def _split_table(n: int = 12) -> pd.DataFrame:
    model, ds = make_model(3, seed=0), make_dataset(n, 3, seed=1)
    scores = hm.score(model, DataLoader(ds, batch_size=5), progress=False, ids=[f"img_{i}.png" for i in range(n)])
    return hm.split(scores, threshold=0.4, positive=[2])


def _score_argv(root: Path, out: Path | str, *extra: str) -> list[str]:
    return score_argv(root, out, "--positive", "1", *extra, arch=ARCH, size=SIZE)


def _one_error(ctx: Ctx, code: int, argv: list[str], pattern: str) -> str:
    assert main(argv) == code
    err = ctx.capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hardmine: error:")]
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err
    return lines[0]


def _refused_and_untouched(ctx: Ctx, kept: Path, argv: list[str], pattern: str) -> None:
    """``main(argv)`` exits 1 with the one error ``pattern`` and leaves the file ``kept`` byte for byte as it was."""
    before = kept.read_bytes()
    _one_error(ctx, 1, argv, pattern)
    assert kept.read_bytes() == before


def _reads_back_without_settings(path: Path, table: pd.DataFrame) -> None:
    """``read_csv(path)`` gives ``table``'s values exactly, with no split settings (``attrs``) attached."""
    back = read_csv(path)
    assert back.attrs == {}
    back.attrs = table.attrs
    pd.testing.assert_frame_equal(back, table, check_exact=True)


def _report_html_to(ctx: Ctx, target: str) -> pytest.CaptureResult[str]:
    """``hardmine report TABLE --html target`` exits 0, stdout holds the page and stderr the text report."""
    path = to_csv(_split_table(), ctx.tmp / "s.csv")
    ctx.capsys.readouterr()
    assert main(["report", str(path), "--html", target]) == 0
    out = ctx.capsys.readouterr()
    assert out.out.startswith("<!DOCTYPE html>")
    assert "hardmine report" in out.err  # the text report goes to stderr, so stdout holds only the page
    return out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------------------------- data loss


@case("score-out-is-the-weights-file")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    weights = root / "ckpt.pt"
    pattern = r"Refusing to write the output .*ckpt\.pt.*one of this run's inputs"
    _refused_and_untouched(ctx, weights, _score_argv(root, weights), pattern)


@case("score-out-is-a-link-to-the-weights")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    link = ctx.tmp / "out.csv"
    link.symlink_to(root / "ckpt.pt")
    _refused_and_untouched(ctx, root / "ckpt.pt", _score_argv(root, link), r"one of this run's inputs")
    assert link.is_symlink()


@case("score-out-is-one-of-the-images")
def _(ctx: Ctx) -> None:
    root, tree = ctx.cli
    image = Path(tree.good[0])
    pattern = r"Refusing to write the output .*it is one of the images being scored"
    _refused_and_untouched(ctx, image, _score_argv(root, image), pattern)


@case("score-out-dash-writes-the-table-to-stdout")
def _(ctx: Ctx) -> None:
    root, tree = ctx.cli
    ctx.monkeypatch.chdir(ctx.tmp)
    assert main(_score_argv(root, "-")) == 0
    out = ctx.capsys.readouterr()
    assert out.out.startswith("index,id,label") and len(out.out.splitlines()) == len(tree.good) + 1
    assert "hardmine summary" in out.err and "images: 15 found, 12 scored" in out.err
    assert os.listdir(ctx.tmp) == []


@case("report-html-is-the-table")
def _(ctx: Ctx) -> None:
    path = to_csv(_split_table(), ctx.tmp / "s.csv")
    pattern = r"Refusing to write the HTML report .*s\.csv"
    _refused_and_untouched(ctx, path, ["report", str(path), "--html", str(path)], pattern)


@case("checkpoint-dir-holding-a-user-file-is-refused")
def _(ctx: Ctx) -> None:
    folder = ctx.tmp / "ckpt"
    folder.mkdir()
    mine = folder / "rows-epoch10.pt"
    mine.write_bytes(b"the user's own file")
    loader = DataLoader(make_dataset(10, 2), batch_size=4)
    with pytest.raises(ValueError, match=r"holds 1 other file\(s\): 'rows-epoch10\.pt'"):
        hm.score(make_model(2), loader, progress=False, checkpoint_dir=folder, checkpoint_every=1)
    assert mine.read_bytes() == b"the user's own file" and sorted(os.listdir(folder)) == ["rows-epoch10.pt"]


@case("checkpoint-dir-in-use-by-a-live-run-is-refused")
def _(ctx: Ctx) -> None:
    folder = ctx.tmp / "ckpt"
    folder.mkdir()
    (folder / ".hardmine-checkpoint").write_text("{}")
    (folder / "lock").write_text(f"{socket.gethostname()} 1\n")  # process 1 is always alive
    with pytest.raises(ValueError, match=r"in use by another hardmine run \(process 1 on"):
        ScoringCheckpoint(folder, {"a": 1}).load()
    assert (folder / "lock").read_text().split() == [socket.gethostname(), "1"]


@case("checkpoint-lock-of-a-killed-run-is-taken-over")
def _(ctx: Ctx) -> None:
    folder = ctx.tmp / "ckpt"
    folder.mkdir()
    (folder / "lock").write_text(f"{socket.gethostname()} {_dead_pid()}\n")
    assert ScoringCheckpoint(folder, {"a": 1}).load() is None
    assert (folder / "lock").read_text().split() == [socket.gethostname(), str(os.getpid())]


@case("checkpoint-finish-deletes-only-its-own-files")
def _(ctx: Ctx) -> None:
    folder = ctx.tmp / "ckpt"
    ck = ScoringCheckpoint(folder, {"a": 1}, rank=0, world_size=2)
    other = ScoringCheckpoint(folder, {"a": 1}, rank=1, world_size=2)
    ck.load()
    other.load()
    ck.save({"label": torch.arange(4)}, position=2, batches=1, num_classes=2)
    other.save({"label": torch.arange(4)}, position=3, batches=1, num_classes=2)
    ck.finish()  # rank 0 is done; rank 1's files stay
    assert sorted(os.listdir(folder)) == [
        ".hardmine-checkpoint",
        "rank1.lock",
        "rank1.meta.json",
        "rank1.rows-000000000000-000000000003.pt",
    ]
    other.finish()
    assert not folder.exists()


@case("device-meta-leaves-the-model-intact")
def _(ctx: Ctx) -> None:
    model = make_model(3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"`device`.*'meta'.*erase its weights"):
        hm.score(model, DataLoader(make_dataset(8, 3), batch_size=4), device="meta", progress=False)
    for k, v in model.state_dict().items():
        assert v.device.type == "cpu"
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


@case("device-that-fails-leaves-the-model-intact")
def _(ctx: Ctx) -> None:
    model = make_model(3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    real_to = nn.Module.to
    moved: list[nn.Module] = []

    def half_move(self, *args, **kwargs):  # moves the first layer, then fails (as an out-of-memory does)
        if moved:
            raise RuntimeError("out of memory")
        moved.append(self)
        for p in self[0].parameters():
            p.data = p.data.to(torch.float64)
        raise RuntimeError("out of memory")

    ctx.monkeypatch.setattr(nn.Module, "to", half_move)
    with pytest.raises(RuntimeError, match=r"Cannot move the model to device 'cpu:1'"):
        hm.score(model, DataLoader(make_dataset(8, 3), batch_size=4), device="cpu:1", progress=False)
    ctx.monkeypatch.setattr(nn.Module, "to", real_to)
    # The restore moved every tensor back (here: its dtype); values unchanged.
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v.to(state[k].dtype), state[k], rtol=0, atol=0)


@case("a-character-device-is-written-not-replaced")
def _(ctx: Ctx) -> None:
    link = ctx.tmp / "stdout-like"
    link.symlink_to("/dev/null")  # as /dev/stdout -> /proc/self/fd/1
    to_csv(_split_table(), link)
    write_html(Report(table=_split_table()), link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not sidecar_path(link).exists()


@case("report-html-dev-stdout-as-root-keeps-the-link")
def _(ctx: Ctx) -> None:
    out = _report_html_to(ctx, "/dev/stdout")
    assert out.out.rstrip().endswith("</html>")
    assert os.path.islink("/dev/stdout")


@case("dev-stdout-redirected-to-a-file-is-written-not-replaced")
def _(ctx: Ctx) -> None:
    redirect = ctx.tmp / "shell-redirect.txt"  # as `hardmine report x.csv --html /dev/stdout > page.html`
    with open(redirect, "w") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        write_html(Report(table=_split_table()), f"/dev/fd/{fh.fileno()}")
    assert os.stat(redirect).st_ino == inode and redirect.read_text().startswith("<!DOCTYPE html>")
    assert sorted(os.listdir(ctx.tmp)) == ["shell-redirect.txt"]


@case("a-fifo-is-written-straight")
def _(ctx: Ctx) -> None:
    fifo = ctx.tmp / "pipe.csv"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    to_csv(_split_table(), fifo)
    reader.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got and got[0].startswith(b"index,id,label")


@case("a-symlink-is-written-through")
def _(ctx: Ctx) -> None:
    (ctx.tmp / "real").mkdir()
    target = ctx.tmp / "real" / "t.csv"
    target.write_text("old")
    link = ctx.tmp / "t.csv"
    link.symlink_to(target)
    table = _split_table()
    to_csv(table, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    pd.testing.assert_frame_equal(read_csv(link), table, check_exact=True)
    assert sorted(os.listdir(ctx.tmp / "real")) == ["t.csv"]


@case("a-read-only-file-is-not-replaced")
def _(ctx: Ctx) -> None:
    path = ctx.tmp / "t.csv"
    path.write_text("keep me")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match=r"read-only \(mode 0444\)"):
        to_csv(_split_table(), path)
    assert path.read_text() == "keep me"


@case("a-folder-or-socket-is-refused")
def _(ctx: Ctx) -> None:
    with pytest.raises(ValueError, match="it is a folder"):
        to_csv(_split_table(), ctx.tmp)
    sock_path = ctx.tmp / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        with pytest.raises(ValueError, match="neither a regular file"):
            to_csv(_split_table(), sock_path)
    finally:
        sock.close()


@case("a-name-near-the-length-limit-still-writes")
def _(ctx: Ctx) -> None:
    table = _split_table()
    long = ctx.tmp / ("t" * 246 + ".csv")  # 250 bytes: no room for a temporary name or a sidecar name unshortened
    with pytest.warns(UserWarning, match="too long for its sidecar"):
        to_csv(table, long)
    assert sorted(os.listdir(ctx.tmp)) == [long.name]
    _reads_back_without_settings(long, table)


@case("dash-writes-text-to-stdout")
def _(ctx: Ctx) -> None:
    ctx.monkeypatch.chdir(ctx.tmp)
    ctx.capsys.readouterr()
    to_csv(_split_table(), "-")
    assert ctx.capsys.readouterr().out.startswith("index,id,label")
    assert not (ctx.tmp / "-").exists()
    with pytest.raises(ValueError, match="not written to stdout"):
        to_parquet(_split_table(), "-")


@case("report-html-dash-writes-the-page-to-stdout")
def _(ctx: Ctx) -> None:
    _report_html_to(ctx, "-")


# ------------------------------------------------------------------------------------ silent wrong results


@case("new-files-honour-the-umask")
def _(ctx: Ctx) -> None:
    old = os.umask(0o027)
    try:
        to_csv(_split_table(), ctx.tmp / "a.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ctx.tmp / "a.csv").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(sidecar_path(ctx.tmp / "a.csv")).st_mode) == 0o640


@case("a-replaced-file-keeps-its-mode")
def _(ctx: Ctx) -> None:
    path = ctx.tmp / "a.csv"
    path.write_text("x")
    path.chmod(0o664)
    to_csv(_split_table(), path)
    with atomic_path(ctx.tmp / "b.bin") as tmp:
        tmp.write_bytes(b"1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o664


@case("leftover-temp-file-of-a-killed-write-is-removed")
def _(ctx: Ctx) -> None:
    dest = ctx.tmp / "big.csv"
    leftover = ctx.tmp / f".big.csv.{_host_tag()}-{_dead_pid()}-0badc0de{TEMP_SUFFIX}"
    leftover.write_bytes(b"index,label\n0,1\n1,")
    live = ctx.tmp / f".big.csv.{_host_tag()}-{os.getpid()}-12345678{TEMP_SUFFIX}"  # a write in progress
    live.write_bytes(b"")
    old_style = ctx.tmp / ".big.csv.k3j_x9q2.csv.tmp"  # left by hardmine 0.2.0 (mkstemp), two hours ago
    old_style.write_bytes(b"index,label\n0,")
    os.utime(old_style, (os.stat(old_style).st_atime - 7200, os.stat(old_style).st_mtime - 7200))
    to_csv(_split_table(), dest)
    assert not leftover.exists() and live.exists() and not old_style.exists()


@case("killed-write-leaves-the-old-file-then-is-cleaned")
def _(ctx: Ctx) -> None:
    dest = ctx.tmp / "t.csv"
    to_csv(_split_table(), dest)
    old = dest.read_bytes()
    code = (
        "import os, signal, pandas as pd\n"
        "from hardmine.analysis.io import to_csv\n"
        "def die(self, path, *a, **k):\n"
        "    open(path, 'w').write('index,label\\n0,')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "pd.DataFrame.to_csv = die\n"
        f"to_csv(pd.DataFrame({{'index': [0], 'label': [1]}}), {str(dest)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(hm.__file__).parent.parent)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -9
    assert dest.read_bytes() == old
    assert any(n.endswith(TEMP_SUFFIX) for n in os.listdir(ctx.tmp))
    to_csv(_split_table(), dest)
    assert not [n for n in os.listdir(ctx.tmp) if n.endswith(TEMP_SUFFIX)]


def _tree(root: Path, classes: dict[str, int]) -> None:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8, 8), color=i * 20).save(root / name / f"{i}.png")


@case("walk-unreadable-folder-is-listed")
def _(ctx: Ctx) -> None:
    _tree(ctx.tmp / "data", {"a": 2, "b": 2})
    (ctx.tmp / "data" / "b" / "locked").mkdir()
    Image.new("L", (8, 8)).save(ctx.tmp / "data" / "b" / "locked" / "x.png")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    ctx.monkeypatch.setattr(os, "scandir", scandir)  # root reads any folder; fake what a user meets
    scan = scan_image_folder(ctx.tmp / "data")
    assert len(scan.samples) == 4
    assert scan.skipped == [
        (str(ctx.tmp / "data" / "b" / "locked"), "unreadable folder: PermissionError: Permission denied")
    ]
    with pytest.raises(ValueError, match=r"Cannot read folder .*locked.*Permission denied"):
        scan_image_folder(ctx.tmp / "data", strict=True)


@case("walk-unreadable-folder-in-the-cli-skipped-list-and-counts")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    real_scandir = os.scandir
    ctx.monkeypatch.setattr(
        os,
        "scandir",
        lambda path=".": (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if str(path).endswith(os.sep + "2")
            else real_scandir(path)
        ),
    )
    out = ctx.tmp / "o.csv"
    assert main(_score_argv(root, out)) == 0
    printed = ctx.capsys.readouterr().out
    assert "images: 10 found, 8 scored, 2 skipped (unreadable); 1 unreadable folder(s) not walked" in printed
    skipped = (ctx.tmp / "o.csv.skipped.txt").read_text()
    assert f"{root / 'data' / '2'}\tunreadable folder: PermissionError: Permission denied" in skipped


@case("walk-symlink-loop-is-walked-once")
def _(ctx: Ctx) -> None:
    _tree(ctx.tmp / "data", {"a": 1, "b": 1})
    (ctx.tmp / "data" / "a" / "loop").symlink_to("..")
    scan = scan_image_folder(ctx.tmp / "data")
    assert [(Path(p).relative_to(ctx.tmp / "data").as_posix(), k) for p, k in scan.samples] == [
        ("a/0.png", 0),
        ("b/0.png", 1),
    ]
    assert any("loop" in i for i in scan.ignored)


@case("walk-does-not-leave-the-root-unless-asked")
def _(ctx: Ctx) -> None:
    _tree(ctx.tmp / "data", {"a": 1})
    _tree(ctx.tmp / "elsewhere", {"x": 2})
    (ctx.tmp / "data" / "a" / "out").symlink_to(ctx.tmp / "elsewhere" / "x")
    (ctx.tmp / "data" / "a" / "inside").symlink_to(ctx.tmp / "data" / "a")  # a second link to a walked folder
    assert len(scan_image_folder(ctx.tmp / "data").samples) == 1
    assert len(scan_image_folder(ctx.tmp / "data", follow_links_outside=True).samples) == 3


@case("cli-index-is-the-imagefolder-index-with-gaps")
def _(ctx: Ctx) -> None:
    from torchvision.datasets import ImageFolder

    root, tree = ctx.cli
    out = ctx.tmp / "o.csv"
    assert main(_score_argv(root, out)) == 0
    table = read_csv(out)
    folder = ImageFolder(str(root / "data"))
    chosen = torch.utils.data.Subset(folder, table["index"].tolist())
    assert [os.path.abspath(folder.samples[i][0]) for i in chosen.indices] == table["id"].tolist()
    assert [folder.targets[i] for i in chosen.indices] == table["label"].tolist()
    assert len(table) == len(tree.good)
    corrupt = {os.path.abspath(p) for p in tree.corrupt}
    gaps = sorted(set(range(len(folder))) - set(table["index"]))
    assert gaps and [os.path.abspath(folder.samples[i][0]) in corrupt for i in gaps] == [True] * len(gaps)


@case("cli-prints-found-scored-skipped")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    assert main(_score_argv(root, ctx.tmp / "o.csv")) == 0
    assert "images: 15 found, 12 scored, 3 skipped (unreadable); 1 other file(s)" in ctx.capsys.readouterr().out


@case("resume-refuses-a-changed-image-file")
def _(ctx: Ctx) -> None:
    _tree(ctx.tmp / "data", {"a": 6, "b": 6})
    dataset = CheckedImageFolder(scan_image_folder(ctx.tmp / "data"), lambda im: torch.zeros(3))
    loader = DataLoader(dataset, batch_size=4)
    args = dict(batch_size=4, keep_probs=False, amp=False, channels_last=False, device=torch.device("cpu"))
    args |= dict(unpack=None, input_key=None, target_key=None, world_size=1, rank=0)
    model = nn.Linear(3, 2)
    before = scoring_fingerprint(model, loader, **args)
    ck = ScoringCheckpoint(ctx.tmp / "ck", before)
    ck.load()
    ck.save({"label": torch.zeros(12, dtype=torch.int64)}, position=4, batches=1, num_classes=2)
    ck.release()
    # A file in the middle (not one of the probed samples) gets new pixels of the same size.
    middle = ctx.tmp / "data" / "a" / "2.png"
    Image.new("L", (8, 8), color=255).save(middle)
    os.utime(middle, ns=(1, 1))
    after = scoring_fingerprint(model, loader, **args)
    assert after["dataset_samples"] == before["dataset_samples"]
    with pytest.raises(ValueError, match=r"dataset files \(path, size, modification time\) differ"):
        ScoringCheckpoint(ctx.tmp / "ck", after).load()


def _compressed(ctx: Ctx, suffix: str) -> None:
    table = _split_table()
    path = to_csv(table, ctx.tmp / f"t.csv{suffix}")
    magic = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".xz": b"\xfd7zXZ"}[suffix]
    assert path.read_bytes().startswith(magic)
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    assert back.attrs == table.attrs


for _suffix in (".gz", ".bz2", ".xz"):
    case(f"compression-from-the-suffix-{_suffix[1:]}")(lambda ctx, s=_suffix: _compressed(ctx, s))


def _truncated(ctx: Ctx, name: str, cut: Callable[[bytes], bytes], match: str) -> None:
    """A table written to ``name``, cut short by ``cut``, is refused on reading with a ValueError matching ``match``."""
    write, read = (to_parquet, read_parquet) if name.endswith(".parquet") else (to_csv, read_csv)
    path = write(_split_table(), ctx.tmp / name)
    path.write_bytes(cut(path.read_bytes()))
    with pytest.raises(ValueError, match=match):
        read(path)


# A number cut at the end: ...,easy_negative -> ...,ea / 1.13394 -> 1.1
case("read-detects-a-number-cut-at-the-end")(
    lambda ctx: _truncated(
        ctx,
        "t.csv",
        lambda data: data[: data.rstrip(b"\n").rfind(b",") + 3],
        r"is damaged: it has \d+ bytes, but hardmine wrote \d+",
    )
)
case("read-detects-a-truncated-gzip")(lambda ctx: _truncated(ctx, "t.csv.gz", lambda data: data[:-20], "is damaged"))
case("read-detects-a-truncated-parquet")(
    lambda ctx: _truncated(ctx, "t.parquet", lambda data: data[:-100], "not a readable Parquet file")
)


def _plain(ctx: Ctx, edit: Callable[[pd.DataFrame], None] | None = None, text: str | None = None) -> Path:
    """A split table as plain pandas writes it (no sidecar), edited."""
    table = _split_table().astype({"polarity": str, "difficulty": str, "group": str})
    if edit is not None:
        edit(table)
    path = ctx.tmp / "plain.csv"
    if text is None:
        table.to_csv(path, index=False)
    else:
        path.write_text(text)
    return path


@case("read-short-row-names-row-and-column")
def _(ctx: Ctx) -> None:
    path = _plain(ctx)
    lines = path.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-3])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"row 2 \(line 4 of the file\), column `polarity` is empty"):
        read_csv(path)


@case("read-extra-field-names-the-line")
def _(ctx: Ctx) -> None:
    path = _plain(ctx)
    lines = path.read_text().splitlines()
    lines[5] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=r"line 6 \(row 4\) has (\d+) fields, but the header has \d+ columns: an extra field"
    ):
        read_csv(path)


@case("read-duplicate-index")
def _(ctx: Ctx) -> None:
    path = _plain(ctx, lambda t: t.__setitem__("index", [0, 1, 2, 3, 4, 5, 6, 3, 8, 9, 10, 11]))
    with pytest.raises(ValueError, match=r"column `index` holds 3 more than once \(rows \[3, 7\]\)"):
        read_csv(path)


@case("read-probability-out-of-range")
def _(ctx: Ctx) -> None:
    path = _plain(ctx, lambda t: t.loc.__setitem__((4, "label_prob"), 7.0))
    with pytest.raises(ValueError, match=r"row 4 \(line 6 of the file\), column `label_prob` holds 7\.0, outside"):
        read_csv(path)


@case("read-group-contradicting-polarity-and-difficulty")
def _(ctx: Ctx) -> None:
    def edit(t: pd.DataFrame) -> None:
        t.loc[5, "group"] = "hard_positive" if t.loc[5, "group"] != "hard_positive" else "easy_negative"

    with pytest.raises(ValueError, match=r"row 5 .*column `group` holds .* but `difficulty`"):
        read_csv(_plain(ctx, edit))


@case("read-polarity-contradicting-the-settings")
def _(ctx: Ctx) -> None:
    table = _split_table()
    flip = int(np.flatnonzero(table["label"].to_numpy() != 2)[0])
    table.loc[flip, "polarity"] = "positive"
    table.loc[flip, "group"] = f"{table.loc[flip, 'difficulty']}_positive"
    with pytest.raises(ValueError, match=rf"row {flip}, column `polarity` holds 'positive', but its label"):
        read_parquet(to_parquet(table, ctx.tmp / "t.parquet"))


@case("read-difficulty-contradicting-the-threshold")
def _(ctx: Ctx) -> None:
    table = _split_table()
    table.loc[0, "difficulty"] = "easy" if table.loc[0, "difficulty"] == "hard" else "hard"
    table.loc[0, "group"] = f"{table.loc[0, 'difficulty']}_{table.loc[0, 'polarity']}"
    with pytest.raises(ValueError, match=r"row 0, column `difficulty` .* threshold 0\.4"):
        check_table(table, "t")


@case("read-nan-label")
def _(ctx: Ctx) -> None:
    path = _plain(ctx, lambda t: t.__setitem__("label", t["label"].astype(object).where(t.index != 6, None)))
    with pytest.raises(ValueError, match=r"row 6 \(line 8 of the file\), column `label` is empty"):
        read_csv(path)


@case("read-non-numeric-score-cell")
def _(ctx: Ctx) -> None:
    path = _plain(ctx, lambda t: t.__setitem__("loss", t["loss"].astype(object).where(t.index != 9, "abc")))
    with pytest.raises(ValueError, match=r"row 9 \(line 11 of the file\), column `loss` holds 'abc', which is not"):
        read_csv(path)


@case("read-plain-pandas-csv-still-reads")
def _(ctx: Ctx) -> None:
    table = _split_table()
    _reads_back_without_settings(_plain(ctx), table)


@case("read-restores-the-split-settings")
def _(ctx: Ctx) -> None:
    table = _split_table()
    per_class = hm.split(table.drop(columns=["polarity", "difficulty", "group"]), "per_class", positive=[1])
    for t, name in ((table, "a"), (per_class, "b")):
        back_csv = read_csv(to_csv(t, ctx.tmp / f"{name}.csv"))
        back_pq = read_parquet(to_parquet(t, ctx.tmp / f"{name}.parquet"))
        assert back_csv.attrs == t.attrs == back_pq.attrs
        assert back_csv.attrs["hardmine"]["threshold"] == t.attrs["hardmine"]["threshold"]


@case("edited-table-with-a-stale-sidecar-is-refused")
def _(ctx: Ctx) -> None:
    path = to_csv(_split_table(), ctx.tmp / "t.csv")
    _split_table().astype({"group": str}).to_csv(path, index=False, float_format="%.3f")
    with pytest.raises(ValueError, match=r"delete .*t\.csv\.hardmine\.json.* to read it as a plain CSV"):
        read_csv(path)


# ------------------------------------------------------------------------------------------------ security


@case("formula-injection-is-neutralised-and-round-trips")
def _(ctx: Ctx) -> None:
    ids = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "''two", "plain", "", "=", "a=b"]
    model, ds = make_model(3, seed=0), make_dataset(len(ids), 3, seed=1)
    table = hm.split(hm.score(model, DataLoader(ds, batch_size=5), progress=False, ids=ids), threshold=0.4, positive=2)
    table.insert(4, "label_name", ["=cmd|' /C calc'!A0" if k == 0 else f"class{k}" for k in table["label"]])
    path = to_csv(table, ctx.tmp / "t.csv")
    cells = pd.read_csv(path, dtype=str, keep_default_na=False)
    dangerous = tuple("=+-@\t\r")
    assert not any(v.startswith(dangerous) for col in ("id", "label_name") for v in cells[col])
    assert cells["id"].tolist()[:8] == ["'" + i for i in ids[:8]]
    back = read_csv(path)
    assert back["id"].tolist() == ids
    assert back["label_name"].tolist() == table["label_name"].tolist()


@case("report-html-embeds-only-images-under-the-root")
def _(ctx: Ctx) -> None:
    _tree(ctx.tmp / "data", {"a": 1})
    secret = ctx.tmp / "secret.png"
    Image.new("RGB", (8, 8), color=(255, 0, 0)).save(secret)
    table = _split_table(2)
    table["id"] = [str(ctx.tmp / "data" / "a" / "0.png"), "../secret.png"]
    source = ctx.tmp / "data" / "t.csv"
    page = report_html(table, top=2, source=str(source), image_root=ctx.tmp / "data")
    assert page.count("data:image/png;base64") == 1 and "image not available" in page
    everything = report_html(table, top=2, source=str(source), image_root=None)
    assert everything.count("data:image/png;base64") == 2


@case("report-cli-uses-the-recorded-root-unless-allowed")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    out = ctx.tmp / "o.csv"
    assert main(_score_argv(root, out)) == 0
    assert read_csv(out).attrs["hardmine"]["image_root"] == str(root / "data")
    table = read_csv(out)
    secret = ctx.tmp / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    table["id"] = table["id"].astype(object)
    table.loc[table["label_prob"].idxmin(), "id"] = str(secret)
    to_csv(table, out)
    ctx.capsys.readouterr()
    assert main(["report", str(out), "--html", str(ctx.tmp / "r.html"), "--top", "3"]) == 0
    assert (ctx.tmp / "r.html").read_text().count("data:image/png;base64") == 2
    assert main(["report", str(out), "--html", str(ctx.tmp / "r.html"), "--top", "3", "--allow-any-image"]) == 0
    assert (ctx.tmp / "r.html").read_text().count("data:image/png;base64") == 3


# ---------------------------------------------------------------------------------------------- clear errors


class _TooLong(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> Any:
        return torch.zeros(6), torch.tensor(i % 2) if i < 7 else [][i]


class _BadSample(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> Any:
        if i == 6:
            raise KeyError("width")
        return torch.zeros(6), torch.tensor(i % 2)


@case("dataset-len-longer-than-its-data")
def _(ctx: Ctx) -> None:
    with pytest.raises(IndexError, match=r"says it has 10 samples \(its __len__\), but reading sample 7 raised"):
        hm.score(make_model(2), DataLoader(_TooLong(), batch_size=4), progress=False)


@case("dataset-raising-at-one-index")
def _(ctx: Ctx) -> None:
    with pytest.raises(KeyError, match=r"Reading sample 6 of the dataset \(_BadSample\) failed: KeyError: 'width'"):
        hm.score(make_model(2), DataLoader(_BadSample(), batch_size=4), progress=False)


@case("dataset-raising-in-a-worker-process")
def _(ctx: Ctx) -> None:
    with pytest.raises(KeyError, match=r"Reading sample 6 of the dataset"):
        hm.score(make_model(2), DataLoader(_BadSample(), batch_size=4, num_workers=1), progress=False)


@case("corrupt-image-in-a-torchvision-imagefolder")
def _(ctx: Ctx) -> None:
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    _tree(ctx.tmp / "data", {"a": 3, "b": 3})
    bad = ctx.tmp / "data" / "b" / "1.png"
    bad.write_bytes(bad.read_bytes()[:30])
    folder = ImageFolder(str(ctx.tmp / "data"), transform=transforms.Compose([transforms.ToTensor(), nn.Flatten(0)]))
    model = nn.Sequential(nn.Linear(192, 2))
    with pytest.raises(Exception, match=rf"sample 4 .*{re.escape(repr(str(bad)))}"):
        hm.score(model, DataLoader(folder, batch_size=4), progress=False)


@case("unpack-returning-one-value")
def _(ctx: Ctx) -> None:
    with pytest.raises(ValueError, match=r"`unpack` to return a pair \(inputs, targets\), but it returned Tensor"):
        hm.score(make_model(2), DataLoader(make_dataset(8, 2), batch_size=4), unpack=lambda b: b[0], progress=False)


@case("chunksize-zero")
def _(ctx: Ctx) -> None:
    with pytest.raises(ValueError, match=r"`chunksize` must be >= 1, got 0"):
        to_csv(_split_table(), ctx.tmp / "t.csv", chunksize=0)
    assert not (ctx.tmp / "t.csv").exists()


@case("sampler-mode-bogus")
def _(ctx: Ctx) -> None:
    model = make_model(2)
    with pytest.raises(ValueError, match=r"`sampler_mode` must be one of .*'bogus'"):
        hm.HardMiner(model, DataLoader(make_dataset(8, 2), batch_size=4), sampler_mode="bogus")


@case("text-file-as-weights")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli
    text = ctx.tmp / "notes.pt"
    text.write_text("index,id,label\n0,a.png,1\n")
    argv = _score_argv(root, ctx.tmp / "o.csv")
    argv[argv.index("--weights") + 1] = str(text)
    _one_error(ctx, 1, argv, r"is not a readable PyTorch checkpoint: it is a text file \(it starts with 'index,id")


@case("ctrl-c-during-cli-start-up")
def _(ctx: Ctx) -> None:
    root, _ = ctx.cli

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    ctx.monkeypatch.setattr("hardmine.app.images.load_weights", interrupted)
    assert main(_score_argv(root, ctx.tmp / "o.csv")) == 130
    err = ctx.capsys.readouterr().err
    assert err.strip() == "hardmine: interrupted" and not (ctx.tmp / "o.csv").exists()


@case("ctrl-c-in-demo")
def _(ctx: Ctx) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    ctx.monkeypatch.setattr("hardmine.app.demo.run_demo", interrupted)
    assert main(["demo", "--out", str(ctx.tmp / "demo")]) == 130
    assert ctx.capsys.readouterr().err.strip() == "hardmine: interrupted"


@case("gallery-on-index-ids")
def _(ctx: Ctx) -> None:
    pytest.importorskip("matplotlib")
    scores = hm.score(make_model(2), DataLoader(make_dataset(8, 2), batch_size=4), progress=False)
    table = hm.split(scores, threshold=0.5)
    with pytest.raises(ValueError, match=r"is not a file.*Pass `dataset=`.*or `root=`"):
        hm.plot.gallery(table)


@case("ordinary-round-trip-stays-exact")
def _(ctx: Ctx) -> None:
    """The control case: an ordinary round trip through every writer is exact and leaves only the expected files."""
    table = _split_table()
    to_csv(table, ctx.tmp / "t.csv")
    to_parquet(table, ctx.tmp / "t.parquet")
    assert sorted(os.listdir(ctx.tmp)) == ["t.csv", "t.csv.hardmine.json", "t.parquet"]
    pd.testing.assert_frame_equal(read_csv(ctx.tmp / "t.csv"), table, check_exact=True)
    pd.testing.assert_frame_equal(read_parquet(ctx.tmp / "t.parquet"), table, check_exact=True)


# ---------------------------------------------------------------- the cases built in other modules, tried here too
@case("summary-confusion-is-ground-truth-first-and-strict-json")
def _(ctx: Ctx) -> None:
    import json

    t = pd.DataFrame(
        {"index": range(5), "label": [1, 1, 1, 0, 0], "pred": [1, 1, 0, 0, 0], "label_prob": [0.9, 0.8, 0.3, 0.9, 0.9]}
    )
    d = hm.summary(hm.split(t, threshold=0.1)).to_dict()  # nothing is hard: empty groups
    assert d["confusion"]["positive"] == {"positive": 2, "negative": 1}  # rows: ground truth
    json.loads(json.dumps(d, allow_nan=False))  # no NaN for the empty groups


@case("positive-class-not-among-labels")
def _(ctx: Ctx) -> None:
    scores = hm.score(make_model(4), DataLoader(make_dataset(20, 4), batch_size=8), progress=False)
    with pytest.raises(ValueError, match=r"\[7\] is not among its classes"):
        hm.split(scores, threshold=0.5, positive=7)
    miner = hm.HardMiner(
        make_model(4), DataLoader(make_dataset(20, 4), batch_size=8), positive=7, warmup_epochs=0, progress=False
    )
    with pytest.raises(ValueError, match=r"\[7\] is not among its classes"):
        next(iter(miner))


@case("positive-given-as-a-string-is-named-whole")
def _(ctx: Ctx) -> None:
    scores = hm.score(make_model(4), DataLoader(make_dataset(20, 4), batch_size=8), progress=False)
    with pytest.raises(TypeError, match=r"'cat'"):
        hm.split(scores, threshold=0.5, positive="cat")


@case("miner-state-loads-weights-only-and-resumes-with-momentum")
def _(ctx: Ctx) -> None:
    ds = make_dataset(40, 2, seed=5)
    model = make_model(2, seed=5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    straight = hm.HardMiner(model, DataLoader(ds, batch_size=8), momentum=0.5, warmup_epochs=0, progress=False)
    for _epoch in range(2):  # the model learns, so each re-scoring's weights differ and the momentum matters
        for x, y in straight:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    torch.save({"miner": straight.state_dict(), "model": model.state_dict()}, ctx.tmp / "ckpt.pt")
    state = torch.load(ctx.tmp / "ckpt.pt")  # weights_only=True, torch's default
    twin = make_model(2, seed=0)
    twin.load_state_dict(state["model"])
    resumed = hm.HardMiner(twin, DataLoader(ds, batch_size=8), momentum=0.5, warmup_epochs=0, progress=False)
    resumed.load_state_dict(state["miner"])
    drawn_straight = [b[1].tolist() for b in straight]  # epoch 2: re-scored, mixed with the saved weights
    drawn_resumed = [b[1].tolist() for b in resumed]
    assert drawn_resumed == drawn_straight
    torch.testing.assert_close(
        torch.as_tensor(resumed.table["weight"].to_numpy()), torch.as_tensor(straight.table["weight"].to_numpy())
    )
    fresh = hm.HardMiner(twin, DataLoader(ds, batch_size=8), momentum=0.5, warmup_epochs=0, progress=False)
    fresh.set_epoch(2)
    list(fresh)  # the same epoch without the saved weights: the momentum has nothing to mix, the weights differ
    assert not np.allclose(fresh.table["weight"].to_numpy(), straight.table["weight"].to_numpy())


@case("miner-dataset-that-grew-is-refused")
def _(ctx: Ctx) -> None:
    data = list(make_dataset(20, 2, seed=6))
    miner = hm.HardMiner(make_model(2), DataLoader(data, batch_size=5), warmup_epochs=0, progress=False)
    list(miner)
    data.extend(data[:5])  # the dataset grows under the miner
    with pytest.raises(ValueError, match=r"20.*25|25.*20"):
        list(miner)


_NEEDS_CLI = {name for name in CASES if "cli" in name or name.startswith(("score-", "text-file", "ctrl-c-during"))}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_fault(name: str, tmp_path: Path, capsys: Any, monkeypatch: Any, request: Any) -> None:
    cli = request.getfixturevalue("cli_tree") if name in _NEEDS_CLI else None
    CASES[name](Ctx(tmp=tmp_path, capsys=capsys, monkeypatch=monkeypatch, cli=cli))
