"""Early exit: decisions on rigged logits, costs and latencies worked by hand, the vectorised policy against
a per-sample loop, and joint training that lowers every exit's loss."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from collab_lib.datasets.digits import load_digits
from collab_lib.hardware.profile import LayerProfile, profile_model
from collab_lib.hardware.specs import DeviceSpec, LinkSpec
from collab_lib.system.early_exit import (
    ExitProfile,
    MultiExitNet,
    confidences,
    device_cloud_latency,
    device_flops,
    digits_multi_exit_cnn,
    early_exit_outcome,
    exit_accuracies,
    exit_decisions,
    exit_flops,
    exit_losses,
    profile_multi_exit,
    threshold_sweep,
    train_multi_exit,
)

SURE, UNSURE = [10.0, -10.0], [0.0, 0.0]  # confidence 1 - 2e-9 and exactly 0.5


def rigged(*rows):
    """(E, N, 2) logits from one row per exit of SURE / UNSURE entries."""
    return np.array(rows, dtype=float)


def lp(name, flops, input_bytes, output_bytes, param_bytes=0):
    return LayerProfile(name, flops=flops, param_bytes=param_bytes, input_bytes=input_bytes,
                        output_bytes=output_bytes)


# --- decisions ----------------------------------------------------------------------------------------


def test_exit_decisions_on_rigged_logits():
    # Sample 0 is sure at exit 0; 1 only at exit 1; 2 nowhere before the last; 3 only at exit 1.
    z = rigged([SURE, UNSURE, UNSURE, UNSURE],
               [SURE, SURE, UNSURE, SURE],
               [SURE, SURE, SURE, UNSURE])
    assert exit_decisions(z, [0.9, 0.9]).tolist() == [0, 1, 2, 1]
    # Confidence 0.5 exactly meets a threshold of 0.5 (>=): everything leaves at exit 0.
    assert exit_decisions(z, [0.5, 0.9]).tolist() == [0, 0, 0, 0]
    # Exit 0 switched off (> 1): sample 0 now leaves at exit 1.
    assert exit_decisions(z, [1.5, 0.9]).tolist() == [1, 1, 2, 1]


def test_threshold_zero_exits_everything_first_and_above_one_nothing_early():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=5.0, size=(3, 50, 10))
    assert (exit_decisions(z, 0.0) == 0).all()
    assert (exit_decisions(z, 1.0000001) == 2).all()
    assert (exit_decisions(z, math.inf) == 2).all()
    # A saturated confidence rounds to exactly 1.0 and so meets a threshold of 1.
    assert exit_decisions(rigged([[100.0, -100.0]], [UNSURE]), 1.0).tolist() == [0]


def test_shared_threshold_equals_the_same_threshold_per_exit_and_tensors_equal_arrays():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=(4, 30, 5))
    per_exit = exit_decisions(z, [0.6, 0.6, 0.6])
    assert np.array_equal(exit_decisions(z, 0.6), per_exit)
    assert np.array_equal(exit_decisions([torch.tensor(e) for e in z], 0.6), per_exit)


def test_confidences_match_torch_softmax():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=4.0, size=(2, 20, 7))
    ref = torch.softmax(torch.tensor(z), dim=-1).max(dim=-1).values.numpy()
    assert confidences(z) == pytest.approx(ref, abs=1e-12)


def slow_policy(z, thresholds, labels):
    """Reference: walk each sample through the exits one by one."""
    exits, correct = [], 0
    for i in range(z.shape[1]):
        for j in range(z.shape[0]):
            p = np.exp(z[j, i] - z[j, i].max())
            p /= p.sum()
            if j == z.shape[0] - 1 or p.max() >= thresholds[j]:
                break
        exits.append(j)
        correct += int(np.argmax(z[j, i]) == labels[i])
    return np.array(exits), correct / z.shape[1]


@pytest.mark.parametrize("thresholds", [(0.3, 0.5), (0.5, 0.3), (0.8, 0.95), (0.0, 2.0), (2.0, 0.0)])
def test_vectorised_policy_matches_a_per_sample_loop(thresholds):
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=(3, 400, 10))
    labels = rng.integers(0, 10, 400)
    profile = ExitProfile(tuple((lp(f"s{i}", 1, 1, 1),) for i in range(3)),
                          tuple((lp(f"h{i}", 1, 1, 1),) for i in range(3)), (0, 1, 2))
    exits, accuracy = slow_policy(z, thresholds, labels)
    out = early_exit_outcome(z, labels, thresholds, profile)
    assert np.array_equal(exit_decisions(z, thresholds), exits)
    assert out.accuracy == pytest.approx(accuracy)
    assert out.exit_shares == pytest.approx(np.bincount(exits, minlength=3) / 400)
    assert 0.0 < out.accuracy < 0.3  # random logits: near chance, so the test is not vacuous


# --- costs --------------------------------------------------------------------------------------------

# Three stages with exits after stages 0 and 2 only (stage 1 has no head), different figures everywhere.
PROFILE = ExitProfile(
    stages=((lp("s0", 100, 64, 400),), (lp("s1a", 200, 400, 800), lp("s1b", 0, 800, 200)), (lp("s2", 400, 200, 100),)),
    heads=((lp("h0", 10, 400, 40),), (lp("h2", 40, 100, 40),)),
    exit_stages=(0, 2),
)


def test_exit_and_device_flops_by_hand():
    # C_0 = s0 + h0 = 110; C_1 = s0 + s1 + s2 + h0 + h2 = 700 + 50 = 750.
    assert exit_flops(PROFILE).tolist() == [110, 750]
    assert device_flops(PROFILE, 2).tolist() == [110, 750]   # everything on the device
    assert device_flops(PROFILE, 1).tolist() == [110, 110]   # exit 1 in the cloud: device ran s0 + h0
    assert device_flops(PROFILE, 0).tolist() == [0, 0]


def test_outcome_by_hand():
    # All labels 0. Sample 0 sure at exit 0 and right, 1 sure at 0 and wrong, 2 and 3 unsure there
    # (-> exit 1): 2 right, 3 wrong. Ties predict class 0 (the first maximum).
    z = rigged([SURE, [-10.0, 10.0], UNSURE, UNSURE], [SURE, SURE, SURE, [-10.0, 10.0]])
    labels = np.array([0, 0, 0, 0])
    out = early_exit_outcome(z, labels, 0.9, PROFILE, device_exits=1)
    assert out.thresholds == (0.9,)
    assert out.accuracy == 0.5
    assert out.exit_shares.tolist() == [0.5, 0.5]
    assert out.exit_accuracy.tolist() == [0.5, 0.5]
    assert out.mean_flops == (110 + 110 + 750 + 750) / 4
    assert out.mean_device_flops == 110
    assert out.offloaded_share == 0.5
    assert exit_accuracies(z, labels).tolist() == [0.75, 0.75]
    none_late = early_exit_outcome(z, labels, 0.0, PROFILE)
    assert none_late.exit_shares.tolist() == [1.0, 0.0] and math.isnan(none_late.exit_accuracy[1])
    assert none_late.offloaded_share == 0.0  # device_exits=None: all exits on the device


def test_sweep_is_outcomes_in_order_and_cost_grows_with_the_threshold():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=3.0, size=(2, 200, 10))
    labels = rng.integers(0, 10, 200)
    ts = np.linspace(0.0, 1.01, 12)
    sweep = threshold_sweep(z, labels, ts, PROFILE, device_exits=1)
    assert [o.thresholds for o in sweep] == [(t,) for t in ts]
    one = early_exit_outcome(z, labels, ts[3], PROFILE, device_exits=1)
    assert (sweep[3].accuracy, sweep[3].mean_device_flops) == (one.accuracy, one.mean_device_flops)
    assert np.array_equal(sweep[3].exit_shares, one.exit_shares)
    flops = [o.mean_flops for o in sweep]
    assert flops[0] == 110 and flops[-1] == 750 and flops == sorted(flops)


# --- device-cloud latency -----------------------------------------------------------------------------

PHONE = DeviceSpec("phone", {"fp32": 1e9}, mem_bw_bytes_per_s=1e9, mem_bytes=None, power_w=None)
CLOUD = DeviceSpec("cloud", {"fp32": 1e12}, mem_bw_bytes_per_s=1e12, mem_bytes=None, power_w=None)
LINK = LinkSpec("link", uplink_bits_per_s=8e6, downlink_bits_per_s=16e6, rtt_s=0.05)

# Phone times (max(FLOPs / 1e9, bytes / 1e9)): s0 0.01; s1 0.04 + 1e-5 (s1b moves 10 kB); s2 0.2;
# h0 1e-3; h1 2e-3; h2 4e-3. Cloud times are 1000x smaller: s0 1e-5, s1 4.001e-5, s2 2e-4, heads 1e-6,
# 2e-6, 4e-6 (bytes never dominate).
LAT = ExitProfile(
    stages=((lp("s0", 10_000_000, 1_000, 4_000),),
            (lp("s1a", 40_000_000, 4_000, 8_000), lp("s1b", 0, 8_000, 2_000)),
            (lp("s2", 200_000_000, 2_000, 1_000, param_bytes=1_000_000),)),
    heads=((lp("h0", 1_000_000, 4_000, 40),), (lp("h1", 2_000_000, 2_000, 40),), (lp("h2", 4_000_000, 1_000, 400),)),
    exit_stages=(0, 1, 2),
)


def test_device_cloud_latency_by_hand():
    lat = device_cloud_latency(np.array([0, 1, 2, 2]), LAT, 1, PHONE, CLOUD, LINK)
    # Exit 0 on the phone: s0 + h0. Exits 1, 2: the phone runs s0 + h0, sends s0's 4 kB output
    # (0.004 s at 8 Mbit/s), the cloud runs on, the logits come back (40 B or 400 B at 16 Mbit/s).
    exit1 = 0.011 + 0.05 + 0.004 + 2e-5 + (4.001e-5 + 2e-6)
    exit2 = 0.011 + 0.05 + 0.004 + 2e-4 + (4.001e-5 + 2e-4 + 2e-6 + 4e-6)
    assert lat.per_exit_s == pytest.approx([0.011, exit1, exit2], rel=1e-12)
    assert lat.device_s == pytest.approx([0.011, 0.011, 0.011])
    assert lat.network_s == pytest.approx([0.0, 0.05402, 0.0542])
    assert lat.per_sample_s == pytest.approx([0.011, exit1, exit2, exit2])
    assert lat.mean_s == pytest.approx((0.011 + exit1 + 2 * exit2) / 4)


def test_latency_at_the_ends_and_a_later_split():
    all_phone = device_cloud_latency(np.array([2]), LAT, 3, PHONE, CLOUD, LINK)
    assert all_phone.mean_s == pytest.approx(0.01 + 0.04001 + 0.2 + 0.001 + 0.002 + 0.004)
    assert all_phone.network_s.tolist() == [0.0, 0.0, 0.0]
    # device_exits=0 sends the input: 1 kB by default, 64 B when told; the cloud runs s0 + h0.
    cloud = device_cloud_latency(np.array([0]), LAT, 0, PHONE, CLOUD, LINK)
    assert cloud.mean_s == pytest.approx(0.05 + 0.001 + 2e-5 + 1e-5 + 1e-6)
    small = device_cloud_latency(np.array([0]), LAT, 0, PHONE, CLOUD, LINK, input_bytes=64)
    assert small.mean_s == pytest.approx(0.05 + 64 * 8 / 8e6 + 2e-5 + 1e-5 + 1e-6)
    # device_exits=2 sends s1b's 2 kB output (the stage's *last* layer), after s0, s1, h0 and h1.
    late = device_cloud_latency(np.array([2]), LAT, 2, PHONE, CLOUD, LINK, device_efficiency=0.5)
    assert late.mean_s == pytest.approx(2 * (0.01 + 0.04001 + 0.001 + 0.002) + 0.05 + 0.002 + 2e-4
                                        + 2e-4 + 4e-6)


# --- model and training -------------------------------------------------------------------------------


def test_digits_model_shapes_profile_and_flops_by_hand():
    model = digits_multi_exit_cnn(seed=0)
    out = model(torch.zeros(5, 1, 8, 8))
    assert len(out) == model.num_exits == 3 and all(z.shape == (5, 10) for z in out)
    profile = profile_multi_exit(model, torch.zeros(1, 1, 8, 8))
    # Exit 0: conv 1->16, 3x3 on 8x8 = 2 * 9 * 16 * 64 FLOP, then a linear 64 -> 10 = 2 * 640.
    assert exit_flops(profile)[0] == 2 * 9 * 16 * 64 + 2 * 64 * 10
    backbone = nn.Sequential(*[layer for stage in model.stages for layer in stage])
    assert sum(p.flops for s in profile.stages for p in s) == sum(p.flops for p in profile_model(
        backbone, torch.zeros(1, 1, 8, 8)))
    assert profile.stages[1][-1].output_bytes == 32 * 4 * 4 * 4  # (32, 4, 4) float32 at the split


def test_a_stage_without_a_head_is_skipped_by_the_exits():
    stages = [nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), nn.Sequential(nn.Linear(3, 3)),
              nn.Sequential(nn.Linear(3, 2))]
    model = MultiExitNet(stages, [nn.Sequential(nn.Linear(3, 5)), None, nn.Sequential(nn.Linear(2, 5))])
    assert model.exit_stages == (0, 2)
    assert [z.shape for z in model(torch.zeros(2, 1, 2, 2))] == [(2, 5), (2, 5)]
    assert profile_multi_exit(model, torch.zeros(1, 1, 2, 2)).exit_stages == (0, 2)


def _tiny_data():
    """The first 200 digits."""
    x, y = load_digits().tensors
    return x[:200], y[:200]


def test_training_lowers_every_exits_loss_and_is_deterministic():
    x, y = _tiny_data()
    model = digits_multi_exit_cnn(seed=0, width=8)
    before = exit_losses(model, x, y)
    history = train_multi_exit(model, x, y, epochs=30, lr=0.02, seed=0)
    after = exit_losses(model, x, y)
    assert history.shape == (30, 3)
    assert (after < before - 0.4).all(), (before, after)
    again = digits_multi_exit_cnn(seed=0, width=8)
    assert np.array_equal(train_multi_exit(again, x, y, epochs=30, lr=0.02, seed=0), history)
    assert np.array_equal(exit_losses(again, x, y), after)


def test_a_zero_weight_leaves_its_head_untouched():
    x, y = _tiny_data()
    model = digits_multi_exit_cnn(seed=1, width=4)
    last_head = [p.clone() for p in model.heads[2].parameters()]
    first_head = [p.clone() for p in model.heads[0].parameters()]
    train_multi_exit(model, x, y, epochs=2, lr=0.01, seed=0, weights=[1.0, 1.0, 0.0])
    assert all(torch.equal(a, b) for a, b in zip(last_head, model.heads[2].parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first_head, model.heads[0].parameters()))


# --- bad inputs ---------------------------------------------------------------------------------------

Z = np.zeros((3, 4, 2))


@pytest.mark.parametrize("call, name", [
    (lambda: exit_decisions(Z, -0.1), "thresholds"),
    (lambda: exit_decisions(Z, [0.5, float("nan")]), "thresholds"),
    (lambda: exit_decisions(Z, [0.5, 0.5, 0.5]), "thresholds"),   # one per *early* exit: 2
    (lambda: exit_decisions(Z, [0.5]), "thresholds"),
    (lambda: exit_decisions([], 0.5), "exit_logits"),
    (lambda: exit_decisions(np.zeros((3, 0, 2)), 0.5), "exit_logits"),
    (lambda: exit_decisions([torch.zeros(4, 2), torch.zeros(3, 2)], 0.5), "exit_logits"),
    (lambda: early_exit_outcome(Z, np.zeros(3), 0.5, LAT), "labels"),
    (lambda: early_exit_outcome(Z[:2], np.zeros(4), 0.5, LAT), "exit_logits"),
    (lambda: early_exit_outcome(Z, np.zeros(4), 0.5, LAT, device_exits=4), "device_exits"),
    (lambda: threshold_sweep(Z, np.zeros(4), [], LAT), "thresholds"),
    (lambda: device_flops(LAT, -1), "device_exits"),
    (lambda: device_cloud_latency(np.array([3]), LAT, 1, PHONE, CLOUD, LINK), "exits"),
    (lambda: device_cloud_latency(np.array([], int), LAT, 1, PHONE, CLOUD, LINK), "exits"),
    (lambda: device_cloud_latency(np.array([0]), LAT, 4, PHONE, CLOUD, LINK), "device_exits"),
    (lambda: ExitProfile(LAT.stages, LAT.heads, (0, 2, 1)), "exit_stages"),
    (lambda: ExitProfile(LAT.stages, LAT.heads, (0, 1)), "exit_stages"),
    (lambda: MultiExitNet([nn.Sequential()], [None]), "heads"),
    (lambda: MultiExitNet([nn.Sequential(), nn.Sequential()], [nn.Sequential()]), "heads"),
    (lambda: profile_multi_exit(digits_multi_exit_cnn(0), torch.zeros(2, 1, 8, 8)), "example_input"),
])
def test_bad_inputs_raise_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("kwargs, name", [
    (dict(weights=[1.0, 1.0]), "weights"),
    (dict(weights=[1.0, -1.0, 1.0]), "weights"),
    (dict(weights=[0.0, 0.0, 0.0]), "weights"),
    (dict(epochs=0), "epochs"),
    (dict(lr=0.0), "lr"),
])
def test_bad_training_arguments_raise_naming_the_parameter(kwargs, name):
    x, y = _tiny_data()
    args = dict(epochs=1, lr=0.01, seed=0) | kwargs
    with pytest.raises(ValueError, match=name):
        train_multi_exit(digits_multi_exit_cnn(0, width=2), x, y, **args)
    with pytest.raises(ValueError, match="x and y"):
        train_multi_exit(digits_multi_exit_cnn(0, width=2), x[:0], y[:0], 1, 0.01, 0)
