"""The examples run as the README says: examples/ddp_train.py under torchrun with 2 CPU processes (gloo)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from conftest import run_ok

from hardmine.analysis.io import read_csv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo")
def test_ddp_train_example_under_torchrun(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun is not None, "torchrun is installed with torch"
    out = tmp_path / "hard.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [torchrun, "--standalone", "--nproc_per_node=2", str(EXAMPLES / "ddp_train.py"), "--epochs", "2"]
    result = run_ok([*command, "--out", str(out)], cwd=tmp_path, env=env)
    assert "same table on all 2 ranks: True" in result.stdout
    table = read_csv(out)  # rank 0 wrote the hard samples, once
    assert len(table) > 0 and (table["difficulty"] == "hard").all()


# --------------------------------------------------------------------------- the training scripts people run, mined
MINED = ["mnist.py", "imagenet.py", "multigpu_torchrun.py", "lightning_digits.py", "hf_trainer.py"]


def _load(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name[:-3]}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd: list[str], cwd: Path) -> str:
    root = EXAMPLES.parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    return run_ok(cmd, cwd=cwd, env=env, timeout=400).stdout


@pytest.mark.parametrize("name", MINED)
def test_hard_mining_takes_at_most_five_lines(name):
    lines = (EXAMPLES / name).read_text().splitlines()
    marked = [line for line in lines if "  # hardmine" in line and "``" not in line]  # code lines, not the docstring
    assert 1 <= len(marked) <= 5, marked


@pytest.mark.slow
def test_mnist_example(capsys):
    accuracy = _load("mnist.py").main(["--epochs", "2", "--train-size", "600", "--log-interval", "100"])
    out = capsys.readouterr().out
    assert "Test set: Average loss" in out and " epoch  hard  hard_fraction  accuracy" in out
    assert accuracy > 0.5  # 10 classes: far above chance after 2 epochs on 600 digits


@pytest.mark.slow
def test_imagenet_example_scores_with_evaluation_transforms(tmp_path, capsys):
    argv = [str(tmp_path / "shapes"), "--generate", "8", "--epochs", "2", "-b", "16", "--image-size", "32"]
    _load("imagenet.py").main([*argv, "--lr", "0.01", "--seed", "0", "-p", "100"])
    out = capsys.readouterr().out
    assert " * Acc@1" in out and "epoch  hard  accuracy" in out
    assert len(list((tmp_path / "shapes" / "train").rglob("*.png"))) == 4 * 8


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo")
def test_multigpu_torchrun_example(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun is not None
    script = str(EXAMPLES / "multigpu_torchrun.py")
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", script, "3", "1", "--dataset_size", "512"]
    out = _run([*cmd, "--snapshot_path", str(tmp_path / "snap.pt")], tmp_path)
    for rank in (0, 1):
        for epoch in range(3):  # 512 samples over 2 ranks, batches of 32: 8 steps each, every epoch
            assert f"[GPU{rank}] Epoch {epoch} | Batchsize: 32 | Steps: 8" in out
        # The peek before each epoch starts no scoring pass: epoch 0 warms up, epochs 1 and 2 score once each.
        assert f"[GPU{rank}] scoring passes: 2" in out


@pytest.mark.slow
def test_lightning_example(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "lightning_digits.py"), "--epochs", "2", "--train-size", "400",
                "--log-dir", str(tmp_path)], tmp_path)  # fmt: skip
    assert " epoch  hard  hard_fraction  accuracy" in out and "val_acc" in out


@pytest.mark.slow
def test_hf_trainer_example(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "hf_trainer.py"), "--epochs", "2", "--train-size", "128",
                "--output-dir", str(tmp_path / "out")], tmp_path)  # fmt: skip
    assert " epoch  hard  accuracy" in out and "test accuracy" in out
