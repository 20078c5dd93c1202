"""The Hugging Face Trainer with HardMiningTrainer on a tiny BERT built from a config (no downloads).

Run as ``python tests/hf_run.py OUT_DIR`` (one process) or ``torchrun --nproc_per_node=2 tests/hf_run.py OUT_DIR``
(2 CPU processes, gloo). Each rank writes ``hf_rank{R}.json``: the dataset indices it trained on in each epoch, the
epoch's global draw rebuilt from the active sampler by a one-process HardSampler, the miner's history epochs, the
label_prob of its scoring table and of a per-sample loop with the same model, and the logged hardmine entries.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from reference import tiny_bert
from torch.utils.data import Dataset
from transformers import TrainerCallback, TrainingArguments

from hardmine import HardSampler
from hardmine.integrations.hf import HardMiningTrainer, unpack_hf_batch

N, LENGTH, BATCH, EPOCHS = 64, 8, 8, 3


class Tokens(Dataset):
    """Sequences of token ids with padding; label 1 when token 7 occurs. Each item carries its dataset index."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(10, 50, (N, LENGTH), generator=g)
        self.lengths = torch.randint(3, LENGTH + 1, (N,), generator=g)
        self.labels = (torch.rand(N, generator=g) < 0.4).long()
        for i in range(N):
            if self.labels[i]:
                self.ids[i, int(torch.randint(0, int(self.lengths[i]), (1,), generator=g))] = 7
            self.ids[i, int(self.lengths[i]) :] = 0

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = (torch.arange(LENGTH) < self.lengths[i]).long()
        return {"input_ids": self.ids[i], "attention_mask": mask, "labels": self.labels[i], "idx": torch.tensor(i)}


def unpack(batch):
    inputs, labels = unpack_hf_batch(batch)
    inputs.pop("idx")
    return inputs, labels


class Recording(HardMiningTrainer):
    drawn: dict[int, list[int]]

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        idx = inputs.pop("idx")
        epoch = self.miner.epoch
        self.drawn.setdefault(epoch, []).extend(idx.tolist())
        return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)


class Expected(TrainerCallback):
    def __init__(self) -> None:
        self.trainer: Recording | None = None
        self.expected: dict[int, list[int]] = {}

    def on_epoch_end(self, args, state, control, **kwargs):
        miner = self.trainer.miner
        s = miner.sampler if miner.phase == "mine" else miner._uniform_sampler
        ref = HardSampler(s.weights, s.num_samples, mode=s.mode, seed=s.seed, num_replicas=1)
        self.expected[miner.epoch] = ref.indices(miner.epoch).tolist()


def training_args(out_dir: str, **overrides: Any) -> TrainingArguments:
    """The runs' arguments: CPU, EPOCHS epochs of batches of BATCH, nothing saved or logged, the ``idx`` key kept.

    ``overrides`` replace or add ``TrainingArguments`` fields.
    """
    settings: dict[str, Any] = {
        "num_train_epochs": EPOCHS,
        "per_device_train_batch_size": BATCH,
        "learning_rate": 5e-3,
        "use_cpu": True,
        "report_to": "none",
        "save_strategy": "no",
        "logging_strategy": "no",
        "remove_unused_columns": False,
        "disable_tqdm": True,
        "seed": 0,
    }
    return TrainingArguments(output_dir=out_dir, **{**settings, **overrides})


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = tiny_bert(num_labels=2, max_length=LENGTH)
    args = training_args(out_dir)
    expected = Expected()
    trainer = Recording(
        model=model,
        args=args,
        train_dataset=Tokens(),
        callbacks=[expected],
        miner_kwargs={"threshold": 0.6, "score_kwargs": {"unpack": unpack}},
    )
    expected.trainer = trainer
    trainer.drawn = {}
    trainer.train()
    miner = trainer.miner
    data = Tokens()
    model.eval()
    with torch.no_grad():  # the reference: one sample at a time, the same model
        loop = []
        for i in range(N):
            item = data[i]
            logits = model(input_ids=item["input_ids"][None], attention_mask=item["attention_mask"][None]).logits
            loop.append(float(logits.softmax(-1)[0, int(item["labels"])]))
    from hardmine import score

    final = score(model, miner, progress=False, unpack=unpack)
    rank = dist.get_rank() if dist.is_initialized() else 0
    result = {
        "world": dist.get_world_size() if dist.is_initialized() else 1,
        "drawn": trainer.drawn,
        "expected": expected.expected,
        "history_epochs": miner.history["epoch"].tolist(),
        "score_calls": miner.score_calls,
        "label_prob": final["label_prob"].tolist(),
        "loop_label_prob": loop,
        "logged": [e for e in trainer.state.log_history if "hardmine/hard_fraction" in e],
        "global_step": trainer.state.global_step,
    }
    finish(Path(out_dir, f"hf_rank{rank}.json"), result)


def finish(path: Path, result: dict) -> None:
    """Write this rank's ``result`` as JSON, then tear the process group down, if any."""
    path.write_text(json.dumps(result))
    if dist.is_initialized():  # torn down before exit: gloo's threads can abort the process at interpreter exit
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
