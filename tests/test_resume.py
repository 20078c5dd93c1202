"""Resumable scoring: ``hm.score(..., checkpoint_dir=...)`` and ``hardmine score --resume``.

An interrupted pass (an exception, or SIGKILL of a real process) resumed with the same arguments gives exactly the
table of an uninterrupted pass, scoring only the samples that were missing; a checkpoint made with other arguments,
another model or another dataset is refused, naming what differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from image_tree import CLASSES, make_digits_tree, save_weights, score_argv  # noqa: E402

import hardmine.scoring.checkpoint  # noqa: E402
from hardmine.analysis.io import read_csv  # noqa: E402
from hardmine.app.cli import main  # noqa: E402
from hardmine.scoring.engine import score  # noqa: E402

N, FEATURES, CLASSES_N, BATCH = 37, 6, 4, 4


class Counting(nn.Module):
    """A linear classifier that counts the samples it sees and can fail on a given call (a crash mid-pass)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(FEATURES, CLASSES_N)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(CLASSES_N, FEATURES, generator=gen))
            self.linear.bias.copy_(torch.randn(CLASSES_N, generator=gen))
        self.calls = 0
        self.seen = 0
        self.fail_at: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        self.seen += x.shape[0]
        return self.linear(x)


def _data(n: int = N, seed: int = 1) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    ds = TensorDataset(torch.randn(n, FEATURES, generator=gen), torch.randint(0, CLASSES_N, (n,), generator=gen))
    return DataLoader(ds, batch_size=BATCH, shuffle=True)


def _interrupt(model: Counting, loader: DataLoader, ckpt: Path, *, fail_at: int, every: int, **kw) -> int:
    model.fail_at = fail_at
    with pytest.raises(RuntimeError, match="simulated crash"):
        score(model, loader, progress=False, checkpoint_dir=ckpt, checkpoint_every=every, **kw)
    model.fail_at, model.calls, model.seen = None, 0, 0
    return json.loads((ckpt / "meta.json").read_text())["position"]


@pytest.mark.parametrize("keep_probs", [False, True], ids=["scores", "probs"])
@pytest.mark.parametrize(("fail_at", "every", "saved"), [(6, 2, 16), (2, 1, 4), (10, 3, 36)])
def test_resume_equals_uninterrupted(tmp_path, keep_probs, fail_at, every, saved):
    loader, model = _data(), Counting()
    full = score(model, loader, progress=False, keep_probs=keep_probs)
    model.calls = model.seen = 0
    ckpt = tmp_path / "ckpt"
    # Crash on forward call `fail_at`: the checkpoint holds the batches saved before it.
    assert _interrupt(model, loader, ckpt, fail_at=fail_at, every=every, keep_probs=keep_probs) == saved
    resumed = score(model, loader, progress=False, keep_probs=keep_probs, checkpoint_dir=ckpt, checkpoint_every=every)
    assert model.seen == N - saved  # only the missing samples were scored again
    pd.testing.assert_frame_equal(resumed, full)
    assert resumed.attrs == full.attrs
    assert not ckpt.exists()  # a completed pass leaves no checkpoint behind


def test_resume_with_float_labels(tmp_path):
    """Whole-number float targets make the pass keep an extra buffer; it survives the checkpoint too."""
    base = _data()
    x, y = base.dataset.tensors
    loader = DataLoader(TensorDataset(x, y.float()), batch_size=BATCH)
    model = Counting()
    full = score(model, loader, progress=False)
    model.calls = model.seen = 0
    ckpt = tmp_path / "ckpt"
    assert _interrupt(model, loader, ckpt, fail_at=4, every=1) == 12
    resumed = score(model, loader, progress=False, checkpoint_dir=ckpt, checkpoint_every=1)
    assert model.seen == N - 12
    pd.testing.assert_frame_equal(resumed, full)


def test_checkpoint_is_written_atomically_in_chunks(tmp_path):
    loader, model = _data(), Counting()
    ckpt = tmp_path / "ckpt"
    _interrupt(model, loader, ckpt, fail_at=8, every=2)
    names = sorted(p.name for p in ckpt.iterdir())
    # Only the new rows are written at each save; no temporary files are left. The marker says the folder is
    # hardmine's; the lock (this process's, as the pass failed here) keeps a second run out until it is resumed.
    assert names == [
        ".hardmine-checkpoint",
        "lock",
        "meta.json",
        "rows-000000000000-000000000008.pt",
        "rows-000000000008-000000000016.pt",
        "rows-000000000016-000000000024.pt",
    ]
    chunk = torch.load(ckpt / names[4], weights_only=True)
    assert chunk["label"].shape == (8,) and chunk["loss"].dtype == torch.float32


def test_checkpoint_from_other_arguments_is_refused(tmp_path):
    loader, model = _data(), Counting()
    ckpt = tmp_path / "ckpt"
    _interrupt(model, loader, ckpt, fail_at=4, every=1)
    before = sorted(p.name for p in ckpt.iterdir())

    def refused(match: str, m: nn.Module = model, ld: DataLoader = loader, **kw) -> None:
        with pytest.raises(ValueError, match=match):
            score(m, ld, progress=False, checkpoint_dir=ckpt, checkpoint_every=1, **kw)

    refused(
        r"was made with other arguments or data, so it is not resumed: batch_size 4 \(checkpoint\) vs 5 \(now\)"
        r".*Delete that folder",
        batch_size=5,
    )
    refused(r"keep_probs False \(checkpoint\) vs True \(now\)", keep_probs=True)
    refused(r"amp 'False' \(checkpoint\) vs 'bf16' \(now\)", amp="bf16")
    refused(r"model weights differ", m=Counting(seed=7))
    refused(r"dataset length 37 \(checkpoint\) vs 36 \(now\)", ld=_data(n=36))
    refused(r"dataset samples \(first, last and three between\) differ", ld=_data(seed=2))
    assert sorted(p.name for p in ckpt.iterdir()) == before  # refused checkpoints are left as they were


def test_broken_checkpoints_and_bad_arguments(tmp_path):
    loader, model = _data(), Counting()
    with pytest.raises(ValueError, match=r"`checkpoint_every` must be >= 1, got 0"):
        score(model, loader, progress=False, checkpoint_dir=tmp_path / "c", checkpoint_every=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"Expected argument `checkpoint_dir` to be a folder, but .*file' is a file"):
        score(model, loader, progress=False, checkpoint_dir=tmp_path / "file")
    ckpt = tmp_path / "ckpt"
    _interrupt(model, loader, ckpt, fail_at=3, every=1)
    (ckpt / "rows-000000000004-000000000008.pt").unlink()
    with pytest.raises(ValueError, match=r"has a missing or unreadable file 'rows-000000000004-000000000008.pt'"):
        score(model, loader, progress=False, checkpoint_dir=ckpt, checkpoint_every=1)
    (ckpt / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"has an unreadable meta.json"):
        score(model, loader, progress=False, checkpoint_dir=ckpt, checkpoint_every=1)
    (ckpt / "meta.json").write_text(json.dumps({"some": "thing"}))
    with pytest.raises(ValueError, match=r"has a meta.json that hardmine did not write"):
        score(model, loader, progress=False, checkpoint_dir=ckpt, checkpoint_every=1)


# ------------------------------------------------------------------------------------------- the command line

ARCH, SIZE = "resnet18", 32


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    make_digits_tree(root / "data")
    save_weights(ARCH, len(CLASSES), root / "ckpt.pt")
    return root


def _argv(root: Path, out: Path, *extra: str) -> list[str]:
    return score_argv(root, out, "--batch-size", "4", "--positive", "2", *extra, arch=ARCH, size=SIZE)


def test_cli_resume_after_a_crash(tree, tmp_path, capsys, monkeypatch):
    plain = tmp_path / "plain.csv"
    assert main(_argv(tree, plain)) == 0
    out = tmp_path / "hard.csv"
    saves = []
    real_save = hardmine.scoring.checkpoint.ScoringCheckpoint.save

    def crash_after_two(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        saves.append(kwargs["position"])
        if len(saves) == 2:
            raise OSError("disk went away")  # the process dies right after its second checkpoint

    monkeypatch.setattr(hardmine.scoring.checkpoint.ScoringCheckpoint, "save", crash_after_two)
    assert main(_argv(tree, out, "--resume", "--checkpoint-every", "2")) == 1
    monkeypatch.undo()
    assert saves == [8, 16] and not out.exists()
    ckpt = Path(f"{out}.ckpt")
    capsys.readouterr()
    # Other arguments: refused with a clear one-line message, the checkpoint kept.
    assert main(_argv(tree, out, "--resume", "--checkpoint-every", "2", "--image-size", "28")) == 1
    err = capsys.readouterr().err
    assert "hardmine: error: The scoring checkpoint in" in err and "dataset transform differ" in err
    assert ckpt.is_dir()
    # The same arguments: resumed from sample 16, the same table as the uninterrupted run, the checkpoint removed.
    assert main(_argv(tree, out, "--resume", "--checkpoint-every", "2")) == 0
    assert f"resuming: the checkpoint in {ckpt} holds 16 of 36 images" in capsys.readouterr().err
    pd.testing.assert_frame_equal(read_csv(out), read_csv(plain))
    assert not ckpt.exists()


_SLOW_CLI = """
import sys, time
import hardmine.app.images as images
real = images.build_model
def slow(arch, num_classes):
    model = real(arch, num_classes)
    model.register_forward_pre_hook(lambda module, args: time.sleep(0.4))  # hooks are not part of the weights
    return model
images.build_model = slow
from hardmine.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_cli_sigkill_and_resume(tree, tmp_path, capsys):
    """A real ``hardmine score --resume`` process is SIGKILLed mid-run; ``python -m hardmine`` finishes the job."""
    plain = tmp_path / "plain.csv"
    assert main(_argv(tree, plain)) == 0
    out = tmp_path / "hard.csv"
    meta = Path(f"{out}.ckpt") / "meta.json"
    argv = _argv(tree, out, "--resume", "--checkpoint-every", "1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 240
        position = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if meta.is_file():
                position = json.loads(meta.read_text())["position"]
                if position > 0:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert 0 < position < 36 and not out.exists()
    rerun = subprocess.run(
        [sys.executable, "-m", "hardmine", *argv], capture_output=True, text=True, env=env, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming: the checkpoint in" in rerun.stderr
    pd.testing.assert_frame_equal(read_csv(out), read_csv(plain))
    assert not meta.parent.exists()
