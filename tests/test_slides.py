"""The weekly slide decks (`make slides`, scripts/slides.py): six decks, each with its week's objectives and a
figure from each of its labs' stored outputs, nothing fetched from the network; in headless Chromium a deck
draws its figures and the arrow keys move between slides, at 1280 x 720 and on a phone.
"""

import json
import re
import shutil

import pytest

from scripts.course_guide import ROOT, weeks
from scripts.slides import build
from tests.test_book_browser import CHROMIUM_ARGS, _chromium

PLOTLY_MIME = "application/vnd.plotly.v1+json"


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    paths = build(out)
    return out, {int(re.search(r"week-(\d+)", p.name).group(1)): p for p in paths}


def _instrument_figure(lab: str) -> dict:
    """The lab's stored instrument figure (every lab has one; tests/test_repo_config.py)."""
    nb = json.loads((ROOT / "labs" / f"{lab}.ipynb").read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            fig = output.get("data", {}).get(PLOTLY_MIME)
            if fig and "instrument" in ((fig.get("layout") or {}).get("meta") or {}):
                return fig
    raise AssertionError(f"{lab} stores no instrument figure")


def _figures(html: str) -> list[dict]:
    return [json.loads(s.replace("<\\/", "</"))
            for s in re.findall(r'<script type="application/json" class="figure">(.*?)</script>', html, re.S)]


def test_six_decks_and_plotly_js_beside_them(decks):
    out, paths = decks
    assert sorted(paths) == [w.number for w in weeks()] == [1, 2, 3, 4, 5, 6]
    assert (out / "plotly.min.js").stat().st_size > 1_000_000


@pytest.mark.parametrize("week", weeks(), ids=lambda w: f"week-{w.number}")
def test_a_deck_has_its_weeks_objectives_and_every_labs_figure(decks, week):
    html = decks[1][week.number].read_text()
    text = re.sub(r"<[^>]+>", "", html)
    # each objective's first words (the guide's clauses, as the deck lists them)
    clauses = re.split(r";\s*(?:and\s+)?", re.sub(r"^After this week a student can ", "", week.objectives))
    for clause in clauses:
        words = " ".join(re.sub(r"[{}`$]", "", clause).split()[1:6])
        assert words and words in text, f"objective {clause!r} is not in week {week.number}'s deck"
    figures = _figures(html)
    for lab in week.labs:
        assert _instrument_figure(lab) in figures, f"{lab}'s figure is not in week {week.number}'s deck"


@pytest.mark.parametrize("week", weeks(), ids=lambda w: f"week-{w.number}")
def test_a_deck_names_no_network_address(decks, week):
    html = decks[1][week.number].read_text()
    assert not re.search(r"https?://|//cdn|//[\w-]+\.(?:com|org|net|io)\b", html)
    assert re.findall(r'<script src="([^"]+)"', html) == ["plotly.min.js"]


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.mark.parametrize("viewport", [(1280, 720), (390, 844)], ids=["laptop", "phone"])
def test_a_deck_draws_its_figure_and_the_arrow_key_moves_on(decks, browser, viewport, tmp_path):
    out, paths = decks
    week = weeks()[1]
    html = paths[week.number].read_text()
    # the slide of the week's first lab
    titles = re.findall(r'<section class="slide (\w+)" id="s(\d+)">\n<h1>(.*?)</h1>', html)
    lab_slide = next(int(n) for kind, n, title in titles if title.startswith("Lab:") and kind == "figure")

    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    errors, remote = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.on("request", lambda req: None if req.url.startswith(("file://", "data:")) else remote.append(req.url))
    page.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort())  # offline, as in a classroom
    page.goto(paths[week.number].as_uri(), wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_function("window.collabSlides !== undefined", timeout=120_000)
    assert page.evaluate("window.collabSlides.current()") == 0
    page.keyboard.press("ArrowRight")
    assert page.evaluate("window.collabSlides.current()") == 1
    assert page.locator(".slide.current").get_attribute("id") == "s2"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("window.collabSlides.current()") == 0

    for _ in range(lab_slide - 1):
        page.keyboard.press("ArrowRight")
    assert page.locator(".slide.current").get_attribute("id") == f"s{lab_slide}"
    figure = page.locator(".slide.current .plotly-graph-div")
    page.wait_for_selector(".slide.current .plotly-graph-div[data-drawn='1']", timeout=120_000)
    box = figure.bounding_box()
    assert box["width"] > 0.8 * width - 150 and box["height"] > 200, box
    drawn = page.evaluate("""() => {
        const div = document.querySelector('.slide.current .plotly-graph-div');
        return { traces: div.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
                 paths: div.querySelectorAll('svg.main-svg path').length,
                 sliders: div.querySelectorAll('.slider-container').length };
    }""")
    assert drawn["traces"] > 0 and drawn["paths"] > 10, drawn
    assert drawn["sliders"] > 0, "the instrument's sliders are not drawn"
    # nothing on the slide is wider than the screen
    overflow = page.evaluate("""() => { const s = document.querySelector('.slide.current');
        return s.scrollWidth - s.clientWidth; }""")
    assert overflow <= 1, f"the slide is {overflow} px wider than the screen"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"slides-week-{week.number}-{width}.png"))
    assert not remote, f"the deck asked the network for {remote}"
    assert not errors, errors
    page.close()


def test_make_slides_builds_into_build_slides():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^slides: (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule and "install" in rule.group(1).split()
    assert "scripts/slides.py" in rule.group(2)
    assert shutil.which("make")
