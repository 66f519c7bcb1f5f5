"""Submissions the training_memory lab's check must not pass: a plausible mistake and a cheat."""

WRONG = {
    "training_memory": '''import torch


def training_memory(model, example_input, optimizer):
    # counts every saved tensor, so shared storages (a ReLU's output, the next layer's input) twice
    states = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    param_storages = {p.untyped_storage().data_ptr() for p in params}
    saved = []

    def pack(t):
        if t.untyped_storage().data_ptr() not in param_storages:
            saved.append(t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(example_input)
    return weights, trainable, states * trainable, sum(saved)
''',
}

CHEAT = {
    "training_memory": '''from collab_lib.hardware.memory import measure_training_memory


def training_memory(model, example_input, optimizer):
    m = measure_training_memory(model, example_input, optimizer)
    return m.weights_bytes, m.gradients_bytes, m.optimizer_bytes, m.activations_bytes
''',
}
