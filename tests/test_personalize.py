"""Personalization (fine-tuning, FedPer, Ditto), DCCL's MetaPatch and MoMoDistill, DUET's hypernetwork:
limits of Ditto's λ against the global model and plain local training, FedPer's aggregation against
FedAvg's weighted average of independently computed client updates, identity patches, generated shapes,
FLOP counts by hand, and clear errors."""

import math

import numpy as np
import pytest
import torch

from collab_lib.datasets.users import UserDatasets
from collab_lib.hardware.profile import mlp_forward_flops, mlp_train_flops
from collab_lib.models import mlp
from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.dccl import DistillConfig, PatchedMLP, meta_patch, momo_distill, patched_params
from collab_lib.parameter_based.duet import (
    HyperConfig,
    HyperHead,
    device_embedding,
    generate_models,
    train_hypernetwork,
)
from collab_lib.parameter_based.federated import FedConfig, client_batches, full_steps
from collab_lib.parameter_based.local import local_update
from collab_lib.parameter_based.params import get_params
from collab_lib.parameter_based.personalize import (
    PersonalConfig,
    ditto,
    ditto_step,
    fedper,
    fine_tune_per_user,
    personal_accuracy,
    personal_batches,
    sgd_per_user,
    stack,
)
from collab_lib.seed import generator

HEAD = ("3.weight", "3.bias")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def unequal_users(sizes=(7, 23, 41), dim=5, classes=3, seed=0) -> UserDatasets:
    """Users of different sizes with different labelling rules, so their updates differ."""
    g = generator(seed)
    xs, ys = [], []
    for k, n in enumerate(sizes):
        x = torch.randn(n, dim, generator=g) + k
        xs.append(x)
        ys.append(((x[:, 0] * (k + 1) - x[:, 1]).floor().long()) % classes)
    return UserDatasets(tuple(xs), tuple(ys), tuple(f"u{k}" for k in range(len(sizes))))


def max_diff(a, b) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


# --- Ditto and fine-tuning ----------------------------------------------------------------------------------


def test_ditto_step_limits_and_formula():
    v, g, w = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0]), torch.tensor([3.0, 0.0])
    assert torch.equal(ditto_step(v, g, w, 0.1, 0.0), v - 0.1 * g)
    assert torch.equal(ditto_step(v, g, w, 0.1, math.inf), w)
    # By hand: (v - η g + ηλ w) / (1 + ηλ) with η = 0.1, λ = 10.
    assert torch.allclose(ditto_step(v, g, w, 0.1, 10.0), torch.tensor([(1 - 0.05 + 3) / 2, (-2 - 0.1) / 2]))


def test_ditto_infinite_lambda_is_the_global_model_and_zero_is_local_training():
    users = unequal_users()
    model = mlp(5, 8, 3, seed=1)
    w = get_params(model)
    cfg = PersonalConfig(epochs=2, batch_size=4, lr=0.1, seed=3)
    glob = ditto(model, w, users, PersonalConfig(**{**cfg.__dict__, "lam": math.inf}))
    assert max_diff(glob, stack(w, len(users))) == 0.0
    local = ditto(model, w, users, cfg)  # λ = 0
    assert max_diff(local, fine_tune_per_user(model, w, users, cfg)) < 1e-6
    batches = personal_batches(users, cfg)
    for k in range(len(users)):  # reference: FedAvg's per-client loop with μ = 0
        ref = local_update(mlp(5, 8, 3, seed=9), w, users.xs[k], users.ys[k], batches[k], cfg.lr, mu=0.0)
        assert max_diff({n: p[k] for n, p in local.items()}, ref) < 1e-5
    mid = ditto(model, w, users, PersonalConfig(**{**cfg.__dict__, "lam": 5.0}))
    dist = lambda s: sum(((s[n] - w[n]) ** 2).sum().item() for n in w)  # noqa: E731
    assert 0 < dist(mid) < dist(local)


def test_head_only_fine_tuning_leaves_the_body_alone():
    users = unequal_users()
    model = mlp(5, 8, 3, seed=1)
    w = get_params(model)
    out = fine_tune_per_user(model, w, users, PersonalConfig(epochs=1, batch_size=5, seed=0), trainable=HEAD)
    assert torch.equal(out["1.weight"], stack(w, 3)["1.weight"])
    assert (out["3.weight"] - w["3.weight"]).abs().amax(dim=(1, 2)).min() > 0  # every user's head moved


# --- FedPer --------------------------------------------------------------------------------------------------


def test_fedper_averages_the_body_with_sample_weights_and_keeps_heads_local():
    users = unequal_users()
    model = mlp(5, 8, 3, seed=2)
    w = get_params(model)
    cfg = FedConfig(rounds=1, client_fraction=1.0, local_epochs=2, batch_size=4, lr=0.1, seed=5)
    result = fedper(model, users, cfg, head=HEAD)
    updates = [local_update(mlp(5, 8, 3, seed=0), w, users.xs[k], users.ys[k],
                            client_batches(len(users.ys[k]), 4, full_steps(len(users.ys[k]), 4, 2), 5, 0, k), 0.1, 0.0)
               for k in range(3)]
    body = weighted_average({n: torch.stack([u[n] for u in updates]) for n in ("1.weight", "1.bias")},
                            torch.tensor([7.0, 23.0, 41.0]))
    assert max_diff(result.body, body) < 1e-5
    for k in range(3):
        assert max_diff({n: result.heads[n][k] for n in HEAD}, {n: updates[k][n] for n in HEAD}) < 1e-5
    one = fedper(model, users, FedConfig(**{**cfg.__dict__, "client_fraction": 1 / 3}), head=HEAD)
    moved = [(one.heads["3.weight"][k] - w["3.weight"]).abs().max().item() > 0 for k in range(3)]
    assert sum(moved) == 1  # the two unsampled users keep their initial heads


# --- DCCL ----------------------------------------------------------------------------------------------------


def test_identity_patch_leaves_the_cloud_model_unchanged_and_patches_move_only_the_patch():
    users = unequal_users()
    cloud = mlp(5, 8, 3, seed=4)
    x = torch.randn(6, 5, generator=generator(1))
    assert torch.equal(PatchedMLP(cloud)(x), cloud(x))
    w = get_params(cloud)
    patched = meta_patch(cloud, w, users, PersonalConfig(epochs=2, batch_size=4, lr=0.1))
    fresh = stack(patched_params(w, 8), 3)
    assert max_diff({n: p for n, p in patched.items() if n.startswith("cloud.")},
                    {n: p for n, p in fresh.items() if n.startswith("cloud.")}) == 0.0
    assert patched["patch_scale"].abs().max() > 0
    acc_before = personal_accuracy(PatchedMLP(cloud), fresh, users)
    assert np.allclose(acc_before, personal_accuracy(cloud, stack(w, 3), users))


def test_momo_distill_moves_the_cloud_model_and_validates_its_config():
    users = unequal_users()
    cloud = mlp(5, 8, 3, seed=4)
    w = get_params(cloud)
    patched = meta_patch(cloud, w, users, PersonalConfig(epochs=1, batch_size=4))
    out = momo_distill(cloud, w, patched, users, DistillConfig(epochs=1, batch_size=8))
    assert set(out) == set(w) and max_diff(out, w) > 0
    assert max_diff(get_params(cloud), w) == 0.0  # the caller's model is untouched
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)


# --- DUET ----------------------------------------------------------------------------------------------------


def test_hypernetwork_shapes_and_zero_embedding_gives_its_bias():
    cloud = mlp(5, 8, 3, seed=4)
    w = get_params(cloud)
    hyper = HyperHead(w["3.weight"], w["3.bias"])
    with torch.no_grad():
        hyper.gen.weight.normal_(generator=generator(2))  # a trained-looking U: the bias alone must still show
    W, b = hyper(torch.zeros(3 * 8))
    assert W.shape == (3, 8) and b.shape == (3,)
    assert torch.equal(W, w["3.weight"]) and torch.equal(b, w["3.bias"])
    Wk, bk = hyper(torch.randn(4, 24, generator=generator(3)))
    assert Wk.shape == (4, 3, 8) and bk.shape == (4, 3)
    with pytest.raises(ValueError, match="e must"):
        hyper(torch.zeros(5))


def test_device_embedding_by_hand_and_generated_models():
    users = unequal_users()
    cloud = mlp(5, 8, 3, seed=4)
    w = get_params(cloud)
    x, y = users.xs[1], users.ys[1]
    h = torch.relu(x @ w["1.weight"].T + w["1.bias"])
    e = device_embedding(w, x, y, 3).view(3, 8)
    assert torch.allclose(e[2], h[y == 2].sum(0) / len(y), atol=1e-6)
    hyper = train_hypernetwork(cloud, w, users, HyperConfig(steps=5))
    models = generate_models(hyper, w, users)
    assert models["3.weight"].shape == (3, 3, 8) and models["1.weight"].shape == (3, 8, 5)
    assert torch.equal(models["1.weight"][2], w["1.weight"])  # the body is the cloud's, not trained
    with pytest.raises(ValueError, match="support_fraction"):
        HyperConfig(support_fraction=1.0)


def test_hypernetwork_training_equals_the_per_sample_formulation():
    # Reference: each query sample picks its user's generated head (W[user], b[user]); the library pads the
    # users' query halves instead and runs one batched product. Same loss, so the same Adam trajectory.
    import torch.nn.functional as F

    users = unequal_users(sizes=(6, 15, 31, 9))
    cloud = mlp(5, 8, 3, seed=4)
    w = get_params(cloud)
    cfg = HyperConfig(steps=25, lr=0.05, seed=2)
    ours = train_hypernetwork(cloud, w, users, cfg)
    ref = HyperHead(w["3.weight"], w["3.bias"])
    rng = np.random.default_rng([cfg.seed, 4])
    embeds, feats, labels, owner = [], [], [], []
    for k, (x, y) in enumerate(zip(users.xs, users.ys)):
        perm = torch.from_numpy(rng.permutation(len(y)))
        n_s = max(1, min(len(y) - 1, int(round(cfg.support_fraction * len(y)))))
        s, q = perm[:n_s], perm[n_s:]
        embeds.append(device_embedding(w, x[s], y[s], 3))
        feats.append(torch.relu(x[q] @ w["1.weight"].T + w["1.bias"]))
        labels.append(y[q])
        owner.append(torch.full((len(q),), k))
    e, h, y_q, user = torch.stack(embeds), torch.cat(feats), torch.cat(labels), torch.cat(owner)
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        W, b = ref(e)
        loss = F.cross_entropy(torch.einsum("nh,nch->nc", h, W[user]) + b[user], y_q)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in ref.state_dict().items():
        assert (ours.state_dict()[n] - p).abs().max() < 1e-6
    assert (ours.gen.weight.abs().max()) > 1e-3  # it trained


# --- Compute, errors -------------------------------------------------------------------------------------------


def test_flop_counts_by_hand():
    assert mlp_forward_flops(60, 32, 10) == 2 * (60 * 32 + 32 * 10) == 4480
    assert mlp_train_flops(60, 32, 10, "all") == 4480 + 2 * 60 * 32 + 4 * 32 * 10
    assert mlp_train_flops(60, 32, 10, "head") == 4480 + 2 * 32 * 10
    assert mlp_train_flops(60, 32, 10, "patch") == 4480 + 2 * 32 * 10 + 4 * 32
    with pytest.raises(ValueError, match="part"):
        mlp_train_flops(60, 32, 10, "body")


@pytest.mark.parametrize("part, trainable", [("all", None), ("head", HEAD)])
def test_flop_counts_equal_torchs_counter(part, trainable):  # the reference profile_model counts with
    from torch.utils.flop_counter import FlopCounterMode

    model = mlp(60, 32, 10, seed=0)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable is None or name in trainable)
    x = torch.rand(1, 60)
    with FlopCounterMode(display=False) as forward:
        model(x)
    assert forward.get_total_flops() == mlp_forward_flops(60, 32, 10)
    with FlopCounterMode(display=False) as step:
        torch.nn.functional.cross_entropy(model(x), torch.tensor([3])).backward()
    assert step.get_total_flops() == mlp_train_flops(60, 32, 10, part)


def test_bad_inputs_name_the_parameter():
    users = unequal_users()
    model = mlp(5, 8, 3, seed=0)
    w = get_params(model)
    for kwargs, name in (({"lam": -1.0}, "lam"), ({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"),
                         ({"batch_size": 2.5}, "batch_size"), ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=name):
            PersonalConfig(**kwargs)
    with pytest.raises(ValueError, match="head"):
        fedper(model, users, FedConfig(rounds=1), head=("9.weight",))
    with pytest.raises(ValueError, match="trainable"):
        sgd_per_user(model, stack(w, 3), users.xs, users.ys, personal_batches(users, PersonalConfig()), 0.1,
                     trainable=("nope",))
    with pytest.raises(ValueError, match="params"):
        personal_accuracy(model, stack(w, 2), users)
    with pytest.raises(ValueError, match="cloud"):
        PatchedMLP(mlp(5, 0, 3, seed=0))
