"""Wrong and cheating answers to the federated learning lab's fill-ins, which its checks must reject."""

WRONG = {
    # Keeps the stragglers under "drop" (the policy ignored).
    "my_plan_round": '''def my_plan_round(config, sizes, t):
    import numpy as np
    rng = np.random.default_rng([config.seed, 0, t])
    m = max(1, round(config.client_fraction * len(sizes)))
    sampled = np.sort(rng.choice(len(sizes), size=m, replace=False))
    alive = rng.random(m) >= config.dropout_prob
    late = np.zeros(m, dtype=bool)
    late[rng.permutation(m)[: round(config.straggler_fraction * m)]] = True
    full = config.local_epochs * -(-sizes[sampled] // config.batch_size)
    partial = rng.integers(1, full + 1)
    steps = np.where(late, partial, full)
    return sampled[alive], steps[alive]
''',
    # The unweighted mean of the clients' models.
    "my_fedavg_round": '''def my_fedavg_round(model, params, clients, config, t):
    import torch
    import torch.nn.functional as F
    from collab_lib.parameter_based.federated import client_batches, plan_round
    from collab_lib.parameter_based.params import get_params, set_params
    plan = plan_round(config, clients.sizes.numpy(), t)
    if len(plan.answered) == 0:
        return params
    models = []
    for k, steps in zip(plan.answered.tolist(), plan.steps.tolist()):
        set_params(model, params)
        x, y = clients.xs[k], clients.ys[k]
        for idx in client_batches(len(y), config.batch_size, steps, config.seed, t, k):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for w in model.parameters():
                    w -= config.lr * w.grad
        models.append(get_params(model))
    return {name: sum(w[name] for w in models) / len(models) for name in params}
''',
}

CHEAT = {
    "my_plan_round": '''def my_plan_round(config, sizes, t):
    from collab_lib.parameter_based.federated import plan_round
    plan = plan_round(config, sizes, t)
    return plan.answered, plan.steps
''',
    "my_fedavg_round": '''def my_fedavg_round(model, params, clients, config, t):
    from collab_lib.parameter_based.fedavg import FedAvg
    from collab_lib.parameter_based.federated import run_round
    from collab_lib.parameter_based.local import train_clients
    from collab_lib.parameter_based.federated import client_batches

    def local(plan, sent, objective):
        batches = [client_batches(len(clients.ys[k]), config.batch_size, int(s), config.seed, t, int(k))
                   for k, s in zip(plan.answered, plan.steps)]
        return train_clients(model, sent, clients, plan.answered, batches, config.lr, objective, "loop")

    return run_round(t, params, None, clients.sizes.numpy(), config, FedAvg(), local).params
''',
}
