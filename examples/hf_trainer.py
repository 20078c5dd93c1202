"""The Hugging Face Trainer with hard mining, on a tiny BERT built from a config (no download) and generated text.

The task: sequences of token ids, label 1 when a "keyword" token occurs. The batches are dicts (``input_ids``,
``attention_mask``, ``labels``), so the miner scores with :func:`hardmine.integrations.hf.unpack_hf_batch`, which
passes every input (the attention mask too) to the model. Hard mining takes the lines marked ``# hardmine``:
``HardMiningTrainer`` in place of ``Trainer``, and the history at the end. Under
``torchrun --nproc_per_node=2 examples/hf_trainer.py`` accelerate shards the one weighted draw across the ranks.

    python examples/hf_trainer.py --epochs 4
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

from hardmine.integrations.hf import HardMiningTrainer  # hardmine

KEYWORD, VOCAB, LENGTH = 7, 60, 12


class KeywordTexts(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(10, VOCAB, (n, LENGTH), generator=g)
        self.lengths = torch.randint(4, LENGTH + 1, (n,), generator=g)
        self.labels = (torch.rand(n, generator=g) < 0.3).long()
        for i in range(n):
            if self.labels[i]:
                self.ids[i, int(torch.randint(0, int(self.lengths[i]), (1,), generator=g))] = KEYWORD
            self.ids[i, int(self.lengths[i]) :] = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = (torch.arange(LENGTH) < self.lengths[i]).long()
        return {"input_ids": self.ids[i], "attention_mask": mask, "labels": self.labels[i]}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Hugging Face Trainer + hardmine on a tiny BERT")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output-dir", default="hf_out")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=LENGTH,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=3e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
        seed=0,
    )
    test = KeywordTexts(256, seed=1)
    trainer = HardMiningTrainer(  # hardmine (in place of Trainer)
        model=model,
        args=training_args,
        train_dataset=KeywordTexts(args.train_size, seed=0),
        miner_kwargs={"threshold": 0.7},
    )
    trainer.train()
    model.eval()
    with torch.no_grad():
        batch = {k: torch.stack([test[i][k] for i in range(len(test))]) for k in ("input_ids", "attention_mask")}
        accuracy = float((model(**batch).logits.argmax(1) == test.labels).float().mean())
    print(trainer.miner.history[["epoch", "hard", "accuracy"]].to_string(index=False))  # hardmine
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
