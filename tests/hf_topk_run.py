"""The Hugging Face Trainer training on the hardest ``keep`` of each drawn batch (the integrations guide's recipe).

One optimizer step: plain SGD over ``ACCUMULATION`` micro-batches of ``DRAWN`` samples drawn by a
``PrioritySampler``, each trained on the mean loss of its ``KEEP`` largest losses (``hm.ohem_loss``). Run as
``python tests/hf_topk_run.py OUT_DIR`` (one process) or ``torchrun --nproc_per_node=2 tests/hf_topk_run.py OUT_DIR``
(2 CPU processes, gloo). Each rank writes ``hf_topk_rank{R}.json`` (the dataset indices of each micro-batch it trained
on, the losses its sampler observed); rank 0 also writes ``hf_topk_start.pt`` and ``hf_topk_end.pt``, the model's
weights before and after the step, for the test to compare with the step written by hand.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from hf_run import LENGTH, Tokens, finish, training_args
from reference import tiny_bert
from transformers import Trainer

import hardmine as hm

DRAWN, KEEP, ACCUMULATION, LR = 10, 8, 2, 0.5


class TopKTrainer(Trainer):
    """As in docs/guides/integrations.md: draw by the sampler, train on the ``keep`` largest losses, observe them all.

    ``per_batch_mean=False`` leaves out the recipe's ``model_accepts_loss_kwargs = False``, to show what it is for.
    """

    def __init__(self, *args: Any, sampler: hm.PrioritySampler, keep: int, per_batch_mean: bool = True, **kwargs: Any):
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


def tiny_model() -> torch.nn.Module:
    """The tiny BERT of these runs, without dropout (so a step by hand sees the same forward pass)."""
    return tiny_bert(num_labels=2, max_length=LENGTH, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def batch(indices: list[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model inputs and labels of the ``Tokens`` samples at ``indices``, stacked as the collator does."""
    items = [Tokens()[i] for i in indices]
    inputs = {k: torch.stack([it[k] for it in items]) for k in ("input_ids", "attention_mask")}
    return inputs, torch.stack([it["labels"] for it in items])


def one_step(out_dir: str, *, per_batch_mean: bool = True) -> tuple[TopKTrainer, torch.nn.Module, torch.nn.Module]:
    """Train the tiny BERT for one accumulated SGD step; returns the trainer, the model and a copy of its start."""
    torch.manual_seed(0)
    model = tiny_model()
    start = copy.deepcopy(model)
    sampler = hm.PrioritySampler(Tokens(), seed=1, num_replicas=1, rank=0)  # accelerate shares the batches out
    args = training_args(
        out_dir,
        max_steps=1,
        per_device_train_batch_size=DRAWN,
        gradient_accumulation_steps=ACCUMULATION,
        optim="sgd",
        learning_rate=LR,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
    )
    trainer = TopKTrainer(
        model=model, args=args, train_dataset=Tokens(), sampler=sampler, keep=KEEP, per_batch_mean=per_batch_mean
    )
    trainer.train()
    return trainer, model, start


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    trainer, model, start = one_step(out_dir)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0:
        torch.save(start.state_dict(), Path(out_dir, "hf_topk_start.pt"))
        torch.save(model.state_dict(), Path(out_dir, "hf_topk_end.pt"))
    observed = trainer.sampler.observed.scores(now=trainer.sampler.epoch)
    result = {
        "world": dist.get_world_size() if dist.is_initialized() else 1,
        "seen": trainer.seen,
        "observed": torch.nan_to_num(observed, nan=-1.0).tolist(),
    }
    finish(Path(out_dir, f"hf_topk_rank{rank}.json"), result)


if __name__ == "__main__":
    main(sys.argv[1])
