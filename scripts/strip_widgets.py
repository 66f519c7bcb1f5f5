"""Drop the live-widget parts of executed labs' outputs before they are stored.

An instrument or a prediction (``collab_lib.viz``) displays a widget view next to its static figure or
form. A widget view is only a pointer to a model that lives in the kernel (a random id): stored, it opens
as "Error displaying widget: model not found" in JupyterLab, where the static copy would have drawn. The
stored copy of a lab therefore keeps the static representations only (what the book shows and nbval
compares), and no saved widget state. ``make execute`` runs this after executing the labs;
``tests/test_repo_config.py`` checks that no stored lab carries a widget view.

    python scripts/strip_widgets.py labs/*/*.ipynb
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip(notebook: dict) -> bool:
    """Remove widget views and saved widget state from ``notebook`` in place; True if anything went."""
    changed = notebook.get("metadata", {}).pop("widgets", None) is not None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                del output["data"][WIDGET_VIEW]
                changed = True
    return changed


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    for path in map(Path, paths):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if strip(notebook):
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"stripped widget views from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
