"""set_seed makes runs repeat; the house renderer's output is deterministic and needs no CDN."""

import base64
import random

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from collab_lib import viz
from collab_lib.seed import generator, set_seed


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_set_seed_repeats_every_generator_and_fixes_threads():
    set_seed(3)
    first = _draws()
    set_seed(3)
    assert _draws() == first
    assert torch.get_num_threads() == 1
    set_seed(4)
    assert _draws() != first


def test_set_seed_makes_float64_the_default_unless_told_otherwise():
    set_seed(0)
    assert torch.get_default_dtype() == torch.float64 and torch.zeros(1).dtype == torch.float64
    set_seed(0, dtype=torch.float32)
    assert torch.get_default_dtype() == torch.float32
    set_seed(0, dtype=None)
    assert torch.get_default_dtype() == torch.float32
    with pytest.raises(ValueError, match="dtype"):
        set_seed(0, dtype=torch.float16)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_set_seed_refuses_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        set_seed(seed)


def test_generator_offsets_give_independent_repeatable_streams():
    a0, a1 = torch.rand(4, generator=generator(7, 0)), torch.rand(4, generator=generator(7, 1))
    assert torch.equal(a0, torch.rand(4, generator=generator(7, 0)))
    assert not torch.equal(a0, a1)


def _bundle(fig):
    return viz.CollabRenderer().to_mimebundle(fig.to_dict())


def test_renderer_is_default_and_carries_json_and_offline_html():
    assert pio.renderers.default == "collab"
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    bundle = _bundle(fig)
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "scatter"
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html
    assert "cdn.plot.ly" not in html and "<script src" not in html  # plotly.js comes from the page
    assert len(html) < 20_000  # no inlined plotly.js (several MB)


def test_renderer_div_ids_depend_on_content_not_on_chance():
    fig_a = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    fig_b = go.Figure(go.Scatter(x=[1, 2], y=[3, 5]))
    id_a = _bundle(fig_a)["text/html"].split('id="')[1].split('"')[0]
    id_a_again = _bundle(fig_a)["text/html"].split('id="')[1].split('"')[0]
    id_b = _bundle(fig_b)["text/html"].split('id="')[1].split('"')[0]
    hash_of = lambda div_id: div_id.split("-")[1]  # noqa: E731
    assert hash_of(id_a) == hash_of(id_a_again) != hash_of(id_b)
    assert id_a != id_a_again  # the same figure shown twice on a page gets two divs


def test_line_figure_and_regions():
    x = [1, 2, 3, 4, 5]
    fig = viz.line_figure(x, {"a": [1, 2, 3, 4, 5], "b": [5, 4, 3, 2, 1]}, title="t", x_title="x", y_title="y")
    assert [t.name for t in fig.data] == ["a", "b"] and fig.layout.xaxis.type is None
    viz.shade_regions(fig, x, ["device", "device", "split", "cloud", "cloud"], viz.WHERE_COLORS)
    bands = [(s.x0, s.x1) for s in fig.layout.shapes]
    assert bands == [(1, 3), (3, 4), (4, 5)]
    log_fig = viz.line_figure([1, 10, 100], {"a": [1, 2, 3]}, title="t", x_title="x", y_title="y", log_x=True)
    viz.shade_regions(log_fig, [1, 10, 100], ["device", "cloud", "cloud"], viz.WHERE_COLORS)
    assert [(s.x0, s.x1) for s in log_fig.layout.shapes] == [(1, 10), (10, 100)]  # shapes: data units
    assert [a.x for a in log_fig.layout.annotations] == [0, 1]  # annotations on a log axis: log10 units
    with pytest.raises(ValueError, match="labels"):
        viz.shade_regions(fig, x, ["device"], viz.WHERE_COLORS)
    with pytest.raises(ValueError, match="series 'c'"):
        viz.line_figure(x, {"c": [1]}, title="t", x_title="x", y_title="y")


def test_figure_numbers_are_rounded_so_last_bit_differences_vanish():
    a = go.Figure(go.Scatter(x=np.array([0.1 + 0.2, 1.0]), y=[1 / 3, 2.0]))
    b = go.Figure(go.Scatter(x=np.array([0.3, 1.0]), y=[0.33333333333333337, 2.0]))  # differ in the last bits
    html_a, html_b = _bundle(a)["text/html"], _bundle(b)["text/html"]
    assert html_a.split('id="fig-')[1][:12] == html_b.split('id="fig-')[1][:12]
    assert _bundle(a)["application/vnd.plotly.v1+json"] == _bundle(b)["application/vnd.plotly.v1+json"]
    y = go.Figure(go.Scatter(y=np.array([1 / 3], dtype=np.float32))).to_dict()["data"][0]["y"]
    assert np.frombuffer(base64.b64decode(viz.round_floats(y)["bdata"]), np.float32)[0] == np.float32(0.333333)
    assert viz.round_floats({"v": [123456789.0, np.float64(0.000123456789)], "s": "keep", "n": 7}) == {
        "v": [123457000.0, 0.000123457], "s": "keep", "n": 7}


def test_glue_emits_what_myst_nb_reads(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: shown.append((data, metadata)))
    viz.glue("answer", 42)
    data, metadata = shown[0]
    assert data == {"application/papermill.record/text/plain": "42"}
    assert metadata["scrapbook"] == {"name": "answer", "mime_prefix": "application/papermill.record/"}
    viz.glue("shown", 7, display=True)
    assert shown[1][0] == {"text/plain": "7"}


def test_html_table_escapes_and_shapes():
    html = viz.html_table(["a", "b<c"], [[1, "x&y"], [2, 3.5]])
    assert html.count("<tr>") == 3 and "b&lt;c" in html and "x&amp;y" in html and "<td>3.5</td>" in html


def test_add_vline_labels_in_log10_units_on_a_log_axis():
    fig = go.Figure(go.Scatter(x=[1, 100], y=[1, 2]))
    fig.update_xaxes(type="log")
    viz.add_vline(fig, 64.0, "here")
    assert fig.layout.shapes[0].x0 == 64.0 and fig.layout.annotations[0].x == pytest.approx(np.log10(64))
    lin = viz.add_vline(go.Figure(), 3.0, "there")
    assert lin.layout.annotations[0].x == 3.0


def test_add_hline_labels_in_log10_units_on_a_log_axis():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[1, 1e3]))
    fig.update_yaxes(type="log")
    viz.add_hline(fig, 150.5, "8-bit frame")
    assert fig.layout.shapes[0].y0 == 150.5 and fig.layout.annotations[0].y == pytest.approx(np.log10(150.5))
    lin = viz.add_hline(go.Figure(), 3.0, "there")
    assert lin.layout.annotations[0].y == 3.0
    with pytest.raises(ValueError, match="positive"):
        viz.add_hline(fig, 0.0, "zero")
