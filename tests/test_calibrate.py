"""Calibration: the arithmetic against hand computation on a scripted clock, real
measurements only for plausibility (no timing thresholds that flake), bad input."""

import math
import time

import pytest
import torch
from torch import nn

from collab_lib.hardware import calibrate as cal
from collab_lib.hardware.roofline import layer_time_s
from collab_lib.hardware.specs import numeric_fields


def script_clock(monkeypatch, durations_s):
    """Make ``time.perf_counter`` return start/stop pairs ``durations_s`` apart.

    Readings are whole seconds plus dyadic fractions, so differences are exact. The
    clock fails the test if it is read more often than scripted: a function that timed
    its warm-up, or read the clock more than once per start and stop, would be caught.
    """
    readings, now = [], 100.0
    for d in durations_s:
        readings += [now, now + d]
        now += 8.0  # time passes between runs, too
    clock = iter(readings)

    def perf_counter():
        try:
            return next(clock)
        except StopIteration:
            raise AssertionError("clock read more often than scripted") from None

    monkeypatch.setattr(time, "perf_counter", perf_counter)
    return clock


def test_matmul_flops_is_2n3_over_the_best_run(monkeypatch):
    n = 48
    clock = script_clock(monkeypatch, [0.5, 0.25, 2.0])
    assert cal.measure_matmul_flops(n=n, repeats=3) == 2 * n**3 / 0.25
    assert next(clock, None) is None  # every reading was used: one pair per timed run


def test_bandwidth_is_read_plus_write_bytes_over_the_best_copy(monkeypatch):
    script_clock(monkeypatch, [0.0625, 0.015625, 0.03125, 0.5])
    bandwidth = cal.measure_memory_bandwidth(num_bytes=4096, repeats=4)
    assert bandwidth == 2 * 4096 / 0.015625


def test_bandwidth_rounds_down_to_whole_float32s(monkeypatch):
    script_clock(monkeypatch, [1.0])
    assert cal.measure_memory_bandwidth(num_bytes=4099, repeats=1) == 2 * 4096 / 1.0


def test_latency_is_the_median_not_the_mean_or_the_best(monkeypatch):
    calls = []
    model = nn.Sequential(nn.Linear(3, 2))
    model.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    # median 0.375, mean 1.8, best 0.125
    script_clock(monkeypatch, [0.5, 0.125, 7.75, 0.375, 0.25])
    latency = cal.measure_latency_s(model, torch.zeros(4, 3), repeats=5, warmup=2)
    assert latency == 0.375
    assert calls == [False] * 7  # 2 warm-up + 5 timed passes, all under no_grad


def test_latency_median_of_an_even_count_is_the_midpoint(monkeypatch):
    script_clock(monkeypatch, [4.0, 1.0, 3.0, 2.0])
    latency = cal.measure_latency_s(lambda x: x, torch.zeros(1), repeats=4, warmup=0)
    assert latency == 2.5


def test_real_measurements_are_positive_finite_and_plausible():
    flops = cal.measure_matmul_flops(n=256, repeats=2)
    bandwidth = cal.measure_memory_bandwidth(num_bytes=2**22, repeats=2)
    latency = cal.measure_latency_s(nn.Linear(64, 64), torch.zeros(8, 64), repeats=3)
    # Wide bounds: any CPU of this century, nothing near an exaFLOP per core.
    assert math.isfinite(flops) and 1e8 < flops < 1e16
    assert math.isfinite(bandwidth) and 1e8 < bandwidth < 1e14
    assert math.isfinite(latency) and 0 < latency < 10


def test_threads_are_used_for_the_measurement_and_restored():
    seen = []
    before = torch.get_num_threads()
    real_matmul = torch.matmul

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_matmul(*args, **kwargs)

    target = 2 if before == 1 else 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "matmul", spy)
        cal.measure_matmul_flops(n=16, repeats=2, threads=target)
    assert seen == [target] * 3  # warm-up + 2 timed runs
    assert torch.get_num_threads() == before


def test_calibrate_returns_a_sourced_spec_the_roofline_can_use():
    spec = cal.calibrate(name="test box", n=128, num_bytes=2**22, repeats=2, threads=1)
    assert spec.name == "test box"
    assert set(spec.peak_flops_per_s) == {"fp32"}
    assert spec.power_w is None
    assert spec.mem_bytes is None or spec.mem_bytes > 2**20
    assert set(spec.sources) == set(numeric_fields(spec))
    for field, text in spec.sources.items():
        assert text.startswith("measured: "), field
    assert "1 torch thread" in spec.sources["peak_flops_per_s[fp32]"]
    # A compute-bound and a memory-bound layer take their time from the measurements.
    peak, bw = spec.peak("fp32"), spec.mem_bw_bytes_per_s
    assert layer_time_s(peak, 0, spec) == pytest.approx(1.0)
    assert layer_time_s(0, bw, spec) == pytest.approx(1.0)


def test_calibrate_puts_the_measured_figures_in_the_spec(monkeypatch):
    monkeypatch.setattr(cal, "measure_matmul_flops", lambda **kw: 1.5e10)
    monkeypatch.setattr(cal, "measure_memory_bandwidth", lambda **kw: 2.5e9)
    monkeypatch.setattr(cal, "_physical_memory_bytes", lambda: None)
    spec = cal.calibrate(repeats=3)
    assert spec.peak_flops_per_s["fp32"] == 1.5e10
    assert spec.mem_bw_bytes_per_s == 2.5e9
    assert spec.mem_bytes is None and "mem_bytes" not in spec.sources
    assert set(spec.sources) == {"peak_flops_per_s[fp32]", "mem_bw_bytes_per_s"}
    assert "best of 3" in spec.sources["mem_bw_bytes_per_s"]


def _latency(**kwargs):
    return cal.measure_latency_s(nn.Identity(), torch.zeros(1), **kwargs)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: cal.measure_matmul_flops(n=0), "n"),
        (lambda: cal.measure_matmul_flops(n=-3), "n"),
        (lambda: cal.measure_matmul_flops(n=2.0), "n"),
        (lambda: cal.measure_matmul_flops(n=True), "n"),
        (lambda: cal.measure_matmul_flops(n=8, repeats=0), "repeats"),
        (lambda: cal.measure_matmul_flops(n=8, threads=0), "threads"),
        (lambda: cal.measure_matmul_flops(n=8, dtype=torch.int32), "dtype"),
        (lambda: cal.measure_memory_bandwidth(num_bytes=0), "num_bytes"),
        (lambda: cal.measure_memory_bandwidth(num_bytes=64, repeats=0), "repeats"),
        (lambda: cal.measure_memory_bandwidth(num_bytes=64, threads=-1), "threads"),
        (lambda: cal.calibrate(n=0), "n"),
        (lambda: cal.calibrate(repeats=0), "repeats"),
        (lambda: cal.calibrate(threads=0), "threads"),
        (lambda: _latency(repeats=0), "repeats"),
        (lambda: _latency(warmup=-1), "warmup"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        call()


def test_benchmarks_run_in_float32_whatever_the_default_dtype(monkeypatch):
    """The labs make float64 torch's default (set_seed); the copy must still move the float32 bytes it counts,
    and the matmul must still be an fp32 one."""
    results = []

    def run_once(fn, repeats, warmup):
        results.append(fn())  # dst.copy_(src) returns dst; matmul(out=out) returns out
        return [1.0] * repeats

    monkeypatch.setattr(cal, "_run_times_s", run_once)
    torch.set_default_dtype(torch.float64)  # restored by conftest's restore_default_dtype
    assert cal.measure_memory_bandwidth(num_bytes=4096, repeats=1) == 2 * 4096 / 1.0
    assert cal.measure_matmul_flops(n=8, repeats=1) == 2 * 8**3 / 1.0
    copied, product = results
    assert copied.dtype == torch.float32 and copied.untyped_storage().nbytes() == 4096
    assert product.dtype == torch.float32


def test_fit_roofline_recovers_a_noise_free_roofline_and_fits_relative_errors():
    import numpy as np
    # kernels on a roofline of 8 GFLOP/s and 2 GB/s (ridge 4 FLOP/B): a copy, two memory-bound, two compute-bound
    flops = np.array([0.0, 1e6, 2e6, 8e8, 4e9])
    nbytes = np.array([4e6, 2e6, 1e6, 1e6, 1e7])
    times = np.maximum(flops / 8e9, nbytes / 2e9)
    assert cal.fit_roofline(flops, nbytes, times) == pytest.approx((8e9, 2e9), rel=1e-12)
    # scatter two compute-bound times by hand: P = sum u^2 / sum u with u = F / t
    times2 = times.copy()
    times2[3:] *= (1.25, 0.8)
    u = flops[3:] / times2[3:]
    assert cal.fit_roofline(flops, nbytes, times2)[0] == pytest.approx((u ** 2).sum() / u.sum(), rel=1e-12)


def test_fit_roofline_rejects_bad_input():
    with pytest.raises(ValueError, match="same non-zero length"):
        cal.fit_roofline([1.0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one kernel"):
        cal.fit_roofline([0.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="> 0"):
        cal.fit_roofline([1.0], [1.0], [0.0])
