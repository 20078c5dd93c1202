"""Hard-example mining in Lightning 2.x: a callback that keeps a :class:`hardmine.HardMiner` in step with the Trainer.

Needs ``lightning`` (``pip install 'hardmine[lightning]'``). Pass the miner itself as the training data and the
callback beside it::

    miner = hm.HardMiner(module, train_loader, threshold=0.7)
    trainer = L.Trainer(max_epochs=10, callbacks=[HardMiningCallback(miner)])
    trainer.fit(module, train_dataloaders=miner)

Under ``strategy="ddp"`` this is correct as it stands: a HardMiner is not a ``DataLoader``, so Lightning leaves its
sampling alone (``use_distributed_sampler`` only replaces the sampler of ``DataLoader`` objects), and the miner reads
the rank and world size when each epoch's draw starts, inside ``fit``, after Lightning has started the process
group: every rank gets its own strided share of the one weighted draw, ``ceil(num_samples / world_size)`` samples.
The scoring passes are sharded and gathered by :func:`hardmine.score`, so every rank computes the same weights.

If you return a ``DataLoader`` built on ``miner.as_sampler()`` from ``train_dataloader()`` instead, either build the
miner with ``num_replicas=1`` (Lightning's ``DistributedSamplerWrapper`` then splits the one global draw) or set
``Trainer(use_distributed_sampler=False)``; the sampler warns (``DoubleShardingWarning``) when both shard.
"""

from __future__ import annotations

from typing import Any

from hardmine.feedback.miner import HardMiner
from hardmine.integrations import new_history_metrics, require

_L = require("lightning.pytorch", "lightning")

__all__ = ["HardMiningCallback"]


class HardMiningCallback(_L.Callback):  # type: ignore[name-defined]
    """Sets the miner's epoch from the Trainer's and logs each scoring pass with the Trainer's loggers.

    At every ``on_train_epoch_start`` the miner gets ``miner.set_epoch(trainer.current_epoch)``, so its warm-up,
    re-scoring schedule and draws follow the Trainer's epochs even when an epoch stops early
    (``limit_train_batches``) or training resumes from a checkpoint, whose callback state holds the miner's own
    (:meth:`state_dict`). At every ``on_train_epoch_end`` the history rows
    of scoring passes not logged yet go to ``trainer.loggers`` as ``hardmine/<column>`` metrics (hard count and
    fraction, mean scores, accuracy, seconds, draws per hard and easy sample), at the trainer's global step.

    Args:
        miner: the :class:`hardmine.HardMiner` passed to ``fit`` as the training data (or whose
            :meth:`~hardmine.HardMiner.as_sampler` the training DataLoader uses).
        prefix: prefix of the logged metric names; give each miner's callback its own when there are several
            (it also names the callback's state in checkpoints).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
        >>> callback = HardMiningCallback(HardMiner(torch.nn.Linear(2, 2), DataLoader(ds, batch_size=4)))
        >>> callback.logged_epochs
        []
    """

    def __init__(self, miner: HardMiner, *, prefix: str = "hardmine/") -> None:
        super().__init__()
        if not isinstance(miner, HardMiner):
            raise TypeError(f"Expected argument `miner` to be a hardmine HardMiner, but got {type(miner).__name__}.")
        self.miner = miner
        self.prefix = prefix
        self.logged_epochs: list[int] = []

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint, unique per ``prefix``."""
        return str(self._generate_state_key(prefix=self.prefix))

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Make the miner's next pass the Trainer's current epoch."""
        self.miner.set_epoch(int(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Log the scoring passes of the miner's history that were not logged yet."""
        for metrics in new_history_metrics(self.miner.history, self.logged_epochs, self.prefix):
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        """The epochs already logged and the miner's state (:meth:`hardmine.HardMiner.state_dict`), for checkpoints.

        Lightning saves it in every checkpoint and restores it on ``fit(..., ckpt_path=...)``, so a resumed run
        draws what the uninterrupted one would have.
        """
        return {"logged_epochs": list(self.logged_epochs), "miner": self.miner.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a checkpoint saved before 0.5, without the miner's state, restores the log)."""
        self.logged_epochs = [int(e) for e in state_dict.get("logged_epochs", [])]
        if "miner" in state_dict:
            self.miner.load_state_dict(state_dict["miner"])
