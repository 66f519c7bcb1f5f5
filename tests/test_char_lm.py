"""The character LM: attention against torch's own, the forward pass bit for bit against the same layers called
as modules, the KV cache against the uncached forward pass and its preallocated buffers against concatenation,
the cached callable's rollback, and the shipped checkpoints (sizes, dtypes, losses recomputed on held-out
text)."""

import math

import pytest
import torch
import torch.nn.functional as F

from collab_lib.datasets.shakespeare import HELD_OUT_PLAYS, encode, lm_text, load_roles
from collab_lib.models import (
    CHAR_LM_CONFIGS,
    CachedLM,
    CharLM,
    CharLMConfig,
    KVCache,
    char_lm_checkpoint,
    char_lm_curves,
    load_char_lm,
)

CONFIG = CharLMConfig(vocab_size=13, context_len=48, d_model=24, num_heads=3, num_layers=2, d_ff=40)


def random_lm(seed: int = 0) -> CharLM:
    torch.manual_seed(seed)
    model = CharLM(CONFIG)
    with torch.no_grad():  # larger than the init's std 0.02, so that attention patterns are far from uniform
        for w in model.parameters():
            w.normal_(0, 0.3)
    return model.eval()


def ids(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, CONFIG.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_attention_equals_torch_scaled_dot_product_attention():
    model = random_lm()
    x = torch.randn(2, 17, CONFIG.d_model, generator=torch.Generator().manual_seed(1))
    attn = model.blocks[0].attn
    q, k, v = attn.qkv(x).split(CONFIG.d_model, dim=2)
    q, k, v = (t.view(2, 17, 3, 8).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 17, CONFIG.d_model)
    torch.testing.assert_close(attn(x), attn.proj(y), rtol=1e-5, atol=1e-6)


def _forward_through_modules(model: CharLM, ids: torch.Tensor) -> torch.Tensor:
    """The full forward pass written with nn.Module calls (the layers as torch defines them), no cache."""
    B, T = ids.shape
    x = model.tok_emb(ids) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        a, h = block.attn, block.ln1(x)
        q, k, v = a.qkv(h).split(CONFIG.d_model, dim=2)
        q, k, v = (t.view(B, T, a.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(dim=-1)
        x = x + a.proj((att @ v).transpose(1, 2).reshape(B, T, -1))
        x = x + block.mlp(block.ln2(x))
    return model.ln_f(x) @ model.tok_emb.weight.T


@torch.no_grad()
def test_forward_is_bit_for_bit_the_module_calls():
    # CharLM calls its layers' functions directly (less per-call overhead); the numbers must not change.
    model = random_lm()
    x = ids(3, 33, seed=7)
    assert torch.equal(model(x), _forward_through_modules(model, x))
    cache = model.new_cache()
    steps = torch.cat([model(x[:1, :20], cache)] + [model(x[:1, t : t + 1], cache) for t in range(20, 33)], 1)
    torch.testing.assert_close(steps, _forward_through_modules(model, x[:1]), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_causality_future_tokens_do_not_change_past_logits():
    model = random_lm()
    a = ids(1, 30)
    b = a.clone()
    b[0, 20:] = (b[0, 20:] + 1) % CONFIG.vocab_size
    torch.testing.assert_close(model(a)[:, :20], model(b)[:, :20], rtol=0, atol=0)
    assert not torch.allclose(model(a)[:, 20:], model(b)[:, 20:])


@torch.no_grad()
def test_kv_cache_equals_the_full_forward_pass():
    model = random_lm()
    x = ids(2, 40)
    full = model(x)                                                        # (2, 40, V)
    cache = model.new_cache()
    parts = [model(x[:, :10], cache)]                                      # prefill 10
    parts += [model(x[:, t : t + 1], cache) for t in range(10, 30)]        # 20 single tokens
    parts.append(model(x[:, 30:], cache))                                  # a chunk of 10, as verification does
    assert cache.length == 40
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_cropped_cache_continues_like_the_full_forward_pass():
    model = random_lm()
    x, y = ids(1, 30, seed=2), ids(1, 30, seed=3)
    cache = model.new_cache()
    model(x, cache)
    cache.crop(12)                                                         # keep x[:12], then continue with y
    out = model(y[:, 12:], cache)
    ref = model(torch.cat([x[:, :12], y[:, 12:]], dim=1))[:, 12:]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_cached_lm_matches_full_forward_and_pays_per_new_token():
    model = random_lm()
    cached = CachedLM(model)
    x = ids(1, 40, seed=4)[0]
    for T in range(5, 41, 7):
        torch.testing.assert_close(cached(x[None, :T]), model(x[None, :T]), rtol=1e-5, atol=1e-5)
    assert cached.positions_computed == 40  # every position computed once
    # Roll back to 25 tokens with different continuations: only the changed positions are recomputed.
    y = torch.cat([x[:25], (x[25:33] + 1) % CONFIG.vocab_size])
    before = cached.positions_computed
    torch.testing.assert_close(cached(y[None]), model(y[None]), rtol=1e-5, atol=1e-5)
    assert cached.positions_computed - before == 8
    # The same sequence again still returns its last position's logits.
    torch.testing.assert_close(cached(y[None])[:, -1], model(y[None])[:, -1], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_preallocated_cache_is_bit_identical_to_concatenation():
    # The buffers of capacity context_len (new_cache) against a cache that concatenates at every append: a
    # prefill, single tokens, a chunk, a rollback and a continuation give the same bits.
    model = random_lm()
    x, y = ids(1, 40, seed=5), ids(1, 40, seed=6)

    def decode(cache: KVCache) -> torch.Tensor:
        outs = [model(x[:, :10], cache)] + [model(x[:, t : t + 1], cache) for t in range(10, 20)]
        outs.append(model(x[:, 20:25], cache))
        cache.crop(14)
        outs.append(model(y[:, 14:30], cache))
        return torch.cat(outs, dim=1)

    buffered, concatenating = model.new_cache(), KVCache(CONFIG.num_layers)
    assert buffered.capacity == CONFIG.context_len and concatenating.capacity is None
    assert torch.equal(decode(buffered), decode(concatenating))
    assert buffered.length == concatenating.length == 30
    for a, b in zip(buffered.keys + buffered.values, concatenating.keys + concatenating.values):
        assert torch.equal(a, b)


def test_cache_refuses_more_tokens_than_its_capacity():
    cache = KVCache(1, capacity=4)
    k = torch.zeros(1, 2, 3, 5)
    cache.append(0, k, k)
    with pytest.raises(ValueError, match="capacity"):
        cache.append(0, k, k)
    with pytest.raises(ValueError, match="num_layers"):
        KVCache(0)


def test_shipped_models_load_in_the_asked_dtype_and_the_cached_lm_keeps_it():
    prompt = encode("To be, or not")[None]
    for dtype in (torch.float32, torch.float64):
        model = load_char_lm("device", dtype=dtype)
        assert all(p.dtype == dtype for p in model.parameters())
        out = CachedLM(model)(prompt)
        assert out.dtype == dtype
        torch.testing.assert_close(out, model(prompt), rtol=0, atol=0)
    # The weights are the same bf16 values in both dtypes.
    w32, w64 = load_char_lm("cloud", dtype=torch.float32), load_char_lm("cloud", dtype=torch.float64)
    assert all(torch.equal(a.double(), b) for a, b in zip(w32.parameters(), w64.parameters()))
    with pytest.raises(ValueError, match="dtype"):
        load_char_lm("device", dtype=torch.float16)


def test_bad_inputs_raise_value_error():
    model = random_lm()
    with pytest.raises(ValueError, match="context_len"):
        model(ids(1, CONFIG.context_len + 1))
    cache = model.new_cache()
    model(ids(1, 40), cache)
    with pytest.raises(ValueError, match="context_len"):
        model(ids(1, 9), cache)
    with pytest.raises(ValueError, match="multiple"):
        CharLMConfig(d_model=10, num_heads=3)
    with pytest.raises(ValueError, match="shape"):
        CachedLM(model)(ids(2, 5))
    with pytest.raises(ValueError, match="unknown"):
        load_char_lm("phone")


# --- the shipped checkpoints -----------------------------------------------------------------------------


def test_shipped_models_have_the_stated_sizes_and_small_files():
    device, cloud = load_char_lm("device"), load_char_lm("cloud")
    assert 100_000 <= device.num_params <= 300_000
    assert 2_000_000 <= cloud.num_params <= 5_000_000
    curves = char_lm_curves()
    for size, model in (("device", device), ("cloud", cloud)):
        assert curves["models"][size]["num_params"] == model.num_params
        assert curves["models"][size]["config"] == CHAR_LM_CONFIGS[size].__dict__
        # bf16: two bytes a parameter, plus the pickle's overhead.
        assert char_lm_checkpoint(size).stat().st_size < 2 * model.num_params + 100_000


@torch.no_grad()
def test_cloud_model_is_clearly_better_on_held_out_plays_and_the_record_agrees():
    assert {r.play for r in load_roles()} >= set(HELD_OUT_PLAYS)
    text = lm_text("validation")
    assert "\n\n".join(r.text for r in load_roles() if r.play == HELD_OUT_PLAYS[0]) in text
    val = encode(text)
    block = 128
    # 48 non-overlapping windows spread over the held-out text: an independent estimate of the record's loss.
    starts = torch.linspace(0, len(val) - block - 1, 48).long()
    windows = torch.stack([val[s : s + block + 1] for s in starts.tolist()])
    losses = {}
    for size in ("device", "cloud"):
        logits = load_char_lm(size)(windows[:, :-1])
        losses[size] = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()
        recorded = char_lm_curves()["models"][size]["final_val_loss"]
        assert losses[size] == pytest.approx(recorded, abs=0.08)
    assert losses["cloud"] < losses["device"] - 0.15
    # Both are far better than a uniform guess over the 80 characters (ln 80 = 4.38 nats).
    assert losses["device"] < 2.2
