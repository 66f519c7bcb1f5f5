"""Link sampling: means match the catalog, the spread matches the requested CV, zero CV is exact."""

import numpy as np
import pytest

from collab_lib.hardware import get_link
from collab_lib.hardware.network import request_time_s, sample_link, transfer_time_s


def test_samples_have_the_catalog_mean_and_the_requested_spread():
    lte = get_link("lte")
    s = sample_link(lte, 200_000, seed=0, rate_cv=0.5, rtt_cv=0.3)
    assert s.uplink_bits_per_s.mean() == pytest.approx(lte.uplink_bits_per_s, rel=0.01)
    assert s.downlink_bits_per_s.mean() == pytest.approx(lte.downlink_bits_per_s, rel=0.01)
    assert s.rtt_s.mean() == pytest.approx(lte.rtt_s, rel=0.01)
    assert s.uplink_bits_per_s.std() / s.uplink_bits_per_s.mean() == pytest.approx(0.5, rel=0.03)
    assert s.rtt_s.std() / s.rtt_s.mean() == pytest.approx(0.3, rel=0.03)
    assert (s.uplink_bits_per_s > 0).all()


def test_zero_spread_gives_the_catalog_figures_and_seeds_repeat():
    wifi = get_link("wifi")
    s = sample_link(wifi, 5, seed=1, rate_cv=0, rtt_cv=0)
    assert np.all(s.uplink_bits_per_s == wifi.uplink_bits_per_s) and np.all(s.rtt_s == wifi.rtt_s)
    a, b = sample_link(wifi, 5, seed=2), sample_link(wifi, 5, seed=2)
    assert np.array_equal(a.uplink_bits_per_s, b.uplink_bits_per_s)
    assert not np.array_equal(a.uplink_bits_per_s, sample_link(wifi, 5, seed=3).uplink_bits_per_s)


def test_request_time_by_hand():
    g5 = get_link("5g")  # 21 Mbit/s up, 166 down, 28 ms
    assert request_time_s(21e6 / 8, 166e6 / 8, g5) == pytest.approx(0.028 + 1.0 + 1.0)
    assert transfer_time_s(1e6, 8e6) == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [(dict(n=0), "n must"), (dict(rate_cv=-1), "rate_cv")])
def test_bad_arguments(kwargs, match):
    args = dict(link=get_link("lte"), n=3, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        sample_link(**args)
