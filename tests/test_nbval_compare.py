"""The last-digit comparison of lab outputs: a rounding flip passes, anything larger fails.

Unit cases for each kind of output, then nbval itself on a one-cell notebook, with and without the tag, so
that the plugin is known to be wired into `pytest --nbval` as the Makefile runs it.
"""

import base64
import json
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest

from collab_lib import viz
from tests.book_build import ROOT
from tests.nbval_compare import FIGURE_DIGITS, TAG, align, json_within, output_within, text_within


def test_the_figure_precision_is_the_one_viz_writes():
    assert FIGURE_DIGITS == viz.SIGNIFICANT_DIGITS


@pytest.mark.parametrize("ref, test", [
    ("accuracy 95.2%", "accuracy 95.3%"),
    ("accuracy 95.2%", "accuracy 95.1%"),
    ("loss 1.780 nats", "loss 1.781 nats"),
    ("gain -0.0 points", "gain 0.0 points"),
    ("ratio 1.2e-05", "ratio 1.3e-05"),
    ("99.9% and 12 seeds", "100.0% and 12 seeds"),
])
def test_text_one_unit_in_the_last_digit_passes(ref, test):
    assert text_within(ref, test)


@pytest.mark.parametrize("ref, test", [
    ("accuracy 95.2%", "accuracy 95.4%"),        # two units
    ("beats it on 5 of 5 seeds", "beats it on 4 of 5 seeds"),  # integers are exact
    ("25,866 parameters", "25,867 parameters"),
    ("accuracy 95.2%", "accuracy 95.20%"),       # printed precision changed
    ("accuracy 95.2%", "precision 95.2%"),       # words changed
    ("best T = 4", "best T = 2"),
    ("1.5 and 2.5", "1.5 and 2.5 and 3.5"),      # a number more
    ("ratio 1.2e-05", "ratio 1.2e-04"),
])
def test_text_beyond_the_last_digit_fails(ref, test):
    assert not text_within(ref, test)


def test_json_floats_within_their_sixth_significant_digit():
    assert json_within({"y": [0.972833, 12.3457]}, {"y": [0.972834, 12.3458]})
    assert json_within({"y": [0.0999999]}, {"y": [0.1]})
    assert not json_within({"y": [0.972833]}, {"y": [0.972853]})
    assert not json_within({"y": [1, 2]}, {"y": [1, 3]})          # ints exact
    assert not json_within({"y": [1.0, 2.0]}, {"y": [1.0]})       # length
    assert not json_within({"y": [1.0]}, {"x": [1.0]})            # keys
    assert json_within({"name": "T = 4 (entropy 0.23 nats)"}, {"name": "T = 4 (entropy 0.24 nats)"})
    assert not json_within({"name": "T = 4"}, {"name": "T = 2"})


def _typed(values):
    return {"dtype": "f8", "bdata": base64.b64encode(np.asarray(values, dtype="f8").tobytes()).decode()}


def test_plotly_typed_arrays_are_compared_as_numbers():
    assert json_within({"y": _typed([0.972833, 5.0])}, {"y": _typed([0.972834, 5.0])})
    assert not json_within({"y": _typed([0.972833, 5.0])}, {"y": _typed([0.982833, 5.0])})


def _figure(y):
    return viz.CollabRenderer().to_mimebundle(go.Figure(go.Scatter(x=[1, 2, 3], y=y), layout=dict(
        title="Accuracy 95.2%")).to_dict())


def test_a_figure_whose_numbers_flip_in_the_last_digit_passes_in_json_and_html():
    a, b = _figure(np.array([0.9728331, 0.5, 0.25])), _figure(np.array([0.9728339, 0.5, 0.25]))
    for mime in ("application/vnd.plotly.v1+json", "text/html"):
        assert a[mime] != b[mime]
        assert output_within(mime, a[mime], b[mime])
    assert a["text/html"].split('id="')[1][:20] != b["text/html"].split('id="')[1][:20]  # the digest moved


def test_a_figure_that_really_changed_fails_in_json_and_html():
    a, b = _figure(np.array([0.9728331, 0.5, 0.25])), _figure(np.array([0.9728331, 0.6, 0.25]))
    for mime in ("application/vnd.plotly.v1+json", "text/html"):
        assert not output_within(mime, a[mime], b[mime])
    other_title = viz.CollabRenderer().to_mimebundle(go.Figure(go.Scatter(x=[1, 2, 3], y=[0.9728331, 0.5, 0.25]),
                                                               layout=dict(title="Loss 95.2%")).to_dict())
    assert not output_within("text/html", a["text/html"], other_title["text/html"])


def test_align_replaces_only_what_is_within_and_keeps_the_rest_for_nbval():
    ref = [{"output_type": "stream", "name": "stdout", "text": "acc 95.2%\n"},
           {"output_type": "display_data", "data": {"text/plain": "'0.51'", "text/html": "<b>0.51</b>"}}]
    test = [{"output_type": "stream", "name": "stdout", "text": "acc 95.3%\n"},
            {"output_type": "display_data", "data": {"text/plain": "'0.52'", "text/html": "<b>0.58</b>"}}]
    out = align(test, ref)
    assert out[0]["text"] == "acc 95.2%\n"
    assert out[1]["data"]["text/plain"] == "'0.51'" and out[1]["data"]["text/html"] == "<b>0.58</b>"
    assert test[0]["text"] == "acc 95.3%\n"  # the run's own outputs are not modified


def _run_nbval(tmp_path, stored_text, tags):
    cell = {"id": "c0", "cell_type": "code", "execution_count": 1, "metadata": {"tags": tags},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [stored_text]}],
            "source": "print('accuracy 95.2%')"}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                       "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(nb))
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p",
                           "tests.nbval_compare", "-q", "-p", "no:cacheprovider", str(path)],
                          capture_output=True, text=True, cwd=ROOT)  # ROOT: where `tests` imports from


@pytest.mark.parametrize("stored, tags, passes", [
    ("accuracy 95.2%\n", [], True),
    ("accuracy 95.3%\n", [], False),      # untagged: exact
    ("accuracy 95.3%\n", [TAG], True),    # tagged: one unit in the last digit
    ("accuracy 95.4%\n", [TAG], False),   # tagged, two units: a real change
])
def test_nbval_compares_tagged_cells_to_the_last_digit_and_others_exactly(tmp_path, stored, tags, passes):
    proc = _run_nbval(tmp_path, stored, tags)
    assert (proc.returncode == 0) == passes, proc.stdout[-2000:] + proc.stderr[-2000:]
