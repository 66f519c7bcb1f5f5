"""A personal assistant that answers on the phone or in the cloud: routing by difficulty, privacy and network.

The phone holds a small language model, the cloud a large one (the shipped character LMs,
:func:`collab_lib.models.load_char_lm`). For each request the assistant picks one of three modes:

* ``"device"``: the small model answers alone: no round trip, nothing leaves the phone, lower quality;
* ``"cloud"``: the prompt goes up, the large model answers: best quality, one cloud step per token;
* ``"speculative"``: the phone drafts, the cloud verifies (:mod:`collab_lib.system.speculative`); with
  greedy decoding the answer is *exactly* the cloud's, for fewer cloud passes but one round trip per round.

:func:`route` is the policy: a :class:`~collab_lib.system.cascade.Router`'s score and a threshold decide
which requests need the large model (:func:`collab_lib.system.cascade.route`, RouteLLM's thresholded score,
Ong et al., 2024 [ong2024routellm]; Hybrid LLM routes between an edge model and a cloud model the same way,
Ding et al., ICLR 2024 [ding2024hybrid]), and the constraints apply on top (:func:`cloud_eligible`): a
request marked private, or made while offline, stays on the device whatever its score. A threshold for a
budget comes from :func:`~collab_lib.system.cascade.calibrate_threshold` over the eligible requests.

Stand-ins, labelled: a "request" is a 64-character passage of a held-out play and its "answer" the next
characters; *quality* is the share of the answer's characters the model predicts correctly (top-1, given
the true text so far, "teacher-forced"), a measurable proxy for answer quality on a character LM. The
*difficulty* is the device model's mean negative log-likelihood of the prompt, in nats per character:
the phone computes it while it reads the prompt, before any decision; :func:`difficulty_score` maps it to
a router's score in [0, 1]. Privacy marks are drawn at random (a user's choice, not inferred from the text).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from collab_lib.models import CharLM
from collab_lib.system import cascade
from collab_lib.system.cascade import Router

MODES = ("device", "cloud", "speculative")
"""Codes of :func:`route`'s output: 0 = device, 1 = cloud, 2 = speculative."""


@dataclass(frozen=True)
class Requests:
    """``n`` requests: (n, prompt_len) prompts and (n, answer_len) reference answers, int64 token ids."""

    prompts: torch.Tensor
    answers: torch.Tensor


def make_requests(text_ids: torch.Tensor, n: int, prompt_len: int, answer_len: int, seed: int) -> Requests:
    """``n`` requests cut from ``text_ids`` (T,) at distinct random offsets drawn from ``seed``."""
    for name, v in (("n", n), ("prompt_len", prompt_len), ("answer_len", answer_len)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    span = prompt_len + answer_len
    room = len(text_ids) - span
    if room < n:
        raise ValueError(f"text of {len(text_ids)} tokens is too short for {n} requests of {span}")
    starts = np.sort(np.random.default_rng(seed).choice(room, size=n, replace=False))
    windows = torch.stack([text_ids[s:s + span] for s in starts.tolist()])           # (n, span)
    return Requests(windows[:, :prompt_len].clone(), windows[:, prompt_len:].clone())


@torch.no_grad()
def score_requests(model: CharLM, requests: Requests) -> tuple[np.ndarray, np.ndarray]:
    """For each request: (n,) mean NLL of the prompt (nats/char, from the first position on) and (n,)
    teacher-forced top-1 accuracy on the answer. One forward pass over prompt + answer."""
    ids = torch.cat([requests.prompts, requests.answers], dim=1)                      # (n, P + A)
    logits = model(ids[:, :-1])                                                       # (n, P + A - 1, V)
    P = requests.prompts.shape[1]
    logp = torch.log_softmax(logits.double(), dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]                                  # (n, P + A - 1)
    prompt_nll = nll[:, : P - 1].mean(dim=1)
    correct = logits[:, P - 1:].argmax(-1) == ids[:, P:]                              # (n, A)
    return prompt_nll.numpy(), correct.double().mean(dim=1).numpy()


def speculative_rounds(target: CharLM, draft: CharLM, requests: Requests, gamma: int) -> np.ndarray:
    """(n,) cloud passes (verification rounds) to answer each request greedily with speculative decoding,
    ``answer_len`` new tokens, drafting ``gamma`` per round. Greedy: the answer is the cloud's own.

    The count is what :func:`~collab_lib.system.speculative.speculative_generate` gives at temperature 0
    (``tests/test_applications.py`` compares the two), computed for all requests at once instead of one
    model call per drafted token. Greedy, a draft token is accepted exactly when it equals the target's,
    so every accepted prefix is a prefix of the target's greedy answer y, and while its drafts are accepted
    the draft model sees exactly y: its i-th draft of a round from position L is its greedy prediction
    after y[:L + i], and the first draft that differs from y ends the round. So (a) decode y greedily with
    the target, batched; (b) run the draft once over prompt + y, teacher-forced; (c) replay the rounds:
    from L, n = the number of matching predictions at L, L + 1, ... (at most gamma), then L += n + 1.
    """
    if isinstance(gamma, bool) or not isinstance(gamma, int) or gamma < 1:
        raise ValueError(f"gamma must be an int >= 1, got {gamma!r}")
    A = requests.answers.shape[1]
    answer = greedy_answers(target, requests.prompts, A)                            # (n, A): y
    with torch.no_grad():
        ids = torch.cat([requests.prompts, answer], dim=1)                              # (n, P + A)
        guess = draft(ids[:, :-1]).argmax(-1)                                           # (n, P + A - 1)
    P = requests.prompts.shape[1]
    match = (guess[:, P - 1:] == answer).numpy()                                        # (n, A): drafts that y accepts
    rounds = np.zeros(len(answer))
    for k, row in enumerate(match):
        L = 0
        while L < A:
            n = 0
            while n < gamma and L + n < A and row[L + n]:
                n += 1
            L, rounds[k] = L + n + 1, rounds[k] + 1
    return rounds


@torch.no_grad()
def greedy_answers(model: CharLM, prompts: torch.Tensor, answer_len: int) -> torch.Tensor:
    """(n, answer_len) greedy continuations of (n, P) ``prompts``: batched decoding with a KV cache."""
    cache = model.new_cache()
    logits = model(prompts, cache)[:, -1]                                               # (n, V)
    out = []
    for _ in range(answer_len):
        nxt = logits.argmax(-1, keepdim=True)                                           # (n, 1)
        out.append(nxt)
        if len(out) < answer_len:
            logits = model(nxt, cache)[:, -1]
    return torch.cat(out, dim=1)


def difficulty_score(prompt_nll: np.ndarray) -> np.ndarray:
    """(n,) router scores in [0, 1) from the device's prompt NLL (nats/char, :func:`score_requests`).

    1 - exp(-NLL): one minus the geometric mean of the probabilities the device gave the prompt's
    characters. It is increasing in the NLL, so it ranks requests as the NLL does.
    """
    d = np.asarray(prompt_nll, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not (d >= 0).all():  # also rejects NaN
        raise ValueError(f"prompt_nll must be a non-empty (n,) array of NLLs >= 0, got shape {d.shape}")
    return -np.expm1(-d)


def cloud_eligible(private: np.ndarray, online: np.ndarray) -> np.ndarray:
    """(n,) bool: True where a request may leave the phone, neither marked private nor made offline."""
    priv, on = np.asarray(private), np.asarray(online)
    if priv.dtype != bool or on.dtype != bool or priv.ndim != 1 or on.shape != priv.shape:
        raise ValueError(f"private and online must be (n,) bool arrays alike, got {priv.dtype} {priv.shape} "
                         f"and {on.dtype} {on.shape}")
    return ~priv & on


def route(router: Router, x: torch.Tensor | np.ndarray, private: np.ndarray, online: np.ndarray, threshold: float,
          hard_mode: str = "cloud") -> np.ndarray:
    """(n,) int codes into :data:`MODES`: ``hard_mode`` (``"cloud"`` or ``"speculative"``) where the
    request is :func:`cloud_eligible` and ``router.score(x) >= threshold``, else device (0).

    ``x`` is whatever ``router`` scores, one row per request: the scores themselves for a
    :class:`~collab_lib.system.cascade.PrecomputedRouter` (e.g. :func:`difficulty_score`).
    """
    if hard_mode not in ("cloud", "speculative"):
        raise ValueError(f"hard_mode must be 'cloud' or 'speculative', got {hard_mode!r}")
    eligible = cloud_eligible(private, online)                                      # (n,) the constraints
    needs_large = cascade.route(router.score(x), threshold).numpy()                 # (n,) the router's call
    if needs_large.shape != eligible.shape:
        raise ValueError(f"router gave {needs_large.shape[0]} scores for {eligible.shape[0]} requests")
    return np.where(needs_large & eligible, MODES.index(hard_mode), 0)


@dataclass(frozen=True)
class AssistantCosts:
    """Per-token step times and per-request round trips: (n,) ``rtt_s`` (any value where offline)."""

    device_step_s: float
    cloud_step_s: float
    rtt_s: np.ndarray
    gamma: int

    def __post_init__(self) -> None:
        if not self.device_step_s > 0 or not self.cloud_step_s > 0:
            raise ValueError(f"device_step_s and cloud_step_s must be > 0, got {self.device_step_s}, "
                             f"{self.cloud_step_s}")
        if not isinstance(self.gamma, int) or self.gamma < 1:
            raise ValueError(f"gamma must be an int >= 1, got {self.gamma!r}")


@dataclass(frozen=True)
class AssistantOutcome:
    """Means over requests of one routing: quality (0..1), cloud passes and latency (s); shares per mode."""

    quality: float
    cloud_passes: float
    latency_s: float
    share: dict[str, float]


def evaluate(modes: np.ndarray, device_quality: np.ndarray, cloud_quality: np.ndarray, rounds: np.ndarray,
             answer_len: int, costs: AssistantCosts) -> AssistantOutcome:
    """Quality, cloud passes and latency of a routing ``modes`` (from :func:`route`).

    Per request with A = ``answer_len`` tokens and R = ``rounds`` speculative rounds:

    ============  =================  ============  ==========================================
    mode          quality            cloud passes  latency
    ============  =================  ============  ==========================================
    device        device_quality     0             A t_d
    cloud         cloud_quality      A             RTT + A t_c (the answer streams back)
    speculative   cloud_quality      R             R (gamma t_d + RTT + t_c)
    ============  =================  ============  ==========================================

    Prefill and the bytes of the prompt are left out (a 64-character prompt is under 100 bytes).
    """
    m = np.asarray(modes)
    arrays = (device_quality, cloud_quality, rounds, costs.rtt_s)
    if any(np.shape(a) != m.shape for a in arrays) or m.ndim != 1:
        raise ValueError(f"modes, qualities, rounds and costs.rtt_s must all be (n,) = {m.shape}")
    if not np.isin(m, (0, 1, 2)).all():
        raise ValueError("modes must be codes 0, 1, 2 (see MODES)")
    q = np.where(m == 0, device_quality, cloud_quality)
    passes = np.select([m == 1, m == 2], [answer_len, rounds], 0.0)
    lat = np.select(
        [m == 0, m == 1],
        [answer_len * costs.device_step_s, costs.rtt_s + answer_len * costs.cloud_step_s],
        rounds * (costs.gamma * costs.device_step_s + costs.rtt_s + costs.cloud_step_s),
    )
    share = {name: float((m == k).mean()) for k, name in enumerate(MODES)}
    return AssistantOutcome(float(q.mean()), float(passes.mean()), float(lat.mean()), share)
