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
import re
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
            auto_play=False,  # an instrument's frames wait for its sliders (plotly's default plays them all)
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
    if "google.colab" in sys.modules:  # Colab draws third-party widgets (plotly's FigureWidget) once asked to
        try:
            from google.colab import output

            output.enable_custom_widget_manager()
        except (ImportError, AttributeError):
            pass


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



# --- instruments: controls that re-run a library function ---------------------------------------------

#: Most frames an instrument stores in its static figure (the grid's size): each frame holds every trace's
#: data, and the book's page weight budget (about 3 MB a lab page) is shared by all of a page's figures.
MAX_FRAMES = 64

_SLIDER_PX = 86  # vertical room one slider takes under the plot, with its current-value label


def _label(value: object) -> str:
    """How a grid value is written on a control: numbers without trailing zeros, anything else as str."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    return f"{float(value):.4g}"


def _frame_name(index: Sequence[int]) -> str:
    return ",".join(str(i) for i in index)


def _trace_data(fig: go.Figure) -> list[dict]:
    """Each trace of ``fig`` as a plain dict without its type (what a frame or a restyle carries)."""
    out = []
    for trace in fig.data:
        data = trace.to_plotly_json()
        data.pop("type", None)
        data.pop("uid", None)
        out.append(data)
    return out


def _frame_layout(fig: go.Figure) -> dict:
    """The parts of a figure's layout that may follow the parameters: title, axis titles and ranges,
    shapes and annotations (a threshold line that moves with the threshold)."""
    layout = fig.layout.to_plotly_json()
    keep = {k: layout[k] for k in ("title", "shapes", "annotations") if k in layout}
    keep.setdefault("shapes", [])
    keep.setdefault("annotations", [])
    for axis in ("xaxis", "yaxis"):
        if axis in layout:
            keep[axis] = {k: v for k, v in layout[axis].items() if k in ("title", "range")}
    return keep


def _axis_range(values: list[float], log: bool, from_zero: bool) -> list[float] | None:
    """A range that holds every frame's values (log10 units on a log axis), with 5 % room each side."""
    vals = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return None
    if log:
        vals = [math.log10(v) for v in vals]
    lo, hi = min(vals), max(vals)
    if from_zero and not log:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.05 * (hi - lo) if hi > lo else (abs(hi) * 0.05 or 1.0)
    return [lo - pad if not (from_zero and lo == 0) else lo, hi + pad]


def _numbers(values) -> list[float]:
    out = []
    for v in values if values is not None else ():
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out.append(float(v))
    return out


class Instrument:
    """Controls over a library function's parameters and the figure it draws, live or static.

    Made by :func:`instrument`; displaying it (the last expression of a cell) shows

    * under a kernel with ipywidgets (JupyterLab, Colab, Binder): one control per parameter above a plotly
      ``FigureWidget``; moving a control calls the function again and updates the figure in place;
    * anywhere else, and in the static book: the same figure with one slider per parameter, whose frames
      (one per grid point, the ``frames`` of its ``figure``) the library computed when the cell ran.

    The notebook stores both; the stored copy of a lab keeps only the static figure
    (``tests/strip_widgets.py``), which is what the book shows and what nbval compares.
    """

    def __init__(self, fn, grid: Mapping[str, Sequence], *, start: Mapping | None, labels: Mapping[str, str],
                 fix_axes: bool, max_frames: int):
        from ._validate import positive_int

        positive_int("max_frames", max_frames)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError("grid must map each parameter name to the values its control offers")
        self.fn = fn
        self.grid = {}
        for name, values in grid.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"parameter names must be identifiers (fn's keyword arguments), got {name!r}")
            values = list(values)
            if not values:
                raise ValueError(f"grid[{name!r}] is empty: a control needs at least one value")
            if len({_label(v) for v in values}) != len(values):
                raise ValueError(f"grid[{name!r}] has values that read the same on a control: {values}")
            self.grid[name] = values
        self.labels = {name: (labels or {}).get(name, name) for name in self.grid}
        unknown = set(labels or {}) - set(self.grid)
        if unknown:
            raise ValueError(f"labels for parameters not in the grid: {sorted(unknown)}")
        size = math.prod(len(v) for v in self.grid.values())
        if size > max_frames:
            raise ValueError(
                f"the grid has {size} points, more than max_frames={max_frames}: each is a frame of the "
                "static figure, and the page must stay light; use fewer values or raise max_frames"
            )
        start = dict(start or {})
        unknown = set(start) - set(self.grid)
        if unknown:
            raise ValueError(f"start names parameters not in the grid: {sorted(unknown)}")
        self.start_index = []
        for name, values in self.grid.items():
            if name in start:
                matches = [i for i, v in enumerate(values) if _label(v) == _label(start[name])]
                if not matches:
                    raise ValueError(f"start[{name!r}] = {start[name]!r} is not one of grid[{name!r}]")
                self.start_index.append(matches[0])
            else:
                self.start_index.append(0)
        self.fix_axes = fix_axes
        self._widget = None
        self.figure = self._static_figure()

    # -- the static figure -------------------------------------------------------------------------------

    def params(self, index: Sequence[int]) -> dict:
        """The keyword arguments of grid point ``index`` (one position per parameter)."""
        return {name: values[i] for (name, values), i in zip(self.grid.items(), index)}

    def _draw(self, params: Mapping) -> go.Figure:
        fig = self.fn(**params)
        if not isinstance(fig, go.Figure):
            raise TypeError(f"fn must return a plotly Figure, got {type(fig).__name__} for {dict(params)}")
        return fig

    def _static_figure(self) -> go.Figure:
        indices = list(itertools.product(*(range(len(v)) for v in self.grid.values())))
        drawn = {index: self._draw(self.params(index)) for index in indices}
        first = drawn[tuple(self.start_index)]
        shape = [(t.type, t.name) for t in first.data]
        for index, fig in drawn.items():
            if [(t.type, t.name) for t in fig.data] != shape:
                raise ValueError(
                    f"fn draws other traces at {self.params(index)} than at {self.params(self.start_index)}: "
                    "every grid point must draw the same traces (types and names), so that a control only "
                    "changes their data"
                )
        fig = go.Figure(first)
        self.ranges = self._ranges(drawn.values(), fig) if self.fix_axes else {}
        fig.update_layout(**{axis: dict(range=r, autorange=False) for axis, r in self.ranges.items()})
        frames = []
        for index, drawn_fig in drawn.items():
            layout = _frame_layout(drawn_fig)
            for axis, r in self.ranges.items():
                layout.setdefault(axis, {})["range"] = r
            # A frame's trace without a type is a scatter trace to plotly.js: a bar would be redrawn as a line.
            data = [d if t.type == "scatter" else dict(d, type=t.type)
                    for d, t in zip(_trace_data(drawn_fig), drawn_fig.data)]
            frame = go.Frame(name=_frame_name(index), data=data, traces=list(range(len(shape))), layout=layout)
            frames.append(frame)
        fig.frames = frames
        n = len(self.grid)
        sliders = []
        for k, (name, values) in enumerate(self.grid.items()):
            steps = []
            for i, value in enumerate(values):
                index = list(self.start_index)
                index[k] = i
                # One parameter: the step shows its frame in any plotly.js. Several: the book's
                # instruments.js combines every slider's position into the frame to show.
                args = [[_frame_name(index)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                                   transition=dict(duration=0))]
                steps.append(dict(label=_label(value), method="animate" if n == 1 else "skip",
                                  args=args if n == 1 else [], value=str(i)))
            sliders.append(dict(
                # Inset, so that the end labels (centred on their ticks) stay inside the figure.
                active=self.start_index[k], steps=steps, x=0.06, xanchor="left", len=0.88, y=0, yanchor="top",
                pad=dict(t=60 + _SLIDER_PX * k, b=0), currentvalue=dict(prefix=f"{self.labels[name]}: "),
                name=name,
            ))
        height = (fig.layout.height or 450) + _SLIDER_PX * n
        margin_b = (fig.layout.margin.b if fig.layout.margin.b is not None else 60) + _SLIDER_PX * n
        fig.update_layout(
            sliders=sliders, height=height, margin=dict(b=margin_b),
            # The legend goes above the plot: under it are the sliders.
            legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
            meta=dict(instrument=dict(params=list(self.grid), labels=[self.labels[p] for p in self.grid],
                                      values=[[_label(v) for v in vals] for vals in self.grid.values()])),
        )
        return fig

    def _ranges(self, figs, template: go.Figure) -> dict:
        """x and y ranges that hold every frame's points (stacked bars: their totals), for the axes whose
        range the figure leaves to plotly and whose traces are all scatter or bar traces on them."""
        ranges = {}
        stacked = template.layout.barmode in ("stack", "relative")
        for axis, key in (("xaxis", "x"), ("yaxis", "y")):
            layout_axis = template.layout[axis]
            if layout_axis.range is not None or layout_axis.type in ("category", "multicategory", "date"):
                continue
            values, bars, usable = [], False, True
            for fig in figs:
                totals: dict = {}
                for trace in fig.data:
                    if (trace[key + "axis"] or key) != key:
                        continue  # a trace of another subplot
                    if trace.type not in ("scatter", "scattergl", "bar"):
                        usable = False
                        break
                    raw = trace[key]
                    if raw is None:
                        continue
                    vals = _numbers(raw)
                    if len(vals) != len(raw):
                        usable = False  # categories on this axis
                        break
                    value_axis = trace.type == "bar" and key == ("x" if trace.orientation == "h" else "y")
                    bars = bars or value_axis
                    if value_axis and stacked:
                        other = trace["y" if key == "x" else "x"]
                        positions = other if other is not None else range(len(vals))
                        for at, v in zip(positions, vals):
                            totals[at] = totals.get(at, 0.0) + v
                    else:
                        values.extend(vals)
                values.extend(totals.values())
                if not usable:
                    break
            r = _axis_range(values, layout_axis.type == "log", from_zero=bars) if usable else None
            if r is not None:
                ranges[axis] = r
        return ranges

    # -- the live widget ---------------------------------------------------------------------------------

    def widget(self):
        """The live view: ipywidgets controls over a plotly ``FigureWidget`` (built on first use)."""
        if self._widget is None:
            import ipywidgets as widgets

            static = self.figure.to_dict()
            n = len(self.grid)
            self.figure_widget = go.FigureWidget(dict(data=static["data"], layout=static["layout"]))
            self.figure_widget.layout.sliders = ()
            self.figure_widget.update_layout(
                height=self.figure.layout.height - _SLIDER_PX * n,
                margin=dict(b=self.figure.layout.margin.b - _SLIDER_PX * n),
            )
            self.controls = {}
            for (name, values), i in zip(self.grid.items(), self.start_index):
                options = [(_label(v), k) for k, v in enumerate(values)]
                common = dict(options=options, value=i, description=self.labels[name],
                              style=dict(description_width="initial"))
                if len(values) > 3 and len(_numbers(values)) == len(values):
                    control = widgets.SelectionSlider(**common, continuous_update=False,
                                                      layout=dict(width="95%"))
                else:
                    control = widgets.ToggleButtons(**common)
                control.observe(self._on_change, names="value")
                self.controls[name] = control
            self._widget = widgets.VBox([*self.controls.values(), self.figure_widget])
        return self._widget

    def index(self) -> tuple[int, ...]:
        """The live controls' grid point (the start point before the widget exists)."""
        if self._widget is None:
            return tuple(self.start_index)
        return tuple(c.value for c in self.controls.values())

    def set(self, **params) -> None:
        """Move the live controls to ``params`` (grid values), as a reader would; redraws the figure."""
        self.widget()
        for name, value in params.items():
            if name not in self.grid:
                raise ValueError(f"{name!r} is not a parameter of this instrument: {list(self.grid)}")
            matches = [i for i, v in enumerate(self.grid[name]) if _label(v) == _label(value)]
            if not matches:
                raise ValueError(f"{value!r} is not one of grid[{name!r}] = {self.grid[name]}")
            self.controls[name].value = matches[0]

    def _on_change(self, change=None) -> None:
        fig = self._draw(self.params(self.index()))
        layout = _frame_layout(fig)
        for axis, r in self.ranges.items():
            layout.setdefault(axis, {})["range"] = r
        fw = self.figure_widget
        shapes, annotations = layout.pop("shapes"), layout.pop("annotations")
        with fw.batch_update():
            for trace, data in zip(fw.data, _trace_data(fig)):
                trace.update(round_floats(data), overwrite=True)
            fw.update_layout(round_floats(layout), overwrite=False)
        # Whole lists, outside the batch (plotly.py cannot batch a change in their length).
        fw.layout.shapes = round_floats(shapes)
        fw.layout.annotations = round_floats(annotations)

    # -- display -----------------------------------------------------------------------------------------

    def _static_bundle(self) -> dict:
        renderer = pio.renderers[pio.renderers.default]
        if not hasattr(renderer, "to_mimebundle"):
            renderer = pio.renderers["collab"]
        return renderer.to_mimebundle(self.figure.to_dict())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self._static_bundle()
        bundle["text/plain"] = (
            f"Instrument over {', '.join(self.labels.values())}: {len(self.figure.frames)} frames"
        )
        return _with_widget_view(bundle, self.widget)


def _with_widget_view(bundle: dict, widget) -> dict:
    """``bundle`` (the static representations) plus the live widget's view, which front ends with a kernel
    prefer; the static ones alone where ipywidgets or anywidget is missing."""
    try:
        view = widget()._repr_mimebundle_()
    except ImportError:
        return bundle
    return {**bundle, **{k: v for k, v in view.items() if k != "text/plain"}}


def instrument(fn, grid: Mapping[str, Sequence], *, start: Mapping | None = None,
               labels: Mapping[str, str] | None = None, fix_axes: bool = True,
               max_frames: int = MAX_FRAMES) -> Instrument:
    """Controls over ``fn``'s parameters: a live widget under a kernel, a slider figure in the static book.

    Parameters
    ----------
    fn:
        ``fn(**params) -> plotly Figure``, drawn by the library's functions; it is called once per grid
        point when the instrument is made (those are the static figure's frames) and again on every move
        of a live control. Every grid point must draw the same traces; titles may follow the parameters.
    grid:
        Parameter name (a keyword of ``fn``) -> the values its control offers, in order.
    start:
        The grid point shown first (default: each parameter's first value).
    labels:
        Parameter name -> what its control is called (default: the name).
    fix_axes:
        Hold the x and y ranges at what every frame needs, so that a move shows a change against fixed axes.
    max_frames:
        Most grid points allowed (:data:`MAX_FRAMES`), to keep the book's pages light.
    """
    return Instrument(fn, grid, start=start, labels=labels or {}, fix_axes=fix_axes, max_frames=max_frames)


# --- predict, then reveal ------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    """Three significant digits, written as JavaScript's ``String(Number(x.toPrecision(3)))`` writes them
    (``instruments.js`` writes the same reveal in the static book)."""
    v = float(f"{float(x):.3g}")
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    text = repr(v)
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", text)


def _with_unit(text: str, unit: str) -> str:
    return f"{text}{unit}" if unit in ("", "×", "%") else f"{text} {unit}"


def reveal_text(guess, measured, unit: str = "", choices: Sequence[str] | None = None) -> str:
    """What the reveal says: the guess beside the measured value, and how far off it was.

    A number is off by a percentage when within a factor of 2 and by a factor beyond that; a choice is
    right or not. The static book's ``instruments.js`` computes the same sentence in the reader's browser
    (the browser test compares the two).
    """
    if choices is not None:
        if guess == measured:
            return f"You chose {guess}: that is what this run measured."
        return f"You chose {guess}; this run measured {measured}."
    g, m = _with_unit(_fmt(guess), unit), _with_unit(_fmt(measured), unit)
    head = f"You predicted {g}; this run measured {m}"
    if guess == measured:
        return f"{head}: exactly right."
    if measured != 0 and guess / measured > 0:
        r = guess / measured
        if r >= 2:
            off = f"{_fmt(r)}× too high"
        elif r > 1:
            off = f"{_fmt((r - 1) * 100)}% too high"
        elif r > 0.5:
            off = f"{_fmt((1 - r) * 100)}% too low"
        else:
            off = f"{_fmt(1 / r)}× too low"
    else:
        off = f"off by {_with_unit(_fmt(abs(guess - measured)), unit)}"
    return f"{head}: {off}."


class Prediction:
    """A guess the learner commits before the lab shows the answer; made by :func:`predict`.

    Under a kernel: a number field (or a choice) and a button that locks the guess and reveals the
    measured value beside it. In the static book: the same form, which the book's ``instruments.js``
    makes work without a kernel. Its ``guess`` holds the locked guess (None before).
    """

    def __init__(self, question: str, measured, unit: str, choices: Sequence[str] | None):
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        if choices is not None:
            choices = [str(c) for c in choices]
            if len(choices) < 2 or len(set(choices)) != len(choices):
                raise ValueError(f"choices must be at least two distinct options, got {choices}")
            if str(measured) not in choices:
                raise ValueError(f"the measured answer {measured!r} is not one of the choices {choices}")
            measured = str(measured)
        else:
            if isinstance(measured, bool) or not _numbers([measured]) or not math.isfinite(float(measured)):
                raise ValueError(f"measured must be a finite number (or pass choices), got {measured!r}")
            measured = float(measured)
        self.question, self.measured, self.unit, self.choices = question, measured, unit, choices
        self.guess = None
        self._widget = None

    def reveal(self, guess) -> str:
        """Lock ``guess`` in and return what the reveal says (what the button does)."""
        if self.guess is not None:
            raise RuntimeError(f"the guess is already locked in: {self.guess}")
        if self.choices is not None:
            if guess not in self.choices:
                raise ValueError(f"{guess!r} is not one of {self.choices}")
        elif isinstance(guess, bool) or not _numbers([guess]) or not math.isfinite(float(guess)):
            raise ValueError(f"a guess must be a finite number, got {guess!r}")
        self.guess = guess if self.choices is not None else float(guess)
        return reveal_text(self.guess, self.measured, self.unit, self.choices)

    def widget(self):
        if self._widget is None:
            import ipywidgets as widgets

            if self.choices is None:
                field = widgets.Text(value="", description="Your guess", placeholder=self.unit or "a number",
                                     style=dict(description_width="initial"))
            else:
                field = widgets.Dropdown(options=self.choices, value=None, description="Your guess",
                                         style=dict(description_width="initial"))
            button = widgets.Button(description="Lock in and reveal", button_style="primary")
            result = widgets.HTML()

            def click(_):
                value = field.value
                if self.choices is None:
                    try:
                        value = float(str(value).strip().replace(",", ""))
                    except ValueError:
                        value = None
                if value is None or (self.choices is None and not math.isfinite(value)):
                    result.value = "<em>Enter a guess first: the reveal shows it beside the measured value.</em>"
                    return
                result.value = f"<strong>{_escape(self.reveal(value))}</strong>"
                field.disabled = button.disabled = True

            button.on_click(click)
            self.field, self.button, self.result = field, button, result
            label = widgets.HTML(f"<strong>Predict.</strong> {_escape(self.question)}")
            self._widget = widgets.VBox([label, widgets.HBox([field, button]), result])
        return self._widget

    def html(self) -> str:
        """The static form (what the book shows): works with the book's ``instruments.js``, and without it
        still hides the answer behind a "reveal" the reader opens."""
        if self.choices is None:
            data = f'data-kind="number" data-measured="{self.measured!r}"'
            field = '<input type="number" step="any" class="collab-predict-guess" aria-label="your guess">'
            shown = _with_unit(_fmt(self.measured), self.unit)
        else:
            data = f'data-kind="choice" data-measured="{_escape(self.measured)}"'
            options = "".join(f"<option>{_escape(c)}</option>" for c in self.choices)
            field = ('<select class="collab-predict-guess" aria-label="your guess">'
                     f'<option value="" selected></option>{options}</select>')
            shown = _escape(self.measured)
        unit = f" {_escape(self.unit)}" if self.unit else ""
        return (
            f'<div class="collab-predict" {data} data-unit="{_escape(self.unit)}">'
            f"<p><strong>Predict.</strong> {_escape(self.question)}</p>"
            f"<p><label>Your guess: {field}{unit}</label></p>"
            '<details class="collab-predict-reveal"><summary>Lock in and reveal</summary>'
            f'<p class="collab-predict-result">This run measured {shown}.</p></details></div>'
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return _with_widget_view({"text/html": self.html(), "text/plain": f"Predict: {self.question}"}, self.widget)


def _escape(text: str) -> str:
    from html import escape

    return escape(str(text), quote=True)


def predict(question: str, measured, *, unit: str = "", choices: Sequence[str] | None = None) -> Prediction:
    """Ask the learner to commit a guess, then reveal ``measured`` (computed by the library) beside it.

    Parameters
    ----------
    question:
        What to predict, as a sentence.
    measured:
        The library's value: a number, or one of ``choices``.
    unit:
        Written after numbers ("ms", "×", "%").
    choices:
        The options of a multiple-choice prediction (default: a number).
    """
    return Prediction(question, measured, unit, choices)
