"""Check functions of the chapter 7 labs (data sets and user-level metrics): each tests a learner's function
against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected (and
a hint when the answer matches a common mistake), and returns a "correct" message otherwise. The cases are
seeded and built inside the check, so a check is deterministic and does not depend on the lab's variables;
the inputs are passed as copies, so a function that modifies its arguments cannot change the reference.
Every call of the learner's function goes through :func:`~collab_lib.exercises.grading.learner_call` with
the library functions it re-implements forbidden, a blank answer is
:func:`~collab_lib.exercises.grading.not_attempted`, and ``hidden=True`` runs other cases than the visible
ones (an instructor's hidden test).

* :func:`check_user_auc` — the user-level evaluation lab's AUC from scratch, ties counting one half;
* :func:`check_gauc` — the same lab's GAUC over the learner's per-user AUCs.
"""

from __future__ import annotations

import sys

import numpy as np

from collab_lib.exercises.answers import as_number
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.metrics import auc, gauc, per_user


def _sklearn_auc() -> tuple:
    """scikit-learn's ``roc_auc_score`` once anything has imported it: an answer must not hand it back either.
    (Importing scikit-learn here would cost seconds; an answer that uses it has imported it by its second call.)"""
    metrics = sys.modules.get("sklearn.metrics")
    return (metrics.roc_auc_score,) if metrics is not None and hasattr(metrics, "roc_auc_score") else ()


# --- AUC from scratch: the Mann-Whitney statistic ---------------------------------------------------------


def _auc_cases(hidden: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, labels, scores): continuous scores, many ties, one class, float32 labels; hidden: other
    seeds, the edge cases (two rows, all tied, perfect, reversed)."""
    rng = np.random.default_rng(19 if hidden else 4)
    cases = []
    for n, levels, rate in (((40, None, 0.3), (200, 5, 0.2), (60, 3, 0.5)) if not hidden else
                            ((300, None, 0.1), (500, 8, 0.4), (25, 2, 0.6), (90, 20, 0.05))):
        y = (rng.uniform(size=n) < rate).astype(np.int64)
        y[:2] = (1, 0)
        s = rng.normal(size=n) + 0.8 * y
        if levels is not None:                      # scores on a few levels: many ties within and across labels
            s = np.floor(s * levels / 3).astype(np.float64)
        order = rng.permutation(n)
        cases.append((f"{n} rows, {int(y.sum())} positive, "
                      f"{'continuous scores' if levels is None else f'{len(np.unique(s))} distinct scores (ties)'}",
                      y[order], s[order]))
    cases.append(("labels as float32", cases[0][1].astype(np.float32), cases[0][2]))
    y1 = np.zeros(12, dtype=np.int64) if not hidden else np.ones(5, dtype=np.int64)
    cases.append((f"only {'negatives' if not hidden else 'positives'} (no AUC)", y1, rng.normal(size=len(y1))))
    if hidden:
        cases += [("two rows", np.array([0, 1]), np.array([0.3, 0.7])),
                  ("every score tied", np.array([1, 0, 0, 1, 0]), np.full(5, 2.0)),
                  ("positives all on top", np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.9, 0.2, 0.8, 0.95])),
                  ("positives all at the bottom", np.array([1, 0, 1, 0]), np.array([0.0, 1.0, -1.0, 3.0]))]
    return cases


def _pairwise_auc(y: np.ndarray, s: np.ndarray, tie: float) -> float:
    """The share of (positive, negative) pairs ordered right, a tie counting ``tie``."""
    d = s[y == 1][:, None] - s[y == 0][None, :]
    return float(((d > 0) + tie * (d == 0)).mean())


def _auc_mistake(got: float, y: np.ndarray, s: np.ndarray) -> str:
    """A hint if ``got`` is what a common wrong AUC returns, else the definition."""
    if np.isnan(got):
        return "NaN, but this user has both labels: AUC is defined"
    ordinal = np.empty(len(s))
    ordinal[np.argsort(s, kind="stable")] = np.arange(1, len(s) + 1)   # ranks without midranks
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    for value, hint in (
            (_pairwise_auc(y, s, 0.0), "a tie counts one half, not zero"),
            (_pairwise_auc(y, s, 1.0), "a tie counts one half, not one"),
            (1 - _pairwise_auc(y, s, 0.5), "this is 1 - AUC: count the pairs where the positive scores higher"),
            ((ordinal[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0),
             "tied scores share the mean of their ranks (midranks); ranks in sorted order break ties arbitrarily"),
            ((ordinal[y == 1].sum()) / (n1 * n0), "U subtracts n1 (n1 + 1) / 2 from the positives' rank sum")):
        if abs(got - value) < 1e-9:
            return hint
    return ("AUC = (R1 - n1 (n1 + 1) / 2) / (n1 n0), R1 the sum of the positives' ranks among all rows, tied "
            "scores sharing the mean of their ranks; equivalently the share of (positive, negative) pairs in "
            "which the positive scores higher, a tie counting one half")


def check_user_auc(fn, hidden: bool = False) -> str:
    """Check ``fn(labels, scores)`` against :func:`~collab_lib.metrics.auc`.

    ``fn`` receives two 1-d numpy arrays of the same length: ``labels`` (0 or 1, int or float) and float
    ``scores``, which may tie. It returns one float: the AUC, the Mann-Whitney statistic
    U / (n1 n0) with ties counting one half, or NaN if only one class is present. ``hidden=True`` runs
    other seeds and the edge cases (two rows, every score tied, a perfect and a reversed order).
    """
    cases = _auc_cases(hidden)

    def call(y, s):
        return learner_call(fn, y.copy(), s.copy(), forbidden=(auc, gauc, per_user, *_sklearn_auc()),
                            name="my_auc")

    _, y, s = cases[0]
    if call(y, s) is None:
        return not_attempted("fill in my_auc above")
    for name, y, s in cases:
        got = as_number(call(y, s), "my_auc", name, "the AUC, or NaN with one class")
        if len(np.unique(y)) < 2:
            if not np.isnan(got):
                raise AssertionError(f"{name}: got {got:.6f}, expected NaN; with one class there is no pair "
                                     "to order, so AUC is undefined: return float('nan')")
            continue
        ref = auc(y, s)
        if not abs(got - ref) < 1e-9:
            raise AssertionError(f"{name}: got {got:.6f}, expected {ref:.6f}; {_auc_mistake(got, y, s)}")
    which = "hidden" if hidden else "visible"
    return (f"correct: your AUC matches collab_lib.metrics.auc on {len(cases)} {which} cases, ties counting one "
            "half, NaN with one class")


def _gauc_cases(hidden: bool = False) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, user ids, labels, scores), rows shuffled so that a user's rows are not contiguous.

    Case 1: twelve users of 2 to 300 impressions, three of whom have one class only. Large users are ranked
    well and small ones badly, so an unweighted mean over users is far from the impression-weighted one, and
    users who click more get higher scores, so the global AUC differs from GAUC too.
    Case 2: one score per user (every pair within a user is a tie), labels as float32 as in the lab.
    Hidden: the same two kinds of federation from another seed, and one user with two rows.
    """
    rng = np.random.default_rng(71 if hidden else 7)
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
    if hidden:
        cases.append(("one user with two rows", np.array([5, 5]), np.array([0, 1]), np.array([0.2, 0.1])))
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


def check_gauc(fn, hidden: bool = False) -> str:
    """Check ``fn(user_ids, labels, scores)`` against :func:`~collab_lib.metrics.gauc`.

    ``fn`` receives three 1-d numpy arrays of the same length, one row per impression: ``user_ids``
    (integers, not contiguous, and a user's rows are not next to each other), ``labels`` (0 or 1, int or
    float) and float ``scores``. It returns one float, GAUC = sum_u n_u AUC_u / sum_u n_u over the users
    who have both a positive and a negative label, where n_u is user u's number of rows and AUC_u the AUC
    of u's rows (ties counting one half). The library's ``auc``, ``per_user`` and ``gauc`` are not to be
    called (the lab's ``my_auc`` is). ``hidden=True`` runs other seeded federations of users.
    """
    cases = _gauc_cases(hidden)

    def call(u, y, s):
        return learner_call(fn, u.copy(), y.copy(), s.copy(), forbidden=(gauc, per_user, auc, *_sklearn_auc()),
                            name="my_gauc")

    name, u, y, s = cases[0]
    if call(u, y, s) is None:
        return not_attempted("fill in my_gauc above")
    for name, u, y, s in cases:
        got = as_number(call(u, y, s), "my_gauc", name)
        ref = gauc(u, y, s)
        if not abs(got - ref) < 1e-6:
            raise AssertionError(f"{name}: got {got:.6f}, expected {ref:.6f}; {_gauc_mistake(got, u, y, s)}")
    which = "hidden" if hidden else "visible"
    return (f"correct: your GAUC matches collab_lib.metrics.gauc on {len(cases)} {which} sets of seeded users "
            "of very different sizes, skipping users with one class, and on users with one score each (ties)")
