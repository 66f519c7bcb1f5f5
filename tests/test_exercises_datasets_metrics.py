"""Chapter 7's lab check accepts independent GAUCs, says "not attempted" for None and rejects wrong answers."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from collab_lib.exercises import datasets_metrics as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def plain_auc(labels, scores, tie=0.5):
    """Share of (positive, negative) pairs ranked right, a tie counting ``tie``; None with one class."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return None
    return sum(1.0 if p > n else tie if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def plain_gauc(user_ids, labels, scores, weighted=True, one_class=None, tie=0.5):
    """GAUC in plain Python over a dict of users; the keyword arguments give wrong answers."""
    rows = {}
    for u, y, s in zip(user_ids.tolist(), labels.tolist(), scores.tolist()):
        rows.setdefault(u, []).append((y, s))
    total = weight = 0.0
    for r in rows.values():
        a = plain_auc([y for y, _ in r], [s for _, s in r], tie)
        if a is None:
            if one_class is None:
                continue
            a = one_class
        w = len(r) if weighted else 1
        total += w * a
        weight += w
    return total / weight


def test_gauc_check():
    assert checks.check_gauc(plain_gauc).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="300 impressions.*unweighted mean over users"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, weighted=False))
    with pytest.raises(AssertionError, match="one class have no AUC and must be skipped, not counted as 0.5"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, one_class=0.5))


def test_gauc_check_names_other_mistakes():
    with pytest.raises(AssertionError, match="one score each: got 0.000000, expected 0.500000; ties count one half"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, tie=0.0))
    with pytest.raises(AssertionError, match="global AUC"):
        checks.check_gauc(lambda u, y, s: roc_auc_score(y, s))
    with pytest.raises(AssertionError, match="NaN: a user with only one class"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, one_class=float("nan")))


def test_gauc_check_accepts_sklearn_numpy_and_torch_answers():
    def with_sklearn(user_ids, labels, scores):
        total = weight = 0.0
        for user in np.unique(user_ids):
            mine = user_ids == user
            if len(np.unique(labels[mine])) == 2:
                total += mine.sum() * roc_auc_score(labels[mine], scores[mine])
                weight += mine.sum()
        return np.float64(total / weight)

    assert checks.check_gauc(with_sklearn).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: torch.tensor(with_sklearn(u, y, s))).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: np.array([with_sklearn(u, y, s)])).startswith("correct")


def test_gauc_check_rejects_a_per_user_array():
    def per_user_aucs(user_ids, labels, scores):
        return np.array([roc_auc_score(labels[user_ids == u], scores[user_ids == u])
                         for u in np.unique(user_ids) if len(np.unique(labels[user_ids == u])) == 2])
    with pytest.raises(AssertionError, match=r"shape \(9,\), expected a single number"):
        checks.check_gauc(per_user_aucs)
    with pytest.raises(AssertionError, match="got a dict"):
        checks.check_gauc(lambda u, y, s: {"gauc": plain_gauc(u, y, s)})
