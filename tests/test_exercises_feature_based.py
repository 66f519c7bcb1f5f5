"""Chapter 5's lab checks accept an independent reference, say "not attempted" for None (and fail it when
grading), reject wrong answers, and reject the library's own function handed back."""

import math

import pytest
import torch
from torch import nn

from collab_lib.exercises import feature_based as checks
from collab_lib.feature_based import inversion, logit_exchange, split_learning

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- check_gradient_inversion -----------------------------------------------------------------------------

def plain_invert(grads, input_shape, rows="active"):
    """x = row i of dL/dW_1 over dL/db_1[i], averaged over the rows with dL/db_1[i] != 0; the label is the
    only negative entry of the last bias gradient. ``rows="all"`` divides every row (a wrong answer for
    ReLU units that are off); ``rows="first"`` uses row 0 only."""
    w, b = grads[0].tolist(), grads[1].tolist()
    use = {"active": [i for i, d in enumerate(b) if d != 0], "all": range(len(b)), "first": [0]}[rows]
    ratios = [[wij / b[i] if b[i] != 0 else math.nan for wij in w[i]] for i in use]
    x = [sum(col) / len(col) for col in zip(*ratios)]
    last = grads[-1].tolist()
    label = min(range(len(last)), key=last.__getitem__)
    return torch.tensor(x, dtype=torch.float64).reshape(1, *input_shape), label


@pytest.mark.parametrize("hidden", [False, True])
def test_gradient_inversion_check_accepts_an_independent_answer(hidden):
    assert checks.check_gradient_inversion(plain_invert, hidden=hidden).startswith("correct")


def test_gradient_inversion_check_rejects_wrong_answers():
    assert checks.check_gradient_inversion(lambda g, s: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="ReLU MLP.*inf or NaN.*Skip those rows"):
        checks.check_gradient_inversion(lambda g, s: plain_invert(g, s, rows="all"))
    with pytest.raises(AssertionError, match="argmin of the last bias gradient, not argmax"):
        checks.check_gradient_inversion(lambda g, s: (plain_invert(g, s)[0], int(g[-1].argmax())))
    with pytest.raises(AssertionError, match=r"got shape \(64,\), expected \(1, 1, 8, 8\).*reshape"):
        checks.check_gradient_inversion(lambda g, s: (plain_invert(g, s)[0].flatten(), plain_invert(g, s)[1]))


def test_gradient_inversion_hidden_cases_catch_a_hard_coded_shape():
    def one_channel(grads, input_shape):                 # right for the lab's (1, 8, 8), wrong elsewhere
        x, label = plain_invert(grads, input_shape)
        return x.reshape(1, 1, -1, input_shape[-1]), label

    assert checks.check_gradient_inversion(one_channel).startswith("correct")
    with pytest.raises(AssertionError, match=r"\(3, 4, 4\) input.*got shape \(1, 1, 12, 4\)"):
        checks.check_gradient_inversion(one_channel, hidden=True)


def test_gradient_inversion_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    def wrapped(grads, input_shape):
        return inversion.analytic_input(grads[0], grads[1]).reshape(1, *input_shape), int(grads[-1].argmin())

    with pytest.raises(AssertionError, match="calls the library's collab_lib.feature_based.inversion.analytic_input"):
        checks.check_gradient_inversion(wrapped)
    with pytest.raises(AssertionError, match="calls the library's .*infer_label"):
        checks.check_gradient_inversion(lambda g, s: (plain_invert(g, s)[0], inversion.infer_label(g[-1])))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_gradient_inversion(lambda g, s: None)


# --- check_clip_and_noise ---------------------------------------------------------------------------------

def plain_clip_and_noise(grads, clip_norm, noise_multiplier, generator, per_tensor=False, always_scale=False):
    """DP-SGD's Gaussian mechanism on one update, written out; the flags are wrong answers."""
    norm = math.sqrt(sum(float((t.double() ** 2).sum()) for t in grads))
    out = []
    for t in grads:
        n = float(t.double().norm()) if per_tensor else norm
        scale = (clip_norm / n if always_scale else min(1.0, clip_norm / n)) if n > 0 else 1.0
        noise = torch.randn(t.shape, generator=generator, dtype=t.dtype)
        out.append(t * scale + noise_multiplier * clip_norm * noise)
    return out


@pytest.mark.parametrize("hidden", [False, True])
def test_clip_and_noise_check_accepts_an_independent_answer(hidden):
    assert checks.check_clip_and_noise(plain_clip_and_noise, hidden=hidden).startswith("correct")


def test_clip_and_noise_check_names_the_usual_slips():
    assert checks.check_clip_and_noise(lambda g, c, z, gen: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="norm 5, C = 1.*not each tensor by its own norm"):
        checks.check_clip_and_noise(lambda g, c, z, gen: plain_clip_and_noise(g, c, z, gen, per_tensor=True))
    with pytest.raises(AssertionError, match="norm 0.5.*not scaled up to C"):
        checks.check_clip_and_noise(lambda g, c, z, gen: plain_clip_and_noise(g, c, z, gen, always_scale=True))
    with pytest.raises(AssertionError, match="C = 2, z = 0.1.*z C .*not z"):
        checks.check_clip_and_noise(lambda g, c, z, gen: plain_clip_and_noise(g, c, z / c, gen))

    def in_place(grads, clip_norm, z, gen):
        for t in grads:
            t.mul_(min(1.0, clip_norm / math.sqrt(sum(float((u ** 2).sum()) for u in grads))))
        return grads

    with pytest.raises(AssertionError, match="changed grads in place"):
        checks.check_clip_and_noise(in_place)


def test_clip_and_noise_hidden_cases_catch_a_division_by_a_zero_norm():
    def no_guard(grads, clip_norm, z, gen):                # t / ||g|| * min(||g||, C): 0 / 0 at norm 0
        norm = torch.sqrt(sum((t ** 2).sum() for t in grads))
        return [t / norm * torch.clamp(norm, max=clip_norm)
                + z * clip_norm * torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in grads]

    assert checks.check_clip_and_noise(no_guard).startswith("correct")
    with pytest.raises(AssertionError, match="all zeros.*C / 0"):
        checks.check_clip_and_noise(no_guard, hidden=True)


def test_clip_and_noise_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    with pytest.raises(AssertionError, match="calls the library's .*clip_and_noise"):
        checks.check_clip_and_noise(inversion.clip_and_noise)
    with pytest.raises(AssertionError, match="calls the library's .*clip_and_noise"):
        checks.check_clip_and_noise(lambda g, c, z, gen: inversion.clip_and_noise(g, c, z, gen))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_clip_and_noise(lambda g, c, z, gen: None)


# --- check_fd_round ---------------------------------------------------------------------------------------

def plain_fd_round(logits, sizes, temperature, weighted=True, devices=True):
    """FedMD's aggregate step in plain Python: the n_k-weighted mean, a max-shifted softmax of it over T,
    and K (N C 4 up + N C 4 down) bytes; the flags are wrong answers."""
    k, (n, c) = len(logits), logits[0].shape
    w = [s / sum(sizes) for s in sizes] if weighted else [1 / k] * k
    rows = [z.tolist() for z in logits]
    z = [[sum(w[j] * rows[j][i][m] for j in range(k)) for m in range(c)] for i in range(n)]
    p = []
    for row in z:
        top = max(row)
        e = [math.exp((v - top) / temperature) for v in row]
        p.append([v / sum(e) for v in e])
    f64 = torch.float64
    return torch.tensor(z, dtype=f64), torch.tensor(p, dtype=f64), (k if devices else 1) * 2 * n * c * 4


@pytest.mark.parametrize("hidden", [False, True])
def test_fd_round_check_accepts_an_independent_answer(hidden):
    assert checks.check_fd_round(plain_fd_round, hidden=hidden).startswith("correct")


def test_fd_round_check_names_the_usual_slips():
    assert checks.check_fd_round(lambda z, n, t: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="5 devices.*n_k / sum n"):
        checks.check_fd_round(lambda z, n, t: plain_fd_round(z, n, t, weighted=False))
    with pytest.raises(AssertionError, match="count all K devices"):
        checks.check_fd_round(lambda z, n, t: plain_fd_round(z, n, t, devices=False))

    def no_temperature(logits, sizes, t):
        z, _, b = plain_fd_round(logits, sizes, t)
        return z, z.softmax(-1), b

    with pytest.raises(AssertionError, match="divide the logits by the temperature"):
        checks.check_fd_round(no_temperature)


def test_fd_round_hidden_cases_catch_an_overflowing_softmax():
    def naive(logits, sizes, t):
        z, _, b = plain_fd_round(logits, sizes, t)
        e = torch.exp(z / t)
        return z, e / e.sum(-1, keepdim=True), b

    assert checks.check_fd_round(naive).startswith("correct")
    with pytest.raises(AssertionError, match="size about 1,000.*subtract each row's maximum"):
        checks.check_fd_round(naive, hidden=True)


def test_fd_round_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    def wrapped(logits, sizes, t):
        z = logit_exchange.consensus(logits, sizes)
        return z, (z / t).softmax(-1), len(logits) * 8 * z.numel()

    with pytest.raises(AssertionError, match="calls the library's .*consensus"):
        checks.check_fd_round(wrapped)

    def library_bytes(logits, sizes, t):
        z, p, _ = plain_fd_round(logits, sizes, t)
        return z, p, len(logits) * logit_exchange.logit_bytes_per_round(*z.shape)

    with pytest.raises(AssertionError, match="calls the library's .*logit_bytes_per_round"):
        checks.check_fd_round(library_bytes)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_fd_round(lambda z, n, t: None)


# --- check_top_k_exchange ---------------------------------------------------------------------------------

def plain_top_k(z, top_k, value_bits, fill=-math.inf, ids=True, round_up=True):
    """Each row's k largest kept (the rest ``fill``), and 2 x ceil(N k (b + ceil(log2 C)) / 8) bytes; the
    flags are wrong answers."""
    n, c = z.shape
    kept = []
    for row in z.tolist():
        top = sorted(range(c), key=lambda j: -row[j])[:top_k]
        kept.append([v if j in top else fill for j, v in enumerate(row)])
    index_bits = math.ceil(math.log2(c)) if ids and top_k < c else 0
    bits = n * top_k * (value_bits + index_bits)
    return torch.tensor(kept, dtype=torch.float64), 2 * (-(-bits // 8) if round_up else bits // 8)


@pytest.mark.parametrize("hidden", [False, True])
def test_top_k_check_accepts_an_independent_answer(hidden):
    assert checks.check_top_k_exchange(plain_top_k, hidden=hidden).startswith("correct")


def test_top_k_check_names_the_usual_slips():
    assert checks.check_top_k_exchange(lambda z, k, b: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="k = 3.*-inf, not 0"):
        checks.check_top_k_exchange(lambda z, k, b: plain_top_k(z, k, b, fill=0.0))
    with pytest.raises(AssertionError, match="class id"):
        checks.check_top_k_exchange(lambda z, k, b: plain_top_k(z, k, b, ids=False))
    with pytest.raises(AssertionError, match="smallest"):
        checks.check_top_k_exchange(lambda z, k, b: plain_top_k(-z, k, b))


def test_top_k_hidden_cases_catch_rounding_down():
    wrong = lambda z, k, b: plain_top_k(z, k, b, round_up=False)  # noqa: E731
    assert checks.check_top_k_exchange(wrong).startswith("correct")  # the visible counts are whole bytes
    with pytest.raises(AssertionError, match="5 bits.*rounded up|round each direction's bits up"):
        checks.check_top_k_exchange(wrong, hidden=True)


def test_top_k_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    def wrapped(z, k, b):
        return plain_top_k(z, k, b)[0], logit_exchange.compressed_logit_bytes_per_round(*z.shape, k, b)

    with pytest.raises(AssertionError, match="calls the library's .*compressed_logit_bytes_per_round"):
        checks.check_top_k_exchange(wrapped)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_top_k_exchange(lambda z, k, b: None)


# --- check_split_bytes ------------------------------------------------------------------------------------

def plain_bytes_per_step(model, cut, batch, labels=True, shift=0):
    """B (2 q_k 4 + 8): q_k from a forward pass of one dummy image; ``labels=False`` forgets the labels and
    ``shift`` moves the cut (wrong answers)."""
    with torch.no_grad():
        q = model[:cut + shift](torch.zeros(1, 1, 8, 8)).numel()
    return batch * (2 * q * 4 + (8 if labels else 0))


def test_split_bytes_check():
    assert checks.check_split_bytes(plain_bytes_per_step).startswith("correct")
    assert checks.check_split_bytes(lambda m, cut, b: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="cut 1 .*batch 1: .*labels"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, b, labels=False))
    with pytest.raises(AssertionError, match="payload at cut 3"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, b, shift=1))


def test_split_bytes_check_names_one_direction_and_a_missing_batch():
    def up_only(model, cut, batch):
        with torch.no_grad():
            return batch * (model[:cut](torch.zeros(1, 1, 8, 8)).numel() * 4 + 8)

    with pytest.raises(AssertionError, match="gradient coming down"):
        checks.check_split_bytes(up_only)
    with pytest.raises(AssertionError, match="batch 8: .*every sample of the batch"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, 1))


def test_split_bytes_check_rejects_a_pair_and_leaves_the_global_rng_alone():
    def pair(model, cut, batch):
        q = model[:cut](torch.zeros(1, 1, 8, 8)).numel()
        return batch * (q * 4 + 8), batch * q * 4

    state = torch.get_rng_state()
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_split_bytes(pair)
    assert torch.equal(torch.get_rng_state(), state)


def test_split_bytes_check_models_take_the_labs_images():
    for name, model in checks._split_models():
        assert isinstance(model, nn.Sequential) and model(torch.zeros(2, 1, 8, 8)).shape == (2, 10), name


def test_split_bytes_check_hidden_cases_catch_a_hard_coded_batch_and_reject_the_library(monkeypatch):
    assert checks.check_split_bytes(plain_bytes_per_step, hidden=True).startswith("correct")
    visible_batches = {1: 1, 8: 8, 32: 32}
    with pytest.raises(AssertionError, match="batch 3"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, visible_batches.get(b, 8)),
                                 hidden=True)

    def library(model, cut, batch):
        with torch.no_grad():
            q = model[:cut](torch.zeros(1, 1, 8, 8)).numel()
        return split_learning.split_bytes_per_step(q, batch)

    with pytest.raises(AssertionError, match="calls the library's .*split_bytes_per_step"):
        checks.check_split_bytes(library)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_split_bytes(lambda m, cut, b: None)


# --- check_split_step -------------------------------------------------------------------------------------

def plain_split_step(device, cloud, x, y, detach=True, device_backward=True):
    """The two parties' step written out; the flags are wrong answers (the graph kept across the link, the
    device's backward pass forgotten)."""
    h = device(x)
    h_cloud = h.detach().requires_grad_(True) if detach else h
    if not detach:
        h.retain_grad()
    logits = cloud(h_cloud)
    loss = -(logits.log_softmax(dim=1)[torch.arange(len(y)), y]).mean()
    loss.backward()
    if detach and device_backward:
        h.backward(h_cloud.grad)
    return loss.item(), h_cloud.grad


@pytest.mark.parametrize("hidden", [False, True])
def test_split_step_check_accepts_an_independent_answer(hidden):
    assert checks.check_split_step(plain_split_step, hidden=hidden).startswith("correct")


def test_split_step_check_rejects_an_unsplit_graph_and_a_forgotten_device():
    assert checks.check_split_step(lambda d, c, x, y: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="autograd graph attached.*detach"):
        checks.check_split_step(lambda d, c, x, y: plain_split_step(d, c, x, y, detach=False))
    with pytest.raises(AssertionError, match="device parameter has no gradient.*h.backward"):
        checks.check_split_step(lambda d, c, x, y: plain_split_step(d, c, x, y, device_backward=False))

    def no_grad_copy(device, cloud, x, y):
        h = device(x).detach()
        return nn.functional.cross_entropy(cloud(h), y).item(), torch.zeros_like(h)

    with pytest.raises(AssertionError, match="does not require grad"):
        checks.check_split_step(no_grad_copy)


def test_split_step_check_rejects_a_doubled_gradient():
    def twice(device, cloud, x, y):
        out = plain_split_step(device, cloud, x, y)
        plain_split_step(device, cloud, x, y)
        return out

    with pytest.raises(AssertionError, match="counted twice"):
        checks.check_split_step(twice)


def test_split_step_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    def wrapped(device, cloud, x, y):
        s = split_learning.split_step(device, cloud, x, y)
        return s.loss, torch.zeros(1)

    with pytest.raises(AssertionError, match="calls the library's .*split_step"):
        checks.check_split_step(wrapped)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="blank answer scores 0"):
        checks.check_split_step(lambda d, c, x, y: None)


def test_split_step_hidden_cases_catch_a_squeezed_gradient():
    def squeezed(device, cloud, x, y):                   # right for batches of 8, wrong for a batch of 1
        loss, grad_h = plain_split_step(device, cloud, x, y)
        return loss, grad_h.squeeze()

    assert checks.check_split_step(squeezed).startswith("correct")
    with pytest.raises(AssertionError, match="batch 1: grad_h: got shape"):
        checks.check_split_step(squeezed, hidden=True)
