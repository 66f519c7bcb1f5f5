"""What shared features and gradients leak: reconstruction attacks, two defenses, and how to score them.

Two attacks, both measured by how close the reconstruction x_hat is to the private input x:

* **Feature inversion.** The cloud receives h = f_device(x) (split learning or split inference). With an
  auxiliary set of images and query access to f_device, it trains a decoder g with
  min_g mean ||g(f_device(x_aux)) - x_aux||^2 and applies it to the features it receives: the black-box
  "inverse network" of He, Zhang and Lee (ACSAC 2019). :func:`train_decoder`.
* **Gradient inversion.** A server receives the gradient grad_W L(f_W(x), y) of one small batch (federated
  SGD). Deep Leakage from Gradients (Zhu, Liu and Han, NeurIPS 2019, arXiv:1906.08935) draws a dummy
  (x', y') and minimises the gradient distance D = sum_layers ||grad_W L(f_W(x'), y') - grad_W||^2 over x'
  (and y') with L-BFGS. :func:`dlg`.

Two defenses, each with one noise knob:

* noise on features, h + sigma * N(0, I) (:class:`FeatureNoise`, a layer trained with the model, so the
  cloud part learns to use noisy features);
* clipping the update to L2 norm C and adding N(0, (z C)^2 I) (:func:`clip_and_noise`), the Gaussian
  mechanism of DP-SGD (Abadi et al., CCS 2016) applied to the whole update a device shares.

Leakage is scored by mean squared error and PSNR = 10 log10(max^2 / MSE) per image, against the baseline
of an attacker who knows nothing about x and answers the mean image of its auxiliary data.

Departures, labelled:

* :func:`dlg` infers the label from the sign of the last layer's bias gradient (iDLG, Zhao, Mopuri and
  Bilen, 2020, arXiv:2001.02610) by default, which makes the optimisation over x' alone and far more
  reliable; ``infer_label=False`` optimises a soft dummy label as in DLG. It runs in float64 with a
  strong-Wolfe line search, for runs that reproduce across machines. Batch size 1 only.
* DLG needs a twice-differentiable model (Zhu et al. replace ReLU by sigmoid); so do we.
* :func:`clip_and_noise` perturbs one shared update; it is the mechanism of DP-SGD, not its privacy
  accounting (no epsilon is computed here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from collab_lib._validate import positive_int
from collab_lib.seed import generator


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:  # rejects NaN
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


# --- Scores -----------------------------------------------------------------------------------------------


def mse_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) mean squared error of each reconstruction in ``x_hat`` (N, ...) against ``x`` (N, ...)."""
    if x_hat.shape != x.shape or x.ndim < 2:
        raise ValueError(f"x_hat and x must have the same shape (N, ...), got {tuple(x_hat.shape)}, {tuple(x.shape)}")
    return (x_hat.double() - x.double()).pow(2).flatten(1).mean(dim=1)


def psnr(x_hat: torch.Tensor, x: torch.Tensor, max_value: float = 1.0) -> float:
    """Mean over images of 10 log10(max_value^2 / MSE_i), in dB; higher = a closer reconstruction.

    Each image's MSE is floored at 1e-12 (a perfect reconstruction scores 120 dB + 20 log10 max_value).
    """
    if not max_value > 0:
        raise ValueError(f"max_value must be > 0, got {max_value!r}")
    m = mse_per_image(x_hat, x).clamp_min(1e-12)
    return (10 * torch.log10(max_value**2 / m)).mean().item()


def mean_image_baseline(x_aux: torch.Tensor, n: int) -> torch.Tensor:
    """The attacker who ignores what was shared: the auxiliary set's mean image, repeated ``n`` times."""
    positive_int("n", n)
    return x_aux.mean(dim=0, keepdim=True).expand(n, *x_aux.shape[1:]).clone()


# --- Defenses ---------------------------------------------------------------------------------------------


class FeatureNoise(nn.Module):
    """h -> h + sigma * N(0, I), in training and at inference, from its own seeded generator.

    Put it last in the device's part of an ``nn.Sequential``: the cloud then only ever sees noisy features,
    and training the model with it in place teaches the cloud layers to cope (noise injection, not a
    post-hoc perturbation). ``sigma`` is in the features' own units.
    """

    def __init__(self, sigma: float, seed: int) -> None:
        super().__init__()
        self.sigma = _non_negative("sigma", sigma)
        self.generator = generator(seed)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0:
            return h
        noise = torch.randn(h.shape, generator=self.generator, dtype=h.dtype)
        return h + self.sigma * noise


def clip_and_noise(grads: Sequence[torch.Tensor], clip_norm: float, noise_multiplier: float,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """Scale the update so its global L2 norm is at most ``clip_norm`` (C), then add N(0, (z C)^2) noise to
    every coordinate (z = ``noise_multiplier``). Returns new tensors; ``grads`` is unchanged.

    Clipping: g <- g * min(1, C / ||g||_2), the norm taken over all tensors together (DP-SGD's per-example
    clipping with the whole update as the example).
    """
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
    z = _non_negative("noise_multiplier", noise_multiplier)
    norm = torch.sqrt(sum(g.double().pow(2).sum() for g in grads))
    scale = min(1.0, clip_norm / norm.item()) if norm > 0 else 1.0
    return [g * scale + z * clip_norm * torch.randn(g.shape, generator=generator, dtype=g.dtype) for g in grads]


# --- Feature inversion ------------------------------------------------------------------------------------


def train_decoder(features: torch.Tensor, images: torch.Tensor, hidden: int, epochs: int, lr: float,
                  seed: int, batch_size: int = 64) -> nn.Sequential:
    """The attacker's inverse network g: (N, d) features -> images shaped like ``images`` ``(N, *s)``, in [0, 1].

    An MLP d -> hidden -> hidden -> prod(s) with ReLU and a final sigmoid (pixels lie in [0, 1]), trained
    with Adam on the mean squared error between g(features) and images. Initialisation and batch order
    come from ``seed``. ``features`` are whatever the attacker observed for its auxiliary images,
    flattened per sample; with a noise defense they are noisy too (an attacker who adapts to the defense).
    """
    if len(features) == 0 or len(features) != len(images):
        raise ValueError(f"features and images must be non-empty and of equal length, got {len(features)}, {len(images)}")
    for name, v in (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
        positive_int(name, v)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    h = features.flatten(1).detach()                                         # (N, d)
    shape = images.shape[1:]
    g = generator(seed)
    torch.manual_seed(seed)  # nn.Linear draws its initial weights from the global generator
    decoder = nn.Sequential(
        nn.Linear(h.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, int(torch.tensor(shape).prod())), nn.Sigmoid(), nn.Unflatten(1, shape),
    ).to(h.dtype)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(h), generator=g)
        for s in range(0, len(h), batch_size):
            idx = order[s:s + batch_size]
            loss = F.mse_loss(decoder(h[idx]), images[idx].to(h.dtype))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return decoder.eval()


# --- Gradient inversion -----------------------------------------------------------------------------------


def gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The update a device would share: grad of mean cross-entropy w.r.t. every parameter (``y``: (B,) ids)."""
    loss = F.cross_entropy(model(x), y)
    return [g.detach() for g in torch.autograd.grad(loss, list(model.parameters()))]


def infer_label(last_bias_grad: torch.Tensor) -> int:
    """iDLG: for one sample, d(cross-entropy)/d(bias) = softmax(z) - onehot(y), negative only at y."""
    if last_bias_grad.ndim != 1:
        raise ValueError(f"last_bias_grad must be 1-D (C,), got shape {tuple(last_bias_grad.shape)}")
    return int(last_bias_grad.argmin())


def analytic_input(weight_grad: torch.Tensor, bias_grad: torch.Tensor) -> torch.Tensor:
    """The input of a first linear layer y = W x + b from its gradients, for one sample: dL/dW = delta x^T and
    dL/db = delta, so x = (dL/dW)[i] / (dL/db)[i] for any i; we combine all rows, weighted by delta_i^2
    (least squares). No optimisation: shared gradients of a batch of one *are* the input."""
    if weight_grad.ndim != 2 or bias_grad.shape != weight_grad.shape[:1]:
        raise ValueError(f"weight_grad must be (m, d) and bias_grad (m,), got {tuple(weight_grad.shape)}, "
                         f"{tuple(bias_grad.shape)}")
    denom = bias_grad.pow(2).sum()
    if denom == 0:
        raise ValueError("bias_grad is all zeros: the input cannot be recovered")
    return (bias_grad[:, None] * weight_grad).sum(dim=0) / denom   # (d,)


@dataclass(frozen=True)
class DLGResult:
    """``x``: ``(1, *input_shape)`` reconstruction; ``label``: the label used or found; ``distance``: final
    gradient distance D."""

    x: torch.Tensor
    label: int
    distance: float


def dlg(model: nn.Module, target_grads: Sequence[torch.Tensor], input_shape: Sequence[int], num_classes: int,
        iterations: int, seed: int, infer: bool = True) -> DLGResult:
    """Deep Leakage from Gradients for one sample: find x' whose gradient matches ``target_grads``.

    ``model`` and ``target_grads`` are used in float64 (cast copies). The dummy x' starts from
    N(0.5, 0.1^2) noise drawn from ``seed``. With ``infer=True`` the label comes from :func:`infer_label`
    on the last parameter's gradient (the last layer's bias); otherwise soft dummy logits are optimised
    jointly, as in DLG. L-BFGS runs at most ``iterations`` iterations (one ``step`` call).
    """
    positive_int("iterations", iterations)
    positive_int("num_classes", num_classes)
    params = list(model.parameters())
    if len(target_grads) != len(params):
        raise ValueError(f"target_grads has {len(target_grads)} tensors for {len(params)} parameters")
    m = _float64_copy(model)
    target = [t.double() for t in target_grads]
    g = generator(seed)
    x_dummy = (0.5 + 0.1 * torch.randn(1, *input_shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    if infer:
        label = infer_label(target[-1])
        variables = [x_dummy]
    else:
        y_dummy = torch.randn(1, num_classes, generator=g, dtype=torch.float64).requires_grad_(True)
        variables = [x_dummy, y_dummy]

    def distance() -> torch.Tensor:
        logits = m(x_dummy)
        if infer:
            loss = F.cross_entropy(logits, torch.tensor([label]))
        else:
            loss = torch.sum(-F.softmax(y_dummy, dim=-1) * F.log_softmax(logits, dim=-1))
        dummy = torch.autograd.grad(loss, list(m.parameters()), create_graph=True)
        return sum(((d - t) ** 2).sum() for d, t in zip(dummy, target))

    opt = torch.optim.LBFGS(variables, lr=1, max_iter=iterations, history_size=100,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        d = distance()
        d.backward()
        return d

    opt.step(closure)
    final = distance().item()
    if not infer:
        label = int(y_dummy.argmax())
    return DLGResult(x=x_dummy.detach(), label=label, distance=final)


def _float64_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).double()
