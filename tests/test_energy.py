"""Energy model: hand arithmetic on made-up models, the tail, monotonicity, sourced catalogs, bad input."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from collab_lib.hardware import get_device, get_link
from collab_lib.hardware.energy import (
    DRAM_45NM,
    OP_ENERGY_45NM,
    RADIOS,
    DramEnergy,
    OpEnergy,
    RadioPowerModel,
    compute_energy_from_power_j,
    compute_energy_j,
    get_op_energy,
    get_radio,
    offload_vs_local,
    periodic_transfer_energy_j,
    radio_energy,
    transfer_energy_j,
)
from collab_lib.hardware.specs import LINKS, LinkSpec, numeric_fields
from tests.sources import BIB_KEYS, assert_sources_exist

ROOT = Path(__file__).resolve().parents[1]

# Made-up link and radio with distinct values in every field, so a dropped or swapped term shows.
LINK = LinkSpec("test link", uplink_bits_per_s=2e6, downlink_bits_per_s=8e6, rtt_s=0.05)
RADIO = RadioPowerModel(
    "test radio",
    active_w_per_mbps_up=0.5,
    active_w_per_mbps_down=0.1,
    base_w=1.0,
    tail_s=5.0,
    tail_w=0.8,
    promotion_s=0.25,
    promotion_w=1.2,
)


# --- compute -----------------------------------------------------------------------------------------


def test_horowitz_figures_as_published():
    # pJ per operation at 45 nm (Horowitz, ISSCC 2014), DRAM 1.3-2.6 nJ per 64-bit access.
    published = {"fp32": (0.9, 3.7), "fp16": (0.4, 1.1), "int8": (0.03, 0.2)}
    for precision, (add_pj, mult_pj) in published.items():
        op = get_op_energy(precision)
        assert op.add_j == pytest.approx(add_pj * 1e-12)
        assert op.mult_j == pytest.approx(mult_pj * 1e-12)
    assert DRAM_45NM.access_bytes == 8
    assert (DRAM_45NM.access_j_low, DRAM_45NM.access_j_high) == pytest.approx((1.3e-9, 2.6e-9))


def test_compute_energy_by_hand():
    # 1e9 FLOP at fp32 = 5e8 multiply-adds x (3.7 + 0.9) pJ = 2.3 mJ;
    # 1e6 bytes = 125,000 64-bit accesses x 1.3 nJ = 0.1625 mJ.
    assert compute_energy_j(1e9, 1e6, "fp32") == pytest.approx(2.3e-3 + 0.1625e-3)
    assert compute_energy_j(1e9, 0, "fp32") == pytest.approx(2.3e-3)
    assert compute_energy_j(0, 1e6, "int8", dram="high") == pytest.approx(125_000 * 2.6e-9)
    # int8: 5e8 x (0.2 + 0.03) pJ = 0.115 mJ.
    assert compute_energy_j(1e9, 0, "int8") == pytest.approx(0.115e-3)
    assert compute_energy_j(2e9, 0, "fp16") == pytest.approx(1e9 * 1.5e-12)


def test_scale_multiplies_everything():
    full = compute_energy_j(3e9, 5e7, "fp16")
    assert compute_energy_j(3e9, 5e7, "fp16", scale=0.25) == pytest.approx(0.25 * full)


def test_energy_from_power():
    jetson = get_device("jetson-orin-nano")  # 15 W
    assert compute_energy_from_power_j(0.2, jetson) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="power_w"):
        compute_energy_from_power_j(1.0, get_device("snapdragon-8-gen-3"))
    with pytest.raises(ValueError, match="time_s"):
        compute_energy_from_power_j(-1.0, jetson)


# --- radio -------------------------------------------------------------------------------------------


def test_transfer_energy_by_hand():
    # Upload 1 MB at 2 Mbit/s: 4 s at 0.5 W/Mbit/s x 2 + 1 W = 2 W -> 8 J.
    # Download 2 MB at 8 Mbit/s: 2 s at 0.1 x 8 + 1 = 1.8 W -> 3.6 J.
    marginal = 8.0 + 3.6
    assert transfer_energy_j(1e6, 2e6, LINK, RADIO, include_tail=False) == pytest.approx(marginal)
    # Isolated: + promotion 0.25 s x 1.2 W + tail 5 s x 0.8 W.
    assert transfer_energy_j(1e6, 2e6, LINK, RADIO) == pytest.approx(marginal + 0.3 + 4.0)
    # Waiting connected for 0.5 s between upload and download costs beta x 0.5 s.
    assert transfer_energy_j(1e6, 2e6, LINK, RADIO, include_tail=False, wait_s=0.5) == pytest.approx(
        marginal + 0.5
    )


@pytest.mark.parametrize("key", ["3g", "lte", "wifi"])
def test_tail_difference_is_tail_plus_promotion(key):
    radio, link = get_radio(key), get_link(key)
    with_tail = transfer_energy_j(150_528, 40, link, radio)
    without = transfer_energy_j(150_528, 40, link, radio, include_tail=False)
    assert with_tail - without == pytest.approx(radio.tail_w * radio.tail_s + radio.promotion_w * radio.promotion_s)


def test_lte_by_hand_from_the_catalog():
    # 150,528 bytes up at 5.85 Mbit/s: 0.205850 s at 0.43839 x 5.85 + 1.2 = 3.764582 W.
    # Promotion 0.26 s x 1.21 W; tail 10.12 s x 1.06 W.
    up_s = 8 * 150_528 / 5.85e6
    expected = up_s * (0.43839 * 5.85 + 1.2) + 0.26 * 1.21 + 10.12 * 1.06
    assert transfer_energy_j(150_528, 0, get_link("lte"), get_radio("lte")) == pytest.approx(expected)
    assert expected == pytest.approx(11.8167, rel=1e-4)


@pytest.mark.parametrize("key", ["3g", "lte", "wifi"])
def test_energy_grows_with_bytes(key):
    radio, link = get_radio(key), get_link(key)
    sizes = [0, 1, 1e3, 1e5, 1e7]
    for include_tail in (True, False):
        up = [transfer_energy_j(b, 0, link, radio, include_tail) for b in sizes]
        down = [transfer_energy_j(0, b, link, radio, include_tail) for b in sizes]
        assert up == sorted(up) and len(set(up)) == len(up)
        assert down == sorted(down) and len(set(down)) == len(down)


def test_small_isolated_transfers_are_dominated_by_the_tail():
    lte = get_radio("lte")
    parts = radio_energy(1_000, 100, get_link("lte"), lte)
    assert parts.tail_j / parts.total_j > 0.9


def test_periodic_requests():
    # 1 MB up, nothing down: 4 s active, 8 J marginal.
    marginal = 8.0
    # Gap 1 s < tail 5 s: the radio never idles, each request pays the gap at tail_w.
    assert periodic_transfer_energy_j(1e6, 0, LINK, RADIO, interval_s=5.0) == pytest.approx(marginal + 0.8)
    # Gap exactly the tail and beyond: promotion + full tail, the isolated price.
    isolated = transfer_energy_j(1e6, 0, LINK, RADIO)
    assert periodic_transfer_energy_j(1e6, 0, LINK, RADIO, interval_s=9.0) == pytest.approx(isolated)
    assert periodic_transfer_energy_j(1e6, 0, LINK, RADIO, interval_s=1e6) == pytest.approx(isolated)
    # Back to back: the bytes only.
    assert periodic_transfer_energy_j(1e6, 0, LINK, RADIO, interval_s=4.0) == pytest.approx(marginal)
    with pytest.raises(ValueError, match="interval_s"):
        periodic_transfer_energy_j(1e6, 0, LINK, RADIO, interval_s=3.0)


def test_batching_amortizes_the_tail():
    lte, link = get_radio("lte"), get_link("lte")
    one = transfer_energy_j(150_528, 40, link, lte)
    ten = transfer_energy_j(10 * 150_528, 10 * 40, link, lte) / 10
    assert ten < one / 5


# --- offload vs local --------------------------------------------------------------------------------


def test_offload_vs_local_by_hand():
    r = offload_vs_local(1e9, 1e6, "fp32", 1e6, 2e6, LINK, RADIO, include_tail=False)
    assert r.local_compute_j == pytest.approx(2.3e-3)
    assert r.local_dram_j == pytest.approx(0.1625e-3)
    assert r.local_j == pytest.approx(2.4625e-3)
    assert r.offload_j == pytest.approx(11.6)
    assert not r.offload_saves
    big = offload_vs_local(1e13, 0, "fp32", 1e6, 2e6, LINK, RADIO, include_tail=False)  # 23 J locally
    assert big.offload_saves
    scaled = offload_vs_local(1e9, 1e6, "fp32", 1e6, 2e6, LINK, RADIO, scale=0.5)
    assert scaled.local_j == pytest.approx(0.5 * 2.4625e-3)
    assert scaled.offload_j == pytest.approx(11.6 + 0.3 + 4.0)


# --- catalogs ----------------------------------------------------------------------------------------

CATALOG = [*OP_ENERGY_45NM.values(), DRAM_45NM, *RADIOS.values()]


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: getattr(s, "name", None) or s.precision)
def test_every_figure_has_a_source(spec):
    assert set(numeric_fields(spec)) == set(spec.sources)


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: getattr(s, "name", None) or s.precision)
def test_sources_cite_existing_keys_or_say_derived_or_assumed(spec):
    assert_sources_exist(str(getattr(spec, 'name', None) or spec.precision), dict(spec.sources))


def test_derived_radio_figures_match_their_formulas():
    assert get_radio("lte").tail_s == pytest.approx(10.12)
    g3 = get_radio("3g")
    assert g3.tail_s == 14.0
    assert g3.tail_s * g3.tail_w == pytest.approx(4 * 1.30 + 10 * 0.30)


def test_radios_are_keyed_like_links():
    assert set(RADIOS) <= set(LINKS)


def test_catalogs_are_read_only():
    with pytest.raises(TypeError):
        RADIOS["5g"] = get_radio("lte")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_radio("lte").tail_s = 0.0  # type: ignore[misc]


# --- bad input ---------------------------------------------------------------------------------------


def test_unknown_keys_list_the_valid_choices():
    with pytest.raises(ValueError, match=r"bf16.*\['fp16', 'fp32', 'int8'\]"):
        get_op_energy("bf16")
    with pytest.raises(ValueError, match=r"precision.*int4"):
        compute_energy_j(1.0, 0.0, "int4")
    with pytest.raises(ValueError, match=r"'5g'.*\['3g', 'lte', 'wifi'\]"):
        get_radio("5g")
    with pytest.raises(ValueError, match=r"dram.*\['high', 'low'\]"):
        compute_energy_j(1.0, 1.0, "fp32", dram="mid")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: compute_energy_j(-1, 0, "fp32"), "flops"),
        (lambda: compute_energy_j(0, -1, "fp32"), "dram_bytes"),
        (lambda: compute_energy_j(1, 1, "fp32", scale=0), "scale"),
        (lambda: transfer_energy_j(-1, 0, LINK, RADIO), "bytes_up"),
        (lambda: transfer_energy_j(0, -1, LINK, RADIO), "bytes_down"),
        (lambda: transfer_energy_j(1, 1, LINK, RADIO, wait_s=-1), "wait_s"),
    ],
)
def test_bad_numbers_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_models_refuse_negative_figures():
    with pytest.raises(ValueError, match="tail_s"):
        dataclasses.replace(RADIO, tail_s=-1.0)
    with pytest.raises(ValueError, match="mult_j"):
        OpEnergy("fp32", add_j=1e-12, mult_j=-1e-12)
    with pytest.raises(ValueError, match="access_j_high"):
        DramEnergy("x", access_bytes=8, access_j_low=1e-9, access_j_high=-1e-9)


def test_the_lab_cites_only_existing_keys():
    lab = ROOT / "labs" / "02_hardware" / "offload_energy.ipynb"
    cited = {k.strip() for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", lab.read_text()) for k in group.split(",")}
    assert cited and cited <= BIB_KEYS, f"not in references.bib: {sorted(cited - BIB_KEYS)}"


def test_burst_transfer_energy_shares_tails_and_matches_the_periodic_steady_state():
    from collab_lib.hardware.energy import burst_transfer_energy_j
    link, radio = get_link("lte"), get_radio("lte")
    isolated = transfer_energy_j(1e5, 100, link, radio)
    marginal = transfer_energy_j(1e5, 100, link, radio, include_tail=False)
    active_s = 8 * 1e5 / link.uplink_bits_per_s + 8 * 100 / link.downlink_bits_per_s
    # one request: an isolated one
    assert burst_transfer_energy_j([3.0], [1e5], [100], link, radio) == pytest.approx(isolated)
    # three requests 2 s apart (inside the tail): one promotion, the two gaps at tail power, one tail
    gap = 2.0 - active_s
    want = radio.promotion_j + 3 * marginal + 2 * gap * radio.tail_w + radio.tail_j
    assert burst_transfer_energy_j([0, 2, 4], [1e5] * 3, [100] * 3, link, radio) == pytest.approx(want)
    # requests further apart than the tail: each an isolated request
    far = [0, 60, 120]
    assert burst_transfer_energy_j(far, [1e5] * 3, [100] * 3, link, radio) == pytest.approx(3 * isolated)
    # n periodic requests: n times the steady state, but for the first promotion and the last tail
    n, every = 50, 5.0
    burst = burst_transfer_energy_j(np.arange(n) * every, [1e5] * n, [100] * n, link, radio)
    steady = periodic_transfer_energy_j(1e5, 100, link, radio, every)
    assert burst == pytest.approx((n - 1) * steady + marginal + radio.promotion_j + radio.tail_j)


def test_burst_transfer_energy_rejects_overlaps_and_ragged_input():
    from collab_lib.hardware.energy import burst_transfer_energy_j
    link, radio = get_link("3g"), get_radio("3g")
    with pytest.raises(ValueError, match="before request 0 ends"):
        burst_transfer_energy_j([0.0, 0.1], [1e6, 1e6], [0, 0], link, radio)
    with pytest.raises(ValueError, match="same non-zero length"):
        burst_transfer_energy_j([0.0, 1.0], [1e3], [0, 0], link, radio)
