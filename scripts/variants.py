"""Variants with new numbers of the course guide's graded exercises, their answers computed by collab_lib.

Each variant is an input set (``INPUTS``: another device, link, model, data...) and a function that computes
its answers with the library and words the question. ``render()`` writes the instructor's page
``book/appendix/exercise_variants.md``: every variant as an ``{exercise}``, its answers in a ``{solution}``
dropdown (the student edition strips ``{solution}`` blocks). Every answer is bold, in the order the question
asks; ``tests/test_exercise_variants.py`` recomputes each one by hand and compares it with the page.

Run: python scripts/variants.py [--check]   (``--check``: fail if the page is not what the script writes)
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "appendix" / "exercise_variants.md"

#: label -> (exercise it varies, inputs). The tests read the inputs from here and nothing else.
INPUTS: dict[str, tuple[str, dict]] = {
    "var-hw-ridge-1": ("ex-hw-ridge", dict(small="raspberry-pi-5", small_precisions=("fp32", "fp16"),
                                           weight_bytes=2, large="a100-sxm", large_precision="bf16")),
    "var-hw-ridge-2": ("ex-hw-ridge", dict(small="snapdragon-8-gen-3", small_precisions=("int8",),
                                           weight_bytes=1, large="l4", large_precision="bf16")),
    "var-hw-kv-1": ("ex-hw-kv", dict(model="llama-3.2-3b", context_len=8192, device="snapdragon-8-gen-3")),
    "var-hw-kv-2": ("ex-hw-kv", dict(model="llama-3.2-1b", context_len=32768, device="snapdragon-8-gen-3")),
    "var-sys-cut-1": ("ex-sys-cut", dict(before=("conv5", 10), after=("pool5", 12), link="3g", value_bytes=4)),
    "var-sys-cut-2": ("ex-sys-cut", dict(before=("conv1", 1), after=("pool1", 2), link="lte", value_bytes=2)),
    "var-sys-spec-1": ("ex-sys-spec", dict(alpha=0.7, t_t_ms=30.0, c=0.1, rtt_ms=24.0, gammas=(1, 8))),
    "var-sys-spec-2": ("ex-sys-spec", dict(alpha=0.9, t_t_ms=20.0, c=0.2, rtt_ms=60.0, gammas=(1, 8))),
    "var-data-t2-1": ("ex-data-t2", dict(z_t=(2.0, 0.0, -2.0), z_s=(1.0, 0.0, -1.0), temperatures=(5.0, 20.0))),
    "var-data-kcenter-1": ("ex-data-kcenter", dict(positions=(0, 2, 3, 7, 8, 15), covered=3,
                                                   p_class1=(0.5, 0.6, 0.95, 0.7, 0.55, 0.99), budget=2)),
    "var-feat-crossover-1": ("ex-feat-crossover", dict(params=3_500_000, q=128, value_bytes=2, label_bytes=4,
                                                       tokens_per_day=5000, tokens_per_step=64, rtt_ms=80)),
    "var-feat-crossover-2": ("ex-feat-crossover", dict(params=600_000, q=256, value_bytes=4, label_bytes=4,
                                                       tokens_per_day=3000, tokens_per_step=16, rtt_ms=30)),
    "var-feat-grad-equal-1": ("ex-feat-grad-equal", dict(x=0.3, y=1.0, w_d=0.7, w_c=1.3)),
    "var-param-prox-1": ("ex-param-prox", dict(c=(-2.0, 4.0), a=(3.0, 1.0), n=(1, 1), mus=(1.0, 4.0))),
    "var-param-prox-2": ("ex-param-prox", dict(c=(0.0, 2.0, 6.0), a=(1.0, 2.0, 4.0), n=(100, 50, 50), mus=(2.0,))),
    "var-data-gauc-1": ("ex-data-gauc", dict(users={"A": ((0, 1, 0, 1), (0.2, 0.7, 0.65, 0.6)),
                                                    "B": ((1, 0, 0), (0.4, 0.3, 0.45)),
                                                    "C": ((0, 0, 0), (0.9, 0.1, 0.5)),
                                                    "D": ((1,), (0.35,))})),
    "var-app-route-1": ("ex-app-route", dict(phone=0.70, cloud=0.85, private=0.30, online=0.80)),
    "var-app-route-2": ("ex-app-route", dict(phone=0.55, cloud=0.90, private=0.10, online=0.95)),
    "var-open-budget-1": ("ex-open-budget", dict(before=(0.4, 1.0), after=(0.2, 1.0), b=0.25, eta=0.02, tau=0.6)),
}


def bold(value: float | str, fmt: str = "") -> str:
    """An answer as the page states it: bold, so that the test finds it."""
    return f"**{value:{fmt}}**" if fmt else f"**{value}**"


def _set(values) -> str:
    return "{" + ", ".join(str(v) for v in sorted(values)) + "}"


# --- chapter 2 ----------------------------------------------------------------------------------------------

def hw_ridge(small, small_precisions, weight_bytes, large, large_precision):
    """Ridge points peak / bandwidth, and the first batch b at which a layer of ``weight_bytes``-byte weights
    (2 b FLOP per weight, AI = 2 b / weight_bytes) takes its compute time rather than its memory time."""
    from collab_lib.hardware import get_device, layer_time_s

    weights = 4096 * 4096  # any matrix large next to b: the input vectors' bytes are left out, as in the text

    def first_compute_bound(dev, precision):
        b = 1
        while layer_time_s(2 * b * weights, 0, dev, precision) < layer_time_s(0, weights * weight_bytes, dev, precision):
            b += 1
        return b

    sd, ld = get_device(small), get_device(large)
    rows = [(sd, p) for p in small_precisions] + [(ld, large_precision)]
    answers = []
    for dev, p in rows:
        answers.append(f"{dev.name} at {p}: ridge {bold(dev.peak(p) / dev.mem_bw_bytes_per_s, '.2f')} FLOP/byte")
    for dev, p in rows[-2:]:
        answers.append(f"{dev.name} at {p}: compute-bound from b = {bold(first_compute_bound(dev, p))}")
    ratio = (ld.peak(large_precision) / ld.mem_bw_bytes_per_s) / (sd.peak(rows[-2][1]) / sd.mem_bw_bytes_per_s)
    answers.append(f"the cloud GPU's ridge over the small device's (at {rows[-2][1]}): {bold(ratio, '.1f')} times")
    per_byte = "$b$ FLOP per weight byte" if weight_bytes == 2 else "$2b$ operations per weight byte"
    q = (f"Compute the ridge points of the {sd.name} at {' and '.join(small_precisions)} and of the {ld.name} at "
         f"{large_precision}, from the catalog figures (`get_device`). A layer with {8 * weight_bytes}-bit weights "
         f"multiplies a large weight matrix by $b$ input vectors at once ({per_byte}). From which $b$ on is it "
         f"compute-bound on the {sd.name} at {rows[-2][1]} and on the {ld.name}, and how many times higher is "
         "the GPU's ridge point?")
    return q, answers


def hw_kv(model, context_len, device):
    from collab_lib.hardware import get_device
    from collab_lib.hardware.llm import get_format, get_model, predict_decode

    m, dev = get_model(model), get_device(device)
    kv = m.kv_cache_bytes(context_len)
    answers = [f"(a) KV cache: {bold(kv, ',.0f')} bytes = {bold(kv / 2**20, ',.0f')} MiB"]
    for key, name in (("bf16", "bf16 weights"), ("spinquant-4bit", "4-bit weights")):
        fmt = get_format(key)
        short, full = predict_decode(m, fmt, dev, "bf16"), predict_decode(m, fmt, dev, "bf16", context_len)
        answers.append(f"(b) {name}: {bold(full, '.1f')} tokens/s instead of {bold(short, '.1f')}, "
                       f"{bold(100 * (1 - full / short), '.0f')}% slower")
    q = (f"(a) Compute the bf16 KV cache of {m.name} at {context_len:,} tokens. (b) How much does reading it "
         f"slow decoding on the {dev.name}, for bf16 weights and for the 4-bit format (the roofline at bf16)? "
         f'(c) Check with `get_model("{model}").kv_cache_bytes({context_len})` and '
         f"`predict_decode(..., context_len={context_len})`.")
    return q, answers


# --- chapter 3 ----------------------------------------------------------------------------------------------

def alexnet_features() -> nn.Sequential:
    """AlexNet's convolutional part as torchvision defines it (Krizhevsky et al., 2012, one-tower version)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),      # 1 conv1, 2 pool1
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),               # 4 conv2, 5 pool2
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),              # 10 conv5, 12 pool5
    )


def sys_cut(before, after, link, value_bytes):
    """Upload saved by cutting after a pooling layer instead of before it, from the layers' profiles."""
    from collab_lib.hardware import get_link, profile_model, transfer_time_s

    torch.manual_seed(0)
    layers = profile_model(alexnet_features(), torch.zeros(1, 3, 224, 224))
    # profile_model counts bytes at float32 (4 per value); the values are what the exercise needs
    n_before = layers[before[1] - 1].output_bytes // 4
    n_after = layers[after[1]].output_bytes // 4
    lk = get_link(link)
    saved = (n_before - n_after) * value_bytes
    dt = transfer_time_s(saved, lk.uplink_bits_per_s)
    answers = [f"{before[0]} outputs {bold(n_before, ',')} values, {after[0]} {bold(n_after, ',')}",
               f"the upload shrinks by {bold(saved, ',')} bytes, {bold(dt * 1e3, '.0f')} ms on {lk.name}"]
    precision = {4: "fp32", 2: "fp16"}[value_bytes]
    q = (f"Apply (b) of {{ref}}`ex-sys-cut` to AlexNet's {after[0]} (224 × 224 input) on the catalog's "
         f"{lk.name} uplink ({lk.uplink_bits_per_s / 1e6:g} Mbit/s) with {precision} activations: how many values "
         f"do {before[0]} (with its ReLU) and {after[0]} output, how many bytes does the cut after {after[0]} save, "
         "and how long would they take to send?")
    return q, answers


def sys_spec(alpha, t_t_ms, c, rtt_ms, gammas):
    from collab_lib.system.speculative import SpeculativeLatency, speedup

    rho = rtt_ms / t_t_ms
    never = alpha / (1 - alpha) * t_t_ms
    answers = [f"(c) it never pays from a round trip of {bold(never, '.0f')} ms on"]
    for g in gammas:
        s = speedup(alpha, g, c, rho)
        answers.append(f"γ = {g}: S = {bold(s, '.3f')}, {bold('yes' if s > 1 else 'no')}")
    lat = SpeculativeLatency(draft_step_s=c * t_t_ms / 1e3, target_step_s=t_t_ms / 1e3, rtt_s=rtt_ms / 1e3)
    best = lat.best_gamma(alpha)
    answers.append(f"the best draft length is γ = {bold(best)}, S = {bold(speedup(alpha, best, c, rho), '.3f')}")
    q = (f"With $\\alpha = {alpha:g}$ and $t_t = {t_t_ms:g}$ ms, from which round trip on does device–cloud "
         f"speculative decoding never pay? With $c = {c:g}$ and a {rtt_ms:g} ms round trip, does "
         + " pay? Does ".join(f"$\\gamma = {g}$" for g in gammas)
         + "? Which $\\gamma$ is best (`SpeculativeLatency.best_gamma`), and what speed-up does it give?")
    return q, answers


# --- chapter 4 ----------------------------------------------------------------------------------------------

def data_t2(z_t, z_s, temperatures):
    """The soft term's gradient by autograd through ``soft_target_loss`` (which carries the factor T^2)."""
    from collab_lib.data_based.distill import soft_target_loss

    C = len(z_t)
    answers = []
    for T in temperatures:
        zs = torch.tensor([z_s], dtype=torch.float64, requires_grad=True)
        soft_target_loss(zs, torch.tensor([z_t], dtype=torch.float64), T).backward()
        scaled = zs.grad[0, 0].item()  # T^2 dKL/dz_{s,1}
        approx = (z_s[0] - z_t[0]) / (C * T * T)
        answers.append(f"T = {T:g}: ∂KL/∂z_s,1 = {bold(scaled / T**2, '.3e')} (approximation "
                       f"{bold(approx, '.3e')}); with the factor T², {bold(scaled, '.4f')}")
    answers.append(f"the limit with T² is (z_s,1 − z_t,1)/C = {bold((z_s[0] - z_t[0]) / C, '.4f')}")
    q = (f"A teacher's logits are $z_t = ({', '.join(f'{v:g}' for v in z_t)})$ and the student's "
         f"$z_s = ({', '.join(f'{v:g}' for v in z_s)})$ (both of zero mean, $C = {C}$). For "
         + " and ".join(f"$T = {T:g}$" for T in temperatures)
         + ", compute $\\partial\\,\\mathrm{KL}(p \\,\\|\\, q) / \\partial z_{s,1}$ exactly, its high-temperature "
         "approximation $(z_{s,1} - z_{t,1})/(CT^2)$, and the gradient with the factor $T^2$; what does the last "
         "tend to? Check with `soft_target_loss` and autograd.")
    return q, answers


def data_kcenter(positions, covered, p_class1, budget):
    from collab_lib.data_based.upload import select_diverse, select_uncertain

    x = torch.tensor(positions, dtype=torch.float64)[:, None]
    probs = torch.tensor([[1 - p, p] for p in p_class1], dtype=torch.float64)
    diverse = [positions[i] for i in select_diverse(x, budget, torch.tensor([[float(covered)]]))]
    uncertain = [positions[i] for i in select_uncertain(probs, budget)]

    def radius(chosen):
        centres = torch.tensor([covered, *chosen], dtype=torch.float64)[:, None]
        return torch.cdist(x, centres).min(dim=1).values.max().item()

    answers = [f"(a) k-center uploads {bold(_set(diverse))}", f"(b) uncertainty uploads {bold(_set(uncertain))}",
               f"(c) largest distance to a covered point: {bold(radius(diverse), 'g')} with k-center, "
               f"{bold(radius(uncertain), 'g')} with uncertainty"]
    q = (f"{len(positions)} candidates on a line at positions {', '.join(map(str, positions))}; the cloud already "
         f"has a sample at {covered}. (a) Which {budget} does greedy k-center upload? (b) The cloud model gives "
         f"class 1 the probabilities {', '.join(f'{p:g}' for p in p_class1)} (two classes). Which {budget} does "
         "uncertainty sampling (highest entropy) upload? (c) Which choice covers the candidates better, measured "
         "by the largest distance from a candidate to its nearest covered point?")
    return q, answers


# --- chapter 5 ----------------------------------------------------------------------------------------------

def feat_crossover(params, q, value_bytes, label_bytes, tokens_per_day, tokens_per_step, rtt_ms):
    from collab_lib.feature_based.split_learning import fedavg_bytes_per_round, split_bytes_per_step

    per_token = split_bytes_per_step(q, 1, value_bytes, label_bytes)
    fedavg = fedavg_bytes_per_round(params, 4)
    split = tokens_per_day * per_token
    steps = math.ceil(tokens_per_day / tokens_per_step)
    cheaper = "split learning" if split < fedavg else "federated averaging"
    answers = [f"(a) below {bold(fedavg / per_token, ',.0f')} tokens ({per_token} bytes per token)",
               f"(b) split learning {bold(split / 1e6, '.3f')} MB, federated averaging {bold(fedavg / 1e6, '.1f')} "
               f"MB: {bold(cheaper)} moves {bold(max(split, fedavg) / min(split, fedavg), '.1f')} times fewer bytes",
               f"(c) {bold(steps)} steps, {bold(steps * rtt_ms / 1e3, '.2f')} s of round trips"]
    fp = {2: "float16", 4: "float32"}[value_bytes]
    qq = (f"A keyboard model has $P = {params / 1e6:g}$ million parameters; split learning would cut it after a "
          f"layer with $q_k = {q}$ values per token, in {fp} ($b = {value_bytes}$), while federated averaging sends "
          f"float32. Labels are token ids of {label_bytes} bytes. (a) Per device and epoch, below how many tokens is "
          f"split learning cheaper in bytes? (b) A user types {tokens_per_day:,} tokens a day. Which scheme moves "
          f"fewer bytes for a daily epoch, and by how much? (c) With {tokens_per_step} tokens per step and a "
          f"{rtt_ms} ms round trip, how long does split learning wait per daily epoch?")
    return qq, answers


def feat_grad_equal(x, y, w_d, w_c):
    """One step on h = w_d x, ŷ = w_c h, L = (ŷ - y)^2 / 2: split_step against the unsplit model, with h sent
    exactly and in float16 (the cloud computes at the rounded h, the device gets a rounded dL/dh)."""
    from collab_lib.feature_based.split_learning import split_step

    class Float16Link(nn.Module):
        def forward(self, h):
            return h.half().double()  # what arrives; backward, dL/dh is rounded to float16 on its way down

    def parties(link: bool):
        device, cloud = nn.Linear(1, 1, bias=False).double(), nn.Linear(1, 1, bias=False).double()
        with torch.no_grad():
            device.weight.fill_(w_d)
            cloud.weight.fill_(w_c)
        return device, (nn.Sequential(Float16Link(), cloud) if link else cloud), cloud

    def loss_fn(out, target):
        return 0.5 * ((out.squeeze(-1) - target) ** 2).sum()

    xt, yt = torch.tensor([[x]], dtype=torch.float64), torch.tensor([y], dtype=torch.float64)
    grads = {}
    for name, link in (("exact", False), ("float16", True)):
        device, cloud_side, cloud = parties(link)
        split_step(device, cloud_side, xt, yt, loss_fn)
        grads[name] = (device.weight.grad.item(), cloud.weight.grad.item())
    device, _, cloud = parties(False)
    loss_fn(cloud(device(xt)), yt).backward()  # the unsplit model
    central = (device.weight.grad.item(), cloud.weight.grad.item())
    h16 = float(torch.tensor(w_d * x, dtype=torch.float64).half())
    answers = [f"h = {bold(w_d * x, '.4f')}; split learning: ∂L/∂w_d = {bold(grads['exact'][0], '.6f')}, "
               f"∂L/∂w_c = {bold(grads['exact'][1], '.6f')}; the unsplit model's differ by "
               f"{bold(max(abs(a - b) for a, b in zip(grads['exact'], central)), 'g')}",
               f"in float16 the cloud sees h = {bold(h16, '.10f')}; ∂L/∂w_d = {bold(grads['float16'][0], '.6f')}, "
               f"∂L/∂w_c = {bold(grads['float16'][1], '.6f')}"]
    q = (f"A single device holds $h = w_d x$, the cloud $\\hat y = w_c h$, and the loss is "
         f"$L = \\frac12(\\hat y - y)^2$, with $x = {x:g}$, $y = {y:g}$, $w_d = {w_d:g}$, $w_c = {w_c:g}$. Compute "
         "one step's gradients of both weights as split learning exchanges them ($h$ up, $\\partial L/\\partial h$ "
         "down) and compare them with the unsplit model's. Then send $h$ and $\\partial L/\\partial h$ in float16: "
         "which $h$ does the cloud see, and what gradients result? (Check with `split_step`, putting a cast to "
         "float16 and back in front of the cloud's layer: its backward pass rounds $\\partial L/\\partial h$.)")
    return q, answers


# --- chapter 6 ----------------------------------------------------------------------------------------------

def param_prox(c, a, n, mus):
    """Exact local FedProx solutions (the solution of part (a)) averaged by FedAvg's weighted_average."""
    from collab_lib.parameter_based.aggregate import weighted_average

    c_t, a_t, n_t = (torch.tensor(v, dtype=torch.float64) for v in (c, a, n))

    def round_(w, mu):
        local = (a_t * c_t + mu * w) / (a_t + mu)  # (K,) each client's minimiser of h_k
        return weighted_average({"w": local}, n_t)["w"].item()

    def fixed_point(mu, rounds=2000):
        w = 0.0
        for _ in range(rounds):
            w = round_(w, mu)
        return w

    optimum = float((n_t * a_t * c_t).sum() / (n_t * a_t).sum())
    answers = [f"the minimiser of f: {bold(optimum, '.4f')}",
               f"μ = 0: one round gives {bold(round_(0.0, 0.0), '.4f')}, which is also the fixed point"]
    for mu in mus:
        answers.append(f"μ = {mu:g}: one round gives {bold(round_(0.0, mu), '.4f')}, the fixed point is "
                       f"{bold(fixed_point(mu), '.4f')}")
    clients = ", ".join(f"$c_{k + 1} = {ck:g}$, $a_{k + 1} = {ak:g}$, $n_{k + 1} = {nk}$"
                        for k, (ck, ak, nk) in enumerate(zip(c, a, n)))
    q = (f"Clients with $F_k(w) = \\frac{{a_k}}{{2}}(w - c_k)^2$ and $n_k$ samples each: {clients}; the global "
         "objective is $f = \\sum_k n_k F_k / \\sum_k n_k$ and the server averages with weights $n_k$. With exact "
         "local solutions, what does one FedProx round give from $w_t = 0$ for $\\mu = 0$ and "
         + " and ".join(f"$\\mu = {mu:g}$" for mu in mus)
         + ", where does each iteration settle, and what is the minimiser of $f$?")
    return q, answers


# --- chapter 7 ----------------------------------------------------------------------------------------------

def data_gauc(users):
    from collab_lib.metrics import auc, gauc

    ids = [u for u, (ys, _) in users.items() for _ in ys]
    y = [v for ys, _ in users.values() for v in ys]
    s = [v for _, ss in users.values() for v in ss]
    answers = [f"(a) global AUC {bold(auc(y, s), '.4f')}"]
    for u, (ys, ss) in users.items():
        if 0 < sum(ys) < len(ys):
            answers.append(f"(b) AUC of {u}: {bold(auc(ys, ss), '.4f')}")
    answers += [f"(c) GAUC, impression weights: {bold(gauc(ids, y, s, 'impressions'), '.4f')}",
                f"(d) GAUC, click weights: {bold(gauc(ids, y, s, 'clicks'), '.4f')}"]
    rows = "\n".join(f"| {u} | {', '.join(map(str, ys))} | {', '.join(f'{v:g}' for v in ss)} |"
                     for u, (ys, ss) in users.items())
    q = ("Four users see the impressions below (1 = click).\n\n| User | Clicks | Scores |\n| --- | --- | --- |\n"
         f"{rows}\n\nCompute (a) the global AUC, (b) each user's AUC where it is defined, (c) GAUC with impression "
         "weights and (d) GAUC with click weights. Which users drop out of GAUC, and why? Check with "
         "`collab_lib.metrics.auc` and `collab_lib.metrics.gauc`.")
    return q, answers


# --- chapter 8 and 9 ----------------------------------------------------------------------------------------

def app_route(phone, cloud, private, online):
    """The exercise's population laid out exactly: request i has independent private / online / correctness /
    coin digits, so every share is exact; the oracle and the random router are then evaluated by the library."""
    from collab_lib.applications.assistant import AssistantCosts, cloud_eligible, evaluate

    grid = np.indices((100, 100, 100, 2)).reshape(4, -1)                 # (4, n) digits
    priv, on = grid[0] < round(100 * private), grid[1] < round(100 * online)
    phone_ok, cloud_ok = grid[2] < round(100 * phone), grid[2] < round(100 * cloud)  # cloud right when phone is
    eligible = cloud_eligible(priv, on)
    n = eligible.size
    costs = AssistantCosts(device_step_s=1.0, cloud_step_s=1.0, rtt_s=np.zeros(n), gamma=1)

    def quality(send):
        modes = np.where(send & eligible, 1, 0)
        return evaluate(modes, phone_ok.astype(float), cloud_ok.astype(float), np.zeros(n), 1, costs).quality

    answers = [f"eligible share {bold(eligible.mean(), '.3f')}",
               f"(a) the best router reaches {bold(quality(~phone_ok & cloud_ok), '.4f')}",
               f"(b) a random router that sends half the eligible requests {bold(quality(grid[3] == 0), '.4f')}"]
    q = (f"An assistant's phone model is right on {phone:.0%} of requests, the cloud model on {cloud:.0%}. A "
         f"request goes up only if it is not private ({private:.0%} are) and the phone is online ({online:.0%} of "
         "the time), independently. (a) What is the best accuracy a router can reach if the cloud is right "
         "whenever the phone is? (b) What does a random router reach when it sends half of the eligible "
         "requests?")
    return q, answers


def open_budget(before, after, b, eta, tau):
    """τ* as the library's calibrated threshold on a fine grid of the uniform confidence (score = 1 - c, so
    that a low confidence escalates), and the escalated shares by the library's route."""
    from collab_lib.system.cascade import calibrate_threshold, route

    def confidences(lo, hi, n=100_000):
        return lo + (hi - lo) * (np.arange(n) + 0.5) / n  # (n,) quantiles of U(lo, hi)

    def share(c, t):  # escalated when c < t, i.e. score 1 - c > 1 - t
        return route(torch.from_numpy(1 - c), float(np.nextafter(1 - t, 2))).double().mean().item()

    old, new = confidences(*before), confidences(*after)
    tau_old = 1 - calibrate_threshold(torch.from_numpy(1 - old), b)
    tau_new = 1 - calibrate_threshold(torch.from_numpy(1 - new), b)
    answers = [f"(a) τ* = {bold(tau_old, '.3f')}",
               f"(b) at τ = {tau:g} the expected update is {bold(eta * (b - share(old, tau)), '.5f')}",
               f"(c) after the shift the old τ* escalates {bold(share(new, tau_old), '.4f')} of requests; the new "
               f"τ* is {bold(tau_new, '.3f')}"]
    q = (f"In the rule of {{ref}}`ex-open-budget`, the phone model's confidence is uniform on [{before[0]:g}, "
         f"{before[1]:g}] and the budget is $b = {b:g}$. (a) What is $\\tau^*$? (b) With $\\eta = {eta:g}$, what is "
         f"the expected update at $\\tau_t = {tau:g}$? (c) The traffic shifts and the confidence becomes uniform on "
         f"[{after[0]:g}, {after[1]:g}]: which share does the old $\\tau^*$ now escalate, and where does the rule "
         "settle?")
    return q, answers


BUILDERS: dict[str, Callable[..., tuple[str, list[str]]]] = {
    "ex-hw-ridge": hw_ridge, "ex-hw-kv": hw_kv, "ex-sys-cut": sys_cut, "ex-sys-spec": sys_spec,
    "ex-data-t2": data_t2, "ex-data-kcenter": data_kcenter, "ex-feat-crossover": feat_crossover,
    "ex-feat-grad-equal": feat_grad_equal, "ex-param-prox": param_prox, "ex-data-gauc": data_gauc,
    "ex-app-route": app_route, "ex-open-budget": open_budget,
}

HEADER = """\
# Exercise variants (instructor's page)

The graded exercises of the {doc}`course guide <course_guide>` with other numbers: another device, link,
model or data set. Hand them out instead of the book's, whose worked solutions any student can open.
Every answer below is computed by `collab_lib` in `scripts/variants.py`, which writes this page
(`python scripts/variants.py`); `tests/test_exercise_variants.py` recomputes each one by hand and compares it
with what the page states. The answers sit in `{solution}` dropdowns, which the student edition removes.
Each variant uses the method of the exercise it varies: its worked solution there is the model answer.
"""


def render() -> str:
    torch.set_default_dtype(torch.float64)
    parts = [HEADER]
    current = None
    for label, (exercise, inputs) in INPUTS.items():
        if exercise != current:
            parts.append(f"\n## Variants of {{ref}}`{exercise}`\n")
            current = exercise
        question, answers = BUILDERS[exercise](**inputs)
        parts.append(f":::{{exercise}}\n:label: {label}\n\n{question}\n:::\n")
        parts.append(f":::{{solution}} {label}\n:class: dropdown\n\n"
                     + "\n".join(f"- {a}" for a in answers) + "\n:::\n")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page differs from what is computed")
    args = parser.parse_args()
    text = render()
    if args.check:
        if PAGE.read_text() != text:
            sys.exit(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/variants.py")
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}: {len(INPUTS)} variants of {len(set(e for e, _ in INPUTS.values()))} "
          "exercises")


if __name__ == "__main__":
    main()
