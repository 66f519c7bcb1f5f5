"""nbval, told which outputs may differ from machine to machine in the last printed digit.

nbval compares every stored output with the re-run one, character for character. That is right for what
the labs compute deterministically, and it stays the rule. The labs that train compute in float64
(``collab_lib.seed.set_seed``), which brings runs on different CPUs' float kernels to within about 1e-12 of
each other; a number printed at any precision a lab uses can then still round the other way. A code cell
tagged ``last-digit`` (cell metadata ``tags``) has its outputs compared number by number instead:

* text (streams, ``text/plain``, glued values, strings inside figures): everything but the numbers must be
  equal, and each number may differ by at most one unit in its last printed digit; integers must be equal,
  and both numbers must be printed with the same number of decimals;
* plotly figures (``application/vnd.plotly.v1+json``, and the JSON inside the ``text/html`` that draws them):
  the same structure, and each float within one unit of its sixth significant digit, the precision
  ``collab_lib.viz`` writes (:data:`collab_lib.viz.SIGNIFICANT_DIGITS`); the figure's ``div`` id, a digest of
  its content, is not compared (the content is).

Anything more than that still fails, with nbval's own report. Loaded with ``-p tests.nbval_compare``
(pyproject's pytest ``addopts``). ``python -m tests.nbval_compare stored.ipynb run.ipynb`` lists the
outputs of two copies of a notebook that differ, and by how much.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from typing import Any

TAG = "last-digit"
"""The cell tag that allows one unit in the last printed digit."""

FIGURE_DIGITS = 6  # collab_lib.viz.SIGNIFICANT_DIGITS; tests/test_seed_viz.py checks the two agree

# A number as the labs print it: optional sign, digits, optional decimals, optional exponent.
_NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?(?:[eE]([-+]?\d+))?")
_FIG_ID = re.compile(r"fig-[0-9a-f]{12}-\d+")
_NEWPLOT = "Plotly.newPlot("


# --- numbers in text ----------------------------------------------------------------------------------


def _last_digit_unit(token: re.Match) -> float | None:
    """One unit in the last printed digit of a number token; None for an integer (compared exactly)."""
    decimals, exponent = token.group(1), token.group(2)
    if decimals is None and exponent is None:
        return None
    places = len(decimals) if decimals else 0
    return 10.0 ** (int(exponent or 0) - places)


def text_within(ref: str, test: str) -> bool:
    """True if ``test`` is ``ref`` up to numbers that differ by one unit in their last printed digit."""
    if ref == test:
        return True
    ref_tokens, test_tokens = list(_NUMBER.finditer(ref)), list(_NUMBER.finditer(test))
    if len(ref_tokens) != len(test_tokens) or _NUMBER.split(ref)[::3] != _NUMBER.split(test)[::3]:
        return False  # the words between the numbers differ, or there are more numbers
    for a, b in zip(ref_tokens, test_tokens):
        if a.group(0) == b.group(0):
            continue
        unit_a, unit_b = _last_digit_unit(a), _last_digit_unit(b)
        if unit_a is None or unit_a != unit_b:
            return False  # an integer changed, or the printed precision did
        if abs(float(a.group(0)) - float(b.group(0))) > 1.000001 * unit_a:
            return False
    return True


# --- numbers in figures -------------------------------------------------------------------------------


def _decode_typed_arrays(obj: Any) -> Any:
    """Plotly's base64 typed arrays ({dtype, bdata[, shape]}) as plain lists, everything else as is."""
    if isinstance(obj, dict) and obj.keys() >= {"dtype", "bdata"}:
        import numpy as np

        values = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
        return values.tolist()
    if isinstance(obj, dict):
        return {k: _decode_typed_arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_typed_arrays(v) for v in obj]
    return obj


def _float_within(a: float, b: float) -> bool:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    scale = max(abs(a), abs(b))
    if not math.isfinite(scale):
        return False
    unit = 10.0 ** (math.floor(math.log10(scale)) - (FIGURE_DIGITS - 1))
    return abs(a - b) <= 1.000001 * unit


def json_within(ref: Any, test: Any) -> bool:
    """True if two decoded JSON values have the same structure, equal ints, strings equal up to their
    numbers' last digit and floats within one unit of their sixth significant digit."""
    ref, test = _decode_typed_arrays(ref), _decode_typed_arrays(test)
    if isinstance(ref, bool) or isinstance(test, bool):
        return ref == test
    if isinstance(ref, float) or isinstance(test, float):
        return isinstance(ref, (int, float)) and isinstance(test, (int, float)) and _float_within(ref, test)
    if isinstance(ref, dict):
        return (isinstance(test, dict) and ref.keys() == test.keys()
                and all(json_within(ref[k], test[k]) for k in ref))
    if isinstance(ref, list):
        return isinstance(test, list) and len(ref) == len(test) and all(map(json_within, ref, test))
    if isinstance(ref, str):
        return isinstance(test, str) and text_within(ref, test)
    return ref == test


def _split_plotly_html(html: str) -> tuple[str, list[Any]] | None:
    """(the HTML around the figure's JSON with its div id blanked, [data, layout, config]), or None if
    ``html`` does not draw a plotly figure."""
    start = html.find(_NEWPLOT)
    if start < 0:
        return None
    decoder, pos, args = json.JSONDecoder(), start + len(_NEWPLOT), []
    try:
        for _ in range(4):  # the div id, data, layout, config
            while html[pos] in " \n\t,":
                pos += 1
            value, pos = decoder.raw_decode(html, pos)
            args.append(value)
    except (ValueError, IndexError):
        return None
    outside = _FIG_ID.sub("fig-…", html[:start] + html[pos:])
    return outside, [_decode_typed_arrays(a) for a in args[1:]]


def output_within(mime: str, ref: Any, test: Any) -> bool:
    """True if the ``mime`` value ``test`` equals ``ref`` up to the last-digit rule (module docstring)."""
    if ref == test:
        return True
    if isinstance(ref, dict) and isinstance(test, dict):  # application/vnd.plotly.v1+json and other JSON
        return json_within(_decode_typed_arrays(ref), _decode_typed_arrays(test))
    if not isinstance(ref, str) or not isinstance(test, str):
        return False
    if mime == "text/html":
        ref_fig, test_fig = _split_plotly_html(ref), _split_plotly_html(test)
        if ref_fig is not None and test_fig is not None:
            return ref_fig[0] == test_fig[0] and json_within(ref_fig[1], test_fig[1])
    return text_within(ref, test)


# --- outputs of a cell --------------------------------------------------------------------------------


def _values(output: dict) -> dict[str, Any]:
    """The compared values of one output: {mime: value} for data, {stream name: text} for a stream."""
    if output.get("output_type") == "stream":
        return {output["name"]: output["text"]}
    return dict(output.get("data", {}))


def align(test: list[dict], ref: list[dict]) -> list[dict]:
    """``test`` with every value that is within the last-digit rule of its counterpart in ``ref``
    replaced by that counterpart; values beyond it, and outputs that do not pair up, are left as they are
    for nbval to report."""
    if len(test) != len(ref):
        return test
    aligned = []
    for t, r in zip(test, ref):
        t = type(t)(t)  # a shallow copy of the same type: nbval reads outputs as NotebookNodes
        if t.get("output_type") != r.get("output_type"):
            aligned.append(t)
            continue
        if t.get("output_type") == "stream":
            if t.get("name") == r.get("name") and text_within(r["text"], t["text"]):
                t["text"] = r["text"]
        elif "data" in t and "data" in r:
            data = type(t["data"])(t["data"])
            for mime, value in data.items():
                if mime in r["data"] and output_within(mime, r["data"][mime], value):
                    data[mime] = r["data"][mime]
            t["data"] = data
        aligned.append(t)
    return aligned


def differences(test: list[dict], ref: list[dict]) -> list[str]:
    """What differs between a cell's outputs, one line each: 'exact' if nothing, else per value whether
    it is within the last-digit rule."""
    if len(test) != len(ref):
        return [f"{len(ref)} outputs stored, {len(test)} now"]
    lines = []
    for k, (t, r) in enumerate(zip(test, ref)):
        tv, rv = _values(t), _values(r)
        if tv.keys() != rv.keys():
            lines.append(f"output {k}: {sorted(rv)} stored, {sorted(tv)} now")
            continue
        for mime in rv:
            if rv[mime] != tv[mime]:
                ok = output_within(mime, rv[mime], tv[mime])
                lines.append(f"output {k} {mime}: {'within the last digit' if ok else 'DIFFERS'}")
    return lines


# --- the pytest plugin --------------------------------------------------------------------------------


def pytest_configure(config) -> None:
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to patch
        return
    if getattr(IPyNbCell.compare_outputs, "_last_digit", False):
        return
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if TAG in self.cell.metadata.get("tags", []):
            test = align(test, ref)
        return exact(self, test, ref, skip_compare)

    compare_outputs._last_digit = True
    IPyNbCell.compare_outputs = compare_outputs


# --- command line ---------------------------------------------------------------------------------------


def _coalesced(outputs: list[dict]) -> list[dict]:
    """Consecutive stream outputs of one name merged, as nbval does before comparing."""
    merged: list[dict] = []
    for o in outputs:
        if o["output_type"] == "stream":
            same = next((m for m in merged if m["output_type"] == "stream" and m["name"] == o["name"]), None)
            if same is not None:
                same["text"] += "".join(o["text"])
                continue
            o = {**o, "text": "".join(o["text"])}
        elif "data" in o:
            o = {**o, "data": {k: "".join(v) if isinstance(v, list) else v for k, v in o["data"].items()}}
        merged.append(o)
    return merged


def main(argv: list[str]) -> int:
    stored, run = (json.load(open(p)) for p in argv)
    code = [(c, d) for c, d in zip(stored["cells"], run["cells"]) if c["cell_type"] == "code"]
    worst = 0
    for i, (c, d) in enumerate(code):
        if re.search(r"^\s*#\s*NBVAL_(IGNORE_OUTPUT|SKIP)\s*$", "".join(c["source"]), re.M):
            continue  # nbval does not compare this cell
        lines = differences(_coalesced(d.get("outputs", [])), _coalesced(c.get("outputs", [])))
        tagged = TAG in c.get("metadata", {}).get("tags", [])
        for line in lines:
            print(f"cell {i}{' [' + TAG + ']' if tagged else ''}: {line}")
            worst = max(worst, 2 if "DIFFERS" in line or "outputs" in line else (0 if tagged else 1))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
