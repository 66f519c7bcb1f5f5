"""Shared timing and memory helpers for the benchmark scripts."""

import os
import resource
import threading
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Smallest wall time of ``repeats`` calls, in seconds: the least disturbed run."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _rss_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def peak_memory_of(fn: Callable[[], object], interval_s: float = 0.002) -> tuple[float, int]:
    """(seconds, bytes): the wall time of one call and its peak resident memory above what was resident before.

    A thread samples the resident set every ``interval_s`` while ``fn`` runs, so a peak shorter than that can
    be missed; the result is a lower bound on the call's working memory, rounded to whole pages.
    """
    before = _rss_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return seconds, max(0, max(peak, _rss_bytes()) - before)
