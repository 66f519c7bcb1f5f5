"""Sphinx extension: the book works offline and its pages log no errors.

* **plotly.js.** Lab outputs carry a div and a ``Plotly.newPlot`` call but no plotly.js
  (``collab_lib.viz``). A page with a figure loads ``_static/plotly.min.js``, copied from the installed plotly
  package (the same version that made the figures), once, from the book's copy, so the browser caches it; a
  page without one does not load it (4.8 MB, half of a page's weight otherwise).
* **Font Awesome.** pydata-sphinx-theme loads ``fontawesome.js`` (1.5 MB), which redraws the theme's icons as
  SVG "so that users can add custom icons"; its stylesheet already draws the same icons from the web fonts, so
  the script tag is taken out of every page (the book adds no custom icons).
* **MathJax.** Sphinx loads MathJax from a CDN by default; here it comes from ``_static/mathjax``, copied
  from the ``django-static-mathjax`` package (MathJax 3 as static files; Django itself is not needed).
* **Plotly's JSON output.** Each figure output also carries ``application/vnd.plotly.v1+json`` for
  JupyterLab. myst-nb renders every mime type of an output before it picks the HTML one, and warns on that
  JSON ("unknown output mime type"), which ``-W`` turns into a failure. It is rendered as nothing; every
  other unknown mime type still warns.
* **Duplicate inline scripts.** sphinx-thebe registers its inline configuration script twice under Jupyter
  Book 1, and the second ``const`` declaration is a console error on every page; identical scripts are
  kept once.
* **favicon.ico.** Jupyter Book's root ``index.html`` is a bare redirect without an icon link, so browsers
  ask for ``/favicon.ico`` and log a 404. A 32x32 icon drawn from the same shapes and colours as
  ``book/_static/favicon.svg`` is written to the site's root.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import mathjax
import plotly
from docutils import nodes
from myst_nb.core.render import NbElementRenderer
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset, copy_asset_file

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MATHJAX_DIR = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _skip_plotly_json(render_unhandled):
    def render(self, data):
        return [] if data.mime_type == PLOTLY_MIME else render_unhandled(self, data)

    render._skips_plotly_json = True
    return render


def _use_local_mathjax(app: Sphinx, config) -> None:
    config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative paths are relative to _static


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # One copy is registered with filename None, the other with "": the same inline script.
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def _has_figure(doctree) -> bool:
    return doctree is not None and any(
        "Plotly.newPlot" in node.astext() for node in doctree.findall(nodes.raw) if "html" in node.get("format", "")
    )


def _plotly_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if not _has_figure(doctree):
        context["script_files"] = [
            s for s in context.get("script_files", []) if not str(getattr(s, "filename", s) or "").endswith("plotly.min.js")
        ]


FONTAWESOME_SCRIPT = re.compile(r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')


def _drop_fontawesome_js(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        for page in Path(app.outdir).rglob("*.html"):
            text = page.read_text(encoding="utf-8")
            kept = FONTAWESOME_SCRIPT.sub("", text)
            if kept != text:
                page.write_text(kept, encoding="utf-8")


def _favicon_ico(size: int = 32) -> bytes:
    """favicon.svg's device, cloud and link as a PNG inside an ICO container (both formats by hand)."""
    blue, green, orange, white = (0, 114, 178), (0, 158, 115), (230, 159, 0), (255, 255, 255)

    def colour(x: float, y: float) -> tuple[int, int, int] | None:  # coordinates in the SVG's 64x64 box
        if 9 <= x <= 19 and 38 <= y <= 55:
            return white
        if 6 <= x <= 22 and 34 <= y <= 60:
            return green
        if 24 <= x <= 38 and 45.5 <= y <= 48.5 and int(x - 24) % 5 < 3:
            return orange
        cloud = ((31, 30, 12), (43, 34, 8.5), (20, 36, 6))
        if any((x - cx) ** 2 + (y - cy) ** 2 <= r * r for cx, cy, r in cloud) or (20 <= x <= 44 and 30 <= y <= 42):
            return blue
        return None

    rows = b""
    for j in range(size):
        rows += b"\x00"  # PNG filter type: none
        for i in range(size):
            c = colour((i + 0.5) * 64 / size, (j + 0.5) * 64 / size)
            rows += bytes((*c, 255)) if c else bytes(4)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    header = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), 22)
    return header + png


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        copy_asset_file(str(PLOTLY_JS), str(static))
        copy_asset(str(MATHJAX_DIR), str(static / "mathjax"))
        (Path(app.outdir) / "favicon.ico").write_bytes(_favicon_ico())


def setup(app: Sphinx) -> dict:
    for path in (PLOTLY_JS, MATHJAX_DIR / "tex-mml-chtml.js"):
        if not path.is_file():
            raise RuntimeError(f"{path} not found; reinstall the book's dependencies (pip install -e '.[book]')")
    for name in ("render_unhandled", "render_unhandled_inline"):
        method = getattr(NbElementRenderer, name)
        if not getattr(method, "_skips_plotly_json", False):
            setattr(NbElementRenderer, name, _skip_plotly_json(method))
    app.add_js_file("plotly.min.js", priority=100)  # in <head>, before any figure's inline script runs
    app.connect("config-inited", _use_local_mathjax)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _plotly_where_needed, priority=900)
    app.connect("build-finished", _copy_assets)
    app.connect("build-finished", _drop_fontawesome_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
