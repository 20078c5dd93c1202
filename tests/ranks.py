"""Run a function on 2 (or more) CPU ranks with the gloo backend and collect what each rank returned.

``run_ranks(cases, out_dir)`` spawns the ranks; each joins the group (:func:`gloo.init_gloo`), calls ``cases()`` (a
module-level function, so that the spawned processes can import it) and pickles its dict into ``out_dir``; the
results come back in rank order. Starting the processes is the slow part: run every scenario in one ``cases``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from gloo import available, free_port, init_gloo

#: The marks of a test module that starts ranks: ``pytestmark = DISTRIBUTED``.
DISTRIBUTED = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="torch.distributed with the gloo backend is not available"),
]


def _worker(rank: int, world: int, port: int, out_dir: str, cases: Callable[[], dict[str, Any]]) -> None:
    init_gloo(rank, world, port)
    try:
        out = cases()
        with open(Path(out_dir) / f"rank{rank}.pkl", "wb") as fh:
            pickle.dump(out, fh)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_ranks(cases: Callable[[], dict[str, Any]], out_dir: Path, world: int = 2) -> list[dict[str, Any]]:
    """What ``cases()`` returned on each of ``world`` gloo ranks, in rank order."""
    mp.start_processes(
        _worker, args=(world, free_port(), str(out_dir), cases), nprocs=world, join=True, start_method="spawn"
    )
    results = []
    for r in range(world):
        with open(Path(out_dir) / f"rank{r}.pkl", "rb") as fh:
            results.append(pickle.load(fh))
    return results
