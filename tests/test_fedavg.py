"""FedAvg/FedProx/FedAvgM: aggregation against hand-computed weighted means of unequal clients, a round
against an independent re-implementation, the batched engine against the per-client loop, participation
draws, dropout, and clear errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.datasets.users import UserDatasets
from collab_lib.models import mlp
from collab_lib.parameter_based.aggregate import momentum_step, weighted_average
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.fedavgm import FedAvgM
from collab_lib.parameter_based.federated import FedConfig, client_batches, federate, full_steps, plan_round
from collab_lib.parameter_based.fedprox import FedProx
from collab_lib.parameter_based.local import linear_layers, local_update, local_update_batched, stacked_gradients
from collab_lib.parameter_based.params import get_params
from collab_lib.seed import generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def unequal_clients(sizes=(3, 17, 40), dim=5, classes=3, seed=0) -> UserDatasets:
    """Clients of different sizes whose labels follow different rules, so their updates differ."""
    g = generator(seed)
    xs, ys = [], []
    for k, n in enumerate(sizes):
        x = torch.randn(n, dim, generator=g) + k
        xs.append(x)
        ys.append(((x[:, 0] * (k + 1) + x[:, 1]).floor().long()) % classes)
    return UserDatasets(tuple(xs), tuple(ys), tuple(f"c{k}" for k in range(len(sizes))))


def max_diff(a, b) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


# --- aggregation ---------------------------------------------------------------------------------------


def test_weighted_average_is_the_sample_weighted_mean_of_unequal_clients():
    stacked = {"w": torch.tensor([[1.0, -2.0], [2.0, 0.0], [10.0, 4.0]]), "b": torch.tensor([0.0, 3.0, -1.0])}
    n = torch.tensor([1.0, 3.0, 6.0])
    out = weighted_average(stacked, n)
    # By hand: (1*1 + 3*2 + 6*10) / 10 = 6.7; (1*-2 + 0 + 6*4) / 10 = 2.2; (0 + 9 - 6) / 10 = 0.3
    assert torch.allclose(out["w"], torch.tensor([6.7, 2.2]))
    assert torch.allclose(out["b"], torch.tensor(0.3))
    # A plain (unweighted) mean would give 13/3 and 2/3: the weights matter here.
    assert not torch.allclose(out["w"], stacked["w"].mean(0))


def test_weighted_average_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        weighted_average({"w": torch.zeros(2, 3)}, torch.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="w: 2 client values for 3 weights"):
        weighted_average({"w": torch.zeros(2, 3)}, torch.tensor([1.0, 2.0, 3.0]))


def test_server_momentum_step_by_hand_and_plain_fedavg_exactly():
    w, avg, v = {"p": torch.tensor([1.0])}, {"p": torch.tensor([0.5])}, {"p": torch.tensor([0.2])}
    new, vel = momentum_step(w, avg, v, server_lr=1.0, server_momentum=0.9)
    # Δ = 0.5, v' = 0.9 * 0.2 + 0.5 = 0.68, w' = 1 - 0.68 = 0.32
    assert torch.allclose(vel["p"], torch.tensor([0.68])) and torch.allclose(new["p"], torch.tensor([0.32]))
    new, _ = momentum_step(w, avg, v, server_lr=2.0, server_momentum=0.0)
    assert torch.allclose(new["p"], torch.tensor([0.0]))  # 1 - 2 * 0.5
    new, _ = momentum_step(w, avg, v, server_lr=1.0, server_momentum=0.0)
    assert torch.equal(new["p"], avg["p"])


# --- a round against an independent implementation -----------------------------------------------------


def reference_round(model: nn.Module, data: UserDatasets, config: FedConfig, round_idx: int, mu: float):
    """FedAvg/FedProx written out: for each client, SGD with the gradient of F_k plus μ (w - w_t) added by
    hand, then the mean weighted by n_k / n. Shares only the batch order with the library."""
    w_t = {n: p.detach().clone() for n, p in model.named_parameters()}
    updates, n_k = [], []
    for k in range(len(data)):
        x, y = data.xs[k], data.ys[k]
        net = mlp(x.shape[1], 0, 3, seed=0)
        net.load_state_dict(model.state_dict())
        steps = full_steps(len(y), config.batch_size, config.local_epochs)
        for idx in client_batches(len(y), config.batch_size, steps, config.seed, round_idx, k):
            net.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            with torch.no_grad():
                for name, p in net.named_parameters():
                    p -= config.lr * (p.grad + mu * (p - w_t[name]))
        updates.append({n: p.detach().clone() for n, p in net.named_parameters()})
        n_k.append(len(y))
    n = sum(n_k)
    return {name: sum(u[name] * (nk / n) for u, nk in zip(updates, n_k)) for name in w_t}


@pytest.mark.parametrize("mu", [0.0, 0.5])
@pytest.mark.parametrize("engine", ["batched", "loop"])
def test_one_round_matches_the_written_out_algorithm(mu, engine):
    data = unequal_clients()
    model = mlp(5, 0, 3, seed=0)
    config = FedConfig(rounds=1, client_fraction=1.0, local_epochs=2, batch_size=4, lr=0.1, seed=3)
    ours = federate(model, data, config, strategy=FedProx(mu=mu), engine=engine).params
    ref = reference_round(model, data, config, 0, mu)
    assert max_diff(ours, ref) < 1e-5
    assert max_diff(ours, get_params(model)) > 1e-2  # the round moved the model


def test_fedprox_with_mu_zero_is_fedavg_and_mu_pulls_towards_the_global_model():
    data = unequal_clients()
    model = mlp(5, 8, 3, seed=1)
    base = dict(rounds=2, client_fraction=1.0, local_epochs=3, batch_size=4, lr=0.2, seed=0)
    fedavg = federate(model, data, FedConfig(**base)).params
    prox0 = federate(model, data, FedConfig(**base), strategy=FedProx(mu=0.0)).params
    assert max_diff(fedavg, prox0) == 0.0
    # Against the written-out algorithm (different code, so mu = 0 is not only the same default):
    assert max_diff(fedavg, reference_round_general(model, data, FedConfig(**base))) < 1e-5
    # μ > 0: each client's update stays closer to w_t.
    w_t = get_params(model)
    x, y = data.xs[2], data.ys[2]
    batches = client_batches(len(y), 4, full_steps(len(y), 4, 3), 0, 0, 2)
    dist = [sum(((local_update(mlp(5, 8, 3, 9), w_t, x, y, batches, 0.05, mu)[n] - w_t[n]) ** 2).sum()
                for n in w_t).sqrt().item() for mu in (0.0, 0.1, 1.0)]
    assert dist[0] > dist[1] > dist[2] > 0


def reference_round_general(model, data, config):
    """Several rounds of plain FedAvg by hand with torch.optim.SGD (full participation, mlp(5, 8, 3))."""
    params = get_params(model)
    for t in range(config.rounds):
        updates, n_k = [], []
        for k in range(len(data)):
            local = mlp(5, 8, 3, seed=0)
            local.load_state_dict(params)
            x, y = data.xs[k], data.ys[k]
            opt = torch.optim.SGD(local.parameters(), lr=config.lr)
            steps = full_steps(len(y), config.batch_size, config.local_epochs)
            for idx in client_batches(len(y), config.batch_size, steps, config.seed, t, k):
                opt.zero_grad()
                F.cross_entropy(local(x[idx]), y[idx]).backward()
                opt.step()
            updates.append(get_params(local))
            n_k.append(len(y))
        params = {n: sum(u[n] * nk for u, nk in zip(updates, n_k)) / sum(n_k) for n in params}
    return params


# --- batched engine against the loop -------------------------------------------------------------------


@pytest.mark.parametrize("config, strategy", [
    (FedConfig(rounds=3, client_fraction=0.5, local_epochs=2, batch_size=5, lr=0.1), FedAvg()),
    (FedConfig(rounds=3, client_fraction=1.0, local_epochs=1, batch_size=16, lr=0.05,
               straggler_fraction=0.5, stragglers="partial"), FedProx(mu=0.3)),
    (FedConfig(rounds=3, client_fraction=0.8, local_epochs=2, batch_size=7, lr=0.1, dropout_prob=0.3),
     FedAvgM(server_momentum=0.9)),
], ids=["partial-participation", "fedprox-stragglers", "momentum-dropout"])
def test_batched_engine_equals_the_per_client_loop(config, strategy):
    data, _ = fedprox_synthetic(1.0, 1.0, 12, seed=0, max_samples_per_user=60)
    model = mlp(60, 16, 10, seed=0)
    batched = federate(model, data, config, strategy=strategy, engine="batched")
    loop = federate(model, data, config, strategy=strategy, engine="loop")
    assert max_diff(batched.params, loop.params) < 1e-5
    assert batched.history.answered == loop.history.answered
    assert max_diff(batched.params, get_params(model)) > 1e-2


def test_local_update_batched_handles_clients_with_different_step_counts():
    data = unequal_clients(sizes=(1, 9, 30))
    model = mlp(5, 4, 3, seed=0)
    w = get_params(model)
    batches = [client_batches(len(y), 4, s, 0, 0, k) for k, (y, s) in enumerate(zip(data.ys, (1, 5, 2)))]
    stacked = local_update_batched(model, w, list(data.xs), list(data.ys), batches, lr=0.3, mu=0.1)
    for k in range(3):
        one = local_update(mlp(5, 4, 3, 0), w, data.xs[k], data.ys[k], batches[k], lr=0.3, mu=0.1)
        assert max_diff({n: stacked[n][k] for n in w}, one) < 1e-6


def test_stacked_gradients_equal_autograd_per_client_with_padding():
    # Three hidden layers, a bias-free layer and no Flatten: every branch of the written-out backward pass.
    torch.set_default_dtype(torch.float64)  # as in the labs; the conftest fixture restores it
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3))
    K, B = 4, 7
    params = {n: torch.randn(K, *p.shape) for n, p in model.named_parameters()}
    x, y = torch.randn(K, B, 6), torch.randint(0, 3, (K, B))
    mask = torch.ones(K, B)
    mask[1, 3:] = 0.0   # a client with a short last batch
    mask[2] = 0.0       # a client that has finished: zero gradient
    ours = stacked_gradients(linear_layers(model), params, x, y, mask)
    assert set(ours) == set(params)
    for k in range(K):
        leaves = {n: p[k].clone().requires_grad_(True) for n, p in params.items()}
        real = mask[k] > 0
        if real.any():
            loss = F.cross_entropy(torch.func.functional_call(model, leaves, (x[k][real],)), y[k][real])
            ref = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
        else:
            ref = {n: torch.zeros_like(p) for n, p in leaves.items()}
        assert max_diff({n: g[k] for n, g in ours.items()}, ref) < 1e-12


def test_linear_layers_recognises_mlps_only_and_other_models_still_train_batched():
    assert linear_layers(mlp(5, 4, 3, seed=0)) is not None and linear_layers(mlp(5, 0, 3, seed=0)) is not None
    assert linear_layers(nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))) is None
    assert linear_layers(nn.Linear(5, 3)) is None
    # Layers named by an OrderedDict: the gradients carry the parameters' own names.
    from collections import OrderedDict

    torch.manual_seed(2)
    named = nn.Sequential(OrderedDict(hidden=nn.Linear(5, 4), act=nn.ReLU(), out=nn.Linear(4, 3)))
    params = {n: p.detach()[None].clone() for n, p in named.named_parameters()}
    x, y = torch.randn(1, 6, 5), torch.randint(0, 3, (1, 6))
    ours = stacked_gradients(linear_layers(named), params, x, y, torch.ones(1, 6))
    loss = F.cross_entropy(named(x[0]), y[0])
    for n, ref in zip(dict(named.named_parameters()), torch.autograd.grad(loss, list(named.parameters()))):
        assert torch.allclose(ours[n][0], ref, atol=1e-6)
    # A model outside the fast path takes the vmap path and still equals the per-client loop.
    data = unequal_clients()
    torch.manual_seed(1)
    tanh_net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    config = FedConfig(rounds=2, client_fraction=1.0, local_epochs=2, batch_size=4, lr=0.1, seed=1)
    batched = federate(tanh_net, data, config, strategy=FedProx(mu=0.2), engine="batched").params
    loop = federate(tanh_net, data, config, strategy=FedProx(mu=0.2), engine="loop").params
    assert max_diff(batched, loop) < 1e-6 and max_diff(batched, get_params(tanh_net)) > 1e-2


# --- participation ---------------------------------------------------------------------------------------


def test_plan_samples_round_C_K_clients_and_drops_about_the_dropout_share():
    sizes = np.full(200, 20)
    config = FedConfig(client_fraction=0.25, dropout_prob=0.3, seed=1)
    plans = [plan_round(config, sizes, t) for t in range(40)]
    assert all(len(p.sampled) == 50 and len(np.unique(p.sampled)) == 50 for p in plans)
    dropped = sum(p.dropped_out for p in plans) / (40 * 50)
    assert abs(dropped - 0.3) < 0.03   # 2,000 Bernoulli(0.3) draws: sd ~ 0.01
    assert all(len(p.answered) == 50 - p.dropped_out for p in plans)
    again = plan_round(config, sizes, 7)
    assert np.array_equal(again.answered, plans[7].answered)  # reproducible from (seed, round)


def test_stragglers_are_dropped_or_send_partial_work():
    sizes = np.arange(10, 110, 10)
    drop = plan_round(FedConfig(client_fraction=1.0, straggler_fraction=0.4, stragglers="drop"), sizes, 0)
    assert len(drop.answered) == 6 and drop.stragglers == 4
    part = plan_round(FedConfig(client_fraction=1.0, straggler_fraction=0.4, stragglers="partial",
                                local_epochs=3, batch_size=10), sizes, 0)
    full = np.array([full_steps(int(sizes[k]), 10, 3) for k in part.answered])
    assert len(part.answered) == 10 and (part.steps <= full).all() and (part.steps >= 1).all()
    assert (part.steps < full).sum() >= 3  # most of the 4 stragglers stop early


def test_rounds_without_answers_keep_the_model_and_bytes_are_counted():
    data = unequal_clients()
    model = mlp(5, 0, 3, seed=0)
    config = FedConfig(rounds=12, client_fraction=1 / 3, dropout_prob=0.6, lr=0.1, seed=0)
    seen = []
    result = federate(model, data, config, callback=lambda t, p: seen.append(p))
    answered = result.history.answered
    assert 0 in answered and max(answered) == 1
    for t in range(1, 12):
        if answered[t] == 0:
            assert max_diff(seen[t], seen[t - 1]) == 0.0
    model_bytes = (5 * 3 + 3) * 4
    assert result.history.bytes_up == [a * model_bytes for a in answered]
    assert result.history.bytes_down == [model_bytes] * 12


def test_federation_converges_with_30_percent_dropout():
    data, _ = fedprox_synthetic(0.0, 0.0, 60, seed=2, iid=True, max_samples_per_user=80)
    train, test = data.split(0.25, seed=0)
    model = mlp(60, 0, 10, seed=0)
    base = dict(rounds=40, client_fraction=0.2, local_epochs=1, batch_size=10, lr=0.1, eval_every=40)
    full = federate(model, train, FedConfig(**base), test=test).history.test_accuracy[-1]
    drop = federate(model, train, FedConfig(**base, dropout_prob=0.3), test=test).history.test_accuracy[-1]
    chance = federate(model, train, FedConfig(**{**base, "rounds": 1, "lr": 1e-9}), test=test).history.test_accuracy[-1]
    assert full > chance + 0.3
    assert drop > full - 0.05


# --- configuration errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("client_fraction", 0.0), ("client_fraction", 1.5), ("client_fraction", -0.1),
    ("lr", 0.0), ("rounds", 0), ("local_epochs", 0), ("batch_size", 0), ("dropout_prob", 1.0),
    ("straggler_fraction", 1.2), ("stragglers", "wait"),
])
def test_bad_configs_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FedConfig(**{field: value})


@pytest.mark.parametrize("make, field", [
    (lambda: FedProx(mu=-0.01), "mu"), (lambda: FedAvgM(server_momentum=1.0), "server_momentum"),
    (lambda: FedAvgM(server_lr=0.0), "server_lr"),
])
def test_bad_strategies_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_no_clients_bad_engine_and_a_non_strategy_are_errors():
    with pytest.raises(ValueError, match="train must hold at least one user"):
        federate(mlp(5, 0, 3, 0), UserDatasets((), (), ()), FedConfig())
    with pytest.raises(TypeError, match="train must be a collab_lib.datasets.users.UserDatasets, got list"):
        federate(mlp(5, 0, 3, 0), [(torch.zeros(2, 5), torch.zeros(2, dtype=torch.int64))], FedConfig())
    with pytest.raises(ValueError, match="engine"):
        federate(mlp(5, 0, 3, 0), unequal_clients(), FedConfig(), engine="gpu")
    with pytest.raises(TypeError, match="strategy"):
        federate(mlp(5, 0, 3, 0), unequal_clients(), FedConfig(), strategy="fedprox")


def test_library_imports_without_flower():
    code = ("import sys, collab_lib.parameter_based, collab_lib.parameter_based.federated; "
            "assert 'flwr' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
