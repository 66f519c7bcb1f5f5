"""Sphinx extension: the labs' plotly figures follow the book's light/dark mode.

The figures are drawn with the library's light template (``collab_lib.viz``); in dark mode each one would stay
a white panel on a dark page. ``figure_theme.js`` watches the theme's ``data-theme`` attribute and relayouts
every figure on the page: transparent backgrounds, light text, dim grid lines; switching back restores what
the figure's own layout said. ``figure_theme.css`` takes away the light panel the theme puts behind HTML
outputs in dark mode. Trace colours are left alone (the palette is legible on both). The browser test
switches a lab page to dark mode and checks the figures' backgrounds and text.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

SCRIPT = Path(__file__).with_name("figure_theme.js")
STYLESHEET = Path(__file__).with_name("figure_theme.css")


def _copy_script(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        for asset in (SCRIPT, STYLESHEET):
            copy_asset_file(str(asset), str(Path(app.outdir) / "_static"))


def _only_with_figures(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    from offline_assets import _has_figure  # the same test that decides whether plotly.js is loaded

    if _has_figure(doctree):
        app.add_js_file(SCRIPT.name, priority=600)  # for this page only (Sphinx 7 resets per-page files)
        app.add_css_file(STYLESHEET.name, priority=900)


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _only_with_figures)
    app.connect("build-finished", _copy_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
