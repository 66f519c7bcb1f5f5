"""Sphinx extension: on a phone nothing in a page is wider than the screen.

At 390 px, wide tables (chapters 2 and 5, the index), long dotted names in running text
(``collab_lib.parameter_based.federated.run_round``) and API signatures made the whole page scroll sideways.
``narrow_screens.css`` lets tables and display equations scroll inside their own box and long names break;
``tests/test_book_browser.py`` checks every page at 390 px.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

STYLESHEET = Path(__file__).with_name("narrow_screens.css")


def _copy_stylesheet(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset_file(str(STYLESHEET), str(Path(app.outdir) / "_static"))


def setup(app: Sphinx) -> dict:
    app.add_css_file(STYLESHEET.name, priority=900)  # after the themes' stylesheets
    app.connect("build-finished", _copy_stylesheet)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
