"""Reproducibility: one call seeds every generator a lab touches, fixes torch's thread count and makes
float64 its default dtype.

Labs call ``set_seed(0)`` in their first cell so that stored outputs reproduce under ``pytest --nbval``
on any machine. Library functions never use the global generators for their own randomness; they follow
two conventions:

* **Names.** A parameter or attribute holding a ``torch.Generator`` is called ``generator`` (as torch's own
  ``generator=`` keyword), one holding a ``numpy.random.Generator`` is called ``rng``. A torch generator is
  made by :func:`generator` (``generator(seed, offset=client_id)``), a numpy one by
  ``np.random.default_rng(seed)`` or ``np.random.default_rng([seed, ...])``.
* **Where the seed lives.** A training run or component configured by a frozen config dataclass
  (``FedConfig``, ``PersonalConfig``, ``DistillConfig``, ``TrainConfig``, ``FDConfig``, ``CompressConfig``,
  ...) carries its seed as the config's ``seed: int = 0`` field, and the function that runs it takes no
  separate seed. Every other
  stochastic function (data sets and partitions, scenario generators and simulators, model initialisers,
  trainers configured by plain arguments) takes ``seed: int`` as an argument; a scenario's config
  (``RecsysConfig``, ``StreamConfig``, ``FleetConfig``) describes the world, not one draw of it, so it
  carries no seed.

Why float64: float addition is not associative, and CPUs differ in how their kernels order a sum (the
width of their vector units, the blocking of their matrix multiplies), so the same training gives
different weights on different CPUs. In float32 the first difference is about 1e-7, and training
amplifies it: Adam's first steps move every weight by about the learning rate in the direction of its
gradient's sign, so a gradient near zero that comes out with the other sign changes a weight by twice the
learning rate. After 300 steps a digits CNN then differs by a point of test accuracy from one CPU to
another. In float64 the first difference is about 1e-16, and after the labs' trainings runs on different
CPUs still agree to about 1e-12, far below the precision anything is printed at. The library itself works
in whatever dtype its inputs have; its data sets and models follow torch's default dtype.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from collab_lib._validate import non_negative_int, positive_int


def set_seed(seed: int, threads: int | None = 1, dtype: torch.dtype | None = torch.float64) -> None:
    """Seed Python's ``random``, NumPy and torch, fix torch's intra-op thread count and its default dtype.

    Parameters
    ----------
    seed:
        Non-negative integer seed.
    threads:
        Number of torch intra-op threads. One thread by default: results of float reductions then do not
        depend on how many cores the machine has. ``None`` leaves torch's setting alone.
    dtype:
        torch's default floating-point dtype from now on (``torch.set_default_dtype``): float64 by default,
        so that results agree across CPUs (module docstring). ``None`` leaves torch's setting alone.
    """
    non_negative_int("seed", seed)
    if threads is not None:
        positive_int("threads", threads)
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses a lab may start
    if threads is not None:
        torch.set_num_threads(threads)
    if dtype is not None:
        torch.set_default_dtype(dtype)


def generator(seed: int, offset: int = 0) -> torch.Generator:
    """A torch generator seeded with ``seed + offset``.

    A simulated client ``i`` derives its stream as ``generator(seed, offset=i)`` (nanoGPT's ``seed_offset``),
    so clients are independent of each other and of the order in which they run.
    """
    g = torch.Generator()
    g.manual_seed(non_negative_int("seed", seed) + non_negative_int("offset", offset))
    return g
