"""The torch.distributed test helpers: a free port, and joining a gloo group of processes on this machine."""

from __future__ import annotations

import datetime
import socket

import torch.distributed as dist


def available() -> bool:
    """Whether torch.distributed with the gloo backend can run here."""
    return dist.is_available() and dist.is_gloo_available()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_gloo(rank: int, world: int, port: int) -> None:
    """Join the gloo group of ``world`` processes at ``port`` as ``rank``.

    A collective that one rank never joins fails after 120 s instead of hanging the test run.
    """
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
