"""Plain per-sample references for the weights and the sampler (loops and hand-written formulas)."""

from __future__ import annotations

import math


def reference_hardness(by: str, value: float) -> float:
    if by in ("loss", "entropy"):
        return value
    if by == "margin":
        return (1.0 - value) / 2.0
    return 1.0 - value


def reference_score_weights(
    hardness: list[float], *, mode: str, gamma: float = 1.0, temperature: float = 0.2, floor: float = 0.05
) -> list[float]:
    """The module docstring's formula, one sample at a time."""
    n = len(hardness)
    if mode == "power":
        raw = [h**gamma for h in hardness]
    elif mode == "softmax":
        top = max(hardness)
        raw = [math.exp((h - top) / temperature) for h in hardness]
    else:
        raw = []
        for h in hardness:
            below = sum(1 for x in hardness if x < h)
            equal = sum(1 for x in hardness if x == h)
            mean_rank = below + (equal + 1) / 2.0
            raw.append((mean_rank / n) ** gamma)
    top = max(raw)
    return [max(r / top, floor) for r in raw]


def reference_balanced_weights(
    raw: list[float],
    groups: list[int],
    *,
    floor: float = 0.05,
    previous: list[float] | None = None,
    momentum: float = 0.5,
) -> list[float]:
    """``balance=``: normalise, smooth and floor each group on its own, equal group sums, then the largest 1."""
    out = [0.0] * len(raw)
    for g in sorted(set(groups)):
        rows = [i for i, gi in enumerate(groups) if gi == g]
        top = max(raw[i] for i in rows)
        w = {i: raw[i] / top if top > 0 else 0.0 for i in rows}
        if previous is not None:
            prev_top = max(previous[i] for i in rows)
            w = {i: momentum * (previous[i] / prev_top if prev_top > 0 else 0.0) + (1 - momentum) * w[i] for i in rows}
            top_w = max(w.values())
            w = {i: v / top_w if top_w > 0 else 0.0 for i, v in w.items()}
        if max(w.values()) == 0:  # an all-zero group: uniform unless the floor is 0
            w = {i: 0.0 if floor == 0 else 1.0 for i in rows}
        w = {i: max(v, floor) for i, v in w.items()}
        total = sum(w.values())
        for i in rows:
            out[i] = w[i] / total if total > 0 else 0.0
    top = max(out)
    return [v / top for v in out]


def reference_padded_share(global_draw: list[int], num_replicas: int, rank: int) -> list[int]:
    """DistributedSampler's padding (wrap around) and strided share, as torch writes it."""
    total = math.ceil(len(global_draw) / num_replicas) * num_replicas
    padding = total - len(global_draw)
    padded = list(global_draw)
    if padding <= len(padded):
        padded += padded[:padding]
    else:
        padded += (padded * math.ceil(padding / len(padded)))[:padding]
    return padded[rank:total:num_replicas]


def reference_pair_probability(weights: list[float], first: int, second: int) -> float:
    """P(first draw is ``first`` and second is ``second``) for successive weighted draws without replacement."""
    total = sum(weights)
    return weights[first] / total * weights[second] / (total - weights[first])
