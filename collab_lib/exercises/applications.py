"""Check functions of the chapter 8 labs: each tests a learner's function against an independent reference.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message saying what is wrong, and returns a "correct" message otherwise.
"""

from __future__ import annotations

import numpy as np

from collab_lib.applications.assistant import route
from collab_lib.system.cascade import PrecomputedRouter


def reference_same_category_clicks(categories: np.ndarray, clicks: np.ndarray, lag: int) -> np.ndarray:
    """Brute force, for one session: (L,) clicks at positions j <= i - max(lag, 1) whose category equals
    position i's (what a ranker ``lag`` positions behind knows when it fills slot i)."""
    L = len(categories)
    out = np.zeros(L)
    for i in range(L):
        for j in range(i - max(lag, 1) + 1):
            out[i] += clicks[j] * (categories[j] == categories[i])
    return out


def check_same_category_clicks(fn) -> str:
    """``fn(categories, clicks, lag) -> (L,)``: the in-session feature of the re-ranking lab."""
    rng = np.random.default_rng(11)
    if fn(np.array([0, 1]), np.array([1.0, 0.0]), 0) is None:
        return "not attempted yet: fill in my_same_category_clicks above"
    for trial in range(20):
        L = int(rng.integers(1, 30))
        cat = rng.integers(0, 4, L)
        click = (rng.uniform(size=L) < 0.4).astype(float)
        for lag in (0, 1, 3, 20):
            got = np.asarray(fn(cat, click, lag), dtype=float)
            ref = reference_same_category_clicks(cat, click, lag)
            assert got.shape == ref.shape, f"shape {got.shape}, expected {ref.shape} (one count per position)"
            bad = np.flatnonzero(got != ref)
            assert len(bad) == 0, (f"lag {lag}, categories {cat.tolist()}, clicks {click.astype(int).tolist()}: "
                                   f"position {bad[0]} has {got[bad[0]]:g}, expected {ref[bad[0]]:g} "
                                   "(count earlier clicks on the same category that the ranker has received; "
                                   "a click at the current position is never known yet)")
    return "correct: your feature matches a brute-force count for delays of 0, 1, 3 and 20 positions"


def check_route(fn) -> str:
    """``fn(difficulty, private, online, threshold) -> (n,) bool``, True = send to the cloud, against
    :func:`~collab_lib.applications.assistant.route` with the difficulty scores as a precomputed router's."""
    rng = np.random.default_rng(5)
    d, p, o = rng.uniform(size=8), rng.uniform(size=8) < 0.3, rng.uniform(size=8) < 0.8
    if fn(d, p, o, 0.5) is None:
        return "not attempted yet: fill in my_route above"
    for trial in range(50):
        n = int(rng.integers(1, 40))
        d = rng.uniform(size=n)
        p, o = rng.uniform(size=n) < 0.3, rng.uniform(size=n) < 0.8
        t = float(rng.choice([0.0, 0.3, 0.5, d[0], 1.0]))
        got = np.asarray(fn(d, p, o, t), dtype=bool)
        ref = route(PrecomputedRouter(), d, p, o, t) != 0
        assert got.shape == ref.shape, f"shape {got.shape}, expected {ref.shape}"
        bad = np.flatnonzero(got != ref)
        assert len(bad) == 0, (f"request with difficulty {d[bad[0]]:.3f}, private={bool(p[bad[0]])}, "
                               f"online={bool(o[bad[0]])}, threshold {t:.3f}: you send it to the cloud = "
                               f"{bool(got[bad[0]])}, expected {bool(ref[bad[0]])}")
    return "correct: private and offline requests stay on the phone, the rest go up at difficulty >= threshold"


def reference_coverage(intervals: np.ndarray, detected: np.ndarray) -> float:
    """Brute force: share of ``[stream, start, end)`` rows of ``intervals`` with a True frame of ``detected``
    (S, T) inside."""
    hit = [any(detected[s, t] for t in range(a, b)) for s, a, b in np.asarray(intervals).tolist()]
    return float(np.mean(hit))


def check_coverage(fn) -> str:
    """``fn(intervals, detected) -> float``: highlight coverage of the livestream lab."""
    rng = np.random.default_rng(7)
    if fn(np.array([[0, 1, 3]]), np.zeros((1, 5), dtype=bool)) is None:
        return "not attempted yet: fill in my_coverage above"
    for trial in range(50):
        S, T = int(rng.integers(1, 5)), int(rng.integers(5, 30))
        rows = []
        for s in range(S):
            a = int(rng.integers(0, T - 1))
            rows.append((s, a, int(rng.integers(a + 1, T + 1))))
        intervals = np.array(rows, dtype=np.int64)
        detected = rng.uniform(size=(S, T)) < rng.choice([0.02, 0.1, 0.3])
        got, ref = float(fn(intervals, detected)), reference_coverage(intervals, detected)
        assert abs(got - ref) < 1e-12, (
            f"intervals {intervals.tolist()}, detected frames {[np.flatnonzero(r).tolist() for r in detected]}: "
            f"you return {got:.4f}, expected {ref:.4f} (a highlight [stream, start, end) counts once if any "
            "frame start <= t < end of its stream is detected; end is excluded)")
    return "correct: your coverage matches a brute-force count on 50 random cases"
