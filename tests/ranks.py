"""Run a function on 2 (or more) CPU ranks with the gloo backend and collect what each rank returned.

``run_ranks(cases, out_dir)`` spawns the ranks, each initialises the process group, calls ``cases()`` (a module-level
function, so that the spawned processes can import it) and pickles its dict into ``out_dir``; the results come back
in rank order. Starting the processes is the slow part: run every scenario in one ``cases``.
"""

from __future__ import annotations

import datetime
import pickle
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

#: The marks of a test module that starts ranks: ``pytestmark = DISTRIBUTED``.
DISTRIBUTED = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out_dir: str, cases: Callable[[], dict[str, Any]], timeout: int) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout),
    )
    try:
        out = cases()
        with open(Path(out_dir) / f"rank{rank}.pkl", "wb") as fh:
            pickle.dump(out, fh)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_ranks(
    cases: Callable[[], dict[str, Any]], out_dir: Path, world: int = 2, timeout: int = 60
) -> list[dict[str, Any]]:
    """What ``cases()`` returned on each of ``world`` gloo ranks, in rank order."""
    args = (world, free_port(), str(out_dir), cases, timeout)
    mp.start_processes(_worker, args=args, nprocs=world, join=True, start_method="spawn")
    results = []
    for r in range(world):
        with open(Path(out_dir) / f"rank{r}.pkl", "rb") as fh:
            results.append(pickle.load(fh))
    return results
