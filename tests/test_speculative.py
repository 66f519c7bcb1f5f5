"""Speculative sampling: rigged logits make accept/reject exact (as Hugging Face's tests do); a chi-square test
shows the generated tokens are distributed as the target's (and that the test catches a wrong residual);
greedy output equals the target's greedy decoding; tokens per target call against the paper's formula; the
analytic formulas against hand computation and brute force; clear errors."""

import itertools
import math

import numpy as np
import pytest
import torch

import collab_lib.system.speculative as spec
from collab_lib.models import CachedLM, CharLM, CharLMConfig
from collab_lib.seed import generator
from collab_lib.system.speculative import (
    SpeculativeLatency,
    autoregressive_generate,
    expected_tokens_per_call,
    probabilities,
    residual_distribution,
    speculative_generate,
    speculative_sampling,
    speedup,
)

NEG_INF = float("-inf")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def rigged(rows: list[dict[int, float]], vocab: int, fill: float = -10.0) -> torch.Tensor:
    """(len(rows), vocab) logits: ``fill`` everywhere, then the given token -> logit entries."""
    out = torch.full((len(rows), vocab), fill)
    for i, row in enumerate(rows):
        for tok, v in row.items():
            out[i, tok] = v
    return out


# --- rigged logits: exact decisions --------------------------------------------------------------------


def test_rigged_logits_accept_two_reject_the_third_and_resample_exactly():
    # Drafts 1, 2, 3 (gamma = 3, V = 5), each with logit 10 and -10 elsewhere. The target agrees on the
    # first two (same logits: p = q, always accepted), gives token 3 probability 0 (-inf) at the third,
    # where all its mass is on token 4, and its bonus row is irrelevant.
    V = 5
    draft_tokens = torch.tensor([1, 2, 3])
    q = probabilities(rigged([{1: 10}, {2: 10}, {3: 10}], V), 1.0)
    p = probabilities(torch.cat([rigged([{1: 10}, {2: 10}], V),
                                 rigged([{4: 10}], V, fill=NEG_INF),
                                 rigged([{0: 10}], V)]), 1.0)
    for seed in range(50):
        tokens, n = speculative_sampling(draft_tokens, q, p, generator(seed))
        assert n == 2
        assert tokens.tolist() == [1, 2, 4]


def test_rigged_logits_all_accepted_take_the_bonus_token():
    V = 5
    draft_tokens = torch.tensor([3, 3])
    q = probabilities(rigged([{3: 10}, {3: 10}], V), 1.0)
    p = probabilities(torch.cat([rigged([{3: 10}, {3: 10}], V), rigged([{2: 10}], V, fill=NEG_INF)]), 1.0)
    for seed in range(50):
        tokens, n = speculative_sampling(draft_tokens, q, p, generator(seed))
        assert (n, tokens.tolist()) == (2, [3, 3, 2])


def test_rigged_logits_first_draft_rejected():
    V = 4
    draft_tokens = torch.tensor([0, 1, 2])
    q = probabilities(rigged([{0: 10}, {1: 10}, {2: 10}], V), 1.0)
    p = probabilities(torch.cat([rigged([{1: 0.0, 2: 0.0}], V, fill=NEG_INF),   # token 0 impossible
                                 rigged([{1: 10}, {2: 10}, {3: 10}], V)]), 1.0)
    # Residual at position 1: max(0, p - q) puts (almost) equal mass on tokens 1 and 2, none on 0 or 3.
    seen = set()
    for seed in range(200):
        tokens, n = speculative_sampling(draft_tokens, q, p, generator(seed))
        assert n == 0 and len(tokens) == 1
        seen.add(tokens.item())
    assert seen == {1, 2}


def test_greedy_accepts_exactly_while_the_argmax_agrees():
    V = 6
    draft_tokens = torch.tensor([5, 1, 2])
    q = probabilities(rigged([{5: 3}, {1: 2}, {2: 1}], V, fill=0.0), 0)
    p = probabilities(rigged([{5: 1}, {1: 0.5}, {4: 1}, {0: 1}], V, fill=0.0), 0)
    for seed in range(20):
        tokens, n = speculative_sampling(draft_tokens, q, p, generator(seed))
        assert (n, tokens.tolist()) == (2, [5, 1, 4])


def test_residual_distribution_by_hand():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0])
    q = torch.tensor([0.2, 0.4, 0.1, 0.3])
    # max(0, p - q) = [0.3, 0, 0.1, 0], normalised
    assert torch.allclose(residual_distribution(p, q), torch.tensor([0.75, 0.0, 0.25, 0.0]))
    assert torch.equal(residual_distribution(p, p), p)  # labelled departure: p = q gives p


# --- losslessness: the output is distributed as the target's ----------------------------------------------


class TableLM:
    """A tiny context-dependent LM: the logits at position t depend on the token there and on t's parity."""

    def __init__(self, seed: int, vocab: int = 3, scale: float = 1.5):
        self.table = scale * torch.randn(vocab, 2, vocab, generator=generator(seed))  # (token, parity, V)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        t = torch.arange(ids.shape[1])
        return self.table[ids[0], t % 2][None]                                        # (1, T, V)


def exact_distribution(model: TableLM, prefix: list[int], k: int, temperature: float) -> dict[tuple, float]:
    """P(next k tokens) under ancestral sampling from ``model``: the product of its conditionals."""
    V = model.table.shape[0]
    out = {}
    for seq in itertools.product(range(V), repeat=k):
        ids = torch.tensor([prefix + list(seq)])
        probs = probabilities(model(ids)[0], temperature)                              # (T, V)
        out[seq] = math.prod(probs[len(prefix) - 1 + i, s].item() for i, s in enumerate(seq))
    return out


def chi_square_p_value(counts: dict, expected_probs: dict, n: int) -> float:
    """Pearson's chi-square test; the survival function of chi2(df) is the regularized upper gamma Q(df/2, x/2)."""
    cells = [c for c in expected_probs if expected_probs[c] > 0]
    stat = sum((counts.get(c, 0) - n * expected_probs[c]) ** 2 / (n * expected_probs[c]) for c in cells)
    assert all(c in expected_probs and expected_probs[c] > 0 for c in counts)  # nothing impossible drawn
    df = len(cells) - 1
    return torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                   torch.tensor(stat / 2, dtype=torch.float64)).item()


def sample_counts(target, draft, prefix, k, gamma, temperature, n, seed):
    g = generator(seed)
    counts: dict[tuple, int] = {}
    for _ in range(n):
        out, _ = speculative_generate(target, draft, torch.tensor(prefix), k, gamma, temperature, g)
        key = tuple(out[len(prefix):].tolist())
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("gamma, temperature", [(2, 1.0), (3, 0.6)])
def test_speculative_tokens_are_distributed_as_the_target(gamma, temperature):
    target, draft = TableLM(seed=1), TableLM(seed=2)
    prefix, k, n = [0], 3, 3000
    exact = exact_distribution(target, prefix, k, temperature)
    assert math.isclose(sum(exact.values()), 1.0, rel_tol=1e-6)
    counts = sample_counts(target, draft, prefix, k, gamma, temperature, n, seed=gamma)
    assert chi_square_p_value(counts, exact, n) > 1e-3
    # The same draws are far from the draft's own distribution: the test has power.
    assert chi_square_p_value(counts, exact_distribution(draft, prefix, k, temperature), n) < 1e-6


def test_chi_square_catches_resampling_from_p_instead_of_the_residual(monkeypatch):
    # A classic bug: after a rejection, draw from p instead of norm(max(0, p - q)). Tokens the draft
    # over-proposes then come out too often; the same test must reject it.
    monkeypatch.setattr(spec, "residual_distribution", lambda p, q: p)
    target, draft = TableLM(seed=1), TableLM(seed=2)
    exact = exact_distribution(target, [0], 3, 1.0)
    counts = sample_counts(target, draft, [0], 3, 2, 1.0, 3000, seed=2)
    assert chi_square_p_value(counts, exact, 3000) < 1e-3


def small_lm(seed: int) -> CharLM:
    """A random transformer with large weights: at the default init (std 0.02) the tied output layer makes
    every untrained model predict its input token."""
    torch.manual_seed(seed)
    model = CharLM(CharLMConfig(vocab_size=11, context_len=64, d_model=16, num_heads=2, num_layers=2, d_ff=32))
    with torch.no_grad():
        for w in model.parameters():
            w.normal_(0, 0.5)
    return model.eval()


def test_greedy_speculative_equals_greedy_target_decoding():
    # The draft is the target with noisy weights: it agrees often but not always, so acceptances,
    # rejections and bonus tokens all occur.
    target, draft = small_lm(0), small_lm(0)
    with torch.no_grad():
        for i, w in enumerate(draft.parameters()):
            w.add_(0.2 * torch.randn(w.shape, generator=generator(100, offset=i)))
    prefix = torch.tensor([1, 2, 3, 4])
    reference = autoregressive_generate(target, prefix, 40, temperature=0)
    for gamma in (1, 3, 5):
        out, stats = speculative_generate(CachedLM(target), CachedLM(draft), prefix, 40, gamma, 0, generator(0))
        assert torch.equal(out, reference)
        assert 0 < stats.accepted < stats.drafted


# --- tokens per target call against the formula -----------------------------------------------------------


class ConstantLM:
    """The same next-token distribution at every position: acceptances are then independent, as the
    formula assumes."""

    def __init__(self, probs: list[float]):
        self.logits = torch.tensor(probs).log()

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(1, ids.shape[1], -1)


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_tokens_per_call_match_the_formula_when_acceptances_are_independent(gamma):
    p, q = [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]
    alpha = sum(min(a, b) for a, b in zip(p, q))  # beta, the same at every position: 0.6
    out, stats = speculative_generate(ConstantLM(p), ConstantLM(q), torch.tensor([0]), 3000, gamma, 1.0,
                                      generator(gamma))
    assert len(out) == 3001 and stats.tokens >= 3000
    assert stats.mean_beta == pytest.approx(alpha, rel=1e-5)
    assert stats.alpha == pytest.approx(alpha, abs=0.03)
    assert stats.tokens_per_target_call == pytest.approx(expected_tokens_per_call(alpha, gamma), rel=0.05)
    assert stats.draft_calls == gamma * stats.target_calls


def test_identical_draft_is_always_accepted():
    model = TableLM(seed=3)
    _, stats = speculative_generate(model, model, torch.tensor([0]), 50, 4, 1.0, generator(0))
    assert stats.alpha == 1.0 and stats.rejected == 0
    assert stats.tokens_per_target_call == 5 == expected_tokens_per_call(1.0, 4)


# --- analytic formulas -------------------------------------------------------------------------------------


def test_expected_tokens_per_call_against_closed_form_and_simulation():
    for alpha in (0.0, 0.3, 0.8, 0.95):
        for gamma in (1, 2, 5, 10):
            closed = (1 - alpha ** (gamma + 1)) / (1 - alpha)
            assert expected_tokens_per_call(alpha, gamma) == pytest.approx(closed)
    # Simulation of independent Bernoulli(alpha) acceptances, stopping at the first rejection.
    rng = np.random.default_rng(0)
    acc = rng.random((200_000, 4)) < 0.7
    tokens = np.where(acc.all(1), 4, acc.argmin(1)) + 1
    assert tokens.mean() == pytest.approx(expected_tokens_per_call(0.7, 4), rel=0.01)
    assert np.allclose(expected_tokens_per_call(np.array([0.5, 1.0]), 3), [1.875, 4.0])


def test_speedup_matches_the_chapter_worked_examples():
    # Book, chapter 3: alpha = 0.8, c = 0.1, rho_rtt = 0.8, gamma = 8 -> 4.33 / 2.6 = 1.67;
    # gamma = 1 -> 1.8 / 1.9 = 0.95; Llama 1B draft (c = 0.8) at gamma = 1 and no round trip: 1.8 / 1.8 = 1.
    assert speedup(0.8, 8, 0.1, 0.8) == pytest.approx((1 - 0.8**9) / 0.2 / 2.6)
    assert speedup(0.8, 8, 0.1, 0.8) == pytest.approx(1.665, abs=0.002)
    assert speedup(0.8, 1, 0.1, 0.8) == pytest.approx(1.8 / 1.9)
    assert speedup(0.8, 1, 0.8) == pytest.approx(1.0)
    lat = SpeculativeLatency(draft_step_s=0.0025, target_step_s=0.025, rtt_s=0.020)
    assert lat.speedup(0.8, 8) == pytest.approx(speedup(0.8, 8, 0.1, 0.8))
    assert lat.round_s(8) == pytest.approx(8 * 0.0025 + 0.020 + 0.025)
    assert lat.seconds_per_token(0.8, 8) == pytest.approx(lat.round_s(8) / expected_tokens_per_call(0.8, 8))


def test_best_gamma_by_brute_force_and_the_never_pays_bound():
    for rtt in (0.0, 0.02, 0.05, 0.2):
        lat = SpeculativeLatency(0.0025, 0.025, rtt)
        g = lat.best_gamma(0.8, gamma_max=40)
        assert all(lat.speedup(0.8, g) >= lat.speedup(0.8, h) for h in range(1, 41))
    # rho_rtt >= alpha / (1 - alpha) = 4: no gamma pays, however cheap the draft.
    lat = SpeculativeLatency(0.0, 0.025, 0.100)
    assert max(lat.speedup(0.8, g) for g in range(1, 60)) < 1


# --- bad input ----------------------------------------------------------------------------------------------


def test_bad_inputs_raise_value_error():
    m = TableLM(seed=0)
    x = torch.tensor([0])
    with pytest.raises(ValueError, match="gamma"):
        speculative_generate(m, m, x, 5, 0)
    with pytest.raises(ValueError, match="temperature"):
        speculative_generate(m, m, x, 5, 2, temperature=-0.5)
    with pytest.raises(ValueError, match="temperature"):
        speculative_generate(m, m, x, 5, 2, temperature=float("nan"))
    with pytest.raises(ValueError, match="vocabularies"):
        speculative_generate(TableLM(seed=0, vocab=4), TableLM(seed=1, vocab=3), x, 5, 2)
    with pytest.raises(ValueError, match="vocabularies"):
        speculative_generate(TableLM(seed=0, vocab=3), TableLM(seed=1, vocab=4), x, 5, 2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        speculative_generate(m, m, x, 0, 2)
    with pytest.raises(ValueError, match="gamma"):
        expected_tokens_per_call(0.5, 0)
    with pytest.raises(ValueError, match="alpha"):
        expected_tokens_per_call(1.5, 2)
    with pytest.raises(ValueError, match="c and rho_rtt"):
        speedup(0.5, 2, -1.0)
    with pytest.raises(ValueError):
        SpeculativeLatency(0.01, 0.0, 0.02)


# --- the shipped device/cloud pair -------------------------------------------------------------------------


def test_shipped_pair_tokens_per_call_within_5_percent_of_the_formula():
    # >= 2,000 tokens from prompts in the held-out plays. Real acceptances are not independent; alpha is
    # measured per judged draft (accepted / (accepted + rejected)), the estimator the formula's model implies.
    from collab_lib.datasets.shakespeare import encode, lm_text
    from collab_lib.models import load_char_lm

    device, cloud = load_char_lm("device"), load_char_lm("cloud")
    val = encode(lm_text("validation"))
    stats = spec.SpeculativeStats()
    for i, s in enumerate(torch.linspace(0, len(val) - 200, 24).long().tolist()):
        _, st = speculative_generate(CachedLM(cloud), CachedLM(device), val[s : s + 16], 96, 4, 1.0, generator(0, i))
        stats = stats + st
    assert stats.tokens >= 2000
    assert 0.3 < stats.alpha < 0.95
    assert stats.mean_beta == pytest.approx(stats.alpha, abs=0.05)  # two estimates of the paper's alpha
    assert stats.tokens_per_target_call == pytest.approx(expected_tokens_per_call(stats.alpha, 4), rel=0.05)
