"""hardmine.integrations.hf: the Trainer subclass on a tiny BERT from a config, in one process and under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from hardmine import HardMiner  # noqa: E402
from hardmine.integrations.hf import HardMiningTrainer, unpack_hf_batch  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "hf_run.py"
ROOT = Path(__file__).resolve().parent.parent


def test_unpack_keeps_every_model_input():
    batch = {"input_ids": torch.ones(2, 3), "attention_mask": torch.zeros(2, 3), "labels": torch.tensor([1, 0])}
    inputs, labels = unpack_hf_batch(batch)
    assert sorted(inputs) == ["attention_mask", "input_ids"] and labels.tolist() == [1, 0]
    assert unpack_hf_batch({"x": torch.ones(1), "label": torch.tensor([2])})[1].tolist() == [2]
    with pytest.raises(ValueError, match="label key"):
        unpack_hf_batch({"input_ids": torch.ones(1)})
    with pytest.raises(TypeError, match="dict batch"):
        unpack_hf_batch((torch.ones(1), torch.ones(1)))


def test_trainer_refuses_a_miner_that_shards_itself(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset
    from transformers import TrainingArguments

    data = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
    model = torch.nn.Linear(2, 2)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    miner = HardMiner(model, DataLoader(data, batch_size=4), progress=False)
    with pytest.raises(ValueError, match="num_replicas=1"):
        HardMiningTrainer(model=model, args=args, train_dataset=data, miner=miner)
    ok = HardMiner(model, DataLoader(data, batch_size=4), num_replicas=1, progress=False)
    trainer = HardMiningTrainer(model=model, args=args, train_dataset=data, miner=ok)
    assert trainer.miner is ok and len(trainer._get_train_sampler()) == 8


def test_trainer_refuses_model_init_and_a_miner_over_other_samples(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset
    from transformers import TrainingArguments

    data = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match="`model_init` makes a new one at train\\(\\) that the miner would never see"):
        HardMiningTrainer(model_init=lambda: torch.nn.Linear(2, 2), args=args, train_dataset=data)
    model = torch.nn.Linear(2, 2)
    half = HardMiner(model, DataLoader(TensorDataset(*data[:4]), batch_size=4), num_replicas=1, progress=False)
    with pytest.raises(ValueError, match="the miner has 4 samples and `train_dataset` 8"):
        HardMiningTrainer(model=model, args=args, train_dataset=data, miner=half)


class _DictModel(torch.nn.Module):
    """Takes ``x`` and ``labels`` only: a key the dataset also carries (``idx``) would be an unexpected argument."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, x, labels=None):
        logits = self.linear(x)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def test_the_miners_scoring_pass_drops_the_columns_the_trainer_drops(tmp_path):
    from transformers import TrainingArguments

    g = torch.Generator().manual_seed(0)
    items = [{"x": torch.randn(2, generator=g), "labels": i % 2, "idx": i} for i in range(16)]
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", num_train_epochs=2, per_device_train_batch_size=4
    )
    trainer = HardMiningTrainer(
        model=_DictModel(), args=args, train_dataset=items, miner_kwargs={"warmup_epochs": 1, "rescore_every": 1}
    )
    trainer.train()  # the scoring pass of epoch 1 passed `idx` to forward() before
    assert trainer.miner.score_calls == 1 and trainer.miner.history["epoch"].tolist() == [1]


def _dict_trainer(out, items, **settings):
    from transformers import TrainingArguments

    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(out), use_cpu=True, report_to="none", num_train_epochs=5, per_device_train_batch_size=4,
        learning_rate=0.05, save_strategy="steps", save_steps=3, seed=0, data_seed=0, disable_tqdm=True, **settings
    )  # fmt: skip
    miner_kwargs = {"threshold": 0.7, "rescore_every": 2, "momentum": 0.5, "warmup_epochs": 1}
    return HardMiningTrainer(model=_DictModel(), args=args, train_dataset=items, miner_kwargs=miner_kwargs)


@pytest.mark.parametrize("step", [6, 12])  # in the middle of epoch 1 (steps 5 to 8), and at the end of epoch 2
def test_resuming_from_a_checkpoint_restores_the_miner(tmp_path, step):
    g = torch.Generator().manual_seed(1)
    items = [{"x": torch.randn(2, generator=g), "labels": i % 2} for i in range(16)]
    full = _dict_trainer(tmp_path / "full", items)
    full.train()
    checkpoint = tmp_path / "full" / f"checkpoint-{step}"
    assert (checkpoint / "hardmine_miner.pt").is_file()
    resumed = _dict_trainer(tmp_path / "resumed", items)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.miner.history["epoch"].tolist() == full.miner.history["epoch"].tolist() == [1, 3]
    assert torch.equal(resumed.miner.sampler.weights, full.miner.sampler.weights)
    for a, b in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    other = _dict_trainer(tmp_path / "other", items)
    (checkpoint / "hardmine_miner.pt").unlink()
    with pytest.warns(UserWarning, match="holds no hardmine_miner.pt: the miner starts afresh"):
        other.train(resume_from_checkpoint=str(checkpoint))


def _check(ranks: list[dict], world: int) -> None:
    assert [r["world"] for r in ranks] == [world] * world
    for r in ranks:
        assert r["history_epochs"] == [1, 2] and r["score_calls"] == 2  # warm-up epoch 0, then a pass per epoch
        assert r["global_step"] == 3 * 8 // world  # 64 samples, batches of 8, 3 epochs, split over the ranks
        # Scores through the miner equal a per-sample loop with the same model (attention_mask included).
        assert r["label_prob"] == pytest.approx(r["loop_label_prob"], abs=1e-5)
        assert [e["hardmine/epoch"] for e in r["logged"]] == [1.0, 2.0]
    assert all(r["expected"] == ranks[0]["expected"] for r in ranks)  # one global draw per epoch on every rank
    assert sorted(ranks[0]["expected"]) == ["0", "1", "2"]
    for epoch, draw in ranks[0]["expected"].items():
        shares = [r["drawn"][epoch] for r in ranks]
        assert len(draw) == 64 and all(len(s) == 64 // world for s in shares)  # not split twice
        assert sorted(sum(shares, [])) == sorted(draw)  # together exactly the epoch's draw
    if world == 1:
        assert ranks[0]["drawn"] == ranks[0]["expected"]


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_hf_trainer_one_process(tmp_path):
    _run([sys.executable, str(SCRIPT), str(tmp_path)], tmp_path)
    _check([json.loads((tmp_path / "hf_rank0.json").read_text())], 1)


def _torchrun(script: Path, out: Path) -> None:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun is not None
    _run([torchrun, "--standalone", "--nproc_per_node=2", str(script), str(out)], out)


@pytest.mark.slow
@pytest.mark.distributed
def test_hf_trainer_under_torchrun_is_not_split_twice(tmp_path):
    _torchrun(SCRIPT, tmp_path)
    _check([json.loads((tmp_path / f"hf_rank{r}.json").read_text()) for r in range(2)], 2)


PRIORITY_SCRIPT = Path(__file__).resolve().parent / "hf_priority_run.py"


def _check_priority(ranks: list[dict], world: int) -> None:
    assert [r["world"] for r in ranks] == [world] * world
    for r in ranks:
        assert r["global_step"] == 3 * 8 // world and r["sampler_epoch"] == 2  # the Trainer's epochs reach it
        assert sorted(r["drawn"]) == ["0", "1", "2"] and all(len(d) == 64 // world for d in r["drawn"].values())
        assert min(r["merged_at_start"]["0"]) == -1.0  # nothing observed before the first epoch
        for epoch in ("1", "2"):  # every sample observed by some rank, and each rank holds all of them
            assert min(r["merged_at_start"][epoch]) >= 0.0
    warm_up = sorted(sum((r["drawn"]["0"] for r in ranks), []))
    assert warm_up == list(range(64))  # the warm-up: one permutation, shared out by accelerate, not split twice
    for epoch in ("1", "2"):
        assert all(r["merged_at_start"][epoch] == ranks[0]["merged_at_start"][epoch] for r in ranks)


@pytest.mark.slow
def test_hf_trainer_priority_sampler_one_process(tmp_path):
    _run([sys.executable, str(PRIORITY_SCRIPT), str(tmp_path)], tmp_path)
    rank = json.loads((tmp_path / "hf_priority_rank0.json").read_text())
    _check_priority([rank], 1)
    # The sampler holds, for every sample, the loss of the logits its last training step computed: the indices
    # came through the collator with their samples.
    assert rank["observed"] == pytest.approx(rank["last_loss"], rel=1e-6, abs=1e-7)


@pytest.mark.slow
@pytest.mark.distributed
def test_hf_trainer_priority_sampler_under_torchrun_merges_and_is_not_split_twice(tmp_path):
    _torchrun(PRIORITY_SCRIPT, tmp_path)
    _check_priority([json.loads((tmp_path / f"hf_priority_rank{r}.json").read_text()) for r in range(2)], 2)


TOPK_SCRIPT = Path(__file__).resolve().parent / "hf_topk_run.py"


def _hand_written_step(start, micro_batches: list[list[int]], lr: float) -> dict[str, torch.Tensor]:
    """The step by hand: SGD on the mean, over every micro-batch of every rank, of its KEEP largest losses' mean."""
    import torch.nn.functional as F
    from hf_topk_run import KEEP, batch

    start.zero_grad()
    total = 0.0
    for indices in micro_batches:
        inputs, y = batch(indices)
        losses = F.cross_entropy(start(**inputs).logits, y, reduction="none")
        total = total + losses.topk(KEEP).values.mean() / len(micro_batches)
    total.backward()
    with torch.no_grad():
        return {name: p - lr * p.grad if p.grad is not None else p.clone() for name, p in start.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("per_batch_mean", [True, False])
def test_hf_trainer_trains_on_the_hardest_of_a_larger_batch_with_gradient_accumulation(tmp_path, per_batch_mean):
    """The guide's draw-10-train-on-8 recipe: one optimizer step over two micro-batches equals the hand-written step.

    Without the recipe's ``model_accepts_loss_kwargs = False`` (BERT's forward takes ``**kwargs``) the Trainer leaves
    the loss undivided by the accumulation steps, and the step is twice the hand-written one: the guide says so.
    """
    from hf_topk_run import DRAWN, LR, one_step

    trainer, model, start = one_step(str(tmp_path), per_batch_mean=per_batch_mean)
    assert [len(s) for s in trainer.seen] == [DRAWN, DRAWN] and trainer.sampler.observed.count == 2 * DRAWN
    want = _hand_written_step(start, trainer.seen, LR * (1.0 if per_batch_mean else 2.0))
    for name, q in model.named_parameters():
        torch.testing.assert_close(q, want[name], atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.distributed
def test_hf_trainer_trains_on_the_hardest_of_a_larger_batch_under_torchrun(tmp_path):
    """The same recipe on 2 processes: DDP's average of each rank's loss is the hand-written step over all 4 batches.

    Each rank draws its own micro-batches (accelerate shares the sampler's batches out, none twice) and its sampler
    holds the losses of what that rank drew, from the weights before the step, until the next epoch's merge.
    """
    import torch.nn.functional as F
    from hf_run import N
    from hf_topk_run import DRAWN, LR, batch, tiny_model

    _torchrun(TOPK_SCRIPT, tmp_path)
    ranks = [json.loads((tmp_path / f"hf_topk_rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]
    micro = [batch for r in ranks for batch in r["seen"]]
    assert [len(b) for b in micro] == [DRAWN] * 4
    drawn = sorted(i for b in micro for i in b)
    assert len(set(drawn)) == len(drawn) == 4 * DRAWN  # the warm-up permutation, shared out, not split twice

    start = tiny_model()
    start.load_state_dict(torch.load(tmp_path / "hf_topk_start.pt", weights_only=True))
    end = torch.load(tmp_path / "hf_topk_end.pt", weights_only=True)
    with torch.no_grad():  # each rank's sampler: the start weights' losses of its own draws, nothing else
        for r in ranks:
            own = [i for b in r["seen"] for i in b]
            inputs, y = batch(own)
            want = F.cross_entropy(start(**inputs).logits, y, reduction="none")
            observed = torch.tensor(r["observed"])
            torch.testing.assert_close(observed[own], want, atol=1e-5, rtol=1e-5)
            assert (observed[[i for i in range(N) if i not in own]] == -1.0).all()
    want_params = _hand_written_step(start, micro, LR)
    for name, q in want_params.items():
        torch.testing.assert_close(end[name], q, atol=1e-6, rtol=1e-5, msg=name)
