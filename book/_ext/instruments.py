"""Sphinx extension: the labs' instruments work in the static book, without a kernel.

``collab_lib.viz.instrument`` stores a figure with one slider per parameter and one frame per grid point.
Over one parameter the slider shows its frames in any plotly.js; over several, ``instruments.js`` combines
the sliders' positions into the frame to show. ``collab_lib.viz.predict`` stores a form (a guess, then a
reveal) that ``instruments.js`` completes in the reader's browser: the reveal stays locked until a guess
is entered, then shows it beside the measured value with the same sentence ``viz.reveal_text`` writes.
Both files are added only to the pages that need them. ``tests/test_book_browser.py`` moves a slider and
makes a prediction in Chromium.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

SCRIPT = Path(__file__).with_name("instruments.js")
STYLESHEET = Path(__file__).with_name("instruments.css")


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        for asset in (SCRIPT, STYLESHEET):
            copy_asset_file(str(asset), str(Path(app.outdir) / "_static"))


def _has_instrument(doctree) -> bool:
    return doctree is not None and any(
        "collab-predict" in node.astext() or '"instrument"' in node.astext()
        for node in doctree.findall(nodes.raw)
        if "html" in node.get("format", "")
    )


def _only_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if _has_instrument(doctree):
        app.add_js_file(SCRIPT.name, priority=600)  # this page only (Sphinx 7 resets per-page files)
        app.add_css_file(STYLESHEET.name, priority=900)


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _only_where_needed)
    app.connect("build-finished", _copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
