"""Speculative decoding: a small draft model proposes, a large target model verifies, the output is the target's.

Speculative sampling (Leviathan, Kalman and Matias, ICML 2023, arXiv:2211.17192, Algorithm 1; Chen et al.,
2023, arXiv:2302.01318, the same rule): in each round the draft M_q proposes gamma tokens x_1..x_gamma
autoregressively, x_i ~ q_i; the target M_p scores the prefix extended by all of them in *one* call, which
gives p_1..p_{gamma+1}. With r_i ~ U(0, 1), x_i is accepted while r_i < p_i(x_i) / q_i(x_i), i.e. with
probability min(1, p/q); at the first rejection, position n + 1, one token is drawn from the residual

    p'(x) = norm(max(0, p_{n+1}(x) - q_{n+1}(x))),

and if all gamma drafts are accepted a bonus token is drawn from p_{gamma+1}. Every round so yields between 1
and gamma + 1 tokens for one target call, and the tokens are distributed exactly as if the target had
sampled them one by one (``tests/test_speculative.py`` checks this with a chi-square test).

Variable names follow the paper: ``gamma``, ``p`` (target), ``q`` (draft), ``alpha``, ``c``. With the
acceptance rate alpha = E[beta], beta = sum_x min(p(x), q(x)), and acceptances taken as independent,

    E[tokens per target call] = (1 - alpha^(gamma + 1)) / (1 - alpha)                 (paper, Section 3)
    speed-up                  = (1 - alpha^(gamma + 1)) / ((1 - alpha)(gamma c + 1))  (paper, Section 3)

with c the draft's step time over the target's. Across a device-cloud link each round also pays one round
trip; :class:`SpeculativeLatency` adds it as rho_rtt = RTT / t_target extra target steps per round.

Departures from the paper, labelled:

* Greedy decoding (``temperature=0``) is sampling from one-hot distributions at the argmax: acceptance then
  means the draft's token equals the target's, and the residual is the target's one-hot, as the paper notes.
* If the residual is all zeros (only possible when p = q, where no rejection can happen in exact arithmetic)
  we sample from p (not in Algorithm 1, but needed for a well-defined draw in floating point).
* Batch size 1. A model is any callable ``(1, T) token ids -> (1, T, V) logits``; wrap a
  :class:`~collab_lib.models.CharLM` in :class:`~collab_lib.models.CachedLM` so that re-scoring a
  growing prefix costs only the new positions.
* alpha is *measured* two ways (:class:`SpeculativeStats`): the share of judged drafts that were accepted
  (a draft after the first rejection of a round is never judged), and the mean of beta at the judged
  positions. Real acceptances are not independent (hard passages reject in runs), so the formula is a
  model to compare with, not an identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from collab_lib._validate import positive_int

LM = Callable[[torch.Tensor], torch.Tensor]
"""A language model: ``(1, T)`` int64 token ids -> ``(1, T, V)`` next-token logits."""


# --- the math: pure functions ----------------------------------------------------------------------------


def probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Next-token distributions (..., V) from logits (..., V): softmax(logits / temperature), or one-hot at
    the argmax when ``temperature == 0`` (greedy)."""
    _check_temperature(temperature)
    dtype = torch.promote_types(logits.dtype, torch.float32)  # half-precision logits in float32
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(dtype)
    return torch.softmax(logits.to(dtype) / temperature, dim=-1)


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)) over the last dimension (V,): where a rejected draft's replacement is drawn from."""
    r = (p - q).clamp_min(0)
    total = r.sum(-1, keepdim=True)
    if (total == 0).any():  # p == q: rejection impossible in exact arithmetic (labelled departure)
        return torch.where(total == 0, p, r / total.clamp_min(torch.finfo(r.dtype).tiny))
    return r / total


def speculative_sampling(
    draft_tokens: torch.Tensor, q: torch.Tensor, p: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """One round of Algorithm 1's accept/reject step.

    Parameters
    ----------
    draft_tokens:
        (gamma,) the draft's tokens x_1..x_gamma.
    q:
        (gamma, V) the draft's distributions q_i that x_i was drawn from.
    p:
        (gamma + 1, V) the target's distributions at the same positions plus one more.
    generator:
        Source of r_1..r_gamma ~ U(0, 1) and of the final draw.

    Returns
    -------
    tokens, n:
        (n + 1,) the accepted drafts x_1..x_n followed by one token from the residual p' (n < gamma) or
        from p_{gamma+1} (n = gamma); n is the number of accepted drafts.
    """
    gamma = draft_tokens.shape[0]
    if q.shape[0] != gamma or p.shape[0] != gamma + 1:
        raise ValueError(f"need q of shape (gamma, V) and p of (gamma + 1, V) for gamma={gamma}, "
                         f"got {tuple(q.shape)} and {tuple(p.shape)}")
    if q.shape[-1] != p.shape[-1]:
        raise ValueError(f"draft and target vocabularies differ: {q.shape[-1]} vs {p.shape[-1]}")
    i = torch.arange(gamma)
    p_x, q_x = p[i, draft_tokens], q[i, draft_tokens]                 # (gamma,)
    r = torch.rand(gamma, generator=generator)
    accepted = r * q_x < p_x                                          # r < p/q, without dividing by q
    rejected = (~accepted).nonzero()
    n = int(rejected[0]) if len(rejected) else gamma
    p_prime = residual_distribution(p[n], q[n]) if n < gamma else p[gamma]
    t = torch.multinomial(p_prime, 1, generator=generator)
    return torch.cat([draft_tokens[:n], t]), n


def _check_temperature(temperature) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 <= temperature < float("inf"):  # also rejects NaN
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")


def _check_alpha(alpha) -> np.ndarray:
    a = np.asarray(alpha, dtype=np.float64)
    if np.isnan(a).any() or (a < 0).any() or (a > 1).any():
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    return a


def expected_tokens_per_call(alpha, gamma: int):
    """(1 - alpha^(gamma+1)) / (1 - alpha) = 1 + alpha + ... + alpha^gamma: tokens a round yields on average
    when each draft is accepted independently with probability alpha (gamma + 1 at alpha = 1).
    ``alpha`` may be a float or an array."""
    positive_int("gamma", gamma)
    a = _check_alpha(alpha)
    out = sum(a**i for i in range(gamma + 1))  # the geometric sum, exact at alpha = 1 too
    return float(out) if out.ndim == 0 else out


def speedup(alpha, gamma: int, c: float, rho_rtt: float = 0.0):
    """Expected speed-up over decoding with the target alone: tokens per round over the round's cost in
    target steps, (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1 + rho_rtt)).

    ``c`` = draft step time / target step time (the paper's c); ``rho_rtt`` = round-trip time / target step
    time, 0 when both models sit on one accelerator (the paper's setting)."""
    if not c >= 0 or not rho_rtt >= 0:
        raise ValueError(f"c and rho_rtt must be >= 0, got {c}, {rho_rtt}")
    return expected_tokens_per_call(alpha, gamma) / (gamma * c + 1 + rho_rtt)


# --- the decoding loop -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeculativeStats:
    """Counts of a speculative generation; add two with ``+`` to pool generations.

    ``tokens`` counts what the rounds produced (accepted drafts + one token per round), before the output is
    cut to ``max_new_tokens``; ``judged`` = accepted + rejected drafts (a round judges up to its first
    rejection); ``beta_sum`` sums beta = sum_x min(p(x), q(x)) over the judged positions.
    """

    rounds: int = 0
    draft_calls: int = 0
    drafted: int = 0
    accepted: int = 0
    rejected: int = 0
    tokens: int = 0
    beta_sum: float = 0.0

    def __add__(self, other: SpeculativeStats) -> SpeculativeStats:
        return SpeculativeStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def target_calls(self) -> int:
        return self.rounds

    @property
    def judged(self) -> int:
        return self.accepted + self.rejected

    @property
    def alpha(self) -> float:
        """Acceptance rate per judged draft: accepted / (accepted + rejected)."""
        return self.accepted / self.judged if self.judged else float("nan")

    @property
    def mean_beta(self) -> float:
        """The paper's alpha = E[beta], estimated at the judged positions."""
        return self.beta_sum / self.judged if self.judged else float("nan")

    @property
    def tokens_per_target_call(self) -> float:
        return self.tokens / self.rounds if self.rounds else float("nan")


def _prefix(prefix: torch.Tensor) -> torch.Tensor:
    if prefix.ndim == 2 and prefix.shape[0] == 1:
        prefix = prefix[0]
    if prefix.ndim != 1 or len(prefix) < 1:
        raise ValueError(f"prefix must be a non-empty (T,) or (1, T) tensor of token ids, got {tuple(prefix.shape)}")
    return prefix.to(torch.int64)


@torch.no_grad()
def speculative_generate(
    target: LM,
    draft: LM,
    prefix: torch.Tensor,
    max_new_tokens: int,
    gamma: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, SpeculativeStats]:
    """Extend ``prefix`` (T0,) by ``max_new_tokens`` tokens distributed as the target's, drafting ``gamma``
    tokens per round.

    Returns the (T0 + max_new_tokens,) token ids and the :class:`SpeculativeStats`. The models see sequences
    of up to T0 + max_new_tokens + gamma - 1 tokens (the last round may overshoot; its surplus is cut).
    Each model is first called once on the prefix alone (the prefill, which also checks that the two
    vocabularies agree); the stats count the decoding calls after it.
    """
    positive_int("gamma", gamma)
    _check_temperature(temperature)
    positive_int("max_new_tokens", max_new_tokens)
    seq = _prefix(prefix)
    end = len(seq) + max_new_tokens
    # Prefill both models on the prefix (a CachedLM keeps it, so later calls do not pay for it again) and
    # check the vocabularies before any draft token reaches the target.
    V_q, V_p = draft(seq[None]).shape[-1], target(seq[None]).shape[-1]
    if V_q != V_p:
        raise ValueError(f"draft and target vocabularies differ: {V_q} vs {V_p}")
    rounds = accepted = rejected = tokens = 0
    beta_sum = 0.0
    while len(seq) < end:
        L = len(seq)
        x, qs = seq, []
        for _ in range(gamma):                                     # draft x_1..x_gamma, x_i ~ q_i
            q_i = probabilities(draft(x[None])[0, -1], temperature)            # (V,)
            qs.append(q_i)
            x = torch.cat([x, torch.multinomial(q_i, 1, generator=generator)])
        q = torch.stack(qs)                                                     # (gamma, V)
        p = probabilities(target(x[None])[0, L - 1:], temperature)              # (gamma + 1, V), one call
        new, n = speculative_sampling(x[L:], q, p, generator)
        judged = min(n + 1, gamma)
        beta_sum += torch.minimum(p[:judged], q[:judged]).sum().item()   # beta at each judged position
        rounds, accepted, rejected, tokens = rounds + 1, accepted + n, rejected + (n < gamma), tokens + n + 1
        seq = torch.cat([seq, new])
    stats = SpeculativeStats(rounds=rounds, draft_calls=gamma * rounds, drafted=gamma * rounds,
                             accepted=accepted, rejected=rejected, tokens=tokens, beta_sum=beta_sum)
    return seq[:end], stats


@torch.no_grad()
def autoregressive_generate(
    model: LM,
    prefix: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The baseline: one model call per token. Returns the (T0 + max_new_tokens,) token ids."""
    _check_temperature(temperature)
    positive_int("max_new_tokens", max_new_tokens)
    seq = _prefix(prefix)
    for _ in range(max_new_tokens):
        probs = probabilities(model(seq[None])[0, -1], temperature)
        seq = torch.cat([seq, torch.multinomial(probs, 1, generator=generator)])
    return seq


# --- device-cloud latency ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeculativeLatency:
    """Draft on the device, target in the cloud, one round trip per verification round.

    A round costs ``gamma * draft_step_s + rtt_s + target_step_s``: gamma draft decoding steps on the
    device, the drafts sent up and the verdict sent back (a few token ids: the round trip dominates, the
    transfer is left out), and one target pass over gamma + 1 positions, taken to cost one decoding step
    (true while the pass stays memory-bound, chapter 2). The baseline is the cloud decoding alone, one
    target step per token, with the answer streamed to the device (its round trip is paid once, not per
    token, and is left out of both).
    """

    draft_step_s: float
    target_step_s: float
    rtt_s: float

    def __post_init__(self) -> None:
        if not self.draft_step_s >= 0 or not self.target_step_s > 0 or not self.rtt_s >= 0:
            raise ValueError("draft_step_s and rtt_s must be >= 0 and target_step_s > 0, got "
                             f"{self.draft_step_s}, {self.target_step_s}, {self.rtt_s}")

    @property
    def c(self) -> float:
        return self.draft_step_s / self.target_step_s

    @property
    def rho_rtt(self) -> float:
        return self.rtt_s / self.target_step_s

    def round_s(self, gamma: int) -> float:
        positive_int("gamma", gamma)
        return gamma * self.draft_step_s + self.rtt_s + self.target_step_s

    def seconds_per_token(self, alpha, gamma: int):
        return self.round_s(gamma) / expected_tokens_per_call(alpha, gamma)

    def speedup(self, alpha, gamma: int):
        """Over the cloud decoding alone; > 1 means speculative decoding pays."""
        return speedup(alpha, gamma, self.c, self.rho_rtt)

    def best_gamma(self, alpha: float, gamma_max: int = 64) -> int:
        """The gamma in 1..gamma_max with the highest speed-up (the smallest on a tie)."""
        positive_int("gamma_max", gamma_max)
        return max(range(1, gamma_max + 1), key=lambda g: (self.speedup(alpha, g), -g))
