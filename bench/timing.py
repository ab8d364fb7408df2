"""Interleaved timing of competing callables, so both see the same machine state."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, alternating them every repeat."""
    return {name: statistics.median(t) for name, t in interleaved_samples(fns, repeats, warmup).items()}


def interleaved_samples(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of every call of each function (``repeats`` each), alternating them every repeat,
    after ``warmup`` untimed rounds: the spread shows how much a loaded machine moved them."""
    return interleaved_wall_and_cpu(fns, repeats, warmup)[0]


def interleaved_wall_and_cpu(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
                             ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds of every timed call, as :func:`interleaved_samples` times them.
    On a loaded machine the wall clock also counts the time this process waited for a core; its
    CPU time does not, so the CPU ratio is the steadier of the two."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def matmul_ceiling(n: int = 1024, repeats: int = 10, device: str = "cpu", dtype=None) -> float:
    """Measured matmul throughput (FLOP/s) on this device and dtype: the MFU denominator."""
    import torch

    dtype = dtype or torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)

    def mm():
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
    seconds = time_interleaved({"mm": mm}, repeats)["mm"]
    return 2 * n ** 3 / seconds
