"""The device and link catalog: every figure has a source, every cited key exists, bad input is refused."""


import pytest

from collab_lib.hardware import specs
from collab_lib.hardware.specs import DEVICES, LINKS, DeviceSpec, LinkSpec, get_device, get_link, numeric_fields
from tests.sources import assert_sources_exist

CATALOG = [*DEVICES.values(), *LINKS.values()]


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_every_figure_has_a_source(spec):
    assert set(numeric_fields(spec)) <= set(spec.sources), f"{spec.name}: figures without a source"
    assert set(spec.sources) <= set(numeric_fields(spec)), f"{spec.name}: sources for figures it does not have"


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_sources_cite_existing_keys_or_say_derived_or_assumed(spec):
    assert_sources_exist(str(spec.name), dict(spec.sources))


def test_derived_figures_match_their_formulas():
    # Recomputed by hand from the figures cited in the sources.
    phone = get_device("snapdragon-8-gen-3")
    assert phone.mem_bw_bytes_per_s == pytest.approx(76.8e9)
    fp32 = 3.3e9 * 32 + 3 * 3.2e9 * 16 + 2 * 3.0e9 * 16
    assert phone.peak("fp32") == pytest.approx(fp32) == pytest.approx(355.2e9)
    assert phone.peak("fp16") == pytest.approx(2 * fp32)


def test_catalog_has_the_devices_and_links_the_book_uses():
    assert {"snapdragon-8-gen-3", "apple-a17-pro", "jetson-orin-nano", "raspberry-pi-5", "stm32f746",
            "a100-sxm", "h100-sxm", "h200", "l4"} <= set(DEVICES)
    assert {"3g", "lte", "5g", "wifi"} <= set(LINKS)


def test_more_derived_figures_by_hand():
    assert get_device("raspberry-pi-5").peak("fp32") == pytest.approx(153.6e9)
    assert get_device("raspberry-pi-5").mem_bw_bytes_per_s == pytest.approx(17.068e9)
    assert get_device("stm32f746").peak("fp32") == pytest.approx(432e6)
    assert get_device("stm32f746").mem_bytes == 320 * 1024
    assert get_device("jetson-orin-nano").peak("int8") == pytest.approx(20e12)
    assert get_device("l4").peak("fp16") == pytest.approx(121e12)
    # A phone has ~1/27 of an A100's and ~1/44 of an H100's memory bandwidth.
    phone = get_device("snapdragon-8-gen-3").mem_bw_bytes_per_s
    assert get_device("h100-sxm").mem_bw_bytes_per_s / phone == pytest.approx(43.6, rel=0.01)


def test_unknown_keys_list_the_valid_choices():
    with pytest.raises(ValueError, match="a100-sxm"):
        get_device("tpu-v9")
    with pytest.raises(ValueError, match="wifi"):
        get_link("carrier-pigeon")


def test_precision_the_device_lacks_lists_what_it_has():
    with pytest.raises(ValueError, match=r"int4.*\['bf16', 'fp16', 'fp32', 'int8'\]"):
        get_device("snapdragon-8-gen-3").peak("int4")
    with pytest.raises(ValueError, match=r"fp16.*\['int8'\]"):
        get_device("jetson-orin-nano").peak("fp16")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(peak_flops_per_s={"fp32": 1e9}, mem_bw_bytes_per_s=-1.0), "mem_bw_bytes_per_s"),
        (dict(peak_flops_per_s={"fp64": 1e9}, mem_bw_bytes_per_s=1e9), "unknown precision"),
        (dict(peak_flops_per_s={"fp32": 0.0}, mem_bw_bytes_per_s=1e9), "peak_flops_per_s"),
    ],
)
def test_device_spec_refuses_bad_figures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeviceSpec(name="x", mem_bytes=None, power_w=None, **kwargs)


def test_link_spec_refuses_bad_figures():
    with pytest.raises(ValueError, match="uplink_bits_per_s"):
        LinkSpec("x", uplink_bits_per_s=-5.0, downlink_bits_per_s=1e6, rtt_s=0.01)
    with pytest.raises(ValueError, match="rtt_s"):
        LinkSpec("x", uplink_bits_per_s=1e6, downlink_bits_per_s=1e6, rtt_s=-0.01)


def test_catalog_is_read_only():
    with pytest.raises(TypeError):
        specs.DEVICES["mine"] = get_device("a100-sxm")  # type: ignore[index]
    with pytest.raises(TypeError):
        get_device("a100-sxm").peak_flops_per_s["fp32"] = 1.0  # type: ignore[index]
