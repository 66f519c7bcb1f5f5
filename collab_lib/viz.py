"""Plotly figures in one house style, shown so that every place a reader meets them can draw them.

Importing this module registers

* the template ``"collab"`` (on top of ``"plotly_white"``) and makes it the default, and
* the renderer ``"collab"`` and makes it the default, except on Colab, which has its own (``"colab"``).

The ``"collab"`` renderer emits two representations of a figure:

``application/vnd.plotly.v1+json``
    drawn by JupyterLab and VS Code with their plotly extensions;
``text/html``
    a ``<div>`` and a call to ``Plotly.newPlot`` *without* plotly.js inside: the static book ships one
    local copy of plotly.js (``book/_ext/offline_assets.py``), so pages draw offline and notebooks stay
    small. The div id is derived from the figure's content, so re-running a lab reproduces its stored
    output byte for byte (``pytest --nbval``).

Numbers in a figure are rounded to :data:`SIGNIFICANT_DIGITS` significant digits before they are written:
far beyond what a plot can show, and it keeps stored outputs identical across CPUs whose float kernels
differ in the last bits.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Okabe–Ito palette: distinguishable with the common colour-vision deficiencies."""

WHERE_COLORS = {"device": COLORS[2], "split": COLORS[1], "cloud": COLORS[0]}
"""One colour per place a computation runs, used by every lab."""

FIG_CONFIG = {"displaylogo": False, "responsive": True}

#: Significant digits kept for numbers written into a figure.
SIGNIFICANT_DIGITS = 6

_counter = itertools.count()


class CollabRenderer(MimetypeRenderer):
    """Plotly JSON for Jupyter front ends plus an HTML div that draws with a page-provided plotly.js."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        fig_dict = round_floats(fig_dict)
        fig_json = pio.to_json(fig_dict, validate=False, remove_uids=True)
        digest = hashlib.sha1(fig_json.encode()).hexdigest()[:12]
        div_id = f"fig-{digest}-{next(_counter)}"
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            div_id=div_id,
            config=FIG_CONFIG,
            default_width="100%",
            default_height=450,
            validate=False,
        )
        plotly_json = json.loads(fig_json)
        plotly_json["config"] = FIG_CONFIG
        return {"application/vnd.plotly.v1+json": plotly_json, "text/html": html}


def round_floats(obj, digits: int = SIGNIFICANT_DIGITS):
    """A copy of ``obj`` (nested dicts, lists, tuples, NumPy arrays) with floats rounded to ``digits``
    significant digits; everything else unchanged."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, np.floating):
        return float(f"{float(obj):.{digits}g}")
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return np.array([float(f"{v:.{digits}g}") for v in obj.ravel()]).reshape(obj.shape)
    if isinstance(obj, dict) and obj.keys() >= {"dtype", "bdata"}:
        # plotly >= 6 stores NumPy arrays as base64 "typed arrays" {dtype, bdata[, shape]}.
        dtype = np.dtype(obj["dtype"])
        if dtype.kind != "f":
            return obj
        values = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=dtype)
        rounded = round_floats(values.astype(float), digits).astype(dtype)
        return {**obj, "bdata": base64.b64encode(rounded.tobytes()).decode()}
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(round_floats(v, digits) for v in obj)
    return obj


def _register() -> None:
    template = go.layout.Template(
        layout=dict(
            colorway=COLORS,
            font=dict(family="Helvetica, Arial, sans-serif", size=14),
            margin=dict(l=70, r=30, t=60, b=60),
            hovermode="x unified",
            # Legend under the plot, so that however many rows it needs it never covers the title.
            legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0),
        )
    )
    pio.templates["collab"] = template
    pio.templates.default = "plotly_white+collab"
    pio.renderers["collab"] = CollabRenderer()
    pio.renderers.default = "colab" if "google.colab" in sys.modules else "collab"


_register()


def line_figure(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_title: str,
    y_title: str,
    log_x: bool = False,
    log_y: bool = False,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """One line per entry of ``ys`` (legend name -> values) over the shared ``x``."""
    fig = go.Figure()
    for name, y in ys.items():
        if len(y) != len(x):
            raise ValueError(f"series {name!r} has {len(y)} values for {len(x)} x values")
        line = dict(color=colors[name]) if colors and name in colors else None
        fig.add_trace(go.Scatter(x=list(x), y=list(y), name=name, mode="lines", line=line))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def shade_regions(fig: go.Figure, x: Sequence[float], labels: Sequence[str], colors: Mapping[str, str]) -> go.Figure:
    """Shade the background where consecutive ``x`` share a label (e.g. where the device wins).

    Each run of equal labels becomes one vertical band from its first x to the first x of the next run
    (the last run ends at the last x), labelled at its top left; ``colors`` maps a label to its colour.
    plotly.js places shapes in data units but annotations on a log axis in log10 units, hence ``at``.
    """
    if len(x) != len(labels):
        raise ValueError(f"x has {len(x)} values but labels has {len(labels)}")
    log_x = fig.layout.xaxis.type == "log"
    if log_x and min(x) <= 0:
        raise ValueError("x must be positive on a log axis")
    at = math.log10 if log_x else (lambda v: v)
    start = 0
    for i in range(1, len(x) + 1):
        if i == len(x) or labels[i] != labels[start]:
            label, x0, x1 = labels[start], x[start], x[min(i, len(x) - 1)]
            fig.add_vrect(x0=x0, x1=x1, fillcolor=colors[label], opacity=0.12, line_width=0, layer="below")
            fig.add_annotation(x=at(x0), y=1, xref="x", yref="paper", text=label, showarrow=False,
                               xanchor="left", yanchor="top", font=dict(color=colors[label]))
            start = i
    return fig


GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: object, display: bool = False) -> None:
    """Store ``value``'s display form in the lab's outputs under ``name``, for a chapter to quote.

    A chapter pastes it with MyST-NB's glue roles, e.g.
    ``{glue:text}`../../labs/02_hardware/roofline_llm.ipynb::key:s``` (the notebook's path relative to the
    chapter, then the key, then a format spec: MyST-NB splits the spec off at the last colon, and ``s``
    also strips a string's quotes), or a ``{glue:any}`` directive with ``:doc:`` for a table, so numbers
    in the text are the ones the library computed. Same output format as ``myst_nb.glue`` (which labs cannot import on Colab).
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain HTML table in the book theme's style (for :func:`glue`, which chapters paste as HTML)."""
    from html import escape

    def row(cells: Sequence[object], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    return ('<table class="table"><thead>' + row(header, "th") + "</thead><tbody>"
            + "".join(row(r, "td") for r in rows) + "</tbody></table>")


def add_vline(fig: go.Figure, x: float, label: str, dash: str = "dot") -> go.Figure:
    """A labelled vertical line at data value ``x`` that also works on a log x axis.

    plotly.py's ``add_vline(annotation_text=...)`` places the label at ``x`` in axis units, which on a log
    axis means 10**x: a label at 64 stretches the axis to 1e64 and squashes every trace. Lines (shapes) take
    data units, annotations log10 units; this helper gives each what it needs.
    It reads the axis type when called, so set a log axis (``update_xaxes(type="log")``) first.
    """
    log_x = fig.layout.xaxis.type == "log"
    if log_x and x <= 0:
        raise ValueError("x must be positive on a log axis")
    fig.add_vline(x=x, line_dash=dash, line_width=1)
    fig.add_annotation(x=math.log10(x) if log_x else x, y=0, xref="x", yref="paper", text=label,
                       showarrow=False, xanchor="left", yanchor="bottom", textangle=-90)
    return fig


def add_hline(fig: go.Figure, y: float, label: str, dash: str = "dot") -> go.Figure:
    """A labelled horizontal line at data value ``y`` that also works on a log y axis.

    The same trap as :func:`add_vline`'s: plotly.py's ``add_hline(annotation_text=...)`` places the label at
    ``y`` in axis units, 10**y on a log axis (a label at 150 stretches the axis to 1e150). It reads the axis
    type when called, so set a log axis (``update_yaxes(type="log")``) first.
    """
    log_y = fig.layout.yaxis.type == "log"
    if log_y and y <= 0:
        raise ValueError("y must be positive on a log axis")
    fig.add_hline(y=y, line_dash=dash, line_width=1)
    fig.add_annotation(x=1, y=math.log10(y) if log_y else y, xref="paper", yref="y", text=label,
                       showarrow=False, xanchor="right", yanchor="bottom")
    return fig

