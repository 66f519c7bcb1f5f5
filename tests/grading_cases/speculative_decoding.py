"""Wrong and cheating answers to the speculative-decoding lab's fill-ins, for the grading test."""

WRONG = {
    "my_speculative_step": '''import torch


def my_speculative_step(draft_tokens, q, p, generator):
    # a plausible mistake: after a rejection the replacement is drawn from p, not from the residual
    gamma = len(draft_tokens)
    r = torch.rand(gamma, generator=generator)
    n = 0
    while n < gamma and r[n] < p[n, draft_tokens[n]] / q[n, draft_tokens[n]]:
        n += 1
    t = torch.multinomial(p[n], 1, generator=generator)
    return torch.cat([draft_tokens[:n], t]), n
''',
}

CHEAT = {
    "my_speculative_step": '''from collab_lib.system.speculative import speculative_sampling as my_speculative_step
''',
}
