"""One type for a client's data: every function that trains on several clients' data takes a UserDatasets,
refuses anything else (a list of (x, y) pairs, a dict of tensors) naming the argument, and builds from
partitions with users_from_partition; the seed of a training run is its configuration's."""

import numpy as np
import pytest
import torch
from torch import nn

from collab_lib.datasets.users import UserDatasets, require_users, users_from_partition
from collab_lib.feature_based.logit_exchange import FDConfig, federated_distillation
from collab_lib.feature_based.split_learning import TrainConfig, train_fedavg, train_split
from collab_lib.models import mlp
from collab_lib.parameter_based.dccl import meta_patch
from collab_lib.parameter_based.duet import HyperConfig, train_hypernetwork
from collab_lib.parameter_based.federated import FedConfig, federate
from collab_lib.parameter_based.personalize import PersonalConfig, ditto, fine_tune_per_user, personal_batches
from collab_lib.seed import generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def _federation() -> tuple[UserDatasets, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    g = generator(0)
    x = torch.randn(14, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (14,), generator=g)
    clients = users_from_partition(x, y, [np.arange(0, 6), np.arange(6, 9)])   # unequal sizes
    return clients, torch.randn(8, 4, generator=g, dtype=torch.float64), (x[9:], y[9:])


def _models() -> list[nn.Module]:
    torch.manual_seed(0)
    return [nn.Linear(4, 3).double() for _ in range(2)]


def test_users_from_partition_keeps_the_partitions_rows_in_order():
    clients, _, _ = _federation()
    assert clients.names == ("client0", "client1") and clients.sizes.tolist() == [6, 3]
    assert require_users("clients", clients) is clients


def _net():
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


CALLS = {
    "train_split": lambda c: train_split(_net(), 1, c, (torch.zeros(1, 4), torch.zeros(1)), TrainConfig()),
    "train_fedavg": lambda c: train_fedavg(_net(), c, (torch.zeros(1, 4), torch.zeros(1)), TrainConfig()),
    "federated_distillation": lambda c: federated_distillation(_models(), c, torch.zeros(1, 4),
                                                               (torch.zeros(1, 4), torch.zeros(1)), FDConfig()),
    "federate": lambda c: federate(mlp(4, 0, 3, seed=0), c, FedConfig()),
    "personal_batches": lambda c: personal_batches(c, PersonalConfig()),
    "meta_patch": lambda c: meta_patch(mlp(4, 5, 3, seed=0), {}, c, PersonalConfig()),
    "train_hypernetwork": lambda c: train_hypernetwork(mlp(4, 5, 3, seed=0), {}, c, HyperConfig()),
    "fine_tune_per_user": lambda c: fine_tune_per_user(mlp(4, 5, 3, seed=0), {}, c, PersonalConfig()),
    "ditto": lambda c: ditto(mlp(4, 5, 3, seed=0), {}, c, PersonalConfig()),
}
NAMES = {"federate": "train", "personal_batches": "users", "meta_patch": "users", "train_hypernetwork": "users",
         "fine_tune_per_user": "users", "ditto": "users"}


@pytest.mark.parametrize("function", sorted(CALLS))
@pytest.mark.parametrize("shape", ["pairs", "dict"])
def test_every_multi_client_trainer_refuses_another_shape_naming_its_argument(function, shape):
    clients, _, _ = _federation()
    other = (list(zip(clients.xs, clients.ys)) if shape == "pairs"
             else {"x": torch.cat(clients.xs), "y": torch.cat(clients.ys)})
    name = NAMES.get(function, "clients")
    with pytest.raises(TypeError, match=rf"^{name} must be a collab_lib\.datasets\.users\.UserDatasets, got "
                                        rf"{type(other).__name__}; build one with"):
        CALLS[function](other)


def test_the_config_seed_decides_federated_distillations_batch_orders():
    clients, x_public, test = _federation()
    weights = {}
    for run, seed in enumerate((0, 0, 1)):
        models = _models()
        config = FDConfig(rounds=1, warmup_epochs=1, private_epochs=1, digest_epochs=1, batch_size=2, seed=seed)
        federated_distillation(models, clients, x_public, test, config)
        weights[run] = torch.cat([p.detach().flatten() for m in models for p in m.parameters()])
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
    assert not torch.allclose(weights[0], weights[2])
    with pytest.raises(ValueError, match="models and clients must be of equal length"):
        federated_distillation(_models()[:1], clients, x_public, test, FDConfig())
