"""Wrong and cheating answers to the split-inference lab's fill-ins, for the grading test."""

WRONG = {
    "my_cut_latencies": '''def my_cut_latencies(device_s, cloud_s, sent_bytes, out_bytes, link):
    # a plausible mistake: only the first tensor at each cut is sent (a skip connection is forgotten)
    n, out = len(device_s), []
    for k in range(n + 1):
        t = sum(device_s[:k])
        if k < n:
            t += (link.rtt_s + 8 * sent_bytes[k][0] / link.uplink_bits_per_s + sum(cloud_s[k:])
                  + 8 * out_bytes / link.downlink_bits_per_s)
        out.append(t)
    return out
''',
    "my_offload_bandwidth": '''def my_offload_bandwidth(device_s, cloud_s, sent_bytes, out_bytes, rtt_s):
    # a plausible mistake: only the cloud-only cut is considered
    n = len(device_s)
    slack = sum(device_s) - rtt_s - sum(cloud_s)
    if slack <= 0:
        return float("inf"), n
    return 8 * (sum(sent_bytes[0]) + out_bytes) / slack, 0
''',
}

CHEAT = {
    "my_cut_latencies": '''import torch

from collab_lib.hardware import get_device, profile_model
from collab_lib.models import vision_cnn
from collab_lib.system.partition import split_latencies


def my_cut_latencies(device_s, cloud_s, sent_bytes, out_bytes, link):
    # hands back the library's T(k) for the lab's model and devices
    with torch.device("meta"):
        layers = profile_model(vision_cnn(256), torch.empty(1, 3, 224, 224))
    cuts = split_latencies(layers, get_device("snapdragon-8-gen-3"), get_device("a100-sxm"), link,
                           input_bytes=sent_bytes[0][0], device_efficiency=0.3, cloud_efficiency=0.3)
    return [c.total_s for c in cuts]
''',
    "my_offload_bandwidth": '''import numpy as np
import torch

from collab_lib.hardware import LinkSpec, get_device, profile_model
from collab_lib.models import vision_cnn
from collab_lib.system.partition import best_split, split_latencies


def my_offload_bandwidth(device_s, cloud_s, sent_bytes, out_bytes, rtt_s):
    # scans rates with the library's latencies and best cut
    with torch.device("meta"):
        layers = profile_model(vision_cnn(256), torch.empty(1, 3, 224, 224))
    phone, a100 = get_device("snapdragon-8-gen-3"), get_device("a100-sxm")
    for rate in np.logspace(5, 10, 200):
        cuts = split_latencies(layers, phone, a100, LinkSpec("B", rate, rate, rtt_s),
                               input_bytes=sent_bytes[0][0], device_efficiency=0.3, cloud_efficiency=0.3)
        best = best_split(cuts)
        if best.split < len(layers):
            return rate, best.split
    return float("inf"), len(layers)
''',
}
