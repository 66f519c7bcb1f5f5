"""Wrong and cheating answers to the compression lab's fill-ins, which its checks must reject."""

WRONG = {
    # Selects from the update alone: the residual is carried but never sent.
    "my_topk_with_feedback": '''def my_topk_with_feedback(update, residual, k):
    import torch
    keep = update.abs().topk(k).indices
    sent = torch.zeros_like(update)
    sent[keep] = update[keep]
    return sent, update + residual - sent
''',
    # Forgets every residual at the end of a round.
    "my_topk_uplink": '''def my_topk_uplink(rounds, fraction):
    import math
    import torch
    out = []
    for client_ids, deltas in rounds:
        received = {n: torch.zeros_like(d) for n, d in deltas.items()}
        nbytes = 0
        for i in range(len(client_ids)):
            flat = torch.cat([d[i].reshape(-1) for d in deltas.values()])
            k = math.ceil(fraction * len(flat))
            keep = flat.abs().topk(k).indices
            sent = torch.zeros_like(flat)
            sent[keep] = flat[keep]
            start = 0
            for n, d in deltas.items():
                received[n][i] = sent[start:start + d[i].numel()].reshape(d[i].shape)
                start += d[i].numel()
            nbytes += 8 * k
        out.append((received, nbytes))
    return out
''',
}

CHEAT = {
    "my_topk_with_feedback": '''def my_topk_with_feedback(update, residual, k):
    from collab_lib.parameter_based.compress import top_k
    sent = top_k(update + residual, k)
    return sent, update + residual - sent
''',
    "my_topk_uplink": '''def my_topk_uplink(rounds, fraction):
    from collab_lib.parameter_based.compress import CompressionConfig, Compressor
    codec = Compressor(CompressionConfig(up_top_fraction=fraction, error_feedback=True))
    return [codec.uplink(t, ids, deltas) for t, (ids, deltas) in enumerate(rounds)]
''',
}
