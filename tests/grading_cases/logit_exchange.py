"""Submissions the logit_exchange checks must reject: a plausible mistake and one that hands back the library."""

WRONG = {
    # Averages the devices' logits equally, ignoring their sample counts.
    "my_fd_round": '''def my_fd_round(logits, sizes, temperature):
    z = torch.stack(logits).mean(dim=0)
    targets = torch.softmax(z / temperature, dim=1)
    return z, targets, len(logits) * 2 * z.numel() * 4
''',
    # Forgets the class ids of the kept values.
    "my_top_k_exchange": '''import math


def my_top_k_exchange(z, top_k, value_bits):
    top = z.topk(top_k, dim=1).indices
    kept = torch.full_like(z, -math.inf).scatter(1, top, z.gather(1, top))
    return kept, 2 * math.ceil(z.shape[0] * top_k * value_bits / 8)
''',
}

CHEAT = {
    "my_fd_round": '''from collab_lib.data_based.distill import soft_targets
from collab_lib.feature_based.logit_exchange import consensus, logit_bytes_per_round


def my_fd_round(logits, sizes, temperature):
    z = consensus(logits, sizes)
    return z, soft_targets(z, temperature), len(logits) * logit_bytes_per_round(*z.shape)
''',
    "my_top_k_exchange": '''import math

from collab_lib.feature_based.logit_exchange import compressed_logit_bytes_per_round


def my_top_k_exchange(z, top_k, value_bits):
    top = z.topk(top_k, dim=1).indices
    kept = torch.full_like(z, -math.inf).scatter(1, top, z.gather(1, top))
    return kept, compressed_logit_bytes_per_round(*z.shape, top_k, value_bits)
''',
}
