"""Local training: what each client does between receiving the global model and answering.

Two engines compute the same local updates, SGD on the client's local objective
(:class:`~collab_lib.parameter_based.strategy.LocalObjective`) F_k(w) + (μ/2) ||w - w_t||^2 from w = w_t
over the batches the round gives it:

* :func:`local_update` trains one client with ordinary autograd, a readable reference, and is also what
  the Flower client calls (:mod:`collab_lib.parameter_based.flower_app`);
* :func:`local_update_batched` trains many clients at once: their parameters are stacked along a leading
  client axis, ``torch.func.vmap`` over ``functional_call`` runs every client's forward pass at once, and
  one backward pass gives all of their gradients (the gradient of the sum of the clients' losses with
  respect to client k's parameters is client k's own gradient). For an MLP (:func:`linear_layers`) the
  gradients are written out instead (:func:`stacked_gradients`: batched matrix products, no autograd),
  which removes most of the per-step overhead of these small models. Clients have different data sizes,
  so batches are padded and masked; ``tests/test_fedavg.py`` checks the engines and the written-out
  gradients against per-client autograd.

:func:`train_clients` runs either engine on the clients a round plan names and returns their
:class:`~collab_lib.parameter_based.strategy.ClientResults`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from collab_lib.datasets.users import UserDatasets
from collab_lib.parameter_based.params import Params, get_params, set_params
from collab_lib.parameter_based.strategy import ClientResults, LocalObjective

ENGINES = ("batched", "loop")


def local_update(model: nn.Module, global_params: Params, x: torch.Tensor, y: torch.Tensor,
                 batches: list[np.ndarray], lr: float, mu: float) -> Params:
    """Client k's update, the readable reference: SGD on F_k(w) + (μ/2)||w - w_t||^2 from w = w_t.

    ``model`` is used as a template (its weights are overwritten). Returns the new parameters.
    """
    set_params(model, global_params)
    for idx in batches:
        idx_t = torch.from_numpy(np.asarray(idx))
        loss = F.cross_entropy(model(x[idx_t]), y[idx_t])
        if mu > 0:
            loss = loss + mu / 2 * sum(((p - global_params[n]) ** 2).sum() for n, p in model.named_parameters())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return get_params(model)


def padded_batches(
    xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], batches: Sequence[Sequence[Sequence[int]]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every client's local steps as one padded tensor, for running all clients at once with ``vmap``.

    Client i holds ``xs[i]`` (n_i, ...) and ``ys[i]`` (n_i,); ``batches[i][s]`` are the row indices of its
    step s. Returns ``xb`` (K, S, B, ...), ``yb`` (K, S, B) and ``mask`` (K, S, B), 1 for a real sample and
    0 for padding, with S the most steps and B the largest batch of any client.
    """
    K, S = len(xs), max(len(b) for b in batches)
    B = max((len(idx) for b in batches for idx in b), default=1)
    x_all, y_all = torch.cat(list(xs)), torch.cat(list(ys))                 # (N, ...), (N,) all clients
    offsets = np.cumsum([0] + [len(y) for y in ys[:-1]])                    # client i starts at offsets[i]
    idx = np.zeros((K, S, B), dtype=np.int64)                               # (K, S, B) rows of x_all
    mask = np.zeros((K, S, B), dtype=np.float32)                            # (K, S, B) 1 = real sample
    for i, b in enumerate(batches):
        for s, ids in enumerate(b):
            idx[i, s, : len(ids)] = offsets[i] + np.asarray(ids)
            mask[i, s, : len(ids)] = 1.0
    idx_t = torch.from_numpy(idx)
    return x_all[idx_t], y_all[idx_t], torch.from_numpy(mask).to(x_all.dtype)


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The (name, layer) pairs of ``model`` if it is an ``nn.Sequential`` of an optional leading ``nn.Flatten``
    and then only ``nn.Linear`` and ``nn.ReLU`` layers (what :func:`~collab_lib.models.mlp` builds), else None."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    layers = list(model.named_children())
    first = layers[0][1]
    flatten = isinstance(first, nn.Flatten) and (first.start_dim, first.end_dim) == (1, -1)
    body = layers[1:] if flatten else layers
    if not body or not all(isinstance(m, (nn.Linear, nn.ReLU)) for _, m in body):
        return None
    return layers


def stacked_gradients(layers: Sequence[tuple[str, nn.Module]], params: Params, x: torch.Tensor, y: torch.Tensor,
                      mask: torch.Tensor) -> Params:
    """Every client's gradient of its mean cross-entropy over its real samples, for a model of
    :func:`linear_layers`, with the backward pass written out (no autograd, no vmap).

    ``params[name]`` is ``(K, *shape)`` (names as ``model.named_parameters()`` gives them: ``"1.weight"``),
    ``x`` is ``(K, B, ...)``, ``y`` and ``mask`` ``(K, B)``. Per client, with the mean over its m real
    samples, the gradient of the loss with respect to the logits is (softmax - onehot(y)) * mask / m;
    a Linear layer z = h W^T + b passes back g -> g W and contributes g^T h to dW and the sum of g over the
    batch to db; a ReLU passes g where its input was > 0. Same numbers as autograd through the model, up to
    float rounding (``tests/test_fedavg.py``), at a fraction of the per-step overhead for these small models.
    """
    K, B = y.shape
    h = x.reshape(K, B, -1) if isinstance(layers[0][1], nn.Flatten) else x           # (K, B, D)
    saved = []                                                                       # each layer's input
    for name, layer in layers:
        if isinstance(layer, nn.Flatten):
            continue
        saved.append((name, layer, h))
        if isinstance(layer, nn.Linear):
            W, b = params[f"{name}.weight"], params.get(f"{name}.bias")             # (K, out, in), (K, out)
            h = torch.bmm(h, W.transpose(1, 2)) if b is None else torch.baddbmm(b[:, None], h, W.transpose(1, 2))
        else:
            h = h.clamp_min(0)                                                       # ReLU
    g = torch.softmax(h, dim=-1)                                                     # (K, B, C)
    g.scatter_add_(-1, y[..., None], -torch.ones_like(g[..., :1]))                   # softmax - onehot(y)
    g = g * (mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0))[..., None]         # mean over real samples
    grads: Params = {}
    first_linear = next(k for k, (_, layer, _) in enumerate(saved) if isinstance(layer, nn.Linear))
    for k in range(len(saved) - 1, -1, -1):
        name, layer, inp = saved[k]
        if isinstance(layer, nn.Linear):
            grads[f"{name}.weight"] = torch.bmm(g.transpose(1, 2), inp)              # (K, out, in)
            if f"{name}.bias" in params:
                grads[f"{name}.bias"] = g.sum(dim=1)                                 # (K, out)
            if k > first_linear:
                g = torch.bmm(g, params[f"{name}.weight"])                           # (K, B, in)
        else:
            g = g * (inp > 0)                                                        # ReLU
    return grads


def local_update_batched(model: nn.Module, global_params: Params, xs: list[torch.Tensor], ys: list[torch.Tensor],
                         batches: list[list[np.ndarray]], lr: float, mu: float) -> Params:
    """All clients' updates at once; same result as :func:`local_update` per client, up to float rounding.

    Client i holds ``xs[i]`` (n_i, ...) and ``ys[i]`` (n_i,) and runs ``batches[i]``. Returns stacked
    parameters, ``out[name]`` of shape ``(K, *shape)``.
    """
    K, S = len(xs), max(len(b) for b in batches)
    xb, yb, mask_t = padded_batches(xs, ys, batches)                        # (K, S, B, ...), (K, S, B) x2
    layers = linear_layers(model)

    def loss(p: Params, xk: torch.Tensor, yk: torch.Tensor, mk: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(functional_call(model, p, (xk,)), yk, reduction="none")  # (B,)
        value = (ce * mk).sum() / mk.sum().clamp(min=1.0)                   # mean over real samples
        if mu > 0:
            value = value + mu / 2 * sum(((p[n] - global_params[n]) ** 2).sum() for n in p)
        return value

    # Clients are independent, so the gradient of the *sum* of their losses with respect to the stacked
    # parameters is every client's own gradient; vmap runs the forward pass for all clients at once. (Same
    # result as vmap(grad(loss)), about a quarter faster on a CPU.) An MLP skips autograd altogether
    # (stacked_gradients), several times faster again for the small models of the labs.
    losses = vmap(loss)
    params = {n: w.expand(K, *w.shape).clone() for n, w in global_params.items()}  # (K, *shape)
    for s in range(S):
        if layers is not None:
            g = stacked_gradients(layers, params, xb[:, s], yb[:, s], mask_t[:, s])
            if mu > 0:
                g = {n: g[n] + mu * (p - global_params[n]) for n, p in params.items()}  # ∇ (μ/2)||w - w_t||^2
            g = [g[n] for n in params]
        else:
            leaves = {n: p.requires_grad_(True) for n, p in params.items()}
            g = torch.autograd.grad(losses(leaves, xb[:, s], yb[:, s], mask_t[:, s]).sum(), list(leaves.values()))
        active = (mask_t[:, s].sum(dim=1) > 0).to(mask_t.dtype)             # (K,) clients still training
        with torch.no_grad():
            params = {n: p.detach() - lr * active.view(-1, *[1] * (p.ndim - 1)) * g_n
                      for (n, p), g_n in zip(params.items(), g)}
    return params


def train_clients(model: nn.Module, sent: Params, train: UserDatasets, answered: np.ndarray,
                  batches: Sequence[list[np.ndarray]], lr: float, objective: LocalObjective,
                  engine: str = "batched") -> ClientResults:
    """Every client in ``answered`` trains from ``sent`` on its ``batches`` (one list per client, in the same
    order) with step size ``lr``; returns their models stacked, with their sample counts n_k as weights."""
    ids = [int(k) for k in answered]
    if engine == "batched":
        stacked = local_update_batched(model, sent, [train.xs[k] for k in ids], [train.ys[k] for k in ids],
                                       list(batches), lr, objective.mu)
    elif engine == "loop":
        updates = [local_update(model, sent, train.xs[k], train.ys[k], b, lr, objective.mu)
                   for k, b in zip(ids, batches)]
        stacked = {n: torch.stack([u[n] for u in updates]) for n in sent}
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    sizes = torch.tensor([len(train.ys[k]) for k in ids], dtype=torch.float64)
    return ClientResults(client_ids=np.asarray(ids), num_examples=sizes, params=stacked)
