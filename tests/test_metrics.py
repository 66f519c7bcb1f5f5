"""auc/gauc against scikit-learn's roc_auc_score (an independent implementation), summaries by hand, accuracy
against the per-module copies it replaced and sklearn's accuracy_score."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from torch import nn

from collab_lib.metrics import accuracy, auc, fairness, fleet_summary, gauc, per_user, percentiles


def _random(seed, n=400, users=30, tie_levels=7):
    rng = np.random.default_rng(seed)
    user_ids = rng.integers(0, users, n)
    labels = (rng.random(n) < rng.random(users)[user_ids]).astype(int)  # users differ in click rate
    scores = np.round(rng.random(n) * tie_levels) / tie_levels          # few levels: many ties
    return user_ids, labels, scores


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties_and_weights(seed):
    _, labels, scores = _random(seed)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    weights = np.random.default_rng(seed + 100).random(len(labels)) * 3
    assert auc(labels, scores, weights) == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights))


def test_auc_hand_cases():
    assert auc([0, 1], [0.1, 0.9]) == 1.0
    assert auc([1, 0], [0.1, 0.9]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # positives 0.8, 0.4; negatives 0.4, 0.1 -> pairs: (0.8>0.4) 1, (0.8>0.1) 1, (0.4=0.4) 0.5, (0.4>0.1) 1
    assert auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)


@pytest.mark.parametrize("seed", range(5))
def test_gauc_matches_a_per_user_loop_over_sklearn(seed):
    user_ids, labels, scores = _random(seed)
    num, den, clicks_num, clicks_den = 0.0, 0.0, 0.0, 0.0
    for u in np.unique(user_ids):
        m = user_ids == u
        if labels[m].min() == labels[m].max():
            continue  # one class: dropped
        a = roc_auc_score(labels[m], scores[m])
        num, den = num + m.sum() * a, den + m.sum()
        clicks_num, clicks_den = clicks_num + labels[m].sum() * a, clicks_den + labels[m].sum()
    assert gauc(user_ids, labels, scores) == pytest.approx(num / den)
    assert gauc(user_ids, labels, scores, weights="clicks") == pytest.approx(clicks_num / clicks_den)


def test_gauc_drops_one_class_users_and_accepts_a_weight_mapping():
    user_ids = [1, 1, 2, 2, 3, 3]
    labels = [1, 0, 0, 1, 1, 1]   # user 3 has only positives
    scores = [0.9, 0.1, 0.9, 0.1, 0.5, 0.6]
    assert gauc(user_ids, labels, scores) == pytest.approx(0.5)  # users 1 (AUC 1) and 2 (AUC 0), equal weight
    assert gauc(user_ids, labels, scores, weights={1: 3.0, 2: 1.0, 3: 100.0}) == pytest.approx(0.75)
    pu = per_user(auc, user_ids, labels, scores)
    assert list(pu.users) == [1, 2] and list(pu.dropped) == [3] and list(pu.counts) == [2, 2]


def test_global_auc_can_hide_a_user_the_model_cannot_rank():
    # User 0 clicks often and gets high scores, user 1 rarely and gets low ones; within user 1 the model is
    # no better than chance: global AUC looks good, GAUC does not.
    user_ids = [0, 0, 0, 0, 1, 1, 1, 1]
    labels = [1, 1, 1, 0, 1, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.2, 0.2, 0.2]
    # 3 high positives beat all 4 negatives (12); the 0.2 positive ties three 0.2 negatives (1.5).
    assert auc(labels, scores) == pytest.approx(13.5 / 16)
    assert gauc(user_ids, labels, scores) == pytest.approx((4 * 1.0 + 4 * 0.5) / 8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: auc([0, 1, 1], [0.1, 0.2]), "lengths"),
        (lambda: auc([0, 1], [0.1, float("nan")]), "scores"),
        (lambda: auc([1, 1], [0.1, 0.2]), "one class"),
        (lambda: auc([0, 2], [0.1, 0.2]), "0 or 1"),
        (lambda: gauc([1, 2], [0, 1, 1], [0.1, 0.2, 0.3]), "lengths"),
        (lambda: gauc([1, 1], [0, 1], [0.1, float("nan")]), "scores"),
        (lambda: gauc([1, 2], [0, 1], [0.1, 0.2]), "no user"),
        (lambda: gauc([1, 1], [0, 1], [0.1, 0.2], weights="nonsense"), "weights"),
        (lambda: percentiles([], (10,)), "values"),
        (lambda: percentiles([1.0], (101,)), "percentiles"),
        (lambda: fleet_summary([1.0, float("nan")]), "values"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_summaries_by_hand():
    values = np.arange(1, 21, dtype=float)  # 1..20
    f = fairness(values)
    assert f.mean == 10.5 and f.variance == pytest.approx(np.var(values))
    assert f.worst_decile_mean == 1.5 and f.best_decile_mean == 19.5  # ceil(20/10) = 2 users each
    assert f.p10 == pytest.approx(np.percentile(values, 10))
    loss = fairness(values, higher_is_better=False)
    assert loss.worst_decile_mean == 19.5 and loss.p10 == pytest.approx(np.percentile(values, 90))
    assert percentiles(values, (0, 50, 100)) == {0: 1.0, 50: 10.5, 100: 20.0}
    s = fleet_summary(np.arange(101, dtype=float))  # 0..100: percentiles are exact integers
    assert (s.n, s.mean, s.p50, s.p90, s.p99, s.max) == (101, 50.0, 50.0, 90.0, 99.0, 100.0)


def _old_distill_accuracy(model, x, y):  # collab_lib.data_based.distill.accuracy before the merge
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=-1) == y).double().mean().item()


def _old_split_learning_accuracy(model, x, y):  # split_learning.accuracy and logit_exchange._accuracy
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).double().mean().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_equals_the_copies_it_replaced_and_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    n = 50 + 37 * seed  # not a round share: a wrong denominator shows
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (n,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4)).double()
    got = accuracy(model, x, y)
    assert got == _old_distill_accuracy(model, x, y) == _old_split_learning_accuracy(model, x, y)
    with torch.no_grad():
        assert got == pytest.approx(accuracy_score(y.numpy(), model(x).argmax(dim=1).numpy()), abs=1e-15)
    assert 0 < got < 1


def test_accuracy_restores_the_training_mode_and_leaves_no_graph():
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(3, 2))
    x, y = torch.ones(4, 3), torch.zeros(4, dtype=torch.int64)
    model.train()
    first = accuracy(model, x, y)
    assert model.training and first == accuracy(model, x, y)  # dropout off while measuring: deterministic
    model.eval()
    accuracy(model, x, y)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("n_x, n_y", [(0, 0), (3, 2)])
def test_accuracy_rejects_empty_or_mismatched_batches(n_x, n_y):
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        accuracy(nn.Linear(2, 2), torch.zeros(n_x, 2), torch.zeros(n_y, dtype=torch.int64))
