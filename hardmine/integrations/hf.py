"""Hard-example mining in the Hugging Face ``Trainer``: a Trainer subclass and a callback over :class:`HardMiner`.

Needs ``transformers`` and ``accelerate`` (``pip install 'hardmine[hf]'``). The short way::

    trainer = HardMiningTrainer(model=model, args=args, train_dataset=train_ds, miner_kwargs={"threshold": 0.7})
    trainer.train()
    trainer.miner.history          # one row per scoring pass; also in trainer.state.log_history as hardmine/*

How it works, and why it is right under ``torchrun``: the Trainer builds its training DataLoader around the sampler
that ``_get_train_sampler`` returns; :class:`HardMiningTrainer` returns ``miner.as_sampler()``, whose every pass runs
the miner's epoch logic (warm-up, a scoring pass when the schedule says so) and yields the epoch's weighted draw.
Under torchrun, accelerate (inside the Trainer) shards that DataLoader's batches across the ranks itself, so the
miner is built with ``num_replicas=1``: every rank generates the same global draw (same weights, same seed and epoch)
and accelerate hands each rank its share; hardmine does not split it a second time. The scoring pass
(:func:`hardmine.score`) is sharded and gathered across ranks, so every rank computes the same weights. The Trainer
calls ``set_epoch`` on the sampler at each epoch (through accelerate), which the miner follows.

The recipe without the subclass, for a Trainer of your own: build the miner with ``num_replicas=1`` and
``score_kwargs={"unpack": unpack_hf_batch}``, return ``miner.as_sampler()`` from ``_get_train_sampler``, and add
``HardMiningCallback(miner)`` to the callbacks.

Only ``apply="sample"``: the Trainer computes the loss inside the model from the batch, so per-sample loss weights
would need a ``compute_loss`` of your own. If that returns a mean per batch and gradients are accumulated, set
``self.model_accepts_loss_kwargs = False`` in the subclass: for a model whose ``forward`` takes ``**kwargs`` the
Trainer otherwise expects a loss already divided over all the accumulated batches and does not divide it by
``gradient_accumulation_steps`` (the integrations guide shows it; the test suite checks it).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from hardmine.feedback.miner import HardMiner
from hardmine.integrations import new_history_metrics, require

_transformers = require("transformers", "hf")
require("accelerate", "hf")

__all__ = ["LABEL_KEYS", "MINER_STATE_FILE", "HardMiningCallback", "HardMiningTrainer", "unpack_hf_batch"]

#: The file in each Trainer checkpoint folder that holds the miner's state (:meth:`hardmine.HardMiner.state_dict`).
MINER_STATE_FILE = "hardmine_miner.pt"

#: Keys of a Hugging Face batch that hold the labels (the collators rename ``label`` to ``labels``).
LABEL_KEYS: tuple[str, ...] = ("labels", "label", "label_ids")


def unpack_hf_batch(batch: Mapping[str, Any]) -> tuple[dict[str, Any], Tensor]:
    """Split a Hugging Face batch into the model's keyword arguments and the labels.

    Every key but the label key goes to the model (``input_ids``, ``attention_mask``, ``token_type_ids``,
    ``pixel_values``, ...), so nothing the model needs is dropped.

    Args:
        batch: a dict batch from a Hugging Face collator, with a ``labels`` (or ``label``, ``label_ids``) tensor.

    Returns:
        ``(inputs, labels)``: a dict of the other entries, and the labels tensor ``(B,)``.

    Raises:
        TypeError: not a mapping.
        ValueError: no label key.

    Example:
        >>> import torch
        >>> inputs, y = unpack_hf_batch({"input_ids": torch.ones(2, 3), "attention_mask": torch.ones(2, 3),
        ...                              "labels": torch.tensor([0, 1])})
        >>> sorted(inputs), y.tolist()
        (['attention_mask', 'input_ids'], [0, 1])
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"Expected a dict batch from a Hugging Face collator, but got {type(batch).__name__}.")
    key = next((k for k in LABEL_KEYS if k in batch), None)
    if key is None:
        raise ValueError(f"Expected a label key, one of {LABEL_KEYS}, in the batch, but it has keys {sorted(batch)}.")
    return {k: v for k, v in batch.items() if k != key}, batch[key]


class HardMiningCallback(_transformers.TrainerCallback):  # type: ignore[name-defined]
    """Logs each scoring pass of ``miner.history`` into the Trainer's log (``hardmine/<column>`` entries).

    With ``trainer`` (as :class:`HardMiningTrainer` sets it) the rows go through ``trainer.log``, so every reporting
    integration of the Trainer (TensorBoard, W&B, ...) receives them; without it they are appended to
    ``state.log_history``.

    Args:
        miner: the miner whose :meth:`~hardmine.HardMiner.as_sampler` the Trainer draws from.
        trainer: the Trainer, for ``trainer.log``; optional.
        prefix: prefix of the logged names.
    """

    def __init__(self, miner: HardMiner, *, trainer: Any = None, prefix: str = "hardmine/") -> None:
        if not isinstance(miner, HardMiner):
            raise TypeError(f"Expected argument `miner` to be a hardmine HardMiner, but got {type(miner).__name__}.")
        self.miner = miner
        self.trainer = trainer
        self.prefix = prefix
        self.logged_epochs: list[int] = []

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Save the miner's state into the checkpoint folder the Trainer has just written (main process only)."""
        if args.should_save:
            folder = os.path.join(
                args.output_dir, f"{_transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            )
            if os.path.isdir(folder):
                torch.save(self.miner.state_dict(), os.path.join(folder, MINER_STATE_FILE))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Log the scoring passes not logged yet."""
        for metrics in new_history_metrics(self.miner.history, self.logged_epochs, self.prefix):
            if self.trainer is not None:
                self.trainer.log(metrics)
            else:
                state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})


class HardMiningTrainer(_transformers.Trainer):  # type: ignore[name-defined]
    """A ``transformers.Trainer`` whose training samples are drawn by a :class:`hardmine.HardMiner`.

    Takes every argument of ``Trainer`` plus:

    Args:
        miner: a :class:`hardmine.HardMiner` over ``train_dataset`` (same samples, same order) built with
            ``num_replicas=1`` and ``apply="sample"``; or ``None`` to build one from the Trainer's model,
            ``train_dataset``, ``data_collator`` and ``per_device_train_batch_size``.
        miner_kwargs: options for the miner built here (``threshold``, ``hard_weight``, ``warmup_epochs``,
            ``rescore_every``, ``score_loader``, ...); it always gets ``num_replicas=1``, and unless given
            ``score_kwargs={"unpack": unpack_hf_batch}`` and ``progress=False``.

    Attributes:
        miner: the miner; ``miner.history`` and ``miner.table`` after training.

    Raises:
        ValueError: ``miner`` and ``miner_kwargs`` together, a miner that shards across ranks itself
            (``num_replicas`` other than 1), or no ``train_dataset``.
    """

    def __init__(
        self,
        *args: Any,
        miner: HardMiner | None = None,
        miner_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if miner is not None and miner_kwargs is not None:
            raise ValueError("Expected one of `miner` and `miner_kwargs`, but got both.")
        if self.model_init is not None:
            raise ValueError(
                "HardMiningTrainer scores the model it is given, and `model_init` makes a new one at train() that the "
                "miner would never see: pass `model=` instead."
            )
        if miner is None:
            if self.train_dataset is None:
                raise ValueError("Expected a `train_dataset` for HardMiningTrainer to mine, but got None.")
            options = dict(miner_kwargs or {})
            if options.setdefault("num_replicas", 1) != 1:
                raise ValueError(
                    "Expected `num_replicas=1` in `miner_kwargs` (accelerate shards the draw across ranks), but got "
                    f"{options['num_replicas']!r}."
                )
            options.setdefault("score_kwargs", {"unpack": unpack_hf_batch})
            options.setdefault("progress", False)
            loader = DataLoader(
                self.train_dataset, batch_size=self._train_batch_size, collate_fn=self._training_collator()
            )
            miner = HardMiner(self.model, loader, **options)
        elif not isinstance(miner, HardMiner):
            raise TypeError(f"Expected argument `miner` to be a hardmine HardMiner, but got {type(miner).__name__}.")
        elif miner.num_replicas != 1:
            raise ValueError(
                "Expected a HardMiner built with num_replicas=1: accelerate shards the Trainer's batches across "
                f"ranks itself, and a miner that shards too would lose half the draws; got num_replicas="
                f"{miner.num_replicas!r}."
            )
        elif self.train_dataset is not None and len(miner.draws) != len(self.train_dataset):
            raise ValueError(
                f"Expected a `miner` over `train_dataset` (same samples, same order), but the miner has "
                f"{len(miner.draws)} samples and `train_dataset` {len(self.train_dataset)}."
            )
        self.miner = miner
        self.add_callback(HardMiningCallback(miner, trainer=self))

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; resuming from a checkpoint restores the miner too (its :data:`MINER_STATE_FILE`).

        Every checkpoint the Trainer saves holds the miner's state beside the model's, so a resumed run draws what the
        uninterrupted one would have. A checkpoint without it (saved by another Trainer) warns, and the miner starts
        afresh.
        """
        folder = resume_from_checkpoint
        if folder is True:
            folder = _transformers.trainer_utils.get_last_checkpoint(self.args.output_dir)
        if isinstance(folder, str) and folder:
            path = os.path.join(folder, MINER_STATE_FILE)
            if os.path.isfile(path):
                self.miner.load_state_dict(torch.load(path, weights_only=True))
            else:
                warnings.warn(
                    f"{folder} holds no {MINER_STATE_FILE}: the miner starts afresh (its weights, epoch and history "
                    "are not those of the run that saved the checkpoint).",
                    stacklevel=2,
                )
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _training_collator(self) -> Any:
        """The data collator with the columns the model does not take removed, as the Trainer's own loader has it."""
        if not self.args.remove_unused_columns:
            return self.data_collator
        return self._get_collator_with_removed_columns(self.data_collator, description="training")

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """The miner as a sampler: each epoch runs the miner's schedule and yields its weighted draw."""
        return self.miner.as_sampler()
