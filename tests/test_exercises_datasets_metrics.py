"""Chapter 7's lab checks accept independent AUCs and GAUCs, say "not attempted" for None, reject wrong answers
and the library's own functions, and grade a blank as 0."""

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


# --- AUC from scratch -------------------------------------------------------------------------------------


def auc_by_pairs(labels, scores):
    """AUC over every (positive, negative) pair in plain Python; NaN with one class."""
    a = plain_auc(list(labels), list(scores))
    return float("nan") if a is None else a


def auc_by_sorting(labels, scores, midranks=True, subtract=True):
    """Mann-Whitney U from ranks computed by hand; the flags give wrong answers."""
    y, s = np.asarray(labels) == 1, np.asarray(scores, dtype=float)
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return float("nan")
    order = sorted(range(len(s)), key=lambda i: s[i])
    ranks = [0.0] * len(s)
    i = 0
    while i < len(order):
        j = i
        while midranks and j + 1 < len(order) and s[order[j + 1]] == s[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    r1 = sum(r for r, pos in zip(ranks, y) if pos)
    return (r1 - (n1 * (n1 + 1) / 2 if subtract else 0)) / (n1 * n0)


@pytest.mark.parametrize("hidden", [False, True])
def test_auc_check(hidden):
    for answer in (auc_by_pairs, auc_by_sorting):
        assert checks.check_user_auc(answer, hidden=hidden).startswith("correct")
    assert checks.check_user_auc(lambda y, s: None, hidden=hidden).startswith("not attempted yet")
    wrong = {
        "not zero": lambda y, s: plain_auc(list(y), list(s), tie=0.0) if len(set(y.tolist())) == 2 else float("nan"),
        "midranks": lambda y, s: auc_by_sorting(y, s, midranks=False),
        "1 - AUC": lambda y, s: 1 - auc_by_pairs(y, s),
        "expected NaN": lambda y, s: auc_by_pairs(y, s) if len(set(y.tolist())) == 2 else 0.5,
        "subtracts n1": lambda y, s: auc_by_sorting(y, s, subtract=False),
    }
    for message, answer in wrong.items():
        with pytest.raises(AssertionError, match=message):
            checks.check_user_auc(answer, hidden=hidden)


def test_auc_check_hidden_cases_catch_an_answer_fitted_to_the_visible_ones():
    def fitted(labels, scores):  # right on the visible cases (all of 12 rows or more), 0.5 below
        return auc_by_pairs(labels, scores) if len(labels) >= 12 else 0.5

    assert checks.check_user_auc(fitted).startswith("correct")
    with pytest.raises(AssertionError, match="only positives .* expected NaN"):
        checks.check_user_auc(fitted, hidden=True)


def test_auc_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.metrics import auc

    with pytest.raises(AssertionError, match="calls the library's collab_lib.metrics.auc"):
        checks.check_user_auc(auc)
    with pytest.raises(AssertionError, match="calls the library's .*roc_auc_score"):
        checks.check_user_auc(lambda y, s: roc_auc_score(y, s) if len(set(y.tolist())) == 2 else float("nan"))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_user_auc(lambda y, s: None, hidden=True)


# --- GAUC over the per-user AUCs ----------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
def test_gauc_check(hidden):
    assert checks.check_gauc(plain_gauc, hidden=hidden).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="300 impressions.*unweighted mean over users"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, weighted=False), hidden=hidden)
    with pytest.raises(AssertionError, match="one class have no AUC and must be skipped, not counted as 0.5"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, one_class=0.5), hidden=hidden)


def test_gauc_check_names_other_mistakes():
    with pytest.raises(AssertionError, match="one score each: got 0.000000, expected 0.500000; ties count one half"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, tie=0.0))
    with pytest.raises(AssertionError, match="global AUC"):
        checks.check_gauc(lambda u, y, s: auc_by_pairs(y, s))
    with pytest.raises(AssertionError, match="NaN: a user with only one class"):
        checks.check_gauc(lambda u, y, s: plain_gauc(u, y, s, one_class=float("nan")))


def test_gauc_check_accepts_numpy_and_torch_answers():
    def with_numpy(user_ids, labels, scores):
        total = weight = 0.0
        for user in np.unique(user_ids):
            mine = user_ids == user
            a = auc_by_sorting(labels[mine], scores[mine])
            if not np.isnan(a):
                total += mine.sum() * a
                weight += mine.sum()
        return np.float64(total / weight)

    assert checks.check_gauc(with_numpy).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: torch.tensor(with_numpy(u, y, s))).startswith("correct")
    assert checks.check_gauc(lambda u, y, s: np.array([with_numpy(u, y, s)])).startswith("correct")


def test_gauc_check_rejects_a_per_user_array():
    def per_user_aucs(user_ids, labels, scores):
        return np.array([auc_by_pairs(labels[user_ids == u], scores[user_ids == u])
                         for u in np.unique(user_ids) if len(np.unique(labels[user_ids == u])) == 2])
    with pytest.raises(AssertionError, match=r"shape \(9,\), expected a single number"):
        checks.check_gauc(per_user_aucs)
    with pytest.raises(AssertionError, match="got a dict"):
        checks.check_gauc(lambda u, y, s: {"gauc": plain_gauc(u, y, s)})


def test_gauc_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.metrics import auc, gauc, per_user

    def over_library_auc(user_ids, labels, scores):
        pu = per_user(auc, user_ids, labels, scores)
        return float((pu.counts * pu.values).sum() / pu.counts.sum())

    def with_sklearn(user_ids, labels, scores):
        total = weight = 0.0
        for user in np.unique(user_ids):
            mine = user_ids == user
            if len(np.unique(labels[mine])) == 2:
                total += mine.sum() * roc_auc_score(labels[mine], scores[mine])
                weight += mine.sum()
        return total / weight

    for cheat, name in ((gauc, "gauc"), (lambda u, y, s: gauc(u, y, s), "gauc"), (over_library_auc, "per_user"),
                        (with_sklearn, "roc_auc_score")):
        with pytest.raises(AssertionError, match=f"calls the library's .*{name}"):
            checks.check_gauc(cheat)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_gauc(lambda u, y, s: None, hidden=True)


# --- The lab: its worked solutions pass, its grading cases fail -----------------------------------------------


def lab_solutions():
    """The namespace of the lab's worked solutions of its fill-ins (the ```python blocks that define my_*)."""
    import json
    import re
    from pathlib import Path

    lab = Path(__file__).parents[1] / "labs" / "07_datasets_metrics" / "user_level_evaluation.ipynb"
    nb = json.loads(lab.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    namespace = {"np": np}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if re.search(r"^def my_\w+", block, re.M):
            exec(block, namespace)
    return namespace


@pytest.mark.parametrize("hidden", [False, True])
def test_the_labs_worked_solutions_pass_its_checks(hidden):
    namespace = lab_solutions()
    assert checks.check_user_auc(namespace["my_auc"], hidden=hidden).startswith("correct")
    assert checks.check_gauc(namespace["my_gauc"], hidden=hidden).startswith("correct")


@pytest.mark.parametrize("kind", ["WRONG", "CHEAT"])
def test_the_labs_grading_cases_fail_its_checks(kind):
    from tests.grading_cases import user_level_evaluation as cases

    sources = getattr(cases, kind)
    assert set(sources) == {"my_auc", "my_gauc"}
    for name, source in sources.items():
        namespace = {"np": np}
        exec(source, namespace)
        check = checks.check_user_auc if name == "my_auc" else checks.check_gauc
        for hidden in (False, True):
            with pytest.raises(AssertionError, match="calls the library's" if kind == "CHEAT" else "expected"):
                check(namespace[name], hidden=hidden)
