"""Sphinx extension: the sidebar toggles work, so the table of contents opens on phones and tablets.

With sphinx-book-theme 1.3 on pydata-sphinx-theme 0.17 each page carries two primary-sidebar toggles (and
two secondary ones), and both themes bind only the first, hidden one: on a screen narrower than 992 px the
table of contents could not be opened at all. ``sidebar_toggles.js`` passes a click on any toggle to the
bound one. ``tests/test_book_browser.py`` opens the contents at phone and tablet widths.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

SCRIPT = Path(__file__).with_name("sidebar_toggles.js")


def _copy_script(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset_file(str(SCRIPT), str(Path(app.outdir) / "_static"))


def setup(app: Sphinx) -> dict:
    app.add_js_file(SCRIPT.name)
    app.connect("build-finished", _copy_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
