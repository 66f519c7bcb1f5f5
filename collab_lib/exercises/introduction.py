"""Check function of the chapter 1 trade-off lab: a learner's crossover bandwidth against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected, and
returns a "correct" message otherwise. The cases are built inside the check from the library's models and
catalog devices, so it is deterministic and does not read the lab's variables; ``hidden=True`` runs other
cases (other model widths, devices, round trips and frame sizes), as an instructor's hidden test does. No
library function computes the crossover, so the check forbids none; the learner's function is still called
through :func:`~collab_lib.exercises.grading.learner_call`. Chapter 3's split-inference check
(:mod:`collab_lib.exercises.system`) prices its cuts the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import torch

from collab_lib.exercises.answers import as_number
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.hardware import get_device, get_link, profile_model
from collab_lib.models import vision_cnn
from collab_lib.system.partition import split_latencies

_FRAME_BYTES = 3 * 224 * 224  # a camera frame sent as 8-bit pixels, as in the labs
_EFFICIENCY = 0.3  # fraction of the roofline, device and cloud alike, as in the labs


@functools.cache
def _profile(model_fn, width: int):
    """Per-layer profile of ``model_fn(width)`` on a 224 x 224 frame, on the meta device (shapes only)."""
    with torch.device("meta"):
        return profile_model(model_fn(width), torch.empty(1, 3, 224, 224))


def _symmetric(link_key: str, mbps: float):
    rate = mbps * 1e6
    return dataclasses.replace(get_link(link_key), uplink_bits_per_s=rate, downlink_bits_per_s=rate)


def _cases(hidden: bool) -> list[tuple]:
    """(name, layers, device, cloud, link, rate of the cuts in Mbit/s, input bytes, cloud efficiency)."""
    phone, pi, a100 = (get_device(k) for k in ("snapdragon-8-gen-3", "raspberry-pi-5", "a100-sxm"))
    if not hidden:
        layers = _profile(vision_cnn, 256)
        return [
            ("Wi-Fi, cuts priced at 1 Mbit/s", layers, phone, a100, "wifi", 1.0, _FRAME_BYTES, _EFFICIENCY),
            ("Wi-Fi, cuts priced at 50 Mbit/s", layers, phone, a100, "wifi", 50.0, _FRAME_BYTES, _EFFICIENCY),
            ("5G, a 15 kB compressed frame, cuts at 20 Mbit/s", layers, phone, a100, "5g", 20.0,
             _FRAME_BYTES // 10, _EFFICIENCY),
            ("a Raspberry Pi 5 and a loaded A100 (2% of its roofline) over Wi-Fi", layers, pi, a100, "wifi", 5.0,
             _FRAME_BYTES, 0.02),
            ("LTE, whose round trip is longer than device-only", layers, phone, a100, "lte", 10.0, _FRAME_BYTES,
             _EFFICIENCY),
        ]
    wide, narrow = _profile(vision_cnn, 512), _profile(vision_cnn, 64)
    return [
        ("hidden: vision_cnn(512) on a Raspberry Pi 5 and an A100 at 10% over 5G, cuts at 7 Mbit/s", wide, pi,
         a100, "5g", 7.0, _FRAME_BYTES, 0.1),
        ("hidden: vision_cnn(512) on a Raspberry Pi 5 over Wi-Fi, a 40 kB frame, cuts at 300 Mbit/s", wide, pi,
         a100, "wifi", 300.0, 40_000, _EFFICIENCY),
        ("hidden: vision_cnn(512) on a phone and an A100 over LTE, cuts at 3 Mbit/s", wide, phone, a100, "lte",
         3.0, _FRAME_BYTES, _EFFICIENCY),
        ("hidden: vision_cnn(64) on a phone over LTE (never the cloud), cuts at 100 Mbit/s", narrow, phone, a100,
         "lte", 100.0, _FRAME_BYTES, _EFFICIENCY),
    ]


def check_crossover(fn, hidden: bool = False) -> str:
    """Check ``fn(cuts)``, the bandwidth above which cloud-only beats device-only, against the library.

    ``fn`` receives the :class:`~collab_lib.system.partition.SplitLatency` of every cut of a
    ``vision_cnn`` (the lab's width 256; other widths when ``hidden``) over a link whose uplink and downlink both run at some rate B (``cuts[0]`` is
    cloud-only, ``cuts[-1]`` device-only), and returns, as a number in Mbit/s, the rate above which
    cloud-only is faster; ``float("inf")`` if the cloud never wins. The answer must not depend on the B at
    which the cuts were priced. The expected value comes from
    :func:`~collab_lib.system.partition.split_latencies` at two rates: cloud-only takes a + b / B.
    ``hidden=True`` runs other cases than the visible ones (other widths, devices, links and frame sizes).
    """
    cases = _cases(hidden)

    def cuts_at(case, mbps):
        _, layers, device, cloud, link, _, input_bytes, cloud_eff = case
        return split_latencies(layers, device, cloud, _symmetric(link, mbps), input_bytes=input_bytes,
                               device_efficiency=_EFFICIENCY, cloud_efficiency=cloud_eff)

    def call(cuts):
        return learner_call(fn, cuts, name="crossover_mbps")

    if call(cuts_at(cases[0], cases[0][5])) is None:
        return not_attempted("fill in crossover_mbps above")
    for case in cases:
        name, mbps = case[0], case[5]
        got = as_number(call(cuts_at(case, mbps)), "crossover_mbps", name)
        one, two = cuts_at(case, 1.0), cuts_at(case, 2.0)
        b = 2 * (one[0].total_s - two[0].total_s)        # s * Mbit/s: the transfers at 1 Mbit/s
        slack_s = one[-1].total_s - (one[0].total_s - b)  # device-only minus what no rate removes
        if slack_s <= 0:
            assert got == math.inf, (f"{name}: you return {got:.4g} Mbit/s, but here the round trip and the "
                                     "cloud's compute alone take longer than device-only, so the cloud never "
                                     "wins: return float('inf')")
            continue
        ref = b / slack_s
        if abs(got - ref) <= 1e-6 * ref:
            continue
        cloud = one[0]
        near = {"the round trip is missing": b / (slack_s + cloud.rtt_s),
                "the cloud's compute is missing": b / (slack_s + cloud.cloud_s),
                "the answer's download is missing": (b - cloud.downlink_s) / slack_s,
                "a factor of 8: bits, not bytes": (8 * ref, ref / 8),
                "the unit is Mbit/s (1e6 bit/s)": (1e6 * ref, 1e-6 * ref)}
        hints = [h for h, v in near.items() if any(math.isclose(got, x, rel_tol=1e-6) for x in np.atleast_1d(v))]
        hint = hints[0] if hints else "cloud-only takes RTT + 8 (S_in + S_out) / B + T_cloud, device-only T_dev"
        raise AssertionError(f"{name}: you return {got:.6g} Mbit/s, expected {ref:.6g} Mbit/s ({hint})")
    if hidden:
        return ("correct: your crossover also matches on the hidden cases (model widths 64 and 512, other "
                "devices, cloud loads, frame sizes and rates)")
    return ("correct: your crossover matches the library's latencies over Wi-Fi, 5G and LTE, for cuts priced "
            "at different rates, a compressed frame and a slow cloud")
