"""Wrong and cheating answers to the week-0 set-up notebook's warm-up fill-in."""

WRONG = {
    "my_roofline_s": '''def my_roofline_s(layers, peak_flops_per_s, mem_bw_bytes_per_s):
    return sum(p.flops / peak_flops_per_s + p.bytes_moved / mem_bw_bytes_per_s for p in layers)
''',
}

CHEAT = {
    "my_roofline_s": '''from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import DeviceSpec


def my_roofline_s(layers, peak_flops_per_s, mem_bw_bytes_per_s):
    device = DeviceSpec("d", peak_flops_per_s={"fp32": peak_flops_per_s},
                        mem_bw_bytes_per_s=mem_bw_bytes_per_s, mem_bytes=None, power_w=None)
    return layers_time_s(layers, device)
''',
}
