"""The Hugging Face Trainer drawing by a PrioritySampler (the integrations guide's recipe), on a tiny BERT.

Run as ``python tests/hf_priority_run.py OUT_DIR`` (one process) or ``torchrun --nproc_per_node=2
tests/hf_priority_run.py OUT_DIR`` (2 CPU processes, gloo). Each rank writes ``hf_priority_rank{R}.json``: the
dataset indices it trained on in each epoch, the sampler's observed losses as the first batch of each epoch arrives
(after the epoch's merge across ranks), each sample's loss as the training step last computed it beside the one the
sampler holds, and the global step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from hf_run import LENGTH, N, Tokens, finish, training_args
from reference import tiny_bert
from transformers import Trainer

from hardmine import PrioritySampler


class PriorityTrainer(Trainer):
    """The guide's recipe, recording what each step trained on."""

    def __init__(self, *args, sampler: PrioritySampler, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sampler = sampler
        self.drawn: dict[int, list[int]] = {}
        self.merged_at_start: dict[int, list[float]] = {}
        self.last_loss = torch.full((N,), float("nan"))

    def _get_train_sampler(self, train_dataset=None):
        return self.sampler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        idx = inputs.pop("idx", None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if idx is not None and model.training:
            epoch = self.sampler.epoch
            if epoch not in self.drawn:  # the epoch's pass has started: the ranks' observations are merged
                losses = self.sampler.observed.scores(now=epoch)
                self.merged_at_start[epoch] = torch.nan_to_num(losses, nan=-1.0).tolist()
            self.drawn.setdefault(epoch, []).extend(idx.tolist())
            logits = outputs.logits.detach()
            self.sampler.observe(idx, logits, inputs["labels"])
            self.last_loss[idx] = F.cross_entropy(logits.float(), inputs["labels"], reduction="none")
        return (loss, outputs) if return_outputs else loss


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = tiny_bert(num_labels=2, max_length=LENGTH)
    args = training_args(out_dir)
    # num_replicas=1, rank=0: every rank plans the whole epoch and accelerate hands each rank its share.
    sampler = PrioritySampler(N, pressure=20.0, half_life=None, num_replicas=1, rank=0, seed=3)
    trainer = PriorityTrainer(model=model, args=args, train_dataset=Tokens(), sampler=sampler)
    trainer.train()
    rank = dist.get_rank() if dist.is_initialized() else 0
    result = {
        "world": dist.get_world_size() if dist.is_initialized() else 1,
        "drawn": trainer.drawn,
        "merged_at_start": trainer.merged_at_start,
        "last_loss": trainer.last_loss.tolist(),
        "observed": torch.nan_to_num(sampler.observed.scores(now=sampler.epoch), nan=-1.0).tolist(),
        "global_step": trainer.state.global_step,
        "sampler_epoch": sampler.epoch,
    }
    finish(Path(out_dir, f"hf_priority_rank{rank}.json"), result)


if __name__ == "__main__":
    main(sys.argv[1])
