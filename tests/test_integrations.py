"""hardmine.integrations: optional extras stay optional; history to loggers and TensorBoard."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardmine import HardMiner
from hardmine.integrations import history_metrics
from hardmine.integrations.tensorboard import log_history


def test_import_hardmine_imports_no_framework():
    code = (
        "import sys, hardmine, hardmine.integrations\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'transformers', 'accelerate', 'tensorboard', 'wandb')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [
        ("hardmine.integrations.lightning", "lightning.pytorch", "lightning"),
        ("hardmine.integrations.hf", "transformers", "hf"),
        ("hardmine.integrations.hf", "accelerate", "hf"),
    ],
)
def test_missing_extra_names_the_pip_line(monkeypatch, module, missing, extra):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'hardmine\[{extra}\]'"):
        importlib.import_module(module)


def test_tensorboard_folder_needs_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'hardmine\[tensorboard\]'"):
        log_history(tmp_path, pd.DataFrame({"epoch": [1], "hard": [3]}))


def _trained_miner() -> HardMiner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    torch.manual_seed(0)
    miner = HardMiner(nn.Linear(4, 2), DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8), progress=False)
    for _ in range(3):
        list(miner)
    return miner


def test_history_metrics_are_the_numeric_columns():
    miner = _trained_miner()
    row = miner.history.iloc[-1]
    metrics = history_metrics(row)
    assert metrics["hardmine/hard_fraction"] == pytest.approx(float(row["hard_fraction"]))
    assert metrics["hardmine/hard"] == float(row["hard"])
    assert "hardmine/by" not in metrics and "hardmine/epoch" not in metrics


def test_a_second_runs_scoring_passes_are_logged_though_their_epochs_repeat():
    import pandas as pd

    from hardmine.integrations import new_history_metrics

    logged: list[int] = []
    first = pd.DataFrame({"epoch": [1, 2], "hard": [3, 5]})
    assert [m["hardmine/hard"] for m in new_history_metrics(first, logged)] == [3.0, 5.0]
    second = pd.concat([first, pd.DataFrame({"epoch": [1, 2], "hard": [4, 6]})], ignore_index=True)
    assert [m["hardmine/hard"] for m in new_history_metrics(second, logged)] == [4.0, 6.0]  # epochs 1 and 2 again
    assert new_history_metrics(second, logged) == [] and logged == [1, 2, 1, 2]


def test_log_history_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    miner = _trained_miner()
    assert log_history(tmp_path, miner) == 2  # epochs 1 and 2 (epoch 0 warms up)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    scalars = events.Scalars("hardmine/hard_fraction")
    assert [s.step for s in scalars] == [1, 2]
    assert [s.value for s in scalars] == pytest.approx(miner.history["hard_fraction"].tolist())

    class Recorder:
        def __init__(self):
            self.calls = []

        def add_scalar(self, tag, value, global_step=None):
            self.calls.append((tag, value, global_step))

    recorder = Recorder()
    assert log_history(recorder, miner, since_epoch=1) == 1
    assert {step for _tag, _value, step in recorder.calls} == {2}
    with pytest.raises(TypeError, match="`history`"):
        log_history(recorder, [1, 2])


def _two_ranks(monkeypatch, rank: int = 0) -> None:
    import hardmine.core.distributed

    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda: rank)


def test_double_sharding_warns_under_accelerates_batch_sampler_shard(monkeypatch):
    accelerate_data_loader = pytest.importorskip("accelerate.data_loader")
    from torch.utils.data import BatchSampler

    from hardmine import DoubleShardingWarning, HardSampler

    _two_ranks(monkeypatch)
    sharding = HardSampler(torch.ones(32), 32)  # shards itself: 16 indices on this rank
    shard = accelerate_data_loader.BatchSamplerShard(BatchSampler(sharding, 4, False), num_processes=2)
    with pytest.warns(DoubleShardingWarning, match="accelerate"):
        assert sum(len(b) for b in shard) == 8  # a quarter of the epoch: what the warning is about
    whole = HardSampler(torch.ones(32), 32, num_replicas=1)
    shard = accelerate_data_loader.BatchSamplerShard(BatchSampler(whole, 4, False), num_processes=2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DoubleShardingWarning)
        assert sum(len(b) for b in shard) == 16  # accelerate splits the one global draw: half each


def test_double_sharding_warns_under_lightnings_sampler_wrapper(monkeypatch):
    distributed = pytest.importorskip("lightning.fabric.utilities.distributed")
    from hardmine import DoubleShardingWarning, HardSampler

    _two_ranks(monkeypatch)
    wrapper = distributed.DistributedSamplerWrapper(HardSampler(torch.ones(32), 32), num_replicas=2, rank=0)
    with pytest.warns(DoubleShardingWarning, match="Lightning"):
        assert len(list(wrapper)) == 8
    wrapper = distributed.DistributedSamplerWrapper(
        HardSampler(torch.ones(32), 32, num_replicas=1), num_replicas=2, rank=0
    )
    assert len(list(wrapper)) == 16
