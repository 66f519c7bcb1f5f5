"""Chapter 8's application modules against hand computations, brute force and scikit-learn."""

import math

import numpy as np
import pytest
import torch

from collab_lib.applications import assistant, reranking
from collab_lib.datasets.recsys import RecsysConfig, click_probability, generate
from collab_lib.exercises import applications as checks
from collab_lib.models import CharLM, CharLMConfig
from collab_lib.system.cascade import PrecomputedRouter, calibrate_threshold


@pytest.fixture(scope="module")
def data():
    return generate(RecsysConfig(num_users=30, num_items=60, num_categories=4, sessions_per_user=3,
                                 impressions_per_session=12.0, base_ctr=0.3), seed=3)


@pytest.mark.parametrize("delay_s", [0.0, 3.0, 7.5, 60.0])
def test_session_counts_match_brute_force(data, delay_s):
    clicks, shows = reranking.session_counts(data, delay_s)
    sid, t = data.session_id.numpy(), data.timestamp_s.numpy()
    cat, y = data.category_id.numpy(), data.click.numpy()
    for i in range(0, data.num_impressions, 7):
        ref_c, ref_s = np.zeros(4), np.zeros(4)
        for j in range(i):
            if sid[j] == sid[i] and t[j] <= t[i] - delay_s:
                ref_s[cat[j]] += 1
                ref_c[cat[j]] += y[j]
        np.testing.assert_array_equal(clicks[i], ref_c)
        np.testing.assert_array_equal(shows[i], ref_s)


@pytest.mark.parametrize("delay_s", [0.0, 3.0, 7.5, 60.0])
def test_session_features_agree_with_the_labs_reference(data, delay_s):
    # The check's brute force (one session at a time) and the library (all rows at once) agree.
    clicks, shows = reranking.session_counts(data, delay_s)
    sid, t = data.session_id.numpy(), data.timestamp_s.numpy()
    cat, y = data.category_id.numpy(), data.click.numpy()
    rows = np.arange(len(cat))
    same_click = clicks[rows, cat]
    lib = np.column_stack([same_click, shows[rows, cat] - same_click, clicks.sum(axis=1) - same_click])
    for s in np.unique(sid)[:10]:
        r = np.flatnonzero(sid == s)
        np.testing.assert_array_equal(lib[r], checks.reference_session_features(t[r], cat[r], y[r], delay_s))


def test_long_term_stats_by_hand(data):
    h = data.timestamp_s.numpy() < data.config.horizon_s / 2
    st = reranking.long_term_stats(data, h, smoothing=2.0)
    y, u, c, it = (data.click.numpy().astype(np.float64)[h], data.user_id.numpy()[h], data.category_id.numpy()[h],
                   data.item_id.numpy()[h])
    p = y.mean()
    sel = (u == 4) & (c == 1)
    assert math.isclose(st.user_category[4, 1], math.log((y[sel].sum() + 2 * p) / (sel.sum() + 2)))
    sel = it == it[0]
    assert math.isclose(st.item[it[0]], math.log((y[sel].sum() + 2 * p) / (sel.sum() + 2)))


def test_fit_logistic_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) * [1.0, 2.0, 0.5]
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-(X @ [1.0, -0.5, 2.0] + 0.3)))).astype(float)
    l2 = 0.01
    w = reranking.fit_logistic(X, y, l2=l2)
    ref = LogisticRegression(C=1 / (l2 * len(X)), tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(w[:-1], ref.coef_[0], atol=1e-5)
    assert abs(w[-1] - ref.intercept_[0]) < 1e-5


def _small_feed():
    """A feed without drift or noise (interests stay theta_u), long-term stats from its first five
    impressions, and three of its sessions."""
    cfg = RecsysConfig(num_users=5, num_items=20, num_categories=3, sessions_per_user=2,
                       impressions_per_session=6.0, drift=0.0, noise=0.0)
    d = generate(cfg, seed=1)
    h = np.zeros(d.num_impressions, dtype=bool)
    h[:5] = True
    return cfg, d, reranking.long_term_stats(d, h), np.array([0, 3, 7])


def test_simulate_feed_expected_clicks_by_hand():
    # Without drift and noise the interest stays theta_u; zero weights keep the logged order (argmax ties
    # pick the first candidate), so the expected clicks are a sum of click probabilities we can write out.
    cfg, d, st, sessions = _small_feed()
    out = reranking.simulate_feed(d, sessions, st, np.zeros(len(reranking.FEATURES) + 1), 0.0, seed=0)
    for k, s in enumerate(sessions):
        r = np.flatnonzero(d.session_id.numpy() == s)
        u = int(d.user_id[r[0]])
        p = click_probability(d.user_interest[u, d.category_id[r]], d.item_quality[d.item_id[r]] +
                              d.user_propensity[u], torch.arange(len(r)), cfg)
        assert math.isclose(out.expected_clicks[k], float(p.sum()), rel_tol=1e-6)
        assert out.impressions[k] == len(r)


def test_simulate_feed_pages_by_hand():
    # The cloud sends the first `candidates` logged items and the feed shows `slots` of them. Zero weights
    # keep the logged order, so a page of 3 slots shows the first 3 logged items whatever the pool: the
    # same sums of click probabilities as the whole-session test above, cut at 3.
    cfg, d, st, sessions = _small_feed()
    zero = np.zeros(len(reranking.FEATURES) + 1)
    whole = reranking.simulate_feed(d, sessions, st, zero, 0.0, seed=0)
    same = reranking.simulate_feed(d, sessions, st, zero, 0.0, seed=0, candidates=1000)
    np.testing.assert_array_equal(whole.expected_clicks, same.expected_clicks)
    for candidates in (3, 5):
        page = reranking.simulate_feed(d, sessions, st, zero, 0.0, seed=0, candidates=candidates, slots=3)
        for k, s in enumerate(sessions):
            r = np.flatnonzero(d.session_id.numpy() == s)[:3]
            u = int(d.user_id[r[0]])
            p = click_probability(d.user_interest[u, d.category_id[r]], d.item_quality[d.item_id[r]] +
                                  d.user_propensity[u], torch.arange(len(r)), cfg)
            assert math.isclose(page.expected_clicks[k], float(p.sum()), rel_tol=1e-6)
            assert page.impressions[k] == len(r)
    # An oracle with a larger pool for the same slots picks each slot from more candidates.
    oracle = [reranking.simulate_feed(d, sessions, st, None, 0.0, seed=0, candidates=c, slots=2).expected_clicks
              for c in (2, 6)]
    assert oracle[1].sum() >= oracle[0].sum()
    for bad, match in [(dict(candidates=0), "candidates"), (dict(slots=True), "slots"),
                       (dict(candidates=2, slots=3), "slots must be <= candidates")]:
        with pytest.raises(ValueError, match=match):
            reranking.simulate_feed(d, sessions, st, zero, 0.0, seed=0, **bad)


def test_page_bytes_by_hand():
    assert reranking.page_bytes(24) == 24 * (8 + 4 + 4 + 4) == 480
    assert reranking.page_bytes(0) == 0
    with pytest.raises(ValueError, match="candidates"):
        reranking.page_bytes(-1)


def test_oracle_beats_logged_order_and_gain_definition(data):
    h = data.timestamp_s.numpy() < data.config.horizon_s / 2
    st = reranking.long_term_stats(data, h)
    sessions = reranking.session_ids(data, ~h)
    logged = reranking.simulate_feed(data, sessions, st, np.zeros(len(reranking.FEATURES) + 1), 0.0, seed=2)
    oracle = reranking.simulate_feed(data, sessions, st, None, 0.0, seed=2)
    assert reranking.ctr_gain(oracle, logged) > 0
    assert math.isclose(reranking.ctr_gain(oracle, logged),
                        oracle.expected_clicks.sum() / logged.expected_clicks.sum() - 1)


def _old_route(difficulty, private, online, threshold, hard_mode="cloud"):
    """The assistant's routing rule before it took a Router: the reference for the Router-based one."""
    hard = (np.asarray(difficulty, dtype=np.float64) >= threshold) & ~np.asarray(private) & np.asarray(online)
    return np.where(hard, assistant.MODES.index(hard_mode), 0)


def test_route_and_evaluate_by_hand():
    d = np.array([0.1, 0.9, 0.9, 0.9, 0.5])
    private = np.array([False, False, True, False, False])
    online = np.array([True, True, True, False, True])
    router = PrecomputedRouter()
    np.testing.assert_array_equal(assistant.route(router, d, private, online, 0.5), [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(assistant.route(router, d, private, online, 0.5, "speculative"), [0, 2, 0, 0, 2])
    np.testing.assert_array_equal(assistant.cloud_eligible(private, online), [True, True, False, False, True])
    modes = np.array([0, 1, 2])
    costs = assistant.AssistantCosts(device_step_s=0.01, cloud_step_s=0.02, rtt_s=np.array([0.1, 0.05, 0.2]),
                                     gamma=4)
    out = assistant.evaluate(modes, np.array([0.4, 0.4, 0.4]), np.array([0.6, 0.7, 0.8]),
                             np.array([9.0, 9.0, 3.0]), 10, costs)
    assert math.isclose(out.quality, (0.4 + 0.7 + 0.8) / 3)
    assert math.isclose(out.cloud_passes, (0 + 10 + 3) / 3)
    lat = [10 * 0.01, 0.05 + 10 * 0.02, 3 * (4 * 0.01 + 0.2 + 0.02)]
    assert math.isclose(out.latency_s, sum(lat) / 3)
    assert out.share == {"device": 1 / 3, "cloud": 1 / 3, "speculative": 1 / 3}
    with pytest.raises(ValueError, match="hard_mode"):
        assistant.route(router, d, private, online, 0.5, "edge")


def test_router_route_equals_the_old_rule_on_random_inputs():
    # The old rule thresholded the scores itself; the Router-based route must give the same codes, with
    # ties in the scores and thresholds at, between and outside the scores.
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        d = rng.choice(np.round(rng.uniform(size=n), 1 if trial % 3 == 0 else 6), size=n)  # ties on some trials
        private, online = rng.uniform(size=n) < 0.25, rng.uniform(size=n) < 0.85
        t = float(rng.choice([0.0, 1.0, d[0], rng.uniform()]))
        for mode in ("cloud", "speculative"):
            np.testing.assert_array_equal(assistant.route(PrecomputedRouter(), d, private, online, t, mode),
                                          _old_route(d, private, online, t, mode))
    # On the device's NLLs (nats/char, the old rule's input): difficulty_score ranks as the NLL does, so a
    # threshold at a request's score sends exactly the requests whose NLL is at least that request's.
    nll = rng.uniform(0.5, 4.0, size=200)
    private, online = rng.uniform(size=200) < 0.2, rng.uniform(size=200) < 0.85
    score = assistant.difficulty_score(nll)
    for k in rng.choice(200, size=40, replace=False):
        np.testing.assert_array_equal(assistant.route(PrecomputedRouter(), score, private, online, score[k]),
                                      _old_route(nll, private, online, nll[k]))


def test_difficulty_score_by_hand():
    nll = np.array([0.0, math.log(2), 2.0, 1e-20])
    np.testing.assert_allclose(assistant.difficulty_score(nll), [0.0, 0.5, 1 - math.exp(-2), 1e-20], rtol=1e-15)
    for bad in (np.array([-0.1]), np.array([np.nan]), np.zeros((2, 2)), np.array([])):
        with pytest.raises(ValueError, match="prompt_nll"):
            assistant.difficulty_score(bad)


class _FirstColumn:
    """A router over (n, 2) features: the first column is the score."""

    def score(self, x):
        return torch.as_tensor(x, dtype=torch.float64)[:, 0]


def test_route_takes_any_router_and_calibrated_budgets_hold_on_eligible_requests():
    rng = np.random.default_rng(4)
    n = 97
    x = rng.uniform(size=(n, 2))
    private, online = rng.uniform(size=n) < 0.2, rng.uniform(size=n) < 0.85
    eligible = assistant.cloud_eligible(private, online)
    m = int(eligible.sum())
    for b in np.linspace(0, 1, 11):
        t = calibrate_threshold(_FirstColumn().score(x)[eligible], b)
        modes = assistant.route(_FirstColumn(), x, private, online, t)
        sent = int((modes == 1).sum())
        assert not (modes[~eligible] != 0).any()
        # No ties: the count sent is the one closest to b m (the smaller one when b m ends in .5).
        assert sent == min(range(m + 1), key=lambda k: (abs(k - b * m), k))
        np.testing.assert_array_equal(modes == 1, eligible & (x[:, 0] >= t))


def test_route_bad_input():
    d, private, online = np.array([0.2, 0.8]), np.array([False, True]), np.array([True, True])
    with pytest.raises(ValueError, match="private and online"):
        assistant.route(PrecomputedRouter(), d, np.array([0, 1]), online, 0.5)
    with pytest.raises(ValueError, match="private and online"):
        assistant.route(PrecomputedRouter(), d, private, online[:1], 0.5)
    with pytest.raises(ValueError, match="2 requests"):
        assistant.route(PrecomputedRouter(), np.array([0.1, 0.2, 0.3]), private, online, 0.5)
    with pytest.raises(ValueError, match="threshold"):
        assistant.route(PrecomputedRouter(), d, private, online, 1.5)
    with pytest.raises(ValueError, match="scores"):
        assistant.route(PrecomputedRouter(), np.array([0.1, 2.0]), private, online, 0.5)  # NLLs, not scores


def _tiny_lm(seed):
    torch.manual_seed(seed)
    return CharLM(CharLMConfig(vocab_size=80, context_len=64, d_model=16, num_heads=2, num_layers=1,
                               d_ff=32)).eval()


def test_requests_scores_and_rounds():
    text = torch.randint(0, 80, (500,), generator=torch.Generator().manual_seed(0))
    r = assistant.make_requests(text, 5, 12, 8, seed=1)
    starts = [int(np.flatnonzero([torch.equal(text[s:s + 12], p) for s in range(480)])[0]) for p in r.prompts]
    for s, a in zip(starts, r.answers):
        assert torch.equal(text[s + 12:s + 20], a)
    lm = _tiny_lm(0)
    nll, acc = assistant.score_requests(lm, r)
    with torch.no_grad():  # the same numbers, one request and one position at a time
        for k in range(5):
            ids = torch.cat([r.prompts[k], r.answers[k]])
            lp = torch.log_softmax(lm(ids[None, :-1])[0].double(), -1)
            assert math.isclose(nll[k], -float(lp[torch.arange(11), ids[1:12]].mean()), rel_tol=1e-6)
            assert math.isclose(acc[k], float((lp[11:].argmax(-1) == ids[12:]).double().mean()))
    # A draft identical to the target is always accepted: each round yields gamma + 1 tokens.
    rounds = assistant.speculative_rounds(lm, lm, r, gamma=3)
    np.testing.assert_array_equal(rounds, np.full(5, math.ceil(8 / 4)))


def test_speculative_rounds_equal_speculative_generate_and_greedy_answers_autoregressive():
    # Two different models, so drafts are rejected at varying positions: the batched replay must count the
    # rounds that speculative_generate (one call per drafted token) takes, and decode the same answer.
    from collab_lib.models import CachedLM
    from collab_lib.system.speculative import autoregressive_generate, speculative_generate

    text = torch.randint(0, 80, (600,), generator=torch.Generator().manual_seed(2))
    r = assistant.make_requests(text, 6, 10, 12, seed=3)
    target, draft = _tiny_lm(1), _tiny_lm(2)
    # Sharpen the draft towards the target so that some drafts are accepted: mix their weights.
    with torch.no_grad():
        for p_d, p_t in zip(draft.parameters(), target.parameters()):
            p_d.mul_(0.3).add_(0.7 * p_t)
    answers = assistant.greedy_answers(target, r.prompts, 12)
    for gamma in (1, 3, 5):
        rounds = assistant.speculative_rounds(target, draft, r, gamma)
        ref = []
        for k, prompt in enumerate(r.prompts):
            seq, stats = speculative_generate(CachedLM(target), CachedLM(draft), prompt, 12, gamma, 0.0)
            assert torch.equal(seq[10:], answers[k])
            ref.append(stats.rounds)
        np.testing.assert_array_equal(rounds, ref)
        assert len(set(ref)) > 1  # rejections at varying positions: the case is not trivial
    for k, prompt in enumerate(r.prompts):
        assert torch.equal(autoregressive_generate(target, prompt, 12, temperature=0.0)[10:], answers[k])
    with pytest.raises(ValueError, match="gamma"):
        assistant.speculative_rounds(target, draft, r, 0)
