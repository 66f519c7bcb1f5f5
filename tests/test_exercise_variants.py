"""The instructor's exercise variants: every answer the page states, recomputed here by hand.

``scripts/variants.py`` computes the answers with collab_lib and writes ``book/appendix/exercise_variants.md``.
This test takes only the variants' inputs from the script (and the catalog's published figures from
``collab_lib.hardware``), recomputes each answer with the exercise's own formula in plain Python and numpy, and
compares it with the bold values of the variant's ``{solution}`` block, in order, to the printed precision.
"""

import math
import re
from itertools import product

import numpy as np
import pytest

from collab_lib.hardware import get_device, get_link  # published figures only; nothing computed
from collab_lib.hardware.llm import get_format, get_model
from scripts.variants import INPUTS, PAGE, render

# --- the hand computations: label's inputs -> the answers in the order the page states them --------------


def ridge(small, small_precisions, weight_bytes, large, large_precision):
    sd, ld = get_device(small), get_device(large)
    rows = [(sd, p) for p in small_precisions] + [(ld, large_precision)]
    ridges = [d.peak_flops_per_s[p] / d.mem_bw_bytes_per_s for d, p in rows]
    # AI = 2 b / weight_bytes operations per byte; compute-bound once it reaches the ridge
    firsts = [math.ceil(r * weight_bytes / 2 - 1e-9) for r in ridges[-2:]]
    return [*ridges, *firsts, ridges[-1] / ridges[-2]]


def kv(model, context_len, device):
    m, dev = get_model(model), get_device(device)
    kv_bytes = 2 * m.num_layers * context_len * m.num_kv_heads * m.head_dim * 2
    linear = m.num_layers * (m.d_model * m.head_dim * (2 * m.num_heads + 2 * m.num_kv_heads) + 3 * m.d_model * m.d_ff)
    out = [kv_bytes, kv_bytes / 2**20]
    for key in ("bf16", "spinquant-4bit"):
        f = get_format(key)
        per_param = (f.linear_bits + (f.scale_bits / f.group_size if f.group_size else 0)) / 8
        weights = linear * per_param + m.vocab_size * m.d_model * f.output_bits / 8
        flops = 2 * (linear + m.vocab_size * m.d_model)
        attention = 4 * m.num_layers * m.num_heads * m.head_dim * context_len

        def rate(nbytes, fl):
            return 1 / max(fl / dev.peak_flops_per_s["bf16"], nbytes / dev.mem_bw_bytes_per_s)

        full, short = rate(weights + kv_bytes, flops + attention), rate(weights, flops)
        out += [full, short, 100 * (1 - full / short)]
    return out


ALEXNET = {  # layer -> (channels, side) at a 224 x 224 input: (224 + 4 - 11) // 4 + 1 = 55, pooling 3/2
    "conv1": (64, 55), "pool1": (64, 27), "conv5": (256, 13), "pool5": (256, 6)}


def cut(before, after, link, value_bytes):
    (cb, sb), (ca, sa) = ALEXNET[before[0]], ALEXNET[after[0]]
    n_before, n_after = cb * sb * sb, ca * sa * sa
    saved = (n_before - n_after) * value_bytes
    return [n_before, n_after, saved, 8 * saved / get_link(link).uplink_bits_per_s * 1e3]


def spec(alpha, t_t_ms, c, rtt_ms, gammas):
    rho = rtt_ms / t_t_ms

    def s(g):
        return (1 - alpha ** (g + 1)) / (1 - alpha) / (1 + g * c + rho)

    out = [alpha / (1 - alpha) * t_t_ms]
    for g in gammas:
        out += [s(g), "yes" if s(g) > 1 else "no"]
    best = max(range(1, 65), key=lambda g: (s(g), -g))
    return [*out, best, s(best)]


def t2(z_t, z_s, temperatures):
    C = len(z_t)
    out = []
    for T in temperatures:
        p, q = (np.exp(np.array(z) / T) / np.exp(np.array(z) / T).sum() for z in (z_t, z_s))
        grad = (q[0] - p[0]) / T
        out += [grad, (z_s[0] - z_t[0]) / (C * T * T), T * T * grad]
    return [*out, (z_s[0] - z_t[0]) / C]


def kcenter(positions, covered, p_class1, budget):
    chosen = []
    for _ in range(budget):
        dist = [min(abs(x - y) for y in [covered, *chosen]) if i not in chosen else -1
                for i, x in enumerate(positions)]
        chosen.append(positions[dist.index(max(dist))])
    entropy = [-(p * math.log(p) + (1 - p) * math.log(1 - p)) for p in p_class1]
    uncertain = [positions[i] for i in sorted(range(len(positions)), key=lambda i: -entropy[i])[:budget]]

    def radius(centres):
        return max(min(abs(x - y) for y in [covered, *centres]) for x in positions)

    def as_set(v):
        return "{" + ", ".join(map(str, sorted(v))) + "}"

    return [as_set(chosen), as_set(uncertain), radius(chosen), radius(uncertain)]


def crossover(params, q, value_bytes, label_bytes, tokens_per_day, tokens_per_step, rtt_ms):
    per_token = 2 * q * value_bytes + label_bytes
    fedavg = 2 * params * 4
    split = tokens_per_day * per_token
    steps = -(-tokens_per_day // tokens_per_step)
    winner = "split learning" if split < fedavg else "federated averaging"
    return [fedavg / per_token, split / 1e6, fedavg / 1e6, winner, max(split, fedavg) / min(split, fedavg), steps,
            steps * rtt_ms / 1e3]


def grad_equal(x, y, w_d, w_c):
    def grads(h, link=float):  # L = (w_c h - y)^2 / 2 with h = w_d x; dL/dh = (w_c h - y) w_c goes down
        r = w_c * h - y
        return float(link(r * w_c)) * x, r * h

    h = w_d * x
    h16 = float(np.float16(h))
    return [h, *grads(h), 0.0, h16, *grads(h16, np.float16)]


def prox(c, a, n, mus):
    c, a, n = (np.array(v, dtype=float) for v in (c, a, n))
    optimum = (n * a * c).sum() / (n * a).sum()
    out = [optimum, (n * c).sum() / n.sum()]
    for mu in mus:
        one_round = (n * a * c / (a + mu)).sum() / n.sum()
        # fixed point of w -> sum n (a c + mu w)/(a + mu) / sum n
        fixed = (n * a * c / (a + mu)).sum() / (n * a / (a + mu)).sum()
        out += [one_round, fixed]
    return out


def gauc(users):
    def pairs_auc(ys, ss):
        pos = [s for y, s in zip(ys, ss) if y == 1]
        neg = [s for y, s in zip(ys, ss) if y == 0]
        return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))

    ys = [v for y, _ in users.values() for v in y]
    ss = [v for _, s in users.values() for v in s]
    defined = {u: (pairs_auc(y, s), len(y), sum(y)) for u, (y, s) in users.items() if 0 < sum(y) < len(y)}
    imp = sum(v * k for v, k, _ in defined.values()) / sum(k for _, k, _ in defined.values())
    clicks = sum(v * k for v, _, k in defined.values()) / sum(k for _, _, k in defined.values())
    return [pairs_auc(ys, ss), *(v for v, _, _ in defined.values()), imp, clicks]


def route(phone, cloud, private, online):
    eligible = (1 - private) * online
    return [eligible, phone + eligible * (cloud - phone), phone + eligible / 2 * (cloud - phone)]


def budget(before, after, b, eta, tau):
    def F(lo, hi, t):
        return min(1.0, max(0.0, (t - lo) / (hi - lo)))

    tau_old, tau_new = (lo + b * (hi - lo) for lo, hi in (before, after))
    return [tau_old, eta * (b - F(*before, tau)), F(*after, tau_old), tau_new]


HAND = {"ex-hw-ridge": ridge, "ex-hw-kv": kv, "ex-sys-cut": cut, "ex-sys-spec": spec, "ex-data-t2": t2,
        "ex-data-kcenter": kcenter, "ex-feat-crossover": crossover, "ex-feat-grad-equal": grad_equal,
        "ex-param-prox": prox, "ex-data-gauc": gauc, "ex-app-route": route, "ex-open-budget": budget}

# --- the page --------------------------------------------------------------------------------------------


def _stated(label: str) -> list[str]:
    """The bold values of ``label``'s solution block, in order."""
    text = PAGE.read_text()
    block = re.search(rf"^:::\{{solution\}} {re.escape(label)}\n(.*?)^:::$", text, re.M | re.S)
    assert block, f"no solution block for {label}"
    return re.findall(r"\*\*(.+?)\*\*", block.group(1))


def _matches(stated: str, expected) -> bool:
    """``expected`` printed to ``stated``'s precision: within half a unit of its last digit (and a hair more
    for a value that lies exactly halfway)."""
    if isinstance(expected, str):
        return stated == expected
    number = stated.replace(",", "")
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (int(exponent or 0) - decimals)
    return abs(float(number) - expected) <= 0.5 * unit * (1 + 1e-9) + 1e-12 * abs(expected)


def test_every_graded_exercise_of_the_course_guide_has_a_variant():
    guide = (PAGE.parent / "course_guide.md").read_text()
    table = guide.split("\n## ", 1)[0]
    graded = set(re.findall(r"\{ref\}`(ex-[\w-]+)`", table))
    assert graded and graded <= {exercise for exercise, _ in INPUTS.values()}


@pytest.mark.parametrize("label", list(INPUTS))
def test_the_page_states_the_answers_computed_by_hand(label):
    exercise, inputs = INPUTS[label]
    expected = HAND[exercise](**inputs)
    stated = _stated(label)
    assert len(stated) == len(expected), f"{label}: the page states {stated}, the hand computation {expected}"
    for i, (s, e) in enumerate(zip(stated, expected)):
        assert _matches(s, e), f"{label}, answer {i + 1}: the page states {s}, by hand {e}"


def test_every_variant_is_an_exercise_with_a_hidden_solution():
    text = PAGE.read_text()
    for label in INPUTS:
        assert re.search(rf"^:::\{{exercise\}}\n:label: {re.escape(label)}\n", text, re.M), label
        assert re.search(rf"^:::\{{solution\}} {re.escape(label)}\n:class: dropdown\n", text, re.M), label


def test_the_page_is_what_the_script_writes():
    assert PAGE.read_text() == render(), "run python scripts/variants.py"


def test_the_hand_route_matches_an_exact_population():
    """The route formula against a count over an exactly independent population (the script's layout)."""
    for phone, cloud, private, online in product((0.6, 0.7), (0.8, 0.9), (0.2,), (0.9,)):
        grid = np.indices((10, 10, 10, 2)).reshape(4, -1)
        eligible = (grid[0] >= round(10 * private)) & (grid[1] < round(10 * online))
        gain = (grid[2] >= round(10 * phone)) & (grid[2] < round(10 * cloud))
        assert math.isclose(phone + (eligible & gain).mean(), route(phone, cloud, private, online)[1])
