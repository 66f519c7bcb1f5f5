"""Next-character prediction where every speaking role of a Shakespeare play is one user.

This is how LEAF (Caldas et al., 2018, arXiv:1812.01097) builds its Shakespeare benchmark: a user is a
(play, role) pair, its data everything the role says, and a sample an ``seq_len``-character window with the
character that follows as the target (LEAF: 80 characters). Roles differ in how much they say by orders of
magnitude, which makes the data set naturally unbalanced and non-IID.

The text ships with the package (``_data/shakespeare.jsonl.gz``, public-domain plays; made by
``data/make_shakespeare.py``, which names its source), so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from collab_lib._validate import positive_int
from collab_lib.datasets.users import UserDatasets

DATA = Path(__file__).parent / "_data" / "shakespeare.jsonl.gz"
VOCAB = "\n !\"$&'*,-.0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]_abcdefghijklmnopqrstuvwxyz"
"""The 80 characters that occur in the shipped text; a character's index is its token id."""
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}


@dataclass(frozen=True)
class Role:
    play: str
    role: str
    text: str


@lru_cache(maxsize=1)
def load_roles() -> tuple[Role, ...]:
    """Every (play, role) with its text, in file order (plays alphabetically, roles alphabetically)."""
    with gzip.open(DATA, "rt", encoding="ascii") as f:
        return tuple(Role(**json.loads(line)) for line in f)


def encode(text: str) -> torch.Tensor:
    """Token ids (int64) of ``text``; a character outside :data:`VOCAB` is an error."""
    try:
        return torch.tensor([CHAR_TO_ID[c] for c in text], dtype=torch.int64)
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None


def decode(ids: torch.Tensor) -> str:
    """Turn a 1-D tensor of vocabulary ids back into text (the inverse of :func:`encode`)."""
    return "".join(VOCAB[i] for i in ids.tolist())


def next_char_samples(ids: torch.Tensor, seq_len: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of ``seq_len`` token ids and the id that follows each: x (N, seq_len), y (N,).

    Windows start every ``stride`` characters; N = floor((len - seq_len - 1) / stride) + 1, or 0.
    """
    positive_int("seq_len", seq_len)
    positive_int("stride", stride)
    if len(ids) <= seq_len:
        return torch.empty(0, seq_len, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    windows = ids.unfold(0, seq_len + 1, stride)  # (N, seq_len + 1), a view
    return windows[:, :-1].contiguous(), windows[:, -1].contiguous()


def shakespeare_users(
    num_users: int | None = None,
    seed: int = 0,
    *,
    seq_len: int = 80,
    stride: int = 1,
    min_samples: int = 64,
    max_samples_per_user: int | None = None,
) -> UserDatasets:
    """One user per role with at least ``min_samples`` windows; ``num_users`` of them drawn at random.

    ``max_samples_per_user`` keeps each user's first windows only (a role's text in order), so that labs
    stay small; ``stride`` > 1 thins overlapping windows.
    """
    positive_int("min_samples", min_samples)
    if max_samples_per_user is not None and max_samples_per_user < min_samples:
        raise ValueError(f"max_samples_per_user ({max_samples_per_user}) must be >= min_samples ({min_samples})")
    roles = load_roles()
    # Windows a role yields, from its length alone (see next_char_samples).
    counts = np.array([max(0, (len(r.text) - seq_len - 1) // stride + 1) for r in roles])
    eligible = np.flatnonzero(counts >= min_samples)
    if num_users is None:
        chosen = eligible
    else:
        if not 1 <= num_users <= len(eligible):
            raise ValueError(f"num_users must be between 1 and {len(eligible)} (roles with >= {min_samples} samples)")
        chosen = np.sort(np.random.default_rng(seed).choice(eligible, size=num_users, replace=False))
    xs, ys, names = [], [], []
    for i in chosen:
        x, y = next_char_samples(encode(roles[i].text), seq_len, stride)
        if max_samples_per_user is not None:
            x, y = x[:max_samples_per_user], y[:max_samples_per_user]
        xs.append(x)
        ys.append(y)
        names.append(f"{roles[i].play}/{roles[i].role}")
    return UserDatasets(tuple(xs), tuple(ys), tuple(names))


HELD_OUT_PLAYS = ("macbeth", "the-tempest", "twelfth-night")
"""Plays held out from language-model training (about 6% of the characters): validation text and prompts
that the shipped character LMs (:func:`collab_lib.models.load_char_lm`) never saw."""


def lm_text(split: str) -> str:
    """One stream of text for language modelling: every role's text, in file order, separated by a blank
    line. ``split="train"`` gives the plays not in :data:`HELD_OUT_PLAYS`, ``"validation"`` those three."""
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    held_out = split == "validation"
    return "\n\n".join(r.text for r in load_roles() if (r.play in HELD_OUT_PLAYS) == held_out)
