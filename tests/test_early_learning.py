"""hm.EarlyLearningLoss against a per-sample loop of the paper's formula (Liu et al., 2020), state, errors, ranks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import hardmine as hm


def _reference(steps, n: int, c: int, beta: float, lam: float):
    """The ELR loss of every step, sample by sample, in plain Python floats; and the final targets."""
    targets = [[0.0] * c for _ in range(n)]
    losses = []
    for idx, logits, y in steps:
        out = []
        for i, z, label in zip(idx.tolist(), logits.tolist(), y.tolist(), strict=True):
            m = max(z)
            e = [math.exp(v - m) for v in z]
            p = [v / sum(e) for v in e]
            ce = -math.log(p[label])
            pc = [min(max(v, 1e-4), 1 - 1e-4) for v in p]
            s = sum(pc)
            targets[i] = [beta * t + (1 - beta) * v / s for t, v in zip(targets[i], pc, strict=True)]
            out.append(ce + lam * math.log(1 - sum(t * v for t, v in zip(targets[i], pc, strict=True))))
        losses.append(out)
    return losses, targets


def _steps(n: int, c: int, count: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        idx = torch.randperm(n, generator=g)[:5]
        out.append(
            (idx, 3 * torch.randn(5, c, generator=g, dtype=torch.float64), torch.randint(0, c, (5,), generator=g))
        )
    return out


@pytest.mark.parametrize(("beta", "lam"), [(0.9, 3.0), (0.7, 1.0), (0.0, 0.5)])
def test_losses_and_targets_equal_a_per_sample_loop(beta: float, lam: float) -> None:
    n, c = 12, 4
    steps = _steps(n, c, 10)
    elr = hm.EarlyLearningLoss(n, c, beta=beta, lam=lam, reduction="none")
    got = [elr(idx, z.float(), y) for idx, z, y in steps]
    want, targets = _reference(steps, n, c, beta, lam)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, torch.tensor(w, dtype=torch.float32), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(elr.targets, torch.tensor(targets, dtype=torch.float32), atol=1e-6, rtol=1e-5)
    assert int(elr.step) == 10
    seen = torch.zeros(n, dtype=torch.bool)
    for idx, _, _ in steps:
        seen[idx] = True
    assert bool((elr.updated > 0).eq(seen).all()) and int(elr.updated.max()) == 10


def test_reductions_and_lam_zero_is_cross_entropy() -> None:
    idx, z, y = _steps(8, 3, 1)[0]
    z = z.float()
    per = hm.EarlyLearningLoss(8, 3, reduction="none")(idx, z, y)
    torch.testing.assert_close(hm.EarlyLearningLoss(8, 3)(idx, z, y), per.mean())
    torch.testing.assert_close(hm.EarlyLearningLoss(8, 3, reduction="sum")(idx, z, y), per.sum())
    plain = hm.EarlyLearningLoss(8, 3, lam=0.0, reduction="none")
    torch.testing.assert_close(plain(idx, z, y), F.cross_entropy(z, y, reduction="none"))
    assert float(plain.targets[idx].sum()) == pytest.approx(0.1 * len(idx), rel=1e-5)  # updated all the same


def test_the_regularizer_pulls_a_wrong_label_toward_the_early_prediction() -> None:
    """With the target on the true class 2 and the given label 0, the gradient raises class 2's logit."""
    elr = hm.EarlyLearningLoss(1, 3, beta=0.99, lam=3.0)
    elr.targets[0] = torch.tensor([0.0, 0.0, 1.0])
    z = torch.tensor([[0.0, 0.0, 2.0]], requires_grad=True)
    elr(torch.tensor([0]), z, torch.tensor([0])).backward()
    z_ce = z.detach().clone().requires_grad_(True)
    F.cross_entropy(z_ce, torch.tensor([0])).backward()
    assert z_ce.grad is not None and z.grad is not None
    assert float(z_ce.grad[0, 2]) > 0  # cross-entropy alone lowers the true class
    assert float(z.grad[0, 2]) < 0  # the regularized loss raises it
    assert float(z.grad[0, 0]) > float(z_ce.grad[0, 0])  # and pushes the wrong label less


def test_a_single_binary_logit_is_two_classes() -> None:
    idx = torch.tensor([0, 3, 5])
    z = torch.tensor([1.5, -0.5, 0.2])
    y = torch.tensor([1, 0, 0])
    one = hm.EarlyLearningLoss(6, 2, reduction="none")
    two = hm.EarlyLearningLoss(6, 2, reduction="none")
    torch.testing.assert_close(one(idx, z, y), two(idx, torch.stack([torch.zeros(3), z], 1), y))
    torch.testing.assert_close(one(idx, z[:, None], y), two(idx, torch.stack([torch.zeros(3), z], 1), y))
    torch.testing.assert_close(one.targets, two.targets)


def test_half_precision_logits_give_a_float32_loss() -> None:
    idx, z, y = _steps(8, 3, 1)[0]
    out = hm.EarlyLearningLoss(8, 3)(idx, z.to(torch.bfloat16), y)
    ref = hm.EarlyLearningLoss(8, 3)(idx, z.to(torch.bfloat16).float(), y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize(
    ("module", "logits", "tol"),
    [
        (torch.float32, torch.float64, 1e-6),  # float64 logits, the default float32 targets
        (torch.float64, torch.float32, 2e-5),  # a .double() module, float32 logits
        (torch.float64, torch.float64, 1e-12),  # both float64: the reference to float64 precision
    ],
    ids=["f64-logits", "double-module", "both-f64"],
)
def test_the_loss_is_in_the_logits_dtype_and_the_targets_in_the_buffers(module, logits, tol) -> None:
    n, c = 12, 4
    steps = _steps(n, c, 6, seed=2)
    elr = hm.EarlyLearningLoss(n, c, beta=0.7, lam=3.0, reduction="none")
    if module == torch.float64:
        elr = elr.double()
    want, targets = _reference(steps, n, c, 0.7, 3.0)
    for (idx, z, y), w in zip(steps, want, strict=True):
        zz = z.to(logits).requires_grad_(True)
        out = elr(idx, zz, y)
        assert out.dtype == logits
        torch.testing.assert_close(out, torch.tensor(w, dtype=logits), atol=tol, rtol=tol)
        (g,) = torch.autograd.grad(out.sum(), zz)
        assert g.dtype == logits and bool(torch.isfinite(g).all())
    assert elr.targets.dtype == module
    torch.testing.assert_close(elr.targets, torch.tensor(targets, dtype=module), atol=tol, rtol=tol)


def test_a_repeated_index_is_updated_once() -> None:
    elr = hm.EarlyLearningLoss(4, 3, beta=0.5, reduction="none")
    z = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = elr(torch.tensor([2, 2, 1]), z, torch.tensor([0, 0, 1]))
    p = torch.softmax(z[0], 0).clamp(1e-4, 1 - 1e-4)
    torch.testing.assert_close(elr.targets[2], 0.5 * p / p.sum())
    assert out[0] == out[1]


def test_state_dict_round_trip_continues_the_same(tmp_path: Path) -> None:
    steps = _steps(10, 3, 6, seed=3)
    a = hm.EarlyLearningLoss(10, 3, reduction="none")
    for idx, z, y in steps[:3]:
        a(idx, z.float(), y)
    torch.save(a.state_dict(), tmp_path / "elr.pt")
    b = hm.EarlyLearningLoss(10, 3, reduction="none")
    b.load_state_dict(torch.load(tmp_path / "elr.pt", weights_only=True))
    for idx, z, y in steps[3:]:
        torch.testing.assert_close(a(idx, z.float(), y), b(idx, z.float(), y))
    torch.testing.assert_close(a.targets, b.targets)
    assert int(a.step) == int(b.step) == 6


def test_it_is_a_module_whose_buffers_move_with_it() -> None:
    elr = hm.EarlyLearningLoss(5, 2).to(torch.float64)
    assert "num_samples=5" in repr(elr) and set(elr.state_dict()) == {"targets", "updated", "step"}
    assert elr.updated.dtype == torch.int64  # integer buffers keep their dtype


@pytest.mark.parametrize(
    ("kwargs", "call", "error", "match"),
    [
        ({"num_samples": 0, "num_classes": 3}, None, ValueError, "num_samples"),
        ({"num_samples": 5, "num_classes": 1}, None, ValueError, "num_classes"),
        ({"num_samples": 5, "num_classes": 3, "beta": 1.0}, None, ValueError, "beta"),
        ({"num_samples": 5, "num_classes": 3, "lam": -1.0}, None, ValueError, "lam"),
        ({"num_samples": 5, "num_classes": 3, "reduction": "avg"}, None, ValueError, "reduction"),
        ({"num_samples": 5, "num_classes": 3}, ([0.0, 1.0], (2, 3), [0, 1]), TypeError, "indices"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 5], (2, 3), [0, 1]), ValueError, r"\[0, 5\).*\[5\]"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (2, 4), [0, 1]), ValueError, r"\(2, 3\)"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (3, 3), [0, 1]), ValueError, r"\(2, 3\)"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (2,), [0, 1]), ValueError, "binary tasks only"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (2, 3), [0, 3]), ValueError, r"class indices in \[0, 3\)"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (2, 3), [0.0, 1.0]), TypeError, "targets"),
        ({"num_samples": 5, "num_classes": 3}, ([0, 1], (2, 3), [0, 1, 2]), ValueError, r"targets.*\(2,\)"),
    ],
)
def test_bad_input_is_named(kwargs, call, error, match) -> None:
    with pytest.raises(error, match=match):
        elr = hm.EarlyLearningLoss(**kwargs)
        if call is not None:
            idx, shape, y = call
            elr(torch.tensor(idx), torch.zeros(shape), torch.tensor(y))


def test_integer_logits_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="logits"):
        hm.EarlyLearningLoss(5, 3)(torch.tensor([0]), torch.zeros(1, 3, dtype=torch.int64), torch.tensor([0]))


_WORLD = 2


def _distributed_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import gloo
    import torch.distributed as dist

    gloo.init_gloo(rank, world, port)
    try:
        elr = hm.EarlyLearningLoss(6, 3, reduction="none")
        g = torch.Generator().manual_seed(rank)
        # Step 1: rank 0 trains samples 0 and 1, rank 1 samples 2 and 3. Step 2: rank 0 sample 2 again, rank 1 sample 4.
        first = torch.tensor([0, 1]) if rank == 0 else torch.tensor([2, 3])
        second = torch.tensor([2]) if rank == 0 else torch.tensor([4])
        for idx in (first, second):
            elr(idx, torch.randn(len(idx), 3, generator=g), torch.zeros(len(idx), dtype=torch.int64))
        before = elr.targets.clone()
        elr.sync()
        torch.save(
            {"before": before, "after": elr.targets.clone(), "updated": elr.updated.clone()}, f"{out_dir}/{rank}.pt"
        )
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_sync_gives_every_rank_the_latest_target(tmp_path: Path) -> None:
    import gloo
    import torch.multiprocessing as mp

    if not gloo.available():
        pytest.skip("torch.distributed with gloo is not available")
    mp.start_processes(
        _distributed_worker,
        args=(_WORLD, gloo.free_port(), str(tmp_path)),
        nprocs=_WORLD,
        join=True,
        start_method="spawn",
    )
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(_WORLD))
    torch.testing.assert_close(r0["after"], r1["after"])
    want = torch.zeros(6, 3)
    want[[0, 1]] = r0["before"][[0, 1]]
    want[2] = r0["before"][2]  # rank 0 updated sample 2 at step 2, after rank 1 did at step 1
    want[[3, 4]] = r1["before"][[3, 4]]
    torch.testing.assert_close(r0["after"], want)
    assert r0["updated"].tolist() == [1, 1, 2, 1, 2, 0]


def _autograd_reference(z: Tensor, y: Tensor, t: Tensor, lam: float) -> Tensor:
    """The loss of the paper's code, through torch's own autograd (targets already updated)."""
    p = torch.softmax(z, dim=1).clamp(1e-4, 1 - 1e-4)
    return F.cross_entropy(z, y, reduction="none") + lam * torch.log(1 - (t * p).sum(dim=1))


@pytest.mark.parametrize("lam", [3.0, 0.0])
def test_the_gradient_equals_autograd_of_the_formula(lam: float) -> None:
    g = torch.Generator().manual_seed(5)
    z = (4 * torch.randn(16, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    z.data[0] = torch.tensor([30.0, 0.0, 0.0, 0.0, 0.0])  # clamped on both sides: no gradient through the clamp
    y = torch.randint(0, 5, (16,), generator=g)
    idx = torch.arange(16)
    elr = hm.EarlyLearningLoss(16, 5, lam=lam, reduction="none").to(torch.float64)
    elr.targets.copy_(torch.softmax(torch.randn(16, 5, generator=g, dtype=torch.float64), 1))
    weights = torch.rand(16, generator=g, dtype=torch.float64)
    (elr(idx, z, y) * weights).sum().backward()
    z_ref = z.detach().clone().requires_grad_(True)
    (_autograd_reference(z_ref, y, elr.targets.clone(), lam) * weights).sum().backward()
    assert z.grad is not None and z_ref.grad is not None
    torch.testing.assert_close(z.grad, z_ref.grad)
