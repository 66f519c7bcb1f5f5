"""collab_lib.viz.instrument and viz.predict: the static figure's frames against the library's values, the
live widget against the same, the reveal's sentence against hand computations, and bad input."""

import json
import math
import sys

import numpy as np
import plotly.graph_objects as go
import pytest

from collab_lib import viz
from collab_lib.system.speculative import expected_tokens_per_call
from scripts.strip_widgets import WIDGET_VIEW, strip

X = np.arange(5)


def lines(a, b):
    return viz.line_figure(X, {"lin": a * X, "sq": b * X**2}, title=f"a = {a}, b = {b}", x_title="x", y_title="y")


def tokens(gamma):
    """Expected tokens per target call over alpha, from the library (the lab's kind of function)."""
    alpha = np.linspace(0.1, 0.9, 9)
    return viz.line_figure(alpha, {"tokens": expected_tokens_per_call(alpha, gamma)}, title=f"gamma = {gamma}",
                           x_title="alpha", y_title="tokens per call")


def frame(inst, name):
    return next(f for f in inst.figure.frames if f.name == name)


def test_one_frame_per_grid_point_with_the_functions_values():
    inst = viz.instrument(lines, {"a": [1, 2, 3], "b": [0.5, 1.0]})
    frames = inst.figure.frames
    assert sorted(f.name for f in frames) == sorted(f"{i},{j}" for i in range(3) for j in range(2))
    for i, a in enumerate([1, 2, 3]):
        for j, b in enumerate([0.5, 1.0]):
            f = frame(inst, f"{i},{j}")
            assert list(f.data[0].y) == [a * x for x in X]  # by hand
            assert list(f.data[1].y) == [b * x * x for x in X]
            assert f.layout.title.text == f"a = {a}, b = {b}"  # the title follows the parameters


def test_frames_equal_the_paper_formula():
    # Leviathan et al. (2023), eq. 1: E[tokens] = (1 - alpha^(gamma+1)) / (1 - alpha).
    inst = viz.instrument(tokens, {"gamma": [1, 2, 4, 8]})
    for i, gamma in enumerate([1, 2, 4, 8]):
        y = frame(inst, str(i)).data[0].y
        want = [(1 - a ** (gamma + 1)) / (1 - a) for a in np.linspace(0.1, 0.9, 9)]
        np.testing.assert_allclose(y, want, rtol=1e-12)


def test_sliders_one_parameter_animates_frames_several_leave_it_to_the_book():
    one = viz.instrument(tokens, {"gamma": [1, 2, 4]}, start={"gamma": 2})
    (slider,) = one.figure.layout.sliders
    assert slider.active == 1
    assert [s.method for s in slider.steps] == ["animate"] * 3
    assert [list(s.args[0]) for s in slider.steps] == [["0"], ["1"], ["2"]]
    assert [s.label for s in slider.steps] == ["1", "2", "4"]
    two = viz.instrument(lines, {"a": [1, 2, 3], "b": [0.5, 1.0]}, labels={"a": "slope"})
    assert [s.name for s in two.figure.layout.sliders] == ["a", "b"]
    assert all(s.method == "skip" for sl in two.figure.layout.sliders for s in sl.steps)
    assert two.figure.layout.sliders[0].currentvalue.prefix == "slope: "
    assert two.figure.layout.meta["instrument"]["params"] == ["a", "b"]


def test_fixed_axes_hold_every_frame():
    inst = viz.instrument(lines, {"a": [1, 3], "b": [0.5, 2.0]})
    lo, hi = inst.figure.layout.yaxis.range
    assert lo <= 0 and hi >= 2.0 * 16  # the largest value of any frame, 2 * 4**2
    assert hi < 2.0 * 16 * 1.1
    log = viz.instrument(lambda s: viz.line_figure(X + 1, {"y": s * (X + 1.0)}, title="t", x_title="x",
                                                   y_title="y", log_y=True), {"s": [1, 100]})
    lo, hi = log.figure.layout.yaxis.range  # log10 units on a log axis
    assert lo <= 0 and math.log10(500) <= hi < math.log10(500) + 0.3


def test_stacked_bars_fit_their_totals():
    def bars(k):
        fig = go.Figure([go.Bar(x=[0, 1], y=[k, 1], name="a"), go.Bar(x=[0, 1], y=[k, 2], name="b")])
        return fig.update_layout(barmode="stack")

    inst = viz.instrument(bars, {"k": [1, 5]})
    lo, hi = inst.figure.layout.yaxis.range
    assert lo == 0 and 10 <= hi < 11


def test_live_widget_redraws_in_place_with_the_functions_values():
    pytest.importorskip("ipywidgets")
    inst = viz.instrument(lines, {"a": [1, 2, 3], "b": [0.5, 1.0]}, start={"a": 2})
    box = inst.widget()
    fw = inst.figure_widget
    assert isinstance(fw, go.FigureWidget) and fw in box.children
    assert list(fw.data[0].y) == [2 * x for x in X]
    inst.set(a=3, b=1.0)
    assert inst.figure_widget is fw  # the same figure, updated
    assert list(fw.data[0].y) == [3 * x for x in X] and list(fw.data[1].y) == [x * x for x in X]
    assert fw.layout.title.text == "a = 3, b = 1.0" and fw.layout.sliders == ()
    assert list(fw.layout.yaxis.range) == list(inst.figure.layout.yaxis.range)
    assert inst.index() == (2, 1)
    with pytest.raises(ValueError, match="not one of"):
        inst.set(a=7)
    with pytest.raises(ValueError, match="not a parameter"):
        inst.set(c=1)


def test_display_bundles_the_widget_and_the_static_figure(monkeypatch):
    pytest.importorskip("ipywidgets")
    inst = viz.instrument(tokens, {"gamma": [1, 2]})
    bundle = inst._repr_mimebundle_()
    assert {WIDGET_VIEW, "application/vnd.plotly.v1+json", "text/html", "text/plain"} <= bundle.keys()
    assert len(bundle["application/vnd.plotly.v1+json"]["frames"]) == 2
    assert "Plotly.addFrames" in bundle["text/html"]
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # no ipywidgets: the static figure alone
    alone = viz.instrument(tokens, {"gamma": [1, 2]})._repr_mimebundle_()
    assert WIDGET_VIEW not in alone and "text/html" in alone


@pytest.mark.parametrize("kwargs, match", [
    (dict(grid={}), "grid must map"),
    (dict(grid={"a": []}), "is empty"),
    (dict(grid={"not a name": [1]}), "identifiers"),
    (dict(grid={"a": [1, 1.0]}), "read the same"),
    (dict(grid={"a": list(range(70))}), "max_frames"),
    (dict(grid={"a": [1]}, start={"a": 2}), "not one of"),
    (dict(grid={"a": [1]}, start={"z": 2}), "not in the grid"),
    (dict(grid={"a": [1]}, labels={"z": "zed"}), "not in the grid"),
])
def test_bad_grids_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.instrument(lambda a: lines(a, 1), **kwargs)


def test_fn_must_draw_the_same_traces_everywhere():
    with pytest.raises(TypeError, match="plotly Figure"):
        viz.instrument(lambda a: [a], {"a": [1]})
    with pytest.raises(ValueError, match="same traces"):
        viz.instrument(lambda a: go.Figure([go.Scatter(y=[1])] * a), {"a": [1, 2]})
    with pytest.raises(TypeError, match="callable"):
        viz.instrument(3, {"a": [1]})


# --- predict, then reveal ------------------------------------------------------------------------------


@pytest.mark.parametrize("guess, measured, unit, want", [
    (2, 50, "×", "You predicted 2×; this run measured 50×: 25× too low."),
    (100, 40, "ms", "You predicted 100 ms; this run measured 40 ms: 2.5× too high."),
    (13, 10, "ms", "You predicted 13 ms; this run measured 10 ms: 30% too high."),
    (8, 10, "", "You predicted 8; this run measured 10: 20% too low."),
    (10, 10, "%", "You predicted 10%; this run measured 10%: exactly right."),
    (-1, 2, "s", "You predicted -1 s; this run measured 2 s: off by 3 s."),
    (0.1234, 0.0005, "", "You predicted 0.123; this run measured 0.0005: 247× too high."),
])
def test_reveal_text_by_hand(guess, measured, unit, want):
    assert viz.reveal_text(guess, measured, unit) == want


def test_prediction_locks_the_guess_and_refuses_bad_ones():
    p = viz.predict("How many times faster?", 49.7, unit="×")
    with pytest.raises(ValueError, match="finite number"):
        p.reveal(float("nan"))
    assert p.reveal(2) == "You predicted 2×; this run measured 49.7×: 24.9× too low."
    assert p.guess == 2.0
    with pytest.raises(RuntimeError, match="already locked"):
        p.reveal(3)
    c = viz.predict("Who wins?", "device", choices=["device", "cloud", "split"])
    with pytest.raises(ValueError, match="not one of"):
        c.reveal("phone")
    assert c.reveal("cloud") == "You chose cloud; this run measured device."
    for bad, match in [(dict(question="", measured=1), "question"),
                       (dict(question="q", measured="x"), "finite number"),
                       (dict(question="q", measured=float("inf")), "finite number"),
                       (dict(question="q", measured="a", choices=["a"]), "two distinct"),
                       (dict(question="q", measured="c", choices=["a", "b"]), "not one of")]:
        with pytest.raises(ValueError, match=match):
            viz.predict(**bad)


def test_prediction_widget_reveals_beside_the_guess():
    pytest.importorskip("ipywidgets")
    p = viz.predict("Latency?", 40, unit="ms")
    p.widget()
    p.button.click()  # no guess yet: nothing is revealed
    assert p.guess is None and "guess first" in p.result.value
    p.field.value = "abc"
    p.button.click()
    assert p.guess is None
    p.field.value = "100"
    p.button.click()
    assert "You predicted 100 ms; this run measured 40 ms: 2.5× too high." in p.result.value
    assert p.field.disabled and p.button.disabled


def test_static_prediction_hides_the_answer_behind_the_reveal():
    html = viz.predict("Latency?", 40.0, unit="ms").html()
    before, reveal = html.split("<details", 1)
    assert "40" not in before.split(">", 1)[1]  # only the data attribute the script reads holds it and "This run measured 40 ms." in reveal
    assert 'data-measured="40.0"' in html


def test_strip_widgets_keeps_the_static_outputs():
    nb = {"metadata": {"widgets": {"state": {}}}, "cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {WIDGET_VIEW: {"model_id": "abc"}, "text/html": "<div>"}}]}]}
    assert strip(nb) is True
    assert nb == {"metadata": {}, "cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {"text/html": "<div>"}}]}]}
    assert strip(json.loads(json.dumps(nb))) is False


def test_live_widget_follows_shapes_and_annotations_that_change_in_number():
    pytest.importorskip("ipywidgets")
    x = np.array([1.0, 10, 100])

    def regions(a):
        fig = viz.line_figure(x, {"y": a * x}, title=f"a = {a}", x_title="x", y_title="y", log_x=True)
        where = ["device", "split", "cloud"] if a < 2 else ["device"] * 3
        return viz.shade_regions(fig, x, where, viz.WHERE_COLORS)

    inst = viz.instrument(regions, {"a": [1, 3]})
    inst.widget()
    assert len(inst.figure_widget.layout.shapes) == 3
    inst.set(a=3)
    assert len(inst.figure_widget.layout.shapes) == 1 and len(inst.figure_widget.layout.annotations) == 1
    assert [a.text for a in inst.figure_widget.layout.annotations] == ["device"]
    assert len(frame(inst, "1").layout.shapes) == 1  # the static frame says the same


def test_frames_of_traces_with_properties_only_their_type_has():
    def patterned(k):
        return go.Figure([go.Bar(x=[0, 1], y=[k, 1], name="a", marker_pattern_shape="/")])

    inst = viz.instrument(patterned, {"k": [1, 2]})
    assert [list(f.data[0].y) for f in inst.figure.frames] == [[1, 1], [2, 1]]
    # plotly.js draws a frame's untyped trace as a scatter: a bar must say it is one, or it becomes a line.
    assert [f.data[0].type for f in inst.figure.frames] == ["bar", "bar"]
    assert viz.instrument(tokens, {"gamma": [1]}).figure.frames[0].data[0].type == "scatter"
    assert inst.figure.frames[0].data[0].marker.pattern.shape == "/"
