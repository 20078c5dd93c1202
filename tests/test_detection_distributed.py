"""hm.score_detection under torch.distributed: 2 CPU processes with the gloo backend, compared with one process.

One spawn of 2 ranks runs every case and saves what each rank saw: the per-image and per-box tables equal the
1-process ones on every rank (5 images, an uneven split; 1 image, so rank 1 has none), every image is read exactly
once across the ranks, and a bad box in rank 1's share makes both ranks raise instead of one waiting forever.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import torch
from ranks import DISTRIBUTED, run_ranks
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from hardmine.scoring.detection import score_detection

WORLD = 2

pytestmark = DISTRIBUTED


class Boxes(Dataset):
    """Image ``i`` (its index in pixel (0, 0)) with one box; records which indices this process read."""

    def __init__(self, n: int, flipped: int | None = None) -> None:
        self.n, self.flipped, self.calls = n, flipped, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        self.calls.append(i)
        image = torch.zeros(3, 16, 16)
        image[0, 0, 0] = float(i)
        box = [2.0 + i, 2.0, 10.0 + i, 10.0] if i != self.flipped else [9.0, 2.0, 3.0, 10.0]
        return image, {"boxes": torch.tensor([box]), "labels": torch.tensor([1 + i % 2])}


class Guess(nn.Module):
    """Finds the box of even images, and a box beside it (a miss and a false positive) on odd ones."""

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for im in images:
            i = int(im[0, 0, 0].item())
            shift = 0.0 if i % 2 == 0 else 5.0
            box = torch.tensor([[2.0 + i + shift, 2.0, 10.0 + i + shift, 10.0]])
            out.append({"boxes": box, "labels": torch.tensor([1 + i % 2]), "scores": torch.tensor([0.5 + 0.05 * i])})
        return out


def _collate(batch: list) -> tuple:
    return tuple(zip(*batch, strict=True))


def _cases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in (5, 1):
        data = Boxes(n)
        loader = DataLoader(data, batch_size=2, shuffle=True, collate_fn=_collate)
        out[f"table_{n}"], out[f"boxes_{n}"] = score_detection(Guess(), loader, return_boxes=True, progress=False)
        out[f"calls_{n}"] = list(data.calls)
    try:
        score_detection(Guess(), DataLoader(Boxes(5, flipped=4), batch_size=2, collate_fn=_collate), progress=False)
    except Exception as err:
        out["error"] = (type(err).__name__, str(err))
    return out


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_cases, tmp_path_factory.mktemp("detection_distributed"), WORLD)


@pytest.mark.parametrize("n", [5, 1])
def test_every_rank_gets_the_single_process_tables(ranks: list[dict[str, Any]], n: int) -> None:
    single = _cases()
    assert single[f"table_{n}"]["missed"].tolist() == [i % 2 for i in range(n)]  # the case is not trivial
    for r in range(WORLD):
        pd.testing.assert_frame_equal(ranks[r][f"table_{n}"], single[f"table_{n}"])
        pd.testing.assert_frame_equal(ranks[r][f"boxes_{n}"], single[f"boxes_{n}"])
        assert ranks[r][f"table_{n}"].attrs == single[f"table_{n}"].attrs


@pytest.mark.parametrize("n", [5, 1])
def test_every_image_is_read_exactly_once_across_ranks(ranks: list[dict[str, Any]], n: int) -> None:
    reads = [ranks[r][f"calls_{n}"] for r in range(WORLD)]
    assert sorted(reads[0] + reads[1]) == list(range(n))
    assert reads[0] == list(range((n + 1) // 2))  # rank 0 scores the first share, in order


def test_a_bad_box_on_one_rank_makes_every_rank_raise(ranks: list[dict[str, Any]]) -> None:
    kind, message = ranks[1]["error"]
    assert kind == "ValueError" and "x2 >= x1" in message and "image 4" in message and "rank 1" in message
    kind, message = ranks[0]["error"]
    assert kind == "RuntimeError" and "hm.score_detection failed on rank 1 (of 2)" in message and "image 4" in message
