"""Submissions the calibrate_your_machine lab's checks must not pass: a plausible mistake and a cheat each."""

WRONG = {
    "my_roofline_split": '''def my_roofline_split(layers, peak_flops_per_s, mem_bw_bytes_per_s, efficiency):
    # each roof's time over all layers, as if a ReLU overlapped with a matmul
    compute_s = sum(p.flops / peak_flops_per_s for p in layers) / efficiency
    memory_s = sum(p.bytes_moved / mem_bw_bytes_per_s for p in layers) / efficiency
    return compute_s, memory_s
''',
    "my_fit_roofline": '''import numpy as np


def my_fit_roofline(flops, bytes_moved, times_s):
    # the fastest rates observed: where the fit starts, not a fit
    return float(np.max(flops / times_s)), float(np.max(bytes_moved / times_s))
''',
}

CHEAT = {
    "my_roofline_split": '''from collab_lib.hardware.roofline import layer_time_s
from collab_lib.hardware.specs import DeviceSpec


def my_roofline_split(layers, peak_flops_per_s, mem_bw_bytes_per_s, efficiency):
    dev = DeviceSpec("d", peak_flops_per_s={"fp32": peak_flops_per_s}, mem_bw_bytes_per_s=mem_bw_bytes_per_s,
                     mem_bytes=None, power_w=None)
    compute_s = memory_s = 0.0
    for p in layers:
        t = layer_time_s(p.flops, p.bytes_moved, dev, "fp32", efficiency)
        if p.bytes_moved / mem_bw_bytes_per_s > p.flops / peak_flops_per_s:
            memory_s += t
        else:
            compute_s += t
    return compute_s, memory_s
''',
    "my_fit_roofline": '''from collab_lib.hardware.calibrate import fit_roofline as my_fit_roofline
''',
}
