"""Sphinx extension: ship the installed plotly.js with the book so figures draw offline.

Lab outputs carry a div and a ``Plotly.newPlot`` call but no plotly.js (see ``collab_lib.viz``). This
extension adds ``<script src="_static/plotly.min.js">`` to every page and copies the plotly.js that comes
with the installed plotly package (the same version that made the figures) into ``_static``.

Each figure output also carries ``application/vnd.plotly.v1+json`` for JupyterLab. myst-nb renders every
mime type of an output before it picks the HTML one, and warns on that JSON ("unknown output mime type"),
which ``-W`` turns into a failure. The book draws the HTML representation, so the JSON one is rendered as
nothing, and every other unknown mime type still warns.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from myst_nb.core.render import NbElementRenderer
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _skip_plotly_json(render_unhandled):
    def render(self, data):
        return [] if data.mime_type == PLOTLY_MIME else render_unhandled(self, data)

    render._skips_plotly_json = True
    return render


def _copy_plotly_js(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset_file(str(PLOTLY_JS), str(Path(app.outdir) / "_static"))


def setup(app: Sphinx) -> dict:
    if not PLOTLY_JS.is_file():
        raise RuntimeError(f"plotly.js not found at {PLOTLY_JS}; reinstall plotly")
    for name in ("render_unhandled", "render_unhandled_inline"):
        method = getattr(NbElementRenderer, name)
        if not getattr(method, "_skips_plotly_json", False):
            setattr(NbElementRenderer, name, _skip_plotly_json(method))
    # Loaded in <head> before any figure's inline script runs.
    app.add_js_file("plotly.min.js", priority=100)
    app.connect("build-finished", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
