"""Each lab as a plain notebook viewer (Colab, GitHub, JupyterLab without MyST) shows it.

Every lab's Markdown is converted by ``scripts/notebook_edition.py``, then rendered as CommonMark (markdown-it,
the parser MyST itself is built on, without MyST's extensions): what a reader sees must hold no role or
directive syntax, every citation must link to an entry of the lab's references cell, every glued value must be
the text the book shows, and the solutions must be folded (or absent from the student form).
"""

import html
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebook_edition as ne  # noqa: E402

LABS = sorted((ROOT / "labs").glob("*/*.ipynb"))
RAW = re.compile(r"\{(cite|glue|doc|ref|numref|eq|term)[:\w]*\}`|^\s*:{3,}|`{3,}\{|^\s*:(label|class):", re.M)


def _render(markdown: str) -> tuple[str, str]:
    """The HTML CommonMark makes of ``markdown``, and the text a reader sees of it (tags removed)."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark", {"html": True}).render(markdown)
    return out, html.unescape(re.sub(r"<[^>]+>", "", out))


def _markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
@pytest.mark.parametrize("solutions", [True, False], ids=["reader", "student"])
def test_a_plain_viewer_shows_no_myst_syntax(lab, solutions):
    source = json.loads(lab.read_text())
    nb = ne.notebook_edition(source, lab, solutions=solutions)
    html_, text = _render("\n\n".join(_markdown(nb)))
    assert not RAW.search(text), RAW.search(text).group(0)
    anchors = set(re.findall(r'<a id="([^"]+)">', html_))
    for target in re.findall(r'href="#([^"]+)"', html_):
        assert target in anchors, f"a link to #{target} with no anchor"
    cited = [k.strip() for m in re.findall(r"\{cite:[pt]\}`([^`]+)`", "\n".join(_markdown(source)))
             for k in m.split(",")]
    for key in cited:
        assert f'href="#ref-{key}"' in html_ and f'id="ref-{key}"' in html_, key
    if solutions:  # every solution folded: inside a <details> block, and as many as the lab has
        n = len(re.findall(r"\{solution\}", "\n".join(_markdown(source))))
        assert html_.count("<details>") == html_.count("</details>") == n
        assert all(c["metadata"].get("cellView") == "form"
                   for c in nb["cells"] if "solution" in c["metadata"].get("tags", []))
    else:
        assert "<details>" not in html_ and "Solution" not in text
        assert not any("solution" in c["metadata"].get("tags", []) for c in nb["cells"])


def test_glued_values_are_the_stored_ones_formatted_as_the_book_does():
    """By hand for one value: the trade-off lab glues ``lte_rtt_ms`` and its text quotes it with ``:.0f``."""
    lab = ROOT / "labs" / "01_introduction" / "tradeoff.ipynb"
    source = json.loads(lab.read_text())
    stored = next(o["data"]["application/papermill.record/text/plain"] for c in source["cells"]
                  for o in c.get("outputs", []) if o.get("metadata", {}).get("scrapbook", {}).get("name") == "lte_rtt_ms")
    want = f"{float(''.join(stored)):.0f}"
    text = "\n".join(_markdown(ne.notebook_edition(source, lab)))
    assert f"round trip is {want} ms" in text
    assert "{glue" not in text


def test_citations_read_as_author_year():
    assert ne.author_year("kang2017neurosurgeon") == ("Kang et al.", "2017")
    assert ne.author_year("williams2009roofline") == ("Williams et al.", "2009")
    r = ne.Resolver({"cells": []}, ROOT / "labs" / "x" / "y.ipynb")
    assert r.markdown("as {cite:p}`kang2017neurosurgeon` did") == (
        "as ([Kang et al., 2017](#ref-kang2017neurosurgeon)) did")
    assert r.cited == ["kang2017neurosurgeon"]


def test_unknown_targets_fail_loudly():
    r = ne.Resolver({"cells": []}, ROOT / "labs" / "x" / "y.ipynb")
    with pytest.raises(KeyError):
        r.markdown("{glue:text}`missing:.1f`")
    with pytest.raises(KeyError):
        r.markdown("{ref}`no-such-label`")
    with pytest.raises(ValueError, match="never closed"):
        r.markdown(":::{solution} x\nbody\n")
