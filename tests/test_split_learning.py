"""Split learning: gradients equal the unsplit model's autograd gradients at every cut, bytes equal a hand
count, training equals plain SGD over the same batches, FedAvg equals a hand-weighted average, clear errors."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from collab_lib.datasets.users import UserDatasets
from collab_lib.feature_based.split_learning import (
    TrainConfig,
    fedavg_bytes_per_round,
    num_params,
    split_bytes_per_step,
    split_step,
    train_fedavg,
    train_split,
)
from collab_lib.models import split_model
from collab_lib.seed import generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 4, 4, 4)
        nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10),
    ).double()


def data(n: int, seed: int):
    g = generator(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (n,), generator=g)


def users(pairs) -> UserDatasets:
    return UserDatasets(tuple(x for x, _ in pairs), tuple(y for _, y in pairs), tuple(f"d{i}" for i in range(len(pairs))))


@pytest.mark.parametrize("cut", range(1, 7))
def test_split_gradients_equal_unsplit_autograd(cut):
    x, y = data(12, 0)
    reference = cnn(1)
    F.cross_entropy(reference(x), y).backward()

    model = cnn(1)
    device, cloud = split_model(model, cut)
    step = split_step(device, cloud, x, y)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-12, msg=name)
    # Bytes by hand: the activation at the cut once each way, computed in float64 but counted as the float32 a
    # deployment sends; labels int64.
    with torch.no_grad():
        values = reference[:cut](x[:1]).numel()
    assert step.bytes_up == 12 * values * 4 + 12 * 8
    assert step.bytes_down == 12 * values * 4
    assert step.bytes_up + step.bytes_down == split_bytes_per_step(values, 12, bytes_per_value=4)
    assert step.loss == pytest.approx(F.cross_entropy(reference(x), y).item(), rel=1e-12)


def test_split_step_cuts_the_graph_at_the_link():
    x, y = data(4, 1)
    device, cloud = split_model(cnn(2), 3)
    seen = []
    cloud.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    split_step(device, cloud, x, y)
    assert seen[0].grad_fn is None and seen[0].is_leaf  # the cloud cannot reach the device's graph


def test_train_split_equals_sgd_over_the_same_batches():
    clients = [data(10, 3), data(7, 4)]
    test = data(20, 5)
    config = TrainConfig(rounds=2, batch_size=4, lr=0.05, seed=9)
    model, reference = cnn(6), cnn(6)
    hist = train_split(model, 2, users(clients), test, config)

    # Independent reference: one SGD optimizer on the whole model, the batches train_split documents.
    opt = torch.optim.SGD(reference.parameters(), lr=0.05)
    for r in range(2):
        for i, (x, y) in enumerate(clients):
            order = torch.randperm(len(x), generator=generator(9, offset=r * 2 + i))
            for s in range(0, len(x), 4):
                idx = order[s:s + 4]
                opt.zero_grad()
                F.cross_entropy(reference(x[idx]), y[idx]).backward()
                opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)

    # Bytes by hand: cut 2 sends the conv + ReLU output, 4 x 8 x 8 values per sample, computed in float64 and
    # counted as float32; labels int64.
    q_k = 4 * 8 * 8
    samples = 2 * (10 + 7)
    device_bytes = sum(p.numel() for p in model[:2].parameters()) * 4
    handoffs = 2 * 2 - 1
    assert hist.bytes_total[-1] == samples * (2 * q_k * 4 + 8) + handoffs * 2 * device_bytes
    assert hist.steps == [3 + 2, 10]


def test_fedavg_is_the_sample_weighted_average_of_local_sgd():
    clients = [data(9, 10), data(3, 11)]  # unequal sizes: a missing weight would fail
    config = TrainConfig(rounds=1, batch_size=4, lr=0.1, seed=14)
    model = cnn(12)
    start = copy.deepcopy(model)
    hist = train_fedavg(model, users(clients), data(5, 13), config)

    locals_ = []
    for i, (x, y) in enumerate(clients):
        local = copy.deepcopy(start)
        opt = torch.optim.SGD(local.parameters(), lr=0.1)
        order = torch.randperm(len(x), generator=generator(14, offset=i))
        for s in range(0, len(x), 4):
            opt.zero_grad()
            F.cross_entropy(local(x[order[s:s + 4]]), y[order[s:s + 4]]).backward()
            opt.step()
        locals_.append(local)
    for p, a, b in zip(model.parameters(), locals_[0].parameters(), locals_[1].parameters()):
        torch.testing.assert_close(p, 0.75 * a + 0.25 * b)
    assert hist.bytes_total == [2 * 2 * num_params(start) * 4]  # float64 parameters sent as float32
    assert fedavg_bytes_per_round(num_params(start), 4) == 2 * num_params(start) * 4


@pytest.mark.parametrize("cut", [0, 7, -1, 2.5, True])
def test_bad_cut_names_the_parameter(cut):  # split learning needs a layer on each side of the cut
    with pytest.raises(ValueError, match="cut"):
        train_split(cnn(0), cut, users([data(4, 1)]), data(4, 2), TrainConfig(rounds=1, seed=3))


def _old_split_learning_split_model(model, cut):  # split_learning.split_model before the merge
    return model[:cut], model[cut:]


@pytest.mark.parametrize("cut", range(1, 7))
def test_split_model_equals_the_copy_it_replaced(cut):
    model = cnn(cut)
    (device, cloud), (old_device, old_cloud) = split_model(model, cut), _old_split_learning_split_model(model, cut)
    assert [type(m) for m in device] == [type(m) for m in old_device]
    assert [type(m) for m in cloud] == [type(m) for m in old_cloud]
    params = list(device.parameters()) + list(cloud.parameters())
    assert [p is q for p, q in zip(params, model.parameters())] == [True] * len(list(model.parameters()))
    x = data(3, cut)[0]
    torch.testing.assert_close(cloud(device(x)), model(x), rtol=0, atol=0)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(TypeError, match="model"):
        split_model(nn.Linear(2, 2), 1)
    with pytest.raises(ValueError, match="batch_size"):
        split_bytes_per_step(10, 0)
    with pytest.raises(ValueError, match="label_bytes"):
        split_bytes_per_step(10, 2, label_bytes=-1)
    with pytest.raises(ValueError, match="num_parameters"):
        fedavg_bytes_per_round(0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-0.1)
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=-1)
    with pytest.raises(ValueError, match="clients must hold at least one user"):
        train_split(cnn(0), 2, users([]), data(2, 0), TrainConfig())
    with pytest.raises(ValueError, match=r"clients \[1\] hold no samples"):
        train_fedavg(cnn(0), users([data(2, 0), data(0, 1)]), data(2, 0), TrainConfig())
