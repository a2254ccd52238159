"""Worker slots: each worker process holds the lowest slot no live worker holds, so a worker
that dies is replaced in its own slot, and with GPU_COUNT GPUs slot i serves GPU i % GPU_COUNT:
one model copy per GPU, never all of them on the first."""

from __future__ import annotations

from typing import Iterable, Optional


def free_slot(used: Iterable[Optional[int]]) -> int:
    """The lowest slot not in `used`."""
    taken = set(used)
    slot = 0
    while slot in taken:
        slot += 1
    return slot


def visible_device(slot: int, gpu_count: int) -> Optional[str]:
    """The CUDA_VISIBLE_DEVICES of the worker in `slot`: its one GPU, which it sees as cuda:0."""
    if gpu_count <= 0:
        return None
    return str(slot % gpu_count)
