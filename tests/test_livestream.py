"""The livestream highlight module against hand computations and brute force."""

import math

import numpy as np
import pytest

from collab_lib.applications import livestream as ls
from collab_lib.exercises import applications as checks

CFG = ls.StreamConfig(num_streams=6, duration_s=200, highlight_every_s=30.0)


def test_generator_reproducible_and_prefix_stable():
    a, b = ls.generate_streams(CFG, seed=4), ls.generate_streams(CFG, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.intervals, b.intervals)
    assert not np.array_equal(a.frames, ls.generate_streams(CFG, seed=5).frames)
    # Stream s draws from (seed, s): a smaller config is a prefix of a larger one.
    small = ls.generate_streams(ls.StreamConfig(num_streams=2, duration_s=200, highlight_every_s=30.0), seed=4)
    np.testing.assert_array_equal(small.frames, a.frames[:2])
    np.testing.assert_array_equal(small.intervals, a.intervals[a.intervals[:, 0] < 2])


def test_intervals_match_labels_and_shift():
    st = ls.generate_streams(CFG, seed=1)
    lo, hi = CFG.highlight_len_s
    label = np.zeros_like(st.label)
    for s, a, b in st.intervals:
        assert lo <= b - a <= hi and 0 < a and b <= CFG.duration_s
        assert not label[s, a - 1]  # at least one normal second before each highlight: no touching intervals
        label[s, a:b] = True
    np.testing.assert_array_equal(label, st.label)
    assert len(st.intervals) > 10
    # Highlight frames are shifted by `shift` on the first num_shifted features only.
    diff = st.frames[st.label].mean(0) - st.frames[~st.label].mean(0)
    assert np.all(np.abs(diff[:CFG.num_shifted] - CFG.shift) < 0.3)
    assert np.all(np.abs(diff[CFG.num_shifted:]) < 0.3)


def test_coverage_brute_force_tiny_case():
    intervals = np.array([[0, 1, 3], [0, 5, 6], [1, 0, 2], [1, 3, 7]])
    detected = np.zeros((2, 8), dtype=bool)
    detected[0, 3] = True  # just outside [1, 3): end is excluded
    detected[0, 5] = True  # inside [5, 6)
    detected[1, 6] = True  # inside [3, 7)
    assert ls.coverage(intervals, detected) == 0.5
    np.testing.assert_array_equal(ls.first_detection_s(intervals, detected), [np.nan, 0, np.nan, 3])
    rng = np.random.default_rng(0)
    st = ls.generate_streams(CFG, seed=2)
    det = rng.uniform(size=st.label.shape) < 0.1
    assert math.isclose(ls.coverage(st.intervals, det), checks.reference_coverage(st.intervals, det))


def test_cloud_sampling_by_hand():
    # Under capacity: every frame.
    assert ls.cloud_sample_mask(3, 10, 5.0, seed=0).all()
    # 4 streams, 2 frames/s: each stream every P = 2 s, floor(phase + 2k) with phase in [0, 2).
    m = ls.cloud_sample_mask(4, 10, 2.0, seed=0)
    phase = np.random.default_rng(0).uniform(0, 2, 4)
    for s in range(4):
        ref = {int(np.floor(phase[s] + 2 * k)) for k in range(6)} & set(range(10))
        assert set(np.flatnonzero(m[s]).tolist()) == ref
    assert m.sum() == 20  # load = capacity x duration
    # Load stays at the capacity for a non-integer period.
    m = ls.cloud_sample_mask(70, 300, 20.0, seed=1)
    assert abs(m.sum() / 300 - 20.0) < 70 / 300 + 1e-9


def test_pipelines_cloud_capacity_and_accounting():
    st = ls.generate_streams(CFG, seed=3)
    costs = ls.PipelineCosts()
    cloud = ls.run_cloud_only(st, CFG, capacity_fps=2.0, costs=costs, seed=0)
    assert math.isclose(cloud.cloud_fps, 2.0, rel_tol=0.02)
    assert math.isclose(cloud.upload_bytes_per_s, costs.frame_bytes)       # every frame goes up
    assert cloud.device_compute_w == 0
    det = ls.fit_device_detector(ls.generate_streams(CFG, seed=9), dims=4, false_alarm=0.02)
    dev = ls.run_device_first(st, CFG, det, capacity_fps=0.5, costs=costs, seed=0)
    flagged = det.flag(st.frames)
    assert dev.cloud_fps <= 0.5 + 1e-9 < flagged.sum() / CFG.duration_s    # the budget binds here
    assert math.isclose(dev.upload_bytes_per_s * CFG.num_streams * CFG.duration_s, flagged.sum() * costs.frame_bytes)
    assert math.isclose(dev.device_compute_w, costs.compute_j_per_frame())  # one extractor pass per second


def test_first_detection_against_a_loop():
    st = ls.generate_streams(CFG, seed=5)
    det = np.random.default_rng(1).uniform(size=st.label.shape) < 0.15
    want = []
    for s, a, b in st.intervals:  # the first hit inside [a, b), by brute force
        hits = [t for t in range(a, b) if det[s, t]]
        want.append(hits[0] - a if hits else np.nan)
    got = ls.first_detection_s(st.intervals, det)
    assert np.isnan(got).any() and not np.isnan(got).all()
    np.testing.assert_array_equal(got, want)
    assert ls.first_detection_s(np.zeros((0, 3), dtype=np.int64), det).shape == (0,)


def test_confirm_flagged_is_run_device_first_and_takes_prefixes():
    st = ls.generate_streams(CFG, seed=3)
    costs = ls.PipelineCosts()
    det = ls.fit_device_detector(ls.generate_streams(CFG, seed=9), dims=4, false_alarm=0.05)
    flagged, cloud = det.flag(st.frames), ls.cloud_detector(CFG)(st.frames)
    for capacity in (0.3, 50.0):  # the budget binds, then not
        assert ls.confirm_flagged(st, flagged, cloud, capacity, costs, seed=2) == \
            ls.run_device_first(st, CFG, det, capacity, costs, seed=2)
    # The first S rows of the flags are the flags of the first S streams.
    S = 2
    first = ls.Streams(st.frames[:S], st.label[:S], st.intervals[st.intervals[:, 0] < S])
    assert ls.confirm_flagged(first, flagged[:S], cloud[:S], 0.3, costs, seed=2) == \
        ls.run_device_first(first, CFG, det, 0.3, costs, seed=2)
    with pytest.raises(ValueError, match="cloud_flags"):
        ls.confirm_flagged(st, flagged, cloud[:S], 0.3, costs, seed=2)


@pytest.mark.parametrize("call, name", [
    (lambda: ls.StreamConfig(num_streams=0), "num_streams"),
    (lambda: ls.StreamConfig(highlight_len_s=(5, 2)), "highlight_len_s"),
    (lambda: ls.StreamConfig(num_shifted=20), "num_shifted"),
    (lambda: ls.cloud_sample_mask(3, 10, 0.0, seed=0), "capacity_fps"),
    (lambda: ls.coverage(np.zeros((2, 2)), np.zeros((1, 3))), "intervals"),
    (lambda: ls.cloud_detector(CFG, false_alarm=1.5), "false_alarm"),
    (lambda: ls.PipelineCosts(frame_bytes=-1), "frame_bytes"),
    (lambda: ls.confirm_flagged(ls.generate_streams(CFG, seed=0), np.zeros((6, 200), bool), np.zeros((6, 200), bool),
                                0.0, ls.PipelineCosts(), seed=0), "capacity_fps"),
])
def test_bad_inputs_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
