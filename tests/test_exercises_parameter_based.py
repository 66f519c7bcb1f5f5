"""Chapter 6's lab checks accept independent references, say "not attempted" for None and reject wrong answers."""

import numpy as np
import pytest
import torch

from collab_lib.exercises import parameter_based as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- Top-k with error feedback ---------------------------------------------------------------------------------


def plain_topk_with_feedback(update, residual, k, signed=False, forget_residual=False, ignore_residual=False):
    """Top-k with error feedback on plain Python lists; the flags are wrong answers."""
    acc = [a + b for a, b in zip(update.tolist(), residual.tolist())]
    chosen = update.tolist() if ignore_residual else acc
    key = (lambda i: -chosen[i]) if signed else (lambda i: -abs(chosen[i]))
    keep = set(sorted(range(len(acc)), key=key)[:k])
    sent = [chosen[i] if i in keep else 0.0 for i in range(len(acc))]
    owed = update.tolist() if forget_residual else acc
    return sent, [a - b for a, b in zip(owed, sent)]


def test_topk_check():
    assert checks.check_topk_with_feedback(plain_topk_with_feedback).startswith("correct")
    assert checks.check_topk_with_feedback(lambda u, r, k: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="round 1: sent .* update alone"):
        checks.check_topk_with_feedback(
            lambda u, r, k: plain_topk_with_feedback(u, r, k, ignore_residual=True))
    with pytest.raises(AssertionError, match="round 1: new_residual .* dropped the old residual"):
        checks.check_topk_with_feedback(
            lambda u, r, k: plain_topk_with_feedback(u, r, k, forget_residual=True))
    with pytest.raises(AssertionError, match=r"round \d: sent is nonzero .*largest \*signed\* values"):
        checks.check_topk_with_feedback(lambda u, r, k: plain_topk_with_feedback(u, r, k, signed=True))


def test_topk_check_accepts_torch_and_numpy_answers():
    def torch_version(update, residual, k):
        acc = update + residual
        keep = acc.abs().topk(k).indices
        sent = torch.zeros_like(acc).index_put((keep,), acc[keep])
        return sent, acc - sent

    def numpy_version(update, residual, k):
        acc = (update + residual).numpy()
        sent = np.where(np.abs(acc) >= np.sort(np.abs(acc))[-k], acc, 0.0)
        return sent, acc - sent

    assert checks.check_topk_with_feedback(torch_version).startswith("correct")
    assert checks.check_topk_with_feedback(numpy_version).startswith("correct")


def test_topk_check_rejects_a_sparse_answer_and_a_single_tensor():
    def sparse(update, residual, k):
        acc = update + residual
        keep = acc.abs().topk(k).indices
        return acc[keep], acc
    with pytest.raises(AssertionError, match=r"sent: got shape \(3,\), expected \(20,\) \(dense"):
        checks.check_topk_with_feedback(sparse)
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_topk_with_feedback(lambda u, r, k: plain_topk_with_feedback(u, r, k)[0])
    with pytest.raises(AssertionError, match="new_residual: got a NoneType"):
        checks.check_topk_with_feedback(lambda u, r, k: (plain_topk_with_feedback(u, r, k)[0], None))


# --- FedAvg's weighted average ---------------------------------------------------------------------------------


def plain_weighted_average(stacked, num_samples):
    """sum_k n_k x_k / sum_k n_k, one client at a time."""
    n = num_samples.tolist()
    out = {}
    for name, x in stacked.items():
        total = torch.zeros(x.shape[1:], dtype=torch.float64)
        for k, n_k in enumerate(n):
            total += n_k * x[k].double()
        out[name] = total / sum(n)
    return out


def test_weighted_average_check():
    assert checks.check_weighted_average(plain_weighted_average).startswith("correct")
    assert checks.check_weighted_average(lambda s, n: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="1 to 60 samples: w .* unweighted mean"):
        checks.check_weighted_average(lambda s, n: {name: x.mean(dim=0) for name, x in s.items()})
    with pytest.raises(AssertionError, match="divide by sum_k n_k"):
        checks.check_weighted_average(
            lambda s, n: {name: torch.einsum("k,k...->...", n, x) for name, x in s.items()})


def test_weighted_average_check_accepts_an_einsum_and_numpy_values():
    def einsum(stacked, num_samples):
        p = num_samples / num_samples.sum()
        return {name: torch.einsum("k,k...->...", p, x) for name, x in stacked.items()}

    def numpy_version(stacked, num_samples):
        n = num_samples.numpy()
        return {name: np.average(x.numpy(), axis=0, weights=n) for name, x in stacked.items()}

    assert checks.check_weighted_average(einsum).startswith("correct")
    assert checks.check_weighted_average(numpy_version).startswith("correct")


def test_weighted_average_check_rejects_wrong_shapes_and_types():
    def keeps_client_axis(stacked, num_samples):
        w = num_samples / num_samples.sum()
        return {name: w.view(-1, *[1] * (x.ndim - 1)) * x for name, x in stacked.items()}

    with pytest.raises(AssertionError, match=r"w: got shape \(5, 3, 4\), expected \(3, 4\)"):
        checks.check_weighted_average(keeps_client_axis)
    with pytest.raises(AssertionError, match="expected a dict"):
        checks.check_weighted_average(lambda s, n: plain_weighted_average(s, n)["w"])
    with pytest.raises(AssertionError, match="names"):
        checks.check_weighted_average(lambda s, n: {"w": plain_weighted_average(s, n)["w"]})


# --- Ditto's proximal step ----------------------------------------------------------------------------------------


def prox_step(v, grad, w, lr, lam):
    """The prox written around w: v' = w + (v - lr grad - w) / (1 + lr lam), equal to the library's form."""
    return w + (v - lr * grad - w) / (1 + lr * lam)


def test_ditto_check():
    assert checks.check_ditto_step(prox_step).startswith("correct")
    assert checks.check_ditto_step(lambda v, g, w, lr, lam: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="lam=0.5: .* plain gradient step"):
        checks.check_ditto_step(lambda v, g, w, lr, lam: v - lr * (g + lam * (v - w)))
    with pytest.raises(AssertionError, match="lam=0.5: .* divide it by"):
        checks.check_ditto_step(lambda v, g, w, lr, lam: v - lr * g + lr * lam * w)


def test_ditto_check_rejects_other_mistakes_shapes_and_types():
    with pytest.raises(AssertionError, match="lam=0.5: .* expected \\(v - lr grad"):
        checks.check_ditto_step(lambda v, g, w, lr, lam: (v - lr * g + lam * w) / (1 + lam))
    with pytest.raises(AssertionError, match=r"shape \(12,\), expected \(4, 3\)"):
        checks.check_ditto_step(lambda v, g, w, lr, lam: prox_step(v, g, w, lr, lam).flatten())
    with pytest.raises(AssertionError, match="got a dict"):
        checks.check_ditto_step(lambda v, g, w, lr, lam: {"v": prox_step(v, g, w, lr, lam)})
    numpy_answer = checks.check_ditto_step(lambda v, g, w, lr, lam: prox_step(v, g, w, lr, lam).numpy())
    assert numpy_answer.startswith("correct")
