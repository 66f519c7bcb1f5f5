"""The Shakespeare users: shipped text decodes, windows are the text shifted by one, users are roles."""

import gzip
import json

import pytest
import torch

from collab_lib.datasets.shakespeare import (
    DATA,
    VOCAB,
    decode,
    encode,
    load_roles,
    next_char_samples,
    shakespeare_users,
)


def test_vocabulary_covers_the_shipped_text_and_round_trips():
    roles = load_roles()
    assert len(roles) > 1000 and len(VOCAB) == len(set(VOCAB)) == 80
    text = "".join(r.text for r in roles[:50])
    assert set(text) <= set(VOCAB)
    assert decode(encode(text)) == text
    with pytest.raises(ValueError, match="vocabulary"):
        encode("café")


def test_roles_match_the_raw_file_and_include_hamlet():
    with gzip.open(DATA, "rt") as f:
        raw = [json.loads(line) for line in f]
    assert [(r.play, r.role) for r in load_roles()] == [(r["play"], r["role"]) for r in raw]
    hamlet = next(r for r in load_roles() if (r.play, r.role) == ("hamlet", "HAMLET"))
    assert "To be, or not to be" in hamlet.text


def test_windows_predict_the_next_character():
    ids = encode("abcdefgh")
    x, y = next_char_samples(ids, seq_len=3)
    assert [decode(row) for row in x] == ["abc", "bcd", "cde", "def", "efg"]
    assert decode(y) == "defgh"
    x2, y2 = next_char_samples(ids, seq_len=3, stride=2)
    assert [decode(row) for row in x2] == ["abc", "cde", "efg"] and decode(y2) == "dfh"
    assert next_char_samples(encode("ab"), seq_len=3)[0].shape == (0, 3)


def test_users_are_roles_with_enough_text_and_the_draw_is_seeded():
    a = shakespeare_users(num_users=20, seed=1, seq_len=40, min_samples=100, max_samples_per_user=300)
    b = shakespeare_users(num_users=20, seed=1, seq_len=40, min_samples=100, max_samples_per_user=300)
    c = shakespeare_users(num_users=20, seed=2, seq_len=40, min_samples=100, max_samples_per_user=300)
    assert a.names == b.names != c.names
    assert len(a) == 20 and all(100 <= n <= 300 for n in a.sizes.tolist())
    roles = {f"{r.play}/{r.role}": r.text for r in load_roles()}
    for name, x, y in zip(a.names, a.xs, a.ys):
        text = roles[name]
        assert decode(x[0]) == text[:40] and decode(y[:1]) == text[40]


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_users"):
        shakespeare_users(num_users=100_000)
    with pytest.raises(ValueError, match="min_samples"):
        shakespeare_users(min_samples=0)
    with pytest.raises(ValueError, match="seq_len"):
        next_char_samples(torch.arange(5), seq_len=0)
