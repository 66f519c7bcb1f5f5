"""Chapter 2's lab checks accept an independent reference, say "not attempted" for None and reject wrong answers."""

import numpy as np
import pytest
import torch

from collab_lib.exercises import hardware as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- check_roofline_split -------------------------------------------------------------------------------

def plain_split(layers, peak, bw, eff):
    """Per layer the longer of compute and memory time over the efficiency, added to the roof that bounds it."""
    compute = memory = 0.0
    for p in layers:
        c, m = p.flops / peak, (p.param_bytes + p.input_bytes + p.output_bytes) / bw
        if m > c:
            memory += m / eff
        else:
            compute += c / eff
    return compute, memory


def test_roofline_split_check():
    assert checks.check_roofline_split(plain_split).startswith("correct")
    assert checks.check_roofline_split(plain_split, hidden=True).startswith("correct")
    assert checks.check_roofline_split(lambda *a: np.array(plain_split(*a))).startswith("correct")
    assert checks.check_roofline_split(lambda *a: torch.tensor(plain_split(*a), dtype=torch.float64)).startswith(
        "correct")
    assert checks.check_roofline_split(lambda *a: None).startswith("not attempted yet")


def test_roofline_split_check_rejects_common_mistakes():
    with pytest.raises(AssertionError, match="swapped"):
        checks.check_roofline_split(lambda *a: plain_split(*a)[::-1])
    with pytest.raises(AssertionError, match="do not multiply"):
        checks.check_roofline_split(lambda layers, peak, bw, eff: tuple(
            x * eff * eff for x in plain_split(layers, peak, bw, eff)))
    with pytest.raises(AssertionError, match="summed over all layers"):
        checks.check_roofline_split(lambda layers, peak, bw, eff: (
            sum(p.flops / peak / eff for p in layers), sum(p.bytes_moved / bw / eff for p in layers)))
    with pytest.raises(AssertionError, match="expected \\(2,\\)|got shape"):
        checks.check_roofline_split(lambda *a: sum(plain_split(*a)))


def test_roofline_split_hidden_cases_catch_a_tie_sent_to_memory():
    def ties_to_memory(layers, peak, bw, eff):
        compute = memory = 0.0
        for p in layers:
            c, m = p.flops / peak, p.bytes_moved / bw
            if m >= c:
                memory += m / eff
            else:
                compute += c / eff
        return compute, memory
    assert checks.check_roofline_split(ties_to_memory).startswith("correct")
    with pytest.raises(AssertionError, match="hidden: a layer exactly on the ridge.*compute-bound"):
        checks.check_roofline_split(ties_to_memory, hidden=True)


def test_roofline_split_check_rejects_the_library_and_grades_a_blank(monkeypatch):
    from collab_lib.hardware.roofline import layer_time_s
    from collab_lib.hardware.specs import DeviceSpec

    def via_library(layers, peak, bw, eff):
        dev = DeviceSpec("d", peak_flops_per_s={"fp32": peak}, mem_bw_bytes_per_s=bw, mem_bytes=None, power_w=None)
        compute = sum(layer_time_s(p.flops, p.bytes_moved, dev, "fp32", eff) for p in layers
                      if p.flops / peak >= p.bytes_moved / bw)
        return compute, sum(layer_time_s(p.flops, p.bytes_moved, dev, "fp32", eff) for p in layers) - compute
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_roofline_split(via_library)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_roofline_split(lambda *a: None, hidden=True)


# --- check_fit_roofline ---------------------------------------------------------------------------------

def loglsq_fit(flops, nbytes, times):
    """An independent fit: alternate the charge to a roof and a geometric mean of each roof's rates."""
    f, b, t = (np.asarray(a, dtype=float) for a in (flops, nbytes, times))
    peak, bw = (f / t).max(), (b / t).max()
    for _ in range(50):
        compute = f / peak >= b / bw
        peak = float(np.exp(np.log(f[compute] / t[compute]).mean()))
        bw = float(np.exp(np.log(b[~compute] / t[~compute]).mean()))
    return peak, bw


def test_fit_roofline_check():
    assert checks.check_fit_roofline(loglsq_fit).startswith("correct")
    assert checks.check_fit_roofline(loglsq_fit, hidden=True).startswith("correct")
    assert checks.check_fit_roofline(lambda f, b, t: torch.tensor(loglsq_fit(f, b, t), dtype=torch.float64)).startswith(
        "correct")
    assert checks.check_fit_roofline(lambda f, b, t: None).startswith("not attempted yet")


def test_fit_roofline_check_rejects_the_fastest_rates_and_averages():
    with pytest.raises(AssertionError, match="fastest rate observed"):
        checks.check_fit_roofline(lambda f, b, t: ((f / t).max(), (b / t).max()))
    with pytest.raises(AssertionError, match="averages every kernel"):
        checks.check_fit_roofline(lambda f, b, t: ((f / t).mean(), (b / t).mean()))
    with pytest.raises(AssertionError, match="swapped"):
        checks.check_fit_roofline(lambda f, b, t: loglsq_fit(f, b, t)[::-1])


def test_fit_roofline_check_rejects_a_fit_of_absolute_times():
    def absolute(f, b, t):
        peak, bw = (f / t).max(), (b / t).max()
        for _ in range(50):
            c = f / peak >= b / bw
            peak = (f[c] ** 2).sum() / (f[c] * t[c]).sum()
            bw = (b[~c] ** 2).sum() / (b[~c] * t[~c]).sum()
        return peak, bw
    with pytest.raises(AssertionError, match="absolute times"):
        checks.check_fit_roofline(absolute)


def test_fit_roofline_check_rejects_the_library_and_grades_a_blank(monkeypatch):
    from collab_lib.hardware.calibrate import fit_roofline
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_fit_roofline(fit_roofline)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_fit_roofline(lambda f, b, t: tuple(fit_roofline(f, b, t)))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_fit_roofline(lambda f, b, t: None)


# --- check_transfer_energy --------------------------------------------------------------------------------

def plain_isolated_j(up, down, link, radio, tail=True, bits_per_byte=8):
    """Promotion, upload, download, tail; ``tail=False`` or ``bits_per_byte=1`` give wrong answers."""
    up_s = bits_per_byte * up / link.uplink_bits_per_s
    down_s = bits_per_byte * down / link.downlink_bits_per_s
    up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
    down_w = radio.active_w_per_mbps_down * link.downlink_bits_per_s / 1e6 + radio.base_w
    energy = radio.promotion_s * radio.promotion_w + up_w * up_s + down_w * down_s
    return energy + radio.tail_s * radio.tail_w if tail else energy


def test_transfer_energy_check():
    assert checks.check_transfer_energy(plain_isolated_j).startswith("correct")
    assert checks.check_transfer_energy(lambda up, down, link, radio: None).startswith("not attempted yet")


def test_transfer_energy_check_rejects_a_missing_tail_and_bytes_as_bits():
    with pytest.raises(AssertionError, match="tail is missing"):
        checks.check_transfer_energy(lambda u, d, link, radio: plain_isolated_j(u, d, link, radio, tail=False))
    with pytest.raises(AssertionError, match="bits per second"):
        checks.check_transfer_energy(lambda u, d, link, radio: plain_isolated_j(u, d, link, radio, bits_per_byte=1))


def test_transfer_energy_check_rejects_the_uplink_for_both_directions():
    def uplink_both_ways(up, down, link, radio):
        up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
        return (radio.promotion_s * radio.promotion_w + up_w * 8 * (up + down) / link.uplink_bits_per_s
                + radio.tail_s * radio.tail_w)
    with pytest.raises(AssertionError, match="downlink rate"):
        checks.check_transfer_energy(uplink_both_ways)


def test_transfer_energy_check_rejects_a_breakdown():
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_transfer_energy(lambda u, d, link, radio: (radio.promotion_j, radio.tail_j))


def test_transfer_energy_check_hidden_cases_and_grading(monkeypatch):
    assert checks.check_transfer_energy(plain_isolated_j, hidden=True).startswith("correct")
    with pytest.raises(AssertionError, match="hidden: .*tail is missing"):
        checks.check_transfer_energy(lambda u, d, link, radio: plain_isolated_j(u, d, link, radio, tail=False),
                                     hidden=True)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_transfer_energy(lambda u, d, link, radio: None, hidden=True)


def test_transfer_energy_check_rejects_the_library():
    from collab_lib.hardware.energy import radio_energy, transfer_energy_j
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_transfer_energy(transfer_energy_j)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_transfer_energy(lambda u, d, link, radio: radio_energy(u, d, link, radio).total_j)


# --- check_burst_energy -----------------------------------------------------------------------------------

def plain_burst_j(start, up, down, link, radio, share=True, last_tail=True, demote_on_tie=True, bytes_j=None):
    """Walk the requests in order: promotion, bytes, then the gap to the next one inside or outside the tail."""
    energy, end = radio.promotion_s * radio.promotion_w, None
    for t, u, d in zip(start, up, down):
        if end is not None:
            gap = t - end
            idle = gap >= radio.tail_s if demote_on_tie else gap > radio.tail_s
            if idle or not share:
                energy += radio.tail_s * radio.tail_w + radio.promotion_s * radio.promotion_w
            else:
                energy += gap * radio.tail_w
        if bytes_j is None:
            energy += plain_isolated_j(u, d, link, radio) - radio.promotion_s * radio.promotion_w \
                - radio.tail_s * radio.tail_w
        else:
            energy += bytes_j(u, d, link, radio)
        end = t + 8 * u / link.uplink_bits_per_s + 8 * d / link.downlink_bits_per_s
    return energy + (radio.tail_s * radio.tail_w if last_tail else 0.0)


def test_burst_energy_check():
    assert checks.check_burst_energy(plain_burst_j).startswith("correct")
    assert checks.check_burst_energy(plain_burst_j, hidden=True).startswith("correct")
    assert checks.check_burst_energy(lambda *a: np.float64(plain_burst_j(*a))).startswith("correct")
    assert checks.check_burst_energy(lambda *a: None).startswith("not attempted yet")


def test_burst_energy_check_rejects_common_mistakes():
    with pytest.raises(AssertionError, match="every request as isolated"):
        checks.check_burst_energy(lambda *a: plain_burst_j(*a, share=False))
    with pytest.raises(AssertionError, match="last request's tail is missing"):
        checks.check_burst_energy(lambda *a: plain_burst_j(*a, last_tail=False))

    def gap_from_starts(start, up, down, link, radio):
        return plain_burst_j(start, up * 0, down * 0, link, radio) + sum(
            plain_isolated_j(u, d, link, radio) - radio.promotion_s * radio.promotion_w - radio.tail_s * radio.tail_w
            for u, d in zip(up, down))
    with pytest.raises(AssertionError, match="from the end of one request"):
        checks.check_burst_energy(gap_from_starts)


def test_burst_energy_hidden_cases_catch_a_tie_that_does_not_demote():
    assert checks.check_burst_energy(lambda *a: plain_burst_j(*a, demote_on_tie=False)).startswith("correct")
    with pytest.raises(AssertionError, match="hidden: a gap of exactly tail_s.*demote"):
        checks.check_burst_energy(lambda *a: plain_burst_j(*a, demote_on_tie=False), hidden=True)


def test_burst_energy_check_rejects_the_library_but_not_its_helpers(monkeypatch):
    from collab_lib.hardware.energy import burst_transfer_energy_j, transfer_energy_j
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_burst_energy(burst_transfer_energy_j)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_burst_energy(lambda *a: float(burst_transfer_energy_j(*a)))

    def with_library_bytes(start, up, down, link, radio):  # the per-request bytes are a helper the lab offers
        return plain_burst_j(start, up, down, link, radio, bytes_j=lambda u, d, link, radio: transfer_energy_j(
            u, d, link, radio, include_tail=False))
    assert checks.check_burst_energy(with_library_bytes).startswith("correct")
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_burst_energy(lambda *a: None)


# --- check_decode_bytes, check_decode_bound ---------------------------------------------------------------

def plain_decode_bytes(model, fmt, ctx, scales=True, kv_heads=True, output=True):
    """From the shape: GQA attention and SwiGLU MLP per layer, group-wise scales, output layer, bf16 KV cache."""
    per_layer = model.d_model * model.head_dim * (2 * model.num_heads + 2 * model.num_kv_heads) \
        + 3 * model.d_model * model.d_ff
    bits = fmt.linear_bits + (fmt.scale_bits / fmt.group_size if fmt.group_size and scales else 0)
    heads = model.num_kv_heads if kv_heads else model.num_heads
    kv = 2 * model.num_layers * ctx * heads * model.head_dim * 2
    out = model.vocab_size * model.d_model * fmt.output_bits / 8 if output else 0
    return model.num_layers * per_layer * bits / 8 + out + kv


def plain_bound(model, fmt, device, precision, ctx, memory_only=False):
    per_layer = model.d_model * model.head_dim * (2 * model.num_heads + 2 * model.num_kv_heads) \
        + 3 * model.d_model * model.d_ff
    flops = 2 * (model.num_layers * per_layer + model.vocab_size * model.d_model) \
        + 4 * model.num_layers * model.num_heads * model.head_dim * ctx
    memory_s = plain_decode_bytes(model, fmt, ctx) / device.mem_bw_bytes_per_s
    return 1 / (memory_s if memory_only else max(flops / device.peak(precision), memory_s))


def test_decode_bytes_check():
    assert checks.check_decode_bytes(plain_decode_bytes).startswith("correct")
    assert checks.check_decode_bytes(plain_decode_bytes, hidden=True).startswith("correct")
    assert checks.check_decode_bytes(lambda *a: np.float64(plain_decode_bytes(*a))).startswith("correct")
    assert checks.check_decode_bytes(lambda *a: None).startswith("not attempted yet")


def test_decode_bytes_check_rejects_common_mistakes():
    with pytest.raises(AssertionError, match="KV cache is missing"):
        checks.check_decode_bytes(lambda m, f, c: plain_decode_bytes(m, f, 0))
    with pytest.raises(AssertionError, match="scales are missing"):
        checks.check_decode_bytes(lambda *a: plain_decode_bytes(*a, scales=False))
    with pytest.raises(AssertionError, match="num_kv_heads"):
        checks.check_decode_bytes(lambda *a: plain_decode_bytes(*a, kv_heads=False))
    with pytest.raises(AssertionError, match="output layer is missing"):
        checks.check_decode_bytes(lambda *a: plain_decode_bytes(*a, output=False))


def test_decode_bytes_check_rejects_the_library_and_grades_a_blank(monkeypatch):
    from collab_lib.hardware.llm import decode_bytes_per_token
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_decode_bytes(lambda m, f, c: decode_bytes_per_token(m, f) + m.kv_cache_bytes(c))
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_decode_bytes(lambda m, f, c: m.linear_params * f.linear_bytes_per_param
                                  + m.embedding_params * f.output_bits / 8 + m.kv_cache_bytes(c))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_decode_bytes(lambda *a: None, hidden=True)


def test_decode_bound_check():
    assert checks.check_decode_bound(plain_bound).startswith("correct")
    assert checks.check_decode_bound(plain_bound, hidden=True).startswith("correct")
    assert checks.check_decode_bound(lambda *a: None).startswith("not attempted yet")


def test_decode_bound_check_rejects_seconds_and_the_memory_roof_alone():
    with pytest.raises(AssertionError, match="seconds per token"):
        checks.check_decode_bound(lambda *a: 1 / plain_bound(*a))
    with pytest.raises(AssertionError, match="memory roof only"):
        checks.check_decode_bound(lambda *a: plain_bound(*a, memory_only=True))


def test_decode_bound_check_rejects_the_library(monkeypatch):
    from collab_lib.hardware.llm import predict_decode
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_decode_bound(predict_decode)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_decode_bound(lambda *a: float(predict_decode(*a)))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_decode_bound(lambda *a: None)


# --- check_training_memory -------------------------------------------------------------------------------

def plain_memory(model, x, optimizer, dedupe=True, skip_params=True, frozen_grads=False):
    """By hand: parameter bytes, trainable bytes, states per optimizer, saved tensors' storages once each."""
    states = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad or frozen_grads)
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    saved, every = {}, []

    def pack(t):
        storage = t.untyped_storage()
        if not skip_params or storage.data_ptr() not in param_ptrs:
            saved[storage.data_ptr()] = storage.nbytes()
            every.append(storage.nbytes())
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return weights, trainable, states * trainable, sum(saved.values()) if dedupe else sum(every)


def test_training_memory_check():
    assert checks.check_training_memory(plain_memory).startswith("correct")
    assert checks.check_training_memory(plain_memory, hidden=True).startswith("correct")
    assert checks.check_training_memory(lambda *a: np.array(plain_memory(*a))).startswith("correct")
    assert checks.check_training_memory(lambda *a: None).startswith("not attempted yet")


def test_training_memory_check_rejects_common_mistakes():
    with pytest.raises(AssertionError, match="storage once"):
        checks.check_training_memory(lambda *a: plain_memory(*a, dedupe=False))
    with pytest.raises(AssertionError, match="storage once"):
        checks.check_training_memory(lambda *a: plain_memory(*a, skip_params=False))
    with pytest.raises(AssertionError, match="frozen parameters"):
        checks.check_training_memory(lambda *a: plain_memory(*a, frozen_grads=True))
    with pytest.raises(AssertionError, match="one moment"):
        checks.check_training_memory(lambda m, x, o: plain_memory(m, x, "momentum" if o == "adam" else o))
    with pytest.raises(AssertionError, match="got shape"):
        checks.check_training_memory(lambda *a: sum(plain_memory(*a)))


def test_training_memory_check_rejects_the_library_and_grades_a_blank(monkeypatch):
    from collab_lib.hardware.memory import measure_training_memory, saved_activation_bytes

    def wrapped(model, x, optimizer):
        m = measure_training_memory(model, x, optimizer)
        return m.weights_bytes, m.gradients_bytes, m.optimizer_bytes, m.activations_bytes
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_training_memory(wrapped)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_training_memory(lambda m, x, o: plain_memory(m, x, o)[:3] + (saved_activation_bytes(m, x),))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_training_memory(lambda *a: None, hidden=True)


# --- the week-0 warm-up: the roofline of layers run one after another --------------------------------------


def plain_roofline_s(layers, peak, bw):
    total = 0.0
    for p in layers:
        total += max(p.flops / peak, p.bytes_moved / bw)
    return total


@pytest.mark.parametrize("hidden", [False, True])
def test_roofline_check_scores_a_plain_answer_and_not_the_mistakes(hidden, monkeypatch):
    assert checks.check_roofline(plain_roofline_s, hidden=hidden).startswith("correct")
    assert checks.check_roofline(lambda *a: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="adds the two times"):
        checks.check_roofline(lambda L, p, b: sum(x.flops / p + x.bytes_moved / b for x in L), hidden=hidden)
    with pytest.raises(AssertionError, match="one roof for every layer"):
        checks.check_roofline(lambda L, p, b: sum(x.bytes_moved / b for x in L), hidden=hidden)
    from collab_lib.hardware.roofline import layers_time_s
    from collab_lib.hardware.specs import DeviceSpec

    def cheat(layers, peak, bw):
        return layers_time_s(layers, DeviceSpec("d", peak_flops_per_s={"fp32": peak}, mem_bw_bytes_per_s=bw,
                                                mem_bytes=None, power_w=None))
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_roofline(cheat, hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_roofline(lambda *a: None, hidden=hidden)
