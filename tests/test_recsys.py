"""The session generator against references: the click formula and drift rule re-implemented here,
hand-made timestamps for the cloud's lagging view, and the structural invariants of the rows."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from collab_lib.datasets.recsys import (
    INTEREST_FLOOR,
    RecsysConfig,
    RecsysData,
    click_probability,
    cloud_view,
    device_view,
    generate,
    next_interest,
)

SMALL = RecsysConfig(
    num_users=60, num_items=300, num_categories=8, sessions_per_user=4, impressions_per_session=12
)
COLUMNS = ("user_id", "session_id", "item_id", "category_id", "position", "timestamp_s", "click", "interest")
TABLES = ("item_category", "item_quality", "user_interest", "user_propensity")


def _reference_probability(interest, quality, position, cfg):
    """The click model of the module docstring, written out independently in NumPy float64."""
    interest = np.maximum(np.asarray(interest, dtype=np.float64), INTEREST_FLOOR)
    logit = (
        math.log(cfg.base_ctr) - math.log(1 - cfg.base_ctr)
        + cfg.interest_weight * np.log(cfg.num_categories * interest)
        + np.asarray(quality, dtype=np.float64)
        - cfg.position_decay * np.log(1 + np.asarray(position, dtype=np.float64))
    )
    return 1 / (1 + np.exp(-logit))


def _model_probability(data):
    return _reference_probability(
        data.interest.numpy(),
        (data.item_quality[data.item_id] + data.user_propensity[data.user_id]).numpy(),  # logit offsets
        data.position.numpy(), data.config,
    )


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = generate(SMALL, 7), generate(SMALL, 7), generate(SMALL, 8)
    for name in COLUMNS + TABLES:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.num_impressions != c.num_impressions or not torch.equal(a.timestamp_s, c.timestamp_s)
    assert not torch.equal(a.item_quality, c.item_quality)
    assert not torch.equal(a.user_interest, c.user_interest)


def test_generate_leaves_global_random_state_alone():
    torch.manual_seed(0)
    np.random.seed(0)
    expected = (torch.rand(1), np.random.rand())
    torch.manual_seed(0)
    np.random.seed(0)
    generate(SMALL, 3)
    assert (torch.rand(1), np.random.rand()) == expected


# --- structure --------------------------------------------------------------------------------------


def test_shapes_dtypes_and_tables():
    data = generate(SMALL, 0)
    n = data.num_impressions
    dtypes = dict(user_id=torch.int64, session_id=torch.int64, item_id=torch.int64,
                  category_id=torch.int64, position=torch.int64, timestamp_s=torch.float64,
                  click=torch.float32, interest=torch.float32)
    for name, dtype in dtypes.items():
        column = getattr(data, name)
        assert column.shape == (n,) and column.dtype == dtype, name
    assert data.item_category.shape == (SMALL.num_items,) and data.item_category.dtype == torch.int64
    assert data.item_quality.shape == (SMALL.num_items,) and data.item_quality.dtype == torch.float32
    assert data.user_interest.shape == (SMALL.num_users, SMALL.num_categories)
    assert torch.allclose(data.user_interest.sum(dim=1), torch.ones(SMALL.num_users))
    assert torch.equal(data.item_category[data.item_id], data.category_id)
    assert torch.bincount(data.item_category).unique().tolist() == [37, 38]  # 300 items over 8: none empty
    assert set(data.click.unique().tolist()) <= {0.0, 1.0}
    assert ((data.interest >= 0) & (data.interest <= 1)).all()
    assert data.user_id.unique().numel() == SMALL.num_users
    assert data.session_id.unique().numel() == SMALL.num_users * SMALL.sessions_per_user


def test_sessions_contiguous_positions_restart_and_time_steps():
    cfg = SMALL
    data = generate(cfg, 1)
    sid, pos, ts, user = data.session_id, data.position, data.timestamp_s, data.user_id
    new_session = torch.cat([torch.tensor([True]), sid[1:] != sid[:-1]])
    # Contiguous: each session id starts exactly once.
    assert new_session.sum().item() == sid.unique().numel()
    # Positions count 0, 1, 2, ... within each session.
    starts = torch.nonzero(new_session).squeeze(1)
    expected_pos = torch.arange(len(sid)) - starts[torch.cumsum(new_session.long(), 0) - 1]
    assert torch.equal(pos, expected_pos)
    same = ~new_session[1:]
    step_s = ts[1:][same] - ts[:-1][same]
    assert torch.allclose(step_s, torch.full_like(step_s, cfg.seconds_between_impressions))
    # Sorted by time within each user (sessions of one user never overlap), users grouped.
    same_user = user[1:] == user[:-1]
    assert (user[1:] >= user[:-1]).all()
    assert (ts[1:][same_user] > ts[:-1][same_user]).all()
    assert ((ts >= 0) & (ts < cfg.horizon_s)).all()


def test_sessions_of_different_users_interleave_in_time():
    data = generate(SMALL, 2)
    first_user = data.user_id == 0
    other = ~first_user
    lo, hi = data.timestamp_s[first_user].min(), data.timestamp_s[first_user].max()
    between = other & (data.timestamp_s > lo) & (data.timestamp_s < hi)
    assert between.any()


def test_data_refuses_columns_of_different_lengths():
    data = generate(SMALL, 0)
    with pytest.raises(ValueError, match="click"):
        dataclasses.replace(data, click=data.click[:-1])


# --- click model ------------------------------------------------------------------------------------


def test_library_probability_matches_reference_formula():
    cfg = dataclasses.replace(SMALL, base_ctr=0.1, interest_weight=0.7, position_decay=0.4)
    interest = torch.tensor([0.0, 1e-9, 0.01, 0.125, 0.5, 1.0])
    quality = torch.tensor([0.3, -1.0, 0.0, 0.0, 2.0, -0.5])
    position = torch.tensor([0, 3, 1, 0, 9, 40])
    got = click_probability(interest, quality, position, cfg).numpy()
    assert got == pytest.approx(_reference_probability(interest, quality, position, cfg), rel=1e-12)
    # Uniform interest, average item, top slot: exactly base_ctr.
    assert click_probability(torch.tensor([1 / 8]), torch.tensor([0.0]), 0, cfg).item() == pytest.approx(0.1)


def test_ctr_rises_with_interest_and_matches_mean_predicted_probability():
    data = generate(RecsysConfig(num_users=2000), 0)  # about 200k impressions
    click = data.click.numpy().astype(np.float64)
    p = _model_probability(data)
    sd = math.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(click.mean() - p.mean()) < 4 * sd
    edges = np.quantile(data.interest.numpy(), np.linspace(0, 1, 6))
    bucket = np.clip(np.searchsorted(edges, data.interest.numpy(), side="right") - 1, 0, 4)
    ctr = np.array([click[bucket == b].mean() for b in range(5)])
    predicted = np.array([p[bucket == b].mean() for b in range(5)])
    bucket_sd = np.array([math.sqrt((p[bucket == b] * (1 - p[bucket == b])).sum()) / (bucket == b).sum()
                          for b in range(5)])
    assert (np.diff(ctr) > 0).all(), ctr
    assert (np.abs(ctr - predicted) < 4 * bucket_sd).all(), (ctr, predicted)


def test_flat_click_model_gives_base_ctr():
    cfg = RecsysConfig(num_users=500, base_ctr=0.2, interest_weight=0.0, quality_std=0.0, position_decay=0.0,
                       user_propensity_std=0.0)
    data = generate(cfg, 4)
    sd = math.sqrt(0.2 * 0.8 / data.num_impressions)
    assert abs(data.click.mean().item() - 0.2) < 4 * sd


@pytest.mark.parametrize("explore", [0.0, 0.5, 1.0])
def test_exposure_follows_long_term_interest_mixed_with_exploration(explore):
    cfg = dataclasses.replace(SMALL, num_users=300, explore=explore)
    data = generate(cfg, 6)
    top = data.user_interest.argmax(dim=1)[data.user_id]
    theta_top = data.user_interest.max(dim=1).values.double()[data.user_id]
    p_top = (1 - explore) * theta_top + explore / cfg.num_categories
    shown_top = (data.category_id == top).double()
    sd = math.sqrt(float((p_top * (1 - p_top)).sum()))
    assert abs(float(shown_top.sum() - p_top.sum())) < 4 * sd


# --- drift ------------------------------------------------------------------------------------------


def _consecutive_same_category_after_click(data):
    """Pairs (t, t+1) in one session where t was clicked and t+1 shows the same category."""
    same_session = data.session_id[1:] == data.session_id[:-1]
    same_category = data.category_id[1:] == data.category_id[:-1]
    mask = same_session & same_category & (data.click[:-1] == 1)
    return data.interest[:-1][mask].double(), data.interest[1:][mask].double()


def test_without_drift_or_noise_interest_is_the_long_term_interest():
    data = generate(dataclasses.replace(SMALL, drift=0.0, noise=0.0), 0)
    assert data.click.sum() > 0  # clicks happened and moved nothing
    assert torch.equal(data.interest, data.user_interest[data.user_id, data.category_id])


def test_noise_alone_moves_interest():
    data = generate(dataclasses.replace(SMALL, drift=0.0, noise=0.2), 0)
    assert not torch.allclose(data.interest, data.user_interest[data.user_id, data.category_id])


def test_drift_matches_a_reference_simulation_of_each_session():
    cfg = dataclasses.replace(SMALL, num_users=30, drift=0.4, noise=0.0)
    data = generate(cfg, 5)
    theta = data.user_interest.double().numpy()
    expected = np.empty(data.num_impressions)
    current = None
    for row in range(data.num_impressions):
        if data.position[row] == 0:
            current = theta[data.user_id[row]].copy()
        c = int(data.category_id[row])
        expected[row] = current[c]
        if data.click[row] == 1:
            current = (1 - cfg.drift) * current
            current[c] += cfg.drift
    assert data.interest.numpy() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_a_click_raises_interest_in_its_category_on_average():
    drifting = generate(dataclasses.replace(RecsysConfig(num_users=300), drift=0.3, noise=0.1), 0)
    before, after = _consecutive_same_category_after_click(drifting)
    assert len(before) > 100
    assert (after - before).mean() > 0.05
    still = generate(dataclasses.replace(RecsysConfig(num_users=300), drift=0.0, noise=0.1), 0)
    before0, after0 = _consecutive_same_category_after_click(still)
    assert (after - before).mean() > (after0 - before0).mean() + 0.05


# --- views ------------------------------------------------------------------------------------------


def _hand_made(timestamps, users):
    n = len(timestamps)
    zeros = torch.zeros(n, dtype=torch.int64)
    return RecsysData(
        user_id=torch.tensor(users, dtype=torch.int64), session_id=zeros, item_id=zeros, category_id=zeros,
        position=zeros, timestamp_s=torch.tensor(timestamps, dtype=torch.float64),
        click=torch.zeros(n), interest=torch.zeros(n), item_category=torch.zeros(1, dtype=torch.int64),
        item_quality=torch.zeros(1), user_interest=torch.ones(2, 1), user_propensity=torch.zeros(2),
        config=RecsysConfig(),
    )


def test_cloud_view_on_hand_made_timestamps():
    data = _hand_made([0.0, 10.0, 59.9, 60.0, 60.1, 119.0, 120.0, 130.0], [0, 1, 0, 1, 0, 1, 0, 1])
    assert cloud_view(data, 120.0, 60.0).tolist() == [True, True, True, True, False, False, False, False]
    assert cloud_view(data, 120.0).tolist() == cloud_view(data, 120.0, 60.0).tolist()  # config default
    assert cloud_view(data, 120.0, 0.0).tolist() == [True] * 7 + [False]
    assert cloud_view(data, 50.0, 60.0).tolist() == [False] * 8
    assert device_view(data, 0, 120.0).tolist() == [True, False, True, False, True, False, True, False]
    assert device_view(data, 1, 60.0).tolist() == [False, True, False, True, False, False, False, False]
    with pytest.raises(ValueError, match="delay_s"):
        cloud_view(data, 120.0, -1.0)


def test_larger_delay_hides_more_and_device_sees_all_the_cloud_sees():
    data = generate(SMALL, 3)
    now = float(data.timestamp_s.median())
    masks = [cloud_view(data, now, d) for d in (0.0, 10.0, 60.0, 600.0, 3600.0)]
    for earlier, later in zip(masks, masks[1:]):
        assert (later <= earlier).all()  # nested: what a longer delay shows, a shorter one shows too
    counts = [int(m.sum()) for m in masks]
    assert counts[0] > counts[-1]
    assert counts[0] == int((data.timestamp_s <= now).sum())
    for user in range(5):
        device = device_view(data, user, now)
        assert (device | ~(masks[2] & (data.user_id == user))).all()
        assert not (device & (data.user_id != user)).any()


# --- validation and size ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, value", [
    ("num_users", 0), ("num_users", 2.5), ("num_items", -1), ("num_categories", 0), ("sessions_per_user", 0),
    ("impressions_per_session", 0.5), ("seconds_between_impressions", 0.0), ("horizon_s", -1.0),
    ("interest_concentration", 0.0), ("drift", 1.5), ("drift", -0.1), ("drift", float("nan")),
    ("noise", -0.1), ("explore", 2.0), ("base_ctr", 0.0), ("base_ctr", 1.0), ("interest_weight", -1.0),
    ("quality_std", -1.0), ("user_propensity_std", -0.1), ("position_decay", -0.5), ("cloud_delay_s", -1.0),
])
def test_bad_config_names_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        RecsysConfig(**{name: value})


def test_fewer_items_than_categories_is_refused():
    with pytest.raises(ValueError, match="num_items"):
        RecsysConfig(num_items=5, num_categories=10)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        generate(SMALL, seed)


@pytest.mark.parametrize(
    "cfg", [RecsysConfig(), SMALL, RecsysConfig(num_users=10, impressions_per_session=1)]
)
def test_size_is_within_ten_percent_of_target(cfg):
    # Pick sizes with num_users * sessions_per_user * impressions_per_session = target impressions.
    data = generate(cfg, 0)
    assert abs(data.num_impressions - cfg.expected_impressions) <= 0.1 * cfg.expected_impressions
    if cfg == RecsysConfig():
        assert cfg.expected_impressions == 100_000


def _old_generate_step(current, shown, clicked, cfg, eps):  # recsys.generate's loop body before the merge
    n = len(current)
    if cfg.drift > 0:
        pull = cfg.drift * clicked.double()
        current = current * (1 - pull)[:, None]
        current[torch.arange(n), shown] += pull
    if cfg.noise > 0:
        current = current * torch.from_numpy(np.exp(cfg.noise * eps))
        current = current / current.sum(dim=1, keepdim=True)
    return current


def _old_feed_step(interest, c, click, cfg, eps):  # reranking.simulate_feed's loop body before the merge
    pull = cfg.drift * click
    interest = interest * (1 - pull)[:, None]
    interest[np.arange(len(interest)), c] += pull
    interest = interest * np.exp(cfg.noise * eps)
    interest /= interest.sum(axis=1, keepdims=True)
    return interest


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("drift, noise", [(0.3, 0.1), (0.0, 0.2), (0.5, 0.0)])
def test_next_interest_equals_both_copies_it_replaced(seed, drift, noise):
    cfg = dataclasses.replace(SMALL, drift=drift, noise=noise)
    rng = np.random.default_rng(seed)
    n, C = 9, cfg.num_categories
    start = rng.dirichlet(np.ones(C), size=n)
    shown = rng.integers(0, C, n)
    clicked = rng.uniform(size=n) < 0.5
    eps = rng.standard_normal((n, C))
    before = start.copy()
    got_np = next_interest(start, shown, clicked.astype(np.float64), cfg, eps)
    got_t = next_interest(torch.from_numpy(start), torch.from_numpy(shown), torch.from_numpy(clicked).double(),
                          cfg, eps)
    np.testing.assert_array_equal(start, before)  # the input is not written to
    old_t = _old_generate_step(torch.from_numpy(start), torch.from_numpy(shown), torch.from_numpy(clicked), cfg, eps)
    assert torch.equal(got_t, old_t)  # bit for bit: the stored outputs of the labs depend on it
    assert isinstance(got_np, np.ndarray) and isinstance(got_t, torch.Tensor)
    if noise > 0:  # the feed always renormalised; with noise 0 it now skips that no-op, as generate did
        np.testing.assert_array_equal(got_np, _old_feed_step(start, shown, clicked, cfg, eps))
    np.testing.assert_allclose(got_np, got_t.numpy(), rtol=1e-14)
    np.testing.assert_allclose(got_np.sum(axis=1), 1.0, rtol=1e-14)
    if drift > 0 and noise == 0:  # the click pull by hand
        expect = (1 - drift * clicked)[:, None] * before
        expect[np.arange(n), shown] += drift * clicked
        np.testing.assert_allclose(got_np, expect, rtol=1e-15)


def test_next_interest_needs_draws_for_noise():
    with pytest.raises(ValueError, match="eps"):
        next_interest(np.full((2, 3), 1 / 3), np.zeros(2, dtype=np.int64), np.zeros(2), SMALL)
