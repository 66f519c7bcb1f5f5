"""Calibrate the roofline on this machine: measure its matmul FLOP/s, its memory
bandwidth and the latency of a model's forward pass.

The roofline model (Williams et al., CACM 2009) needs two figures per device, a peak
FLOP/s and a memory bandwidth. For a catalog device they come from data sheets; here
they come from two microbenchmarks:

* peak: an n x n @ n x n matmul, 2 n^3 FLOP (a multiply and an add per
  multiply-accumulate);
* bandwidth: ``dst.copy_(src)`` of an array much larger than the last-level cache,
  counted as 2 x its size moved (one read, one write), as the "copy" kernel of
  McCalpin's STREAM benchmark (McCalpin, 1995) counts it.

Wall-clock timing is noisy: other processes, interrupts and frequency changes only ever
make a run *slower*. The microbenchmarks therefore report the best of several runs (the
least disturbed one: what the hardware can do), and :func:`measure_latency_s` the median
(the typical run, unmoved by the occasional slow one). Untimed warm-up runs come first:
they fault in memory, fill caches and let the kernel library pick its algorithms.
Everything here times the CPU, where a torch call returns when its work is done.

:func:`fit_roofline` goes the other way: from the times of several kernels of known FLOPs and bytes (a
few matmuls and copies, or a model's layers) it fits both figures at once by least squares, each kernel
charged to the roof that bounds it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.hardware.specs import DeviceSpec
from collab_lib.seed import generator

_COPY_DTYPE = torch.float32  # the bandwidth benchmark copies float32, whatever torch's default dtype
_FLOAT_BYTES = torch.finfo(_COPY_DTYPE).bits // 8


def _check_threads(threads: int | None) -> None:
    if threads is not None:
        positive_int("threads", threads)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``threads`` torch intra-op threads (``None``: as they are)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_times_s(fn: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    """Wall times (s) of ``repeats`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure_matmul_flops(
    n: int = 1024,
    repeats: int = 10,
    dtype: torch.dtype = torch.float32,
    threads: int | None = None,
) -> float:
    """FLOP/s of an ``n x n @ n x n`` matmul: 2 n^3 FLOP over the best of ``repeats``.

    Timing is noisy and a disturbance only slows a run down, so the fastest run (after
    one untimed warm-up) is the best estimate of what the core and its matmul kernel
    can do.

    Parameters
    ----------
    n:
        Matrix side. Large enough to be compute-bound: each element is reused n times.
    repeats:
        Number of timed runs.
    dtype:
        A floating-point dtype; the result is the FLOP/s at that precision.
    threads:
        torch intra-op threads for the measurement (restored afterwards); ``None``
        keeps torch's current setting (``set_seed`` makes it 1).

    Returns
    -------
    Operations per second, 2 n^3 / best time.
    """
    positive_int("n", n)
    positive_int("repeats", repeats)
    _check_threads(threads)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    g = generator(0)
    a = torch.rand(n, n, generator=g, dtype=torch.float32).to(dtype)  # (n, n)
    b = torch.rand(n, n, generator=g, dtype=torch.float32).to(dtype)  # (n, n)
    out = torch.empty(n, n, dtype=dtype)  # reused: no run pays for a fresh allocation
    with _torch_threads(threads):
        times = _run_times_s(lambda: torch.matmul(a, b, out=out), repeats, warmup=1)
    return 2 * n**3 / min(times)


def measure_memory_bandwidth(
    num_bytes: int = 2**28, repeats: int = 10, threads: int | None = None
) -> float:
    """Bytes/s of ``dst.copy_(src)`` on float32 arrays of ``num_bytes`` bytes each (float32 whatever
    torch's default dtype).

    A copy reads ``src`` and writes ``dst``, so it moves 2 x ``num_bytes``; as in
    STREAM, the extra read of ``dst`` that a write-allocate cache makes is not counted.
    Timing is noisy and a disturbance only slows a copy down, so the best of
    ``repeats`` copies (after one untimed warm-up) is used.

    Parameters
    ----------
    num_bytes:
        Size of each array, rounded down to whole float32s. It must be much larger
        than the last-level cache, or the benchmark measures the cache: the default
        256 MiB is 8 x the 32 MiB L3 of a typical server CPU.
    repeats:
        Number of timed copies.
    threads:
        torch intra-op threads for the measurement (restored afterwards); ``None``
        keeps torch's current setting. One core often cannot saturate the memory bus,
        so measure with the thread count the models will run with.

    Returns
    -------
    Bytes per second, 2 x bytes per array / best time.
    """
    if positive_int("num_bytes", num_bytes) < _FLOAT_BYTES:
        raise ValueError(f"num_bytes must be at least one float32 ({_FLOAT_BYTES} bytes), got {num_bytes!r}")
    positive_int("repeats", repeats)
    _check_threads(threads)
    numel = num_bytes // _FLOAT_BYTES
    # Explicitly float32: set_seed makes float64 the default, which would move twice the bytes counted.
    src = torch.ones(numel, dtype=_COPY_DTYPE)  # written once, so its pages are faulted in before timing
    dst = torch.zeros(numel, dtype=_COPY_DTYPE)
    with _torch_threads(threads):
        times = _run_times_s(lambda: dst.copy_(src), repeats, warmup=1)
    return 2 * numel * _FLOAT_BYTES / min(times)


def _physical_memory_bytes() -> float | None:
    """Installed RAM as the OS reports it (POSIX ``sysconf``), else ``None``."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no name
        return None


def calibrate(
    name: str = "this machine",
    n: int = 1024,
    num_bytes: int = 2**28,
    repeats: int = 10,
    threads: int | None = None,
) -> DeviceSpec:
    """This machine's measured fp32 matmul FLOP/s and copy bandwidth as a DeviceSpec.

    Timing is noisy, so both figures are the best of ``repeats`` runs (see
    :func:`measure_matmul_flops` and :func:`measure_memory_bandwidth` for ``n`` and
    ``num_bytes``): what a tuned kernel attains on this machine, not a data-sheet
    peak, so use the spec with ``efficiency=1`` in
    :func:`collab_lib.hardware.roofline.layer_time_s`. ``mem_bytes`` is the installed
    RAM where the OS reports it cheaply (else ``None``); ``power_w`` is ``None``. The
    source of each measured figure reads ``"measured: <how>, <when>"``.
    """
    _check_threads(threads)
    peak = measure_matmul_flops(n=n, repeats=repeats, threads=threads)
    bandwidth = measure_memory_bandwidth(num_bytes=num_bytes, repeats=repeats,
                                         threads=threads)
    mem_bytes = _physical_memory_bytes()
    used = threads if threads is not None else torch.get_num_threads()
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    setup = f"{used} torch thread(s), torch {torch.__version__}, {when}"
    sources = {
        "peak_flops_per_s[fp32]": f"measured: best of {repeats} fp32 {n}x{n} matmuls, "
        f"2n^3 FLOP each, {setup}",
        "mem_bw_bytes_per_s": f"measured: best of {repeats} copies of {num_bytes} B, "
        f"2 x {num_bytes} B moved each, {setup}",
    }
    if mem_bytes is not None:
        sources["mem_bytes"] = f"measured: os.sysconf page size x pages, {when}"
    return DeviceSpec(
        name=name,
        peak_flops_per_s={"fp32": peak},
        mem_bw_bytes_per_s=bandwidth,
        mem_bytes=mem_bytes,
        power_w=None,
        sources=sources,
    )


def measure_latency_s(
    model: Callable[[torch.Tensor], object],
    example_input: torch.Tensor,
    repeats: int = 20,
    warmup: int = 3,
) -> float:
    """Median wall time (s) of ``model(example_input)`` under ``torch.no_grad()``.

    Timing is noisy: a forward pass of a few milliseconds is now and then interrupted.
    The median of ``repeats`` timed passes is the typical latency and ignores the
    occasional slow one; the ``warmup`` untimed passes before them let torch allocate
    memory and pick kernels. The model runs as given (call ``model.eval()`` first if it
    has dropout or batch norm) with torch's current thread count.
    """
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    with torch.no_grad():
        times = _run_times_s(lambda: model(example_input), repeats, warmup)
    return statistics.median(times)


def fit_roofline(flops, bytes_moved, times_s, max_iter: int = 100) -> tuple[float, float]:
    """Peak FLOP/s and bandwidth (bytes/s) of the roofline that best fits timed kernels.

    The model is ``t_i = max(F_i / P, B_i / W)``: each kernel is bound by one roof. Starting from the
    fastest rates observed (``P = max F_i / t_i``, ``W = max B_i / t_i``), it alternates two steps until
    no kernel changes roof: charge each kernel to the roof that predicts it the longer time (compute on a
    tie), then fit each roof by least squares on the relative error of its kernels' times. For the compute
    roof, with ``u_i = F_i / t_i`` the rate kernel i attained, minimising ``sum (u_i / P - 1)^2`` over
    ``1 / P`` gives ``P = sum u_i^2 / sum u_i``; the memory roof likewise with ``v_i = B_i / t_i``. A roof
    that no kernel is charged to keeps its value. Kernels that no noise disturbs are fitted exactly.

    Parameters
    ----------
    flops, bytes_moved, times_s:
        One entry per kernel: its FLOPs (0 for a copy), its bytes moved (> 0) and its time in seconds (> 0).
    max_iter:
        Upper bound on the alternations (the charge to a roof settles in a few on any sensible data).

    Returns
    -------
    ``(peak_flops_per_s, mem_bw_bytes_per_s)``.
    """
    f, b, t = (np.asarray(a, dtype=float).ravel() for a in (flops, bytes_moved, times_s))
    if not f.shape == b.shape == t.shape or f.size == 0:
        raise ValueError(f"flops, bytes_moved and times_s need the same non-zero length, got "
                         f"{f.size}, {b.size}, {t.size}")
    if (f < 0).any() or not (b > 0).all() or not (t > 0).all():
        raise ValueError("flops must be >= 0, bytes_moved and times_s > 0")
    if not (f > 0).any():
        raise ValueError("at least one kernel must do FLOPs, or there is no compute roof to fit")
    positive_int("max_iter", max_iter)
    u, v = f / t, b / t                       # FLOP/s and bytes/s each kernel attained
    peak, bw = u.max(), v.max()
    compute = None
    for _ in range(max_iter):
        now = f / peak >= b / bw              # charged to the compute roof
        if compute is not None and (now == compute).all():
            break
        compute = now
        if compute.any():
            peak = (u[compute] ** 2).sum() / u[compute].sum()
        if (~compute).any():
            bw = (v[~compute] ** 2).sum() / v[~compute].sum()
    return float(peak), float(bw)
