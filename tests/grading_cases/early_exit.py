"""Wrong and cheating answers to the early-exit lab's fill-ins, for the grading test."""

WRONG = {
    "my_exit_decisions": '''import torch


def my_exit_decisions(exit_logits, thresholds):
    # a plausible mistake: a confidence equal to the threshold does not leave (> instead of >=)
    conf = torch.stack([z.double().softmax(dim=-1).max(dim=-1).values for z in exit_logits])
    exits = torch.full((conf.shape[1],), len(exit_logits) - 1)
    for j in reversed(range(len(thresholds))):
        exits[conf[j] > thresholds[j]] = j
    return exits.numpy()
''',
    "my_expected_flops": '''import numpy as np


def my_expected_flops(exits, stage_flops, head_flops, exit_stages, device_exits):
    # a plausible mistake: the heads' FLOPs are left out
    stage = np.cumsum(stage_flops)
    cost = stage[list(exit_stages)]
    sent = cost[device_exits - 1] if device_exits > 0 else 0
    on_device = np.where(np.arange(len(cost)) < device_exits, cost, sent)
    exits = np.asarray(exits)
    return float(cost[exits].mean()), float(on_device[exits].mean())
''',
}

CHEAT = {
    "my_exit_decisions": '''from collab_lib.system.early_exit import exit_decisions as my_exit_decisions
''',
    "my_expected_flops": '''import numpy as np

from collab_lib.hardware.profile import LayerProfile
from collab_lib.system.early_exit import ExitProfile, device_flops, exit_flops


def my_expected_flops(exits, stage_flops, head_flops, exit_stages, device_exits):
    # rebuilds a profile and hands back the library's counts
    layer = lambda f: (LayerProfile("layer", int(f), 0, 0, 0),)  # noqa: E731
    profile = ExitProfile(tuple(layer(f) for f in stage_flops), tuple(layer(f) for f in head_flops),
                          tuple(exit_stages))
    exits = np.asarray(exits)
    return float(exit_flops(profile)[exits].mean()), float(device_flops(profile, device_exits)[exits].mean())
''',
}
