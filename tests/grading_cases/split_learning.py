"""Submissions the split_learning checks must reject: a plausible mistake and one that hands back the library."""

WRONG = {
    # Keeps the autograd graph across the link: the gradients are right, but no machine could run this.
    "my_split_step": '''def my_split_step(device, cloud, x, y):
    h = device(x)
    h.retain_grad()
    loss = F.cross_entropy(cloud(h), y)
    loss.backward()
    return loss.item(), h.grad
''',
    # Forgets the labels that travel up with the activations.
    "my_bytes_per_step": '''def my_bytes_per_step(model, cut, batch):
    with torch.no_grad():
        q = model[:cut](torch.zeros(1, 1, 8, 8)).numel()
    return batch * 2 * q * 4
''',
}

CHEAT = {
    "my_split_step": '''from collab_lib.feature_based.split_learning import split_step


def my_split_step(device, cloud, x, y):
    h = device(x).detach().requires_grad_(True)
    step = split_step(device, cloud, x, y)
    return step.loss, h
''',
    "my_bytes_per_step": '''from collab_lib.feature_based.split_learning import split_bytes_per_step


def my_bytes_per_step(model, cut, batch):
    with torch.no_grad():
        q = model[:cut](torch.zeros(1, 1, 8, 8)).numel()
    return split_bytes_per_step(q, batch)
''',
}
