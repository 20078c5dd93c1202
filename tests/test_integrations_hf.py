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


@pytest.mark.slow
@pytest.mark.parametrize("per_batch_mean", [True, False])
def test_hf_trainer_trains_on_the_hardest_of_a_larger_batch_with_gradient_accumulation(tmp_path, per_batch_mean):
    """The guide's draw-10-train-on-8 recipe: one optimizer step over two micro-batches equals the hand-written step.

    Without the recipe's ``model_accepts_loss_kwargs = False`` (BERT's forward takes ``**kwargs``) the Trainer leaves
    the loss undivided by the accumulation steps, and the step is twice the hand-written one: the guide says so.
    """
    import copy

    import torch.nn.functional as F
    from hf_run import Tokens, training_args
    from reference import tiny_bert
    from transformers import Trainer

    import hardmine as hm

    class TopKTrainer(Trainer):  # as in docs/guides/integrations.md
        def __init__(self, *args, sampler, keep, **kwargs):
            super().__init__(*args, **kwargs)
            self.sampler, self.keep = sampler, keep
            if per_batch_mean:
                self.model_accepts_loss_kwargs = False  # a mean per batch: the Trainer divides it by the accumulation
            self.seen: list[list[int]] = []

        def _get_train_sampler(self, train_dataset=None):
            return self.sampler

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            idx, labels = inputs.pop("idx", None), inputs.pop("labels")
            outputs = model(**inputs)
            loss = hm.ohem_loss(outputs.logits, labels, keep=self.keep)
            if idx is not None and model.training:
                self.sampler.observe(idx, outputs.logits.detach(), labels)
                self.seen.append(idx.tolist())
            return (loss, outputs) if return_outputs else loss

    torch.manual_seed(0)
    model = tiny_bert(num_labels=2, max_length=8, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    start = copy.deepcopy(model)
    data = Tokens()
    sampler = hm.PrioritySampler(data, seed=1, num_replicas=1, rank=0)
    args = training_args(
        str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=10,
        gradient_accumulation_steps=2,
        optim="sgd",
        learning_rate=0.5,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
    )
    trainer = TopKTrainer(model=model, args=args, train_dataset=data, sampler=sampler, keep=8)
    trainer.train()
    assert [len(s) for s in trainer.seen] == [10, 10] and sampler.observed.count == 20  # all 20 losses observed

    # The reference: the mean over both micro-batches of the mean loss of each one's 8 hardest samples, one SGD step.
    items = [[data[i] for i in s] for s in trainer.seen]
    total = 0.0
    for batch in items:
        ids = torch.stack([it["input_ids"] for it in batch])
        mask = torch.stack([it["attention_mask"] for it in batch])
        y = torch.stack([it["labels"] for it in batch])
        losses = F.cross_entropy(start(input_ids=ids, attention_mask=mask).logits, y, reduction="none")
        total = total + losses.topk(8).values.mean() / len(items)
    total.backward()
    with torch.no_grad():
        for (name, p), q in zip(start.named_parameters(), model.parameters(), strict=True):
            want = p - (0.5 if per_batch_mean else 1.0) * p.grad if p.grad is not None else p
            torch.testing.assert_close(q, want, atol=1e-6, rtol=1e-5, msg=name)
