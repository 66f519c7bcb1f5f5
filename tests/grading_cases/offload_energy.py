"""Submissions the offload_energy lab's checks must not pass: a plausible mistake and a cheat each."""

WRONG = {
    "isolated_request_j": '''def isolated_request_j(bytes_up, bytes_down, link, radio):
    # forgets the tail, the radio's most expensive state
    up_s = 8 * bytes_up / link.uplink_bits_per_s
    down_s = 8 * bytes_down / link.downlink_bits_per_s
    up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
    down_w = radio.active_w_per_mbps_down * link.downlink_bits_per_s / 1e6 + radio.base_w
    return radio.promotion_s * radio.promotion_w + up_w * up_s + down_w * down_s
''',
    "burst_energy_j": '''from collab_lib.hardware.energy import transfer_energy_j


def burst_energy_j(start_times_s, bytes_up, bytes_down, link, radio):
    # every request priced as isolated: no tail is shared
    return sum(transfer_energy_j(u, d, link, radio) for u, d in zip(bytes_up, bytes_down))
''',
}

CHEAT = {
    "isolated_request_j": '''from collab_lib.hardware.energy import transfer_energy_j as isolated_request_j
''',
    "burst_energy_j": '''from collab_lib.hardware.energy import burst_transfer_energy_j


def burst_energy_j(start_times_s, bytes_up, bytes_down, link, radio):
    return float(burst_transfer_energy_j(start_times_s, bytes_up, bytes_down, link, radio))
''',
}
