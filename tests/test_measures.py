import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import DEVICES, DTYPES, MEASURE_NAMES, has_tie, reference_measures

from hardmine.scoring import measures as M

# Logit layouts: (N,), (N, 1), (N, 2), (N, K).
LAYOUTS = {"flat": (None, 2), "column": (1, 2), "two": (2, 2), "five": (5, 5)}
SCORE_FNS = {
    "confidence": M.confidence_score,
    "label_prob": M.label_prob_score,
    "margin": M.margin_score,
    "entropy": M.entropy_score,
    "loss": M.loss_score,
}


def _logits(layout: str, n: int = 64, *, seed: int = 0, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    width, num_classes = LAYOUTS[layout]
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if width is None else (n, width)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return logits, labels


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    # Inputs are cast first and the reference sees the same cast values; fp16/bf16/fp32 are computed in float32.
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 2e-6}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_compute_measures_matches_reference(dtype, layout, device):
    logits64, labels = _logits(layout)
    logits = logits64.to(dtype)
    ref = reference_measures(logits, labels)
    m = M.compute_measures(logits.to(device), labels.to(device))
    out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    for name in MEASURE_NAMES:
        assert m[name].dtype == out_dtype, name
        assert m[name].device.type == device, name
        expected = torch.tensor(ref[name], dtype=out_dtype)
        torch.testing.assert_close(m[name].cpu(), expected, **_tolerance(dtype), msg=name)
    assert m["pred"].dtype == torch.int64
    rows = logits.double().reshape(len(labels), -1).tolist()
    untied = torch.tensor([not has_tie(r) for r in rows])
    assert untied.sum() > len(rows) // 2
    torch.testing.assert_close(m["pred"].cpu()[untied], torch.tensor(ref["pred"])[untied])
    # Tied rows: pred is still one of the largest classes.
    probs = torch.tensor(ref["probs"], dtype=torch.float64)
    torch.testing.assert_close(probs[torch.arange(len(rows)), m["pred"].cpu()], probs.max(dim=1).values)
    assert m["valid"].all() and m["finite"].all()


@pytest.mark.parametrize("name", list(SCORE_FNS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_score_functions_match_reference(dtype, layout, name):
    logits64, labels = _logits(layout, seed=3)
    logits = logits64.to(dtype)
    ref = reference_measures(logits, labels)
    out = SCORE_FNS[name](logits, labels)
    out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert out.shape == (len(labels),)
    torch.testing.assert_close(out, torch.tensor(ref[name], dtype=out_dtype), **_tolerance(dtype))


def test_label_free_scores_ignore_labels():
    logits, _ = _logits("five", seed=4)
    torch.testing.assert_close(
        M.confidence_score(logits), M.confidence_score(logits, torch.zeros(64, dtype=torch.long))
    )
    torch.testing.assert_close(M.entropy_score(logits), M.entropy_score(logits, torch.zeros(64, dtype=torch.long)))


def test_single_logit_is_sigmoid_and_binary_cross_entropy():
    logits, labels = _logits("flat", seed=5)
    torch.testing.assert_close(
        M.label_prob_score(logits, labels), torch.where(labels == 1, torch.sigmoid(logits), 1 - torch.sigmoid(logits))
    )
    torch.testing.assert_close(
        M.loss_score(logits, labels),
        F.binary_cross_entropy_with_logits(logits, labels.double(), reduction="none"),
    )
    # (N,), (N, 1) and the two-class layout (0, z) are the same task.
    two = torch.stack([torch.zeros_like(logits), logits], dim=1)
    a, b, c = (
        M.compute_measures(logits, labels),
        M.compute_measures(logits[:, None], labels),
        M.compute_measures(two, labels),
    )
    for name in ("pred", *M.MEASURES):
        torch.testing.assert_close(a[name], b[name])
        torch.testing.assert_close(a[name], c[name])


def test_loss_matches_cross_entropy():
    logits, labels = _logits("five", seed=6, scale=10.0)
    torch.testing.assert_close(M.loss_score(logits, labels), F.cross_entropy(logits, labels, reduction="none"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_logits_are_computed_in_float32(dtype):
    # Large half-precision logits: a softmax in the input dtype would lose the small probabilities.
    logits = torch.tensor([[-20.0, 20.0, 0.0], [8.0, 8.5, -8.0]], dtype=dtype)
    labels = torch.tensor([0, 2])
    m = M.compute_measures(logits, labels)
    ref = reference_measures(logits, labels)
    for name in MEASURE_NAMES:
        assert m[name].dtype == torch.float32
        torch.testing.assert_close(m[name], torch.tensor(ref[name], dtype=torch.float32), rtol=2e-5, atol=1e-8)
    assert m["label_prob"][0] > 0  # exp(-40), representable in float32, not in float16


def test_underflowing_probabilities_give_finite_entropy_and_loss():
    logits = torch.tensor([[0.0, -200.0, 200.0]], dtype=torch.float32)
    m = M.compute_measures(logits, torch.tensor([1]))
    assert torch.isfinite(m["entropy"]).all() and torch.isfinite(m["loss"]).all()
    torch.testing.assert_close(m["loss"], torch.tensor([400.0]))
    torch.testing.assert_close(m["entropy"], torch.tensor([0.0]), atol=1e-6, rtol=0)


def test_valid_and_finite_flags():
    logits = torch.tensor(
        [[1.0, 0.0, 0.0], [float("nan"), 0.0, 0.0], [0.0, float("inf"), 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    )
    labels = torch.tensor([0, 1, 2, 3, -1])
    m = M.compute_measures(logits, labels)
    assert m["finite"].tolist() == [True, False, False, True, True]
    assert m["valid"].tolist() == [True, True, True, False, False]
    # Float labels: whole numbers are class indices, anything else is not.
    m = M.compute_measures(torch.zeros(4), torch.tensor([0.0, 1.0, 0.5, 2.0]))
    assert m["valid"].tolist() == [True, True, False, False]


def test_float_binary_labels_equal_int_labels():
    logits, labels = _logits("column", seed=7)
    a, b = M.compute_measures(logits, labels.double()), M.compute_measures(logits, labels)
    for name in ("pred", *M.MEASURES):
        torch.testing.assert_close(a[name], b[name])
    torch.testing.assert_close(M.loss_score(logits, labels.float()), M.loss_score(logits, labels))


def test_column_labels_are_accepted():
    logits, labels = _logits("five", seed=8)
    torch.testing.assert_close(M.margin_score(logits, labels[:, None]), M.margin_score(logits, labels))


def test_num_classes_and_class_logits():
    assert M.num_classes_of(torch.zeros(3)) == 2
    assert M.num_classes_of(torch.zeros(3, 1)) == 2
    assert M.num_classes_of(torch.zeros(3, 7)) == 7
    z = torch.tensor([0.5, -1.0], dtype=torch.float64)
    out = M.as_class_logits(z)
    assert out.dtype == torch.float64
    torch.testing.assert_close(torch.softmax(out, dim=1)[:, 1], torch.sigmoid(z))
    assert set(M.HARDER_WHEN) == set(M.MEASURES) == set(MEASURE_NAMES)
    assert [M.HARDER_WHEN[m] for m in MEASURE_NAMES] == ["lower", "lower", "lower", "higher", "higher"]


@pytest.mark.parametrize("name", ["label_prob", "margin", "loss"])
@pytest.mark.parametrize("bad", [-1, 3])
def test_labels_outside_classes_raise_naming_samples(name, bad):
    logits = torch.zeros(5, 3)
    labels = torch.tensor([0, 1, bad, 2, 0])
    with pytest.raises(ValueError, match=rf"class indices in \[0, 3\), but samples \[2\] have labels \[{bad}\]"):
        SCORE_FNS[name](logits, labels)


@pytest.mark.parametrize("name", ["label_prob", "margin", "loss"])
def test_non_integer_float_labels_raise(name):
    logits = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"samples \[1, 3\] have labels \[2.5, 0.25\]"):
        SCORE_FNS[name](logits, torch.tensor([0.0, 2.5, 1.0, 0.25]))
    torch.testing.assert_close(
        SCORE_FNS[name](logits, torch.tensor([0.0, 2.0, 1.0, 0.0])), SCORE_FNS[name](logits, torch.tensor([0, 2, 1, 0]))
    )


def test_bad_shapes_and_types_raise():
    with pytest.raises(ValueError, match=r"same number of samples, but got 4 logits and 3 labels"):
        M.compute_measures(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(N,\), \(N, 1\) or \(N, C\).*\(2, 3, 4\)"):
        M.compute_measures(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"one class index per sample.*\(4, 3\).*argmax"):
        M.loss_score(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(TypeError, match=r"floating point tensor, but got dtype torch.int64"):
        M.compute_measures(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`logits` to be a torch.Tensor, but got list"):
        M.confidence_score([[0.0, 1.0]])
    with pytest.raises(TypeError, match=r"`labels` to be a torch.Tensor, but got list"):
        M.label_prob_score(torch.zeros(2, 3), [0, 1])
    with pytest.raises(ValueError, match=r"shape \(N,\), \(N, 1\) or \(N, C\)"):
        M.num_classes_of(torch.zeros(2, 3, 4))


# ------------------------------------------------------------------------------------------------ properties
@st.composite
def logits_and_labels(draw):
    n = draw(st.integers(1, 12))
    width = draw(st.sampled_from([1, 2, 3, 6]))
    values = draw(hnp.arrays(np.float64, (n, width), elements=st.floats(-30, 30, allow_nan=False)))
    num_classes = 2 if width == 1 else width
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, num_classes - 1)))
    logits = torch.from_numpy(values)
    return (logits[:, 0] if width == 1 and draw(st.booleans()) else logits), torch.from_numpy(labels), num_classes


@settings(deadline=None, max_examples=60)
@given(logits_and_labels(), st.sampled_from([torch.float32, torch.float64]))
def test_measure_ranges_and_invariants(case, dtype):
    logits, labels, num_classes = case
    m = M.compute_measures(logits.to(dtype), labels)
    eps = 1e-6 if dtype == torch.float32 else 1e-12
    lp, conf, margin, ent, loss = (m[k].double() for k in ("label_prob", "confidence", "margin", "entropy", "loss"))
    assert ((lp >= 0) & (lp <= 1)).all()
    assert ((conf >= 1 / num_classes - eps) & (conf <= 1)).all()
    assert (conf >= lp).all()
    assert ((margin >= -1) & (margin <= 1)).all()
    assert ((ent >= -eps) & (ent <= math.log(num_classes) + eps)).all()
    assert (loss >= 0).all()
    # loss = -log(label_prob), where label_prob does not underflow.
    ok = lp > 1e-30
    torch.testing.assert_close(loss[ok], -torch.log(lp[ok]), rtol=1e-5 if dtype == torch.float32 else 1e-9, atol=1e-6)
    # margin > 0 exactly when the prediction is the label, away from ties between the two top classes.
    probs = torch.softmax(M.as_class_logits(logits.to(dtype)).double(), dim=1)
    top2 = probs.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4
    assert torch.equal((margin > 0)[clear], (m["pred"] == labels)[clear])
