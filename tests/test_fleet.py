"""Fleet simulation: the queue against Lindley's recursion, arrivals against their rate, policies against
each other on the same day, and push-then-pull coverage by hand."""

import numpy as np
import pytest
import torch

from collab_lib.hardware import get_device, profile_model
from collab_lib.hardware.llm import generation_profile, get_format, get_model, predict_decode
from collab_lib.hardware.roofline import layer_time_s, layers_time_s
from collab_lib.models import vision_cnn
from collab_lib.system.fleet import (
    DAY_S,
    FleetConfig,
    _draw,
    arrivals,
    availability,
    diurnal_rate,
    fifo_queue,
    rollout_coverage,
    simulate_day,
)

with torch.device("meta"):
    LAYERS = profile_model(vision_cnn(64), torch.empty(1, 3, 224, 224))
SMALL = FleetConfig(num_devices=40, requests_per_device_per_day=50)


def test_single_server_queue_follows_lindleys_recursion():
    rng = np.random.default_rng(0)
    arrive = np.sort(rng.uniform(0, 100, 500))
    service = rng.exponential(0.15, 500)
    wait = fifo_queue(arrive, service, servers=1)
    w = 0.0
    for i in range(1, 500):  # W_i = max(0, W_{i-1} + S_{i-1} - (A_i - A_{i-1}))
        w = max(0.0, w + service[i - 1] - (arrive[i] - arrive[i - 1]))
        assert wait[i] == pytest.approx(w, abs=1e-9)


def test_two_servers_by_hand():
    # Jobs at t=0,0,0 of 1 s each on 2 servers: the third waits 1 s; a fourth at t=5 does not wait.
    assert fifo_queue(np.array([0.0, 0.0, 0.0, 5.0]), np.ones(4), servers=2).tolist() == [0, 0, 1, 0]


def test_diurnal_rate_has_mean_one_and_the_requested_peak():
    hours = np.linspace(0, 24, 24 * 60, endpoint=False)
    r = diurnal_rate(hours, 4.0, 20.0)
    assert r.mean() == pytest.approx(1.0) and r.max() / r.min() == pytest.approx(4.0, rel=1e-3)
    assert hours[r.argmax()] == pytest.approx(20.0)


def test_arrivals_match_the_expected_count_and_profile():
    config = FleetConfig(num_devices=300, requests_per_device_per_day=100)
    t, dev = arrivals(config, np.random.default_rng(1))
    expected = 300 * 100
    assert abs(len(t) - expected) < 4 * np.sqrt(expected)
    assert (np.diff(t) >= 0).all() and 0 <= t.min() and t.max() < DAY_S and dev.max() < 300
    per_hour = np.bincount((t // 3600).astype(int), minlength=24)
    assert per_hour.argmax() in (19, 20, 21) and per_hour.argmin() in (7, 8, 9)


def test_policies_on_the_same_day():
    runs = {p: simulate_day(SMALL, LAYERS, p, seed=3, small_layers=LAYERS[:6], threshold=0.7, input_bytes=150_528)
            for p in ("device", "cloud", "split", "cascade")}
    assert all(np.array_equal(runs["device"].arrival_s, r.arrival_s) for r in runs.values())
    dev = runs["device"]
    assert not dev.to_cloud.any() and dev.bytes_up.sum() == 0 and dev.queue_s.sum() == 0
    phone_s = layers_time_s(LAYERS, get_device("snapdragon-8-gen-3"), "fp32", SMALL.device_efficiency)
    assert np.isclose(dev.latency_s, phone_s).any()  # the phones of the fleet take exactly this long
    assert runs["cloud"].to_cloud.all() and (runs["cloud"].bytes_up == 150_528).all()
    # Split picks the best cut per request: never slower than either end, up to (tiny) queueing.
    slack = runs["cloud"].queue_s.max() + 1e-12
    assert (runs["split"].latency_s <= np.minimum(dev.latency_s, runs["cloud"].latency_s) + slack).all()
    assert runs["cascade"].to_cloud.mean() == pytest.approx(0.3, abs=0.05)


def test_cloud_utilisation_is_work_over_capacity():
    r = simulate_day(SMALL, LAYERS, "cloud", seed=4, input_bytes=150_528)
    cloud_s = layers_time_s(LAYERS, get_device("a100-sxm"), "fp32", SMALL.cloud_efficiency)
    assert r.cloud_utilisation_per_hour.sum() * 3600 == pytest.approx(r.to_cloud.sum() * cloud_s)


def test_generation_profile_sums_decode_times():
    m, f, d = get_model("llama-3.2-1b"), get_format("spinquant-4bit"), get_device("snapdragon-8-gen-3")
    p = generation_profile(m, f, tokens=10, context_len=5)
    assert layer_time_s(p.flops, p.bytes_moved, d, "int8") == pytest.approx(
        sum(1 / predict_decode(m, f, d, "int8", c) for c in range(5, 15)))


def test_rollout_coverage_by_hand():
    online = np.array([[1, 0, 0, 0],   # online at the push: updates at once
                       [0, 0, 1, 0],   # next online in window 2
                       [0, 0, 0, 0]])  # never online again: never updates
    cov = rollout_coverage(online, push_at_s=0.5, times_s=np.array([0.5, 1.5, 2.0, 10.0]), window_s=1.0)
    assert cov.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


class _Scores:
    """A router that scores the fleet's difficulty tensor with ``fn`` and remembers what it saw."""

    def __init__(self, fn):
        self.fn, self.seen = fn, None

    def score(self, x):
        self.seen = x.clone()
        return self.fn(x)


def _old_escalated(config, seed, escalate):
    """The fleet's cascade before it took a Router: the uniform draws of its stream, ``u < escalate``."""
    rng = np.random.default_rng(seed)
    _draw(config.device_mix, config.num_devices, rng)
    links = _draw(config.link_mix, config.num_devices, rng)
    t, _ = arrivals(config, rng)
    for _ in np.unique(links):
        rng.integers(2**31)  # one seed per link type for its sample_link
    return rng.uniform(size=len(t)) < escalate


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_cascade_routes_as_before_and_through_its_router(seed):
    for e in (0.1, 0.3, 1 / 3, 0.5, 0.9):
        r = simulate_day(SMALL, LAYERS, "cascade", seed=seed, small_layers=LAYERS[:6], threshold=1 - e)
        np.testing.assert_array_equal(r.to_cloud, _old_escalated(SMALL, seed, e))
    # A router sees the (n,) difficulty tensor in arrival order; the route is cascade.route of its scores.
    rev = _Scores(lambda d: 1 - d)
    r = simulate_day(SMALL, LAYERS, "cascade", seed=seed, small_layers=LAYERS[:6], threshold=0.75, router=rev)
    d = rev.seen
    assert d.shape == r.arrival_s.shape and d.dtype == torch.float64 and 0 < d.min() and d.max() <= 1
    np.testing.assert_array_equal(r.to_cloud, (1 - d).numpy() >= 0.75)
    np.testing.assert_array_equal(r.to_cloud, ~_old_escalated(SMALL, seed, 0.75))  # 1 - d = u >= 0.75
    # The other policies' days are untouched by the cascade's draw and router.
    plain = simulate_day(SMALL, LAYERS, "cloud", seed=seed)
    routed = simulate_day(SMALL, LAYERS, "cloud", seed=seed, router=rev, threshold=0.1)
    assert np.array_equal(plain.latency_s, routed.latency_s)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: FleetConfig(device_mix={"tpu-v9": 1.0}), "tpu-v9"),
        (lambda: FleetConfig(link_mix={"lte": -1.0}), "link_mix"),
        (lambda: FleetConfig(num_devices=0), "num_devices"),
        (lambda: simulate_day(SMALL, LAYERS, "teleport", 0), "policy"),
        (lambda: simulate_day(SMALL, LAYERS, "cascade", 0, threshold=0.5), "small_layers"),
        (lambda: simulate_day(SMALL, LAYERS, "cascade", 0, small_layers=LAYERS[:6]), "threshold"),
        (lambda: simulate_day(SMALL, LAYERS, "cascade", 0, small_layers=LAYERS[:6], threshold=1.5), "threshold"),
        (lambda: simulate_day(SMALL, LAYERS, "cascade", 0, small_layers=LAYERS[:6], threshold=0.5,
                              router=_Scores(lambda d: d[:-1])), "scores for"),
        (lambda: simulate_day(SMALL, LAYERS, "cascade", 0, small_layers=LAYERS[:6], threshold=0.5,
                              router=_Scores(lambda d: 2 * d)), "scores"),
        (lambda: simulate_day(SMALL, [], "device", 0), "layers"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_availability_follows_the_day_and_the_share():
    online = availability(FleetConfig(num_devices=2000), seed=0, window_s=3600.0, online_share=0.3)
    assert online.shape == (2000, 24)
    assert online.mean() == pytest.approx(0.3, abs=0.02)  # mean diurnal rate and mean propensity are 1
    by_hour = online.mean(axis=0)
    assert by_hour.argmax() in (19, 20, 21) and by_hour.max() / by_hour.min() > 2.5


def test_device_energy_by_hand():
    """Compute from per-layer operation energies; radio from Huang et al.'s model written out here, with the
    wait (RTT + queue + cloud) recovered from each request's latency."""
    from collab_lib.hardware.energy import compute_energy_j, get_radio
    from collab_lib.hardware.specs import get_link

    cfg = FleetConfig(num_devices=20, requests_per_device_per_day=50, device_mix={"snapdragon-8-gen-3": 1.0},
                      link_mix={"lte": 1.0}, rate_cv=0.0)
    full_j = sum(compute_energy_j(p.flops, p.bytes_moved, "fp32") for p in LAYERS)
    local = simulate_day(cfg, LAYERS, "device", seed=3)
    assert local.device_energy_j == pytest.approx(np.full(len(local.latency_s), full_j), rel=1e-12)

    link, radio = get_link("lte"), get_radio("lte")
    image, out = 3 * 224 * 224, LAYERS[-1].output_bytes
    t_up, t_down = 8 * image / link.uplink_bits_per_s, 8 * out / link.downlink_bits_per_s
    up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
    down_w = radio.active_w_per_mbps_down * link.downlink_bits_per_s / 1e6 + radio.base_w
    remote = simulate_day(cfg, LAYERS, "cloud", seed=3, input_bytes=image)
    wait = remote.latency_s - t_up - t_down  # device part is empty: RTT + queue + cloud compute
    expected = (radio.promotion_s * radio.promotion_w + up_w * t_up + down_w * t_down + radio.base_w * wait
                + radio.tail_s * radio.tail_w)
    assert remote.device_energy_j == pytest.approx(expected, rel=1e-9)

    small = LAYERS[:7]
    small_j = sum(compute_energy_j(p.flops, p.bytes_moved, "fp32") for p in small)
    mixed = simulate_day(cfg, LAYERS, "cascade", seed=3, small_layers=small, threshold=0.5, input_bytes=image)
    kept = ~mixed.to_cloud
    assert 0.3 < kept.mean() < 0.7
    assert mixed.device_energy_j[kept] == pytest.approx(np.full(kept.sum(), small_j), rel=1e-12)
    assert (mixed.device_energy_j[~kept] > small_j + radio.promotion_s * radio.promotion_w).all()


def test_a_link_without_a_radio_model_is_refused():
    with pytest.raises(ValueError, match="unknown radio '5g'"):
        simulate_day(FleetConfig(num_devices=2, link_mix={"5g": 1.0}), LAYERS, "device", seed=0)
