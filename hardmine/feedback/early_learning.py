"""Early-learning regularization (ELR; Liu et al., NeurIPS 2020): cross-entropy that resists memorising wrong labels.

A network fitted to noisy labels first learns the clean patterns and only later memorises the wrong labels. ELR keeps,
for every sample, an exponential average ``t_i`` of the model's own predictions (the *target*) and adds to the
cross-entropy a term that rewards agreeing with it::

    p_i = clamp(softmax(z_i), 1e-4, 1 - 1e-4)
    t_i <- beta * t_i + (1 - beta) * p_i / sum(p_i)          (p_i detached; t_i starts at 0)
    loss_i = CE(z_i, y_i) + lam * log(1 - <t_i, p_i>)

The gradient of the second term pulls the prediction toward what the model predicted early, which for a wrong label is
usually the true class: it cancels much of the pull of the wrong label, while a clean sample's target agrees with its
label. The targets are a ``(N, C)`` float32 buffer indexed by the batch's dataset indices (``hm.with_indices`` gives
them), so the loss is a module: it moves with ``.to(device)``, and its ``state_dict`` resumes a run.

**Precision**: the loss is computed in the logits' dtype (half precision in float32); the targets are kept in the
buffer's dtype (float32, or what ``.double()``/``.to(dtype)`` made it), each update rounded to it. So float64 logits
with the default module, or float32 logits with a ``.double()`` module, both work.

**Under torch.distributed** each rank updates the targets of the samples it trains on. :meth:`EarlyLearningLoss.sync`
(a collective: call it on every rank, e.g. when an epoch starts) gives every rank, for each sample, the target of the
rank that updated it last. With ``DistributedSampler`` a sample is trained on by one rank an epoch, so syncing every
epoch keeps every target exactly what one process would have.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from hardmine.core import validate
from hardmine.core._tensors import check_float_tensor, check_int_tensor, check_range
from hardmine.core.distributed import get_world_size
from hardmine.feedback.losses import Reduction, _check_reduction, _reduce, _upcast

__all__ = ["EarlyLearningLoss"]

_CLAMP = 1e-4  # the reference implementation's clamp of the probabilities, which keeps log(1 - <t, p>) finite


class EarlyLearningLoss(nn.Module):
    """Cross-entropy plus early-learning regularization, with a per-sample target kept across steps.

    ``loss_i = CE(z_i, y_i) + lam * log(1 - <t_i, p_i>)``, where ``t_i`` is the running average of the sample's past
    predictions (``beta`` the weight of the old average), updated by every call before the loss is computed (see the
    module doc). Call it once per training step with the batch's dataset indices; its buffers (``targets`` and
    ``updated``) are in the ``state_dict``.

    Accepts the following input tensors:

    - ``indices`` (int tensor): ``(B,)``, dataset indices in ``[0, num_samples)``
    - ``logits`` (float tensor): ``(B, C)`` with ``C == num_classes``, or ``(B,)`` / ``(B, 1)`` for a binary task
      (``num_classes=2``, ``P(class 1) = sigmoid(logit)``)
    - ``targets`` (int tensor): ``(B,)`` class indices in ``[0, C)``

    A sample twice in one batch (a sampler drawing with replacement): each row's loss uses the target updated from
    that row, and the buffer keeps one of them.

    Args:
        num_samples: ``N``, the dataset's length.
        num_classes: ``C``, ``>= 2``.
        beta: weight of the old target in the running average, in ``[0, 1)``. The default 0.9 was chosen by
            ``benchmarks/bench_selection.py`` (the paper used 0.7 on CIFAR-10, where every sample is seen once an
            epoch; 0.7 did as well within the noise of 3 seeds here).
        lam: weight of the regularization, ``>= 0``; 0 gives plain cross-entropy (the targets are still updated).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-sample losses ``(B,)``).

    Example:
        >>> import torch
        >>> elr = EarlyLearningLoss(num_samples=100, num_classes=3)
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]], requires_grad=True)
        >>> loss = elr(torch.tensor([4, 7]), logits, torch.tensor([0, 1]))
        >>> loss.backward()
        >>> elr.targets[4].round(decimals=4)  # 0.1 of the first prediction: beta = 0.9, starting from 0
        tensor([0.0787, 0.0107, 0.0107])
    """

    targets: Tensor
    updated: Tensor
    step: Tensor

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        *,
        beta: float = 0.9,
        lam: float = 3.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.num_samples = validate.integer("num_samples", num_samples, min=1)
        self.num_classes = validate.integer("num_classes", num_classes, min=2)
        self.beta = validate.number("beta", beta, min=0, max=1, max_open=True)
        self.lam = validate.number("lam", lam, min=0)
        _check_reduction(reduction)
        self.reduction = reduction
        self.register_buffer("targets", torch.zeros(self.num_samples, self.num_classes))
        # The step of each sample's last update (0: never), so that `sync` can take the latest of the ranks.
        self.register_buffer("updated", torch.zeros(self.num_samples, dtype=torch.int64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        """The settings, for ``repr``."""
        return (
            f"num_samples={self.num_samples}, num_classes={self.num_classes}, beta={self.beta}, lam={self.lam}, "
            f"reduction={self.reduction!r}"
        )

    def _check(self, indices: Tensor, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_int_tensor("indices", indices, "dataset indices")
        check_float_tensor("logits", logits, "model outputs")
        check_int_tensor("targets", targets, "class indices")
        b = indices.numel()
        if indices.ndim != 1:
            raise ValueError(f"Expected argument `indices` of shape (B,), but got shape {tuple(indices.shape)}.")
        z = _upcast(logits)
        if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):
            if self.num_classes != 2:
                raise ValueError(
                    f"Expected logits of shape ({b}, {self.num_classes}) for num_classes={self.num_classes}, but "
                    f"got the single-logit shape {tuple(logits.shape)} (binary tasks only)."
                )
            z = z.reshape(-1)
            z = torch.stack([torch.zeros_like(z), z], dim=1)  # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]
        if z.ndim != 2 or z.shape != (b, self.num_classes):
            raise ValueError(
                f"Expected argument `logits` of shape ({b}, {self.num_classes}) (one row per index), but got shape "
                f"{tuple(logits.shape)}."
            )
        if targets.shape != (b,):
            raise ValueError(f"Expected argument `targets` of shape ({b},), but got shape {tuple(targets.shape)}.")
        idx = indices.to(self.targets.device, torch.int64, non_blocking=True)
        y = targets.to(z.device, torch.int64, non_blocking=True)
        check_range("indices", idx, self.num_samples)
        check_range("targets", y, self.num_classes, "to be class indices")
        return idx, z, y

    def forward(self, indices: Tensor, logits: Tensor, targets: Tensor) -> Tensor:
        """Update the batch's targets from its predictions, then return the regularized loss.

        Args:
            indices: ``(B,)`` dataset indices of the batch's samples.
            logits: ``(B, C)`` (or ``(B,)`` binary) model outputs; half precision is computed in float32.
            targets: ``(B,)`` class indices (the given, possibly wrong, labels).

        Returns:
            A scalar, or ``(B,)`` for ``reduction="none"``, in the logits' dtype (float32 for half precision),
            whatever the dtype of the targets buffer.
        """
        idx, z, y = self._check(indices, logits, targets)
        log_p = torch.log_softmax(z, dim=1)
        ce = F.nll_loss(log_p, y, reduction="none")
        p = log_p.exp().clamp(_CLAMP, 1.0 - _CLAMP)
        with torch.no_grad():  # the targets first, then the loss against them (as in the paper's code)
            self.step.add_(1)
            fresh = p.detach()
            fresh = (fresh / fresh.sum(dim=1, keepdim=True)).to(self.targets.device, self.targets.dtype)
            t = self.targets[idx].mul_(self.beta).add_(fresh, alpha=1.0 - self.beta)
            self.targets[idx] = t
            self.updated[idx] = self.step
        t = t.to(p.device, p.dtype, non_blocking=True)  # the loss in the logits' precision, the buffer in its own
        loss = torch.add(ce, torch.log1p(-torch.linalg.vecdot(t, p)), alpha=self.lam) if self.lam else ce
        return _reduce(loss, self.reduction)

    def sync(self) -> None:
        """Under torch.distributed, give every rank each sample's target from the rank that updated it last.

        A collective (one ``all_gather`` of the ``(N, C)`` targets): call it on every rank, e.g. when an epoch
        starts. Without an initialised process group, or with one process, it does nothing.
        """
        if not dist.is_available() or not dist.is_initialized() or get_world_size() <= 1:
            return
        world = get_world_size()
        stamps = [torch.empty_like(self.updated) for _ in range(world)]
        dist.all_gather(stamps, self.updated)
        every_t = [torch.empty_like(self.targets) for _ in range(world)]
        dist.all_gather(every_t, self.targets)
        stamp = torch.stack(stamps)  # (W, N)
        latest = stamp.argmax(dim=0)  # ties (never updated, or by several ranks at once): the lowest rank
        rows = torch.stack(every_t)  # (W, N, C)
        self.targets.copy_(rows.gather(0, latest[None, :, None].expand(1, -1, self.num_classes))[0])
        self.updated.copy_(stamp.max(dim=0).values)
