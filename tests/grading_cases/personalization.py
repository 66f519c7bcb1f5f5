"""Wrong and cheating answers to the personalization lab's fill-in, which its check must reject."""

WRONG = {
    # A gradient step on the proximal term instead of the exact (closed-form) step.
    "my_ditto_personal": '''def my_ditto_personal(model, w_global, x, y, config, k):
    import torch
    import torch.nn.functional as F
    from collab_lib.parameter_based.federated import client_batches, full_steps
    from collab_lib.parameter_based.params import get_params, set_params
    n, B = len(y), config.batch_size
    set_params(model, w_global)
    for idx in client_batches(n, B, full_steps(n, B, config.epochs), config.seed, 0, k):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for name, v in model.named_parameters():
                v -= config.lr * (v.grad + config.lam * (v - w_global[name]))
    return get_params(model)
''',
}

CHEAT = {
    "my_ditto_personal": '''def my_ditto_personal(model, w_global, x, y, config, k):
    from collab_lib.parameter_based.federated import client_batches, full_steps
    from collab_lib.parameter_based.personalize import sgd_per_user, stack
    n, B = len(y), config.batch_size
    batches = [client_batches(n, B, full_steps(n, B, config.epochs), config.seed, 0, k)]
    out = sgd_per_user(model, stack(w_global, 1), [x], [y], batches, config.lr, anchor=w_global, lam=config.lam)
    return {name: p[0] for name, p in out.items()}
''',
}
