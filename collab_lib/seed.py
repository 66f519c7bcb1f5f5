"""Reproducibility: one call seeds every generator a lab touches and fixes torch's thread count.

Labs call ``set_seed(0)`` in their first cell so that stored outputs reproduce under ``pytest --nbval``
on any machine. Library functions never use the global generators for their own randomness: they take a
``seed`` or a ``torch.Generator`` (see :func:`generator`).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int, threads: int | None = 1) -> None:
    """Seed Python's ``random``, NumPy and torch, and fix torch's intra-op thread count.

    Parameters
    ----------
    seed:
        Non-negative integer seed.
    threads:
        Number of torch intra-op threads. One thread by default: results of float reductions then do not
        depend on how many cores the machine has. ``None`` leaves torch's setting alone.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses a lab may start
    if threads is not None:
        torch.set_num_threads(threads)


def generator(seed: int, offset: int = 0) -> torch.Generator:
    """A torch generator seeded with ``seed + offset``.

    A simulated client ``i`` derives its stream as ``generator(seed, offset=i)`` (nanoGPT's ``seed_offset``),
    so clients are independent of each other and of the order in which they run.
    """
    if seed < 0 or offset < 0:
        raise ValueError(f"seed and offset must be non-negative, got seed={seed}, offset={offset}")
    g = torch.Generator()
    g.manual_seed(seed + offset)
    return g
