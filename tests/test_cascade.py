"""Cascades and routers: thresholds against a brute-force search and NumPy's quantile, the budget held on
held-out queries, costs worked by hand, frontier endpoints, and clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from collab_lib.models import digits_large_model, digits_router_net, digits_small_model
from collab_lib.seed import generator
from collab_lib.system.cascade import (
    ConfidenceRouter,
    LearnedRouter,
    Policy,
    PrecomputedRouter,
    RandomRouter,
    Router,
    calibrate_threshold,
    cascade_outcome,
    cheapest_reaching,
    confidence_scores,
    fit_classifier,
    frontier,
    route,
    train_router,
)

BUDGETS = [0.0, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]


def realised(scores, fraction):
    return route(scores, calibrate_threshold(scores, fraction)).double().mean().item()


def brute_force_count(scores: np.ndarray, fraction: float) -> int:
    """The reachable number of queries closest to fraction * n (the smaller on a tie), by trying every
    threshold: each score and 1.0."""
    n = len(scores)
    counts = sorted({int((scores >= t).sum()) for t in [*scores, 1.0]})
    return min(counts, key=lambda c: (abs(c - fraction * n), c))


# --- calibrate_threshold ------------------------------------------------------------------------------


def test_distinct_scores_give_the_kth_largest_score_and_the_exact_share():
    s = torch.rand(1000, generator=generator(0), dtype=torch.float64)
    for b in (0.05, 0.1, 0.37, 0.5, 0.9):
        k = round(b * 1000)
        # References: the k-th largest score, and NumPy's (1 - k/n) quantile rounded up to a score.
        tau = calibrate_threshold(s, b)
        assert tau == np.sort(s.numpy())[1000 - k]
        assert tau == np.quantile(s.numpy(), 1 - k / 1000, method="higher")
        assert realised(s, b) == k / 1000


def test_share_is_within_half_a_query_without_ties():
    s = torch.rand(77, generator=generator(1))  # float32, n not a multiple of 10
    for b in np.linspace(0, 1, 101):
        assert abs(realised(s, b) * 77 - b * 77) <= 0.5 + 1e-9


def test_ties_match_a_brute_force_search():
    rng = np.random.default_rng(2)
    for n, levels in [(200, 7), (500, 40), (31, 3)]:
        s = rng.integers(0, levels, size=n) / levels  # heavy ties, scores in [0, 1)
        for b in BUDGETS + list(rng.uniform(size=10)):
            count = int(route(torch.tensor(s), calibrate_threshold(s, b)).sum())
            assert count == brute_force_count(s, b), (n, levels, b)


def test_ties_get_one_decision_and_the_smaller_share_on_an_exact_tie():
    s = torch.tensor([0.2, 0.5, 0.5, 0.9])
    # 50% = 2 queries: reachable counts 0, 1, 3, 4 -> 1 and 3 are equally close -> the smaller one.
    assert calibrate_threshold(s, 0.5) == pytest.approx(0.9)
    assert route(s, calibrate_threshold(s, 0.5)).tolist() == [False, False, False, True]
    assert route(s, calibrate_threshold(s, 0.7)).tolist() == [False, True, True, True]


def test_threshold_and_share_are_monotone_in_the_budget():
    rng = np.random.default_rng(3)
    s = np.round(rng.beta(0.5, 2.0, size=300), 2)  # ties and a skewed distribution
    taus = [calibrate_threshold(s, b) for b in np.linspace(0, 1, 201)]
    shares = [route(s, t).double().mean().item() for t in taus]
    assert all(a >= b for a, b in zip(taus, taus[1:]))
    assert all(a <= b for a, b in zip(shares, shares[1:]))


def test_extremes_send_nothing_and_everything_on_any_data():
    cal = torch.rand(50, generator=generator(4)) * 0.5 + 0.25  # scores in [0.25, 0.75)
    new = torch.rand(1000, generator=generator(5))             # new queries over all of [0, 1)
    assert calibrate_threshold(cal, 0.0) == 1.0 and not route(new, 1.0).any()
    assert calibrate_threshold(cal, 1.0) == 0.0 and route(new, 0.0).all()
    # A score of exactly 1 cannot be kept from the large model by a threshold in [0, 1].
    assert route(torch.tensor([1.0, 0.3]), calibrate_threshold(torch.tensor([1.0, 0.3]), 0.0)).tolist() == \
        [True, False]


def test_route_compares_float32_scores_exactly():
    s = torch.tensor([0.1, 0.3, 0.7], dtype=torch.float32)  # 0.3 and 0.7 are not exact in binary
    assert route(s, calibrate_threshold(s, 2 / 3)).tolist() == [False, True, True]
    assert route(s, float(s[1])).tolist() == [False, True, True]


# --- the budget on held-out queries (the requirement) -----------------------------------------


def mlp(seed, *sizes):
    """Linear layers of the given sizes with ReLUs between, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    return nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())][:-1])


def _two_blobs(n, seed):
    """(n, 2) points from two overlapping Gaussian classes: a linear small model errs near the middle."""
    g = generator(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) + 1.2 * (2 * y[:, None] - 1)
    return x, y


@pytest.fixture(scope="module")
def blobs():
    x_tr, y_tr = _two_blobs(4000, seed=10)
    x_cal, y_cal = _two_blobs(20_000, seed=11)
    x_te, y_te = _two_blobs(20_000, seed=12)
    small = mlp(0, 2, 2)
    fit_classifier(small, x_tr, y_tr, epochs=3, lr=0.05, seed=13)
    router = train_router(mlp(1, 2, 8, 2), small, x_tr, y_tr, epochs=5, lr=0.02, seed=14)
    return small, router, x_cal, x_te, y_te


@pytest.mark.parametrize("budget", [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
def test_held_out_share_is_within_two_points_of_the_budget(blobs, budget):
    small, router, x_cal, x_te, _ = blobs
    for r in (ConfidenceRouter(small), router, RandomRouter(seed=15)):
        tau = calibrate_threshold(r.score(x_cal), budget)   # calibration split only
        share = route(r.score(x_te), tau).double().mean().item()  # measured on the test split
        assert abs(share - budget) <= 0.02, (type(r).__name__, budget, share)


def test_frontier_reports_the_held_out_share(blobs):
    small, router, x_cal, x_te, y_te = blobs
    with torch.no_grad():
        z = small(x_te)
    policies = {"cascade": Policy(ConfidenceRouter(small), True), "router": Policy(router, False)}
    budgets = [0.05, 0.1, 0.3, 0.6]
    curves = frontier(policies, x_cal, x_te, z, z, y_te, 1.0, 10.0, budgets)
    for name in policies:
        assert np.abs(curves[name].large_fraction - budgets).max() <= 0.02
    # and the realised share really is measured on x_te with thresholds from x_cal
    tau = calibrate_threshold(router.score(x_cal), 0.3)
    assert curves["router"].thresholds[2] == tau
    assert curves["router"].large_fraction[2] == route(router.score(x_te), tau).double().mean().item()


# --- cascade_outcome by hand --------------------------------------------------------------------------


def logits_for(preds, classes=3):
    """Rigged logits: 5 for the predicted class, 0 elsewhere."""
    z = torch.zeros(len(preds), classes)
    z[torch.arange(len(preds)), torch.tensor(preds)] = 5.0
    return z


LABELS = torch.tensor([0, 1, 2, 0, 1, 2])
SMALL = logits_for([0, 1, 0, 0, 2, 2])   # right, right, wrong, right, wrong, right
LARGE = logits_for([0, 1, 2, 1, 1, 2])   # right, right, right, wrong, right, right
SEND = torch.tensor([False, False, True, True, True, False])


def test_cascade_outcome_by_hand():
    # Answers: small, small, large (right), large (wrong), large (right), small -> 5 of 6 right.
    cascade = cascade_outcome(SMALL, LARGE, LABELS, SEND, small_cost=2.0, large_cost=10.0,
                              small_always_runs=True)
    assert cascade.accuracy == pytest.approx(5 / 6)
    assert cascade.large_fraction == pytest.approx(0.5)
    assert cascade.cost == pytest.approx(2.0 + 0.5 * 10.0)             # every query paid the small model
    one_shot = cascade_outcome(SMALL, LARGE, LABELS, SEND, small_cost=2.0, large_cost=10.0,
                               small_always_runs=False, router_cost=0.25)
    assert one_shot.accuracy == pytest.approx(5 / 6)
    assert one_shot.cost == pytest.approx(0.25 + 0.5 * 2.0 + 0.5 * 10.0)  # router + 3 small + 3 large
    # The per-query loop the formula summarises.
    per_query = [0.25 + (10.0 if s else 2.0) for s in SEND.tolist()]
    assert one_shot.cost == pytest.approx(sum(per_query) / 6)


def test_sending_everything_or_nothing_gives_each_model_alone():
    none = cascade_outcome(SMALL, LARGE, LABELS, torch.zeros(6, dtype=torch.bool), 2.0, 10.0, False)
    every = cascade_outcome(SMALL, LARGE, LABELS, torch.ones(6, dtype=torch.bool), 2.0, 10.0, False)
    assert (none.accuracy, none.large_fraction, none.cost) == (pytest.approx(4 / 6), 0.0, 2.0)
    assert (every.accuracy, every.large_fraction, every.cost) == (pytest.approx(5 / 6), 1.0, 10.0)


def test_confidence_scores_match_torch_softmax():
    z = torch.randn(20, 7, generator=generator(6)) * 4
    ref = 1 - torch.softmax(z, dim=-1).max(dim=-1).values
    assert torch.allclose(confidence_scores(z).float(), ref, atol=1e-6)
    # Sure answers stay apart: 1 - p_max = e^-gap / (1 + e^-gap) for two classes.
    sure = confidence_scores(torch.tensor([[40.0, 0.0], [60.0, 0.0]]))
    assert sure.tolist() == pytest.approx([np.exp(-40) / (1 + np.exp(-40)), np.exp(-60) / (1 + np.exp(-60))],
                                          rel=1e-12)


# --- frontier endpoints -------------------------------------------------------------------------------


class TableRouter:
    """Scores looked up by query id: x holds indices into a fixed table."""

    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float64)

    def score(self, x):
        return self.table[x]


def test_frontier_endpoints_equal_the_single_models():
    n = 60
    g = generator(7)
    labels = torch.randint(0, 3, (n,), generator=g)
    small = torch.randn(n, 3, generator=g)
    large = torch.randn(n, 3, generator=g) + 4 * nn.functional.one_hot(labels, 3)  # mostly right
    x_cal, x_test = torch.arange(n, 2 * n), torch.arange(n)
    table = torch.rand(2 * n, generator=g)
    policies = {
        "cascade": Policy(TableRouter(table), small_always_runs=True),
        "router": Policy(TableRouter(table.flip(0)), small_always_runs=False),
        "random": Policy(RandomRouter(seed=8), small_always_runs=False),
    }
    c = frontier(policies, x_cal, x_test, small, large, labels, 3.0, 100.0, budgets=[0.0, 0.4, 1.0])
    alone_small, alone_large = c["always small"], c["always large"]
    assert alone_small.cost[0] == 3.0 and alone_large.cost[0] == 100.0
    assert alone_small.accuracy[0] == (small.argmax(1) == labels).double().mean().item()
    assert alone_large.accuracy[0] == (large.argmax(1) == labels).double().mean().item()
    for name in policies:
        assert c[name].large_fraction[[0, -1]].tolist() == [0.0, 1.0]
        assert c[name].accuracy[0] == alone_small.accuracy[0]
        assert c[name].accuracy[-1] == alone_large.accuracy[0]
    for name in ("router", "random"):
        assert c[name].cost[[0, -1]].tolist() == [3.0, 100.0]
    assert c["cascade"].cost[[0, -1]].tolist() == [3.0, 103.0]  # the cascade paid the small model too
    assert cheapest_reaching(c["router"], alone_large.accuracy[0]) is not None
    assert cheapest_reaching(c["router"], 1.01) is None


def test_random_baseline_lies_near_the_straight_line():
    n = 4000
    g = generator(9)
    labels = torch.zeros(n, dtype=torch.long)
    small = torch.tensor([[1.0, 0.0], [0.0, 1.0]])[(torch.rand(n, generator=g) < 0.3).long()]  # 70% right
    large = torch.tensor([[1.0, 0.0]]).repeat(n, 1)                                            # all right
    c = frontier({"random": Policy(RandomRouter(seed=10), False)}, torch.arange(n), torch.arange(n),
                 small, large, labels, 1.0, 10.0, budgets=[0.25, 0.5, 0.75])
    acc_s = (small.argmax(1) == 0).double().mean().item()
    line = (1 - c["random"].large_fraction) * acc_s + c["random"].large_fraction * 1.0
    assert np.abs(c["random"].accuracy - line).max() < 0.02


# --- routers and training -----------------------------------------------------------------------------


def test_routers_satisfy_the_protocol_and_score_in_unit_interval():
    x = torch.rand(30, 1, 8, 8, generator=generator(11))
    small, net = digits_small_model(seed=0), digits_router_net(seed=1)
    for r in (ConfidenceRouter(small), LearnedRouter(net), RandomRouter(seed=2)):
        assert isinstance(r, Router)
        s = r.score(x)
        assert s.shape == (30,) and s.min() >= 0 and s.max() <= 1
    assert not isinstance(object(), Router)


def test_model_builders_are_seeded_and_leave_the_global_stream_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = digits_large_model(seed=4), digits_large_model(seed=4)
    assert torch.rand(1) == before
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(digits_large_model(seed=5)[0].weight, a[0].weight)


def test_fit_classifier_is_deterministic_and_learns():
    x, y = _two_blobs(500, seed=16)
    runs = []
    for _ in range(2):
        m = mlp(0, 2, 2)
        runs.append((fit_classifier(m, x, y, epochs=4, lr=0.05, seed=17), m[0].weight.detach().clone()))
    assert np.array_equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0][-1] < runs[0][0][0]


def test_train_router_learns_where_the_small_model_errs(blobs):
    small, router, x_cal, _, _ = blobs
    # The small model errs near the decision boundary: there the router's score must be higher.
    with torch.no_grad():
        margin = small(x_cal).softmax(-1).max(-1).values
    s = router.score(x_cal)
    assert s[margin < 0.6].mean() > 2 * s[margin > 0.9].mean()


def test_precomputed_router_hands_on_its_input():
    r = PrecomputedRouter()
    assert isinstance(r, Router)
    x = np.array([0.3, 1.0, 0.0, 0.3])
    s = r.score(x)
    assert s.dtype == torch.float64 and s.tolist() == x.tolist()
    x[0] = 0.9  # a copy: later changes to the input do not reach the scores
    assert s[0].item() == 0.3
    assert r.score(torch.tensor([0.25, 0.75], dtype=torch.float32)).tolist() == [0.25, 0.75]
    # Through route and calibrate_threshold exactly as the scores themselves.
    assert route(r.score([0.1, 0.6, 0.4]), 0.4).tolist() == route(torch.tensor([0.1, 0.6, 0.4]), 0.4).tolist()
    for bad, match in (([0.2, 1.5], r"\[0, 1\]"), ([float("nan")], "NaN"), ([], "empty"), ([[0.1]], "1-D")):
        with pytest.raises(ValueError, match=match):
            r.score(bad)


# --- bad inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), True, "0.5"])
def test_fraction_and_threshold_outside_unit_interval(bad):
    s = torch.tensor([0.1, 0.5])
    with pytest.raises(ValueError, match="large_fraction"):
        calibrate_threshold(s, bad)
    with pytest.raises(ValueError, match="threshold"):
        route(s, bad)


@pytest.mark.parametrize("scores, match", [
    (torch.tensor([]), "empty"),
    (torch.tensor([0.2, float("nan")]), "NaN"),
    (torch.tensor([0.2, 1.5]), r"\[0, 1\]"),
    (torch.zeros(2, 2), "1-D"),
])
def test_bad_scores(scores, match):
    with pytest.raises(ValueError, match="scores") as err:
        calibrate_threshold(scores, 0.5)
    assert err.match(match)
    with pytest.raises(ValueError, match="scores"):
        route(scores, 0.5)


def test_mismatched_lengths_name_the_parameter():
    with pytest.raises(ValueError, match="send_to_large"):
        cascade_outcome(SMALL, LARGE, LABELS, SEND[:5], 1.0, 2.0, True)
    with pytest.raises(ValueError, match="send_to_large"):
        cascade_outcome(SMALL, LARGE, LABELS, SEND.long(), 1.0, 2.0, True)
    with pytest.raises(ValueError, match="small_logits"):
        cascade_outcome(SMALL[:5], LARGE, LABELS, SEND, 1.0, 2.0, True)
    with pytest.raises(ValueError, match="large_logits"):
        cascade_outcome(SMALL, LARGE[:4], LABELS, SEND, 1.0, 2.0, True)
    with pytest.raises(ValueError, match="labels"):
        frontier({}, torch.arange(6), torch.arange(6), SMALL, LARGE, LABELS[:5], 1.0, 2.0)
    with pytest.raises(ValueError, match="x and y"):
        fit_classifier(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), 1, 0.1, 0)


def test_bad_costs_budgets_and_names():
    for name, kwargs in [("small_cost", dict(small_cost=-1.0)), ("large_cost", dict(large_cost=float("inf"))),
                         ("router_cost", dict(router_cost=-0.5))]:
        args = dict(small_cost=1.0, large_cost=2.0, router_cost=0.0) | kwargs
        with pytest.raises(ValueError, match=name):
            cascade_outcome(SMALL, LARGE, LABELS, SEND, small_always_runs=True, **args)
    x = torch.arange(6)
    with pytest.raises(ValueError, match="budgets"):
        frontier({}, x, x, SMALL, LARGE, LABELS, 1.0, 2.0, budgets=[0.5, 1.2])
    with pytest.raises(ValueError, match="budgets"):
        frontier({}, x, x, SMALL, LARGE, LABELS, 1.0, 2.0, budgets=[])
    with pytest.raises(ValueError, match="policies"):
        frontier({"always small": Policy(RandomRouter(0), False)}, x, x, SMALL, LARGE, LABELS, 1.0, 2.0)
