"""Check functions of the chapter 7 labs (data sets and user-level metrics): each tests a learner's function
against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected (and
a hint when the answer matches a common mistake), and returns a "correct" message otherwise. The cases are
seeded and built inside the check, so a check is deterministic and does not depend on the lab's variables;
the inputs are passed as copies, so a function that modifies its arguments cannot change the reference.
"""

from __future__ import annotations

import numpy as np

from collab_lib.exercises.answers import as_number
from collab_lib.metrics import auc, gauc, per_user


def _gauc_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, user ids, labels, scores), rows shuffled so that a user's rows are not contiguous.

    Case 1: twelve users of 2 to 300 impressions, three of whom have one class only. Large users are ranked
    well and small ones badly, so an unweighted mean over users is far from the impression-weighted one, and
    users who click more get higher scores, so the global AUC differs from GAUC too.
    Case 2: one score per user (every pair within a user is a tie), labels as float32 as in the lab.
    """
    rng = np.random.default_rng(7)
    cases = []
    sizes = np.array([300, 2, 150, 5, 80, 3, 40, 12, 200, 6, 25, 9])
    one_class = {3: 0, 5: 1, 6: 0}                      # user index -> its only label
    ids = rng.choice(np.arange(1000, 10000), size=len(sizes), replace=False)
    rate = rng.uniform(0.05, 0.6, size=len(sizes))      # per-user click rate
    quality = np.where(sizes >= 40, 1.5, -1.5)          # how well the scores rank the user's own rows
    u, y, s = [], [], []
    for i, n in enumerate(sizes):
        yi = (rng.uniform(size=n) < rate[i]).astype(np.int64)
        if i in one_class:
            yi[:] = one_class[i]
        else:
            yi[:2] = (1, 0)                              # both classes present
        u.append(np.full(n, ids[i]))
        y.append(yi)
        s.append(quality[i] * yi + rng.normal(size=n) + 3 * rate[i])
    order = rng.permutation(int(sizes.sum()))
    u, y, s = (np.concatenate(a)[order] for a in (u, y, s))
    cases.append(("12 users of 2 to 300 impressions, 3 with one class only", u, y, s.astype(np.float64)))

    sizes = np.array([50, 4, 120, 7, 30])
    ids = rng.choice(np.arange(100), size=len(sizes), replace=False)
    u = np.repeat(ids, sizes)
    y = np.concatenate([np.r_[1.0, 0.0, (rng.uniform(size=n - 2) < 0.3)] for n in sizes]).astype(np.float32)
    s = np.repeat(rng.uniform(size=len(sizes)), sizes)  # model U of the lab: one score per user
    order = rng.permutation(len(u))
    cases.append(("5 users with one score each", u[order], y[order], s[order]))
    return cases


def _pairwise_gauc(u: np.ndarray, y: np.ndarray, s: np.ndarray, tie: float) -> float:
    """Impression-weighted GAUC with a tie counted as ``tie`` (not one half): a common mistake."""
    total = weight = 0.0
    for user in np.unique(u):
        yu, su = y[u == user], s[u == user]
        pos, neg = su[yu == 1], su[yu == 0]
        if len(pos) and len(neg):
            d = pos[:, None] - neg[None, :]
            total += len(yu) * ((d > 0) + tie * (d == 0)).mean()
            weight += len(yu)
    return total / weight


def _gauc_mistake(got: float, u: np.ndarray, y: np.ndarray, s: np.ndarray) -> str:
    """A hint if ``got`` is what a common wrong GAUC returns, else the definition."""
    if np.isnan(got):
        return ("NaN: a user with only one class has no AUC and must be left out, not averaged in")
    pu = per_user(auc, u, y, s)
    counts, values = pu.counts.astype(float), pu.values
    skipped = np.array([np.sum(u == d) for d in pu.dropped], dtype=float)
    mistakes = [
        (values.mean(), "this is the unweighted mean over users; GAUC weights user u by its number of impressions"),
        (auc(y, s), "this is the global AUC over all rows; GAUC computes one AUC per user"),
        (gauc(u, y, s, weights="clicks"), "this weights users by clicks; GAUC weights them by impressions"),
        (_pairwise_gauc(u, y, s, 0.0), "ties count one half within a user, not zero"),
        (_pairwise_gauc(u, y, s, 1.0), "ties count one half within a user, not one"),
    ]
    for filler in (0.5, 0.0, 1.0):
        mistakes.append(((counts @ values + filler * skipped.sum()) / (counts.sum() + skipped.sum()),
                         f"users with only one class have no AUC and must be skipped, not counted as {filler}"))
    for value, hint in mistakes:
        if abs(got - value) < 1e-6:
            return hint
    return ("GAUC is sum_u n_u AUC_u / sum_u n_u over the users with both labels, n_u their impressions, "
            "ties counting one half")


def check_gauc(fn) -> str:
    """Check ``fn(user_ids, labels, scores)`` against :func:`~collab_lib.metrics.gauc`.

    ``fn`` receives three 1-d numpy arrays of the same length, one row per impression: ``user_ids``
    (integers, not contiguous, and a user's rows are not next to each other), ``labels`` (0 or 1, int or
    float) and float ``scores``. It returns one float, GAUC = sum_u n_u AUC_u / sum_u n_u over the users
    who have both a positive and a negative label, where n_u is user u's number of rows and AUC_u the AUC
    of u's rows (ties counting one half).
    """
    cases = _gauc_cases()
    name, u, y, s = cases[0]
    if fn(u.copy(), y.copy(), s.copy()) is None:
        return "not attempted yet: fill in my_gauc above"
    for name, u, y, s in cases:
        got = as_number(fn(u.copy(), y.copy(), s.copy()), "my_gauc", name)
        ref = gauc(u, y, s)
        if not abs(got - ref) < 1e-6:
            raise AssertionError(f"{name}: got {got:.6f}, expected {ref:.6f}; {_gauc_mistake(got, u, y, s)}")
    return ("correct: your GAUC matches collab_lib.metrics.gauc on seeded users of 2 to 300 impressions, "
            "skipping users with one class, and on users with one score each (ties)")
