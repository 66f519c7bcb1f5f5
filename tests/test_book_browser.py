"""The built book as a reader sees it: every page opens in headless Chromium without console errors, and
every plotly figure has drawn (an SVG with content). A screenshot of each lab page goes to _build/screenshots.

The book is built here from the labs' stored outputs (tests/book_build.py). Chromium is Debian's package
(`make test` installs it); Playwright drives it and never downloads a browser of its own.
"""

import functools
import gzip
import http.server
import io
import os
import shutil
import threading

import pytest

from tests.book_build import ROOT, build_book

HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make test installs Debian's chromium package)")
        pytest.skip("chromium is not installed; `make browser` installs it on Debian")
    return path


# Budgets for what a reader's browser downloads to show a page with an empty cache, compressed as any static
# host (GitHub Pages, Read the Docs, Netlify) serves text: a page with plotly figures, and any other page.
FIGURE_PAGE_BUDGET = 3_000_000
TEXT_PAGE_BUDGET = 1_500_000
COMPRESSED = {".html", ".js", ".css", ".json", ".svg", ".txt", ".map", ".ico"}


class Host(http.server.SimpleHTTPRequestHandler):
    """The built site served as a static host serves it: text gzip-compressed when the browser accepts it."""

    _gzipped: dict = {}

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if (os.path.splitext(path)[1] not in COMPRESSED or not os.path.isfile(path)
                or "gzip" not in self.headers.get("Accept-Encoding", "")):
            return super().send_head()
        body = self._gzipped.get(path)
        if body is None:
            with open(path, "rb") as f:
                body = self._gzipped[path] = gzip.compress(f.read(), compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600")
        self.end_headers()
        return io.BytesIO(body)


@pytest.fixture(scope="module")
def site():
    proc = build_book(ROOT)
    assert proc.returncode == 0, "book build failed:\n" + proc.stdout[-4000:] + proc.stderr[-4000:]
    handler = functools.partial(Host, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _pages() -> list[str]:
    skip = {"_static", "_sources", "_images"}
    return sorted(
        str(p.relative_to(HTML)) for p in HTML.rglob("*.html") if not skip & set(p.relative_to(HTML).parts)
    )


def test_every_page_renders_and_every_figure_draws(site, browser):
    pages = _pages()
    assert "labs/01_introduction/tradeoff.html" in pages
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems, figures_seen = [], 0
    for rel in pages:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.on("requestfailed", lambda req, errors=errors: errors.append(f"request failed: {req.url}"))
        page.on("response", lambda r, errors=errors: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.goto(f"{site}/{rel}", wait_until="load")
        try:  # figures draw after load; give them time, then judge each one below
            page.wait_for_function("() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
                                   ".every(d => d.querySelector('.main-svg'))", timeout=15_000)
        except Exception:
            pass
        page.wait_for_timeout(300)
        figures = page.locator(".plotly-graph-div")
        for i in range(figures.count()):
            fig = figures.nth(i)
            drawn = fig.evaluate(
                "el => { const svg = el.querySelector('svg.main-svg');"
                " return !!svg && svg.getBoundingClientRect().height > 0"
                " && (() => { const boxes = Array.from(el.querySelectorAll("
                "      '.scatterlayer .trace path.js-line, .scatterlayer .trace path.point, .barlayer path,'"
                "      + ' .heatmaplayer image, .imagelayer image')).map(p => p.getBoundingClientRect());"
                "    if (!boxes.length) return false;"  # traces spread across the plot, not squashed to a sliver
                "    return Math.max(...boxes.map(b => b.right)) - Math.min(...boxes.map(b => b.left)) > 100; })(); }"
            )
            if not drawn:
                problems.append(f"{rel}: figure {i} did not draw")
        figures_seen += figures.count()
        tracebacks = page.locator("text=Traceback (most recent call last)").count()
        if tracebacks:
            problems.append(f"{rel}: shows a traceback")
        problems += [f"{rel}: console: {e}" for e in errors]
        if rel.startswith("labs/"):
            page.screenshot(path=str(SHOTS / (rel.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)
        page.close()
    assert not problems, "\n".join(problems)
    assert figures_seen >= 2, "the book should show the first lab's figures"


def test_lab_pages_have_launch_buttons(site):
    import re

    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].removeprefix("https://github.com/")
    for lab in sorted((ROOT / "labs").rglob("*.ipynb")):
        rel = lab.relative_to(ROOT)
        html = (HTML / rel.with_suffix(".html")).read_text()
        links = set(re.findall(r'href="(https://[^"]+)"', html))
        assert f"https://colab.research.google.com/github/{repo}/blob/main/{rel}" in links, f"{rel}: no Colab button"
        assert f"https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/{rel}" in links, f"{rel}: no Binder button"


def test_site_root_has_a_favicon(site):
    """The root index.html is a bare redirect; without /favicon.ico the browser logs a 404 there (a race:
    it shows only when the icon request beats the redirect)."""
    import urllib.request

    with urllib.request.urlopen(f"{site}/favicon.ico") as r:
        data = r.read()
    assert r.status == 200
    assert data[:4] == b"\x00\x00\x01\x00" and data[22:30] == b"\x89PNG\r\n\x1a\n", "not an ICO holding a PNG"


@pytest.mark.parametrize("width", [390, 800])
def test_the_table_of_contents_opens_and_navigates_on_phones_and_tablets(site, browser, width):
    """Below 992 px the contents live behind a toggle; clicking the visible one must open them as a dialog
    whose links work (book/_ext/sidebar_toggles.py)."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(f"{site}/book/03_system/index.html", wait_until="load")
    dialog = page.locator("#pst-primary-sidebar-modal")
    assert not dialog.evaluate("d => d.open")
    page.locator(".primary-toggle:visible").first.click()
    page.wait_for_function("() => document.querySelector('#pst-primary-sidebar-modal').open", timeout=5_000)
    link = dialog.locator("a.reference.internal[href*='05_feature_based/index']").first
    assert link.is_visible(), "the contents opened without the chapter links"
    box = link.bounding_box()
    assert box and 0 <= box["x"] and box["x"] + box["width"] <= width, "a contents link lies outside the screen"
    link.click()
    page.wait_for_url("**/05_feature_based/index.html")
    page.close()


def test_on_a_wide_screen_the_toggle_collapses_the_contents_and_brings_them_back(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/book/03_system/index.html", wait_until="load")
    sidebar = page.locator("#pst-primary-sidebar")
    assert sidebar.is_visible()
    toggle = page.locator(".primary-toggle:visible").first
    toggle.click()
    page.wait_for_function("() => getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"
                           " === 'hidden'", timeout=5_000)
    toggle.click()
    page.wait_for_function("() => getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"
                           " === 'visible'", timeout=5_000)
    page.close()


def test_every_page_stays_within_its_weight_budget_and_plotly_comes_once(site, browser, capsys):
    """plotly.js (1.5 MB compressed) only where a figure needs it, from the book's copy, cached between pages;
    Font Awesome's icons from the theme's web fonts, without its 1.5 MB script (book/_ext/offline_assets.py)."""
    rows, over = [], []
    for rel in _pages():
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # an empty cache for each page
        page = context.new_page()
        responses = []
        page.on("requestfinished", lambda req: responses.append(req))
        page.goto(f"{site}/{rel}", wait_until="load")
        page.wait_for_timeout(300)
        total = sum(req.sizes()["responseBodySize"] for req in responses)
        has_figure = page.locator(".plotly-graph-div").count() > 0
        plotly = [req.url for req in responses if "plotly" in req.url.rsplit("/", 1)[-1]]
        if has_figure != bool(plotly):
            over.append(f"{rel}: {'figures but no' if has_figure else 'no figures but'} plotly.js")
        if any("fontawesome.js" in req.url for req in responses):
            over.append(f"{rel}: loads fontawesome.js")
        budget = FIGURE_PAGE_BUDGET if has_figure else TEXT_PAGE_BUDGET
        rows.append((rel, total, budget))
        if total > budget:
            over.append(f"{rel}: {total / 1e6:.2f} MB over its {budget / 1e6:.1f} MB budget")
        context.close()
    with capsys.disabled():
        print("\npage weight (compressed, empty cache):")
        for rel, total, budget in sorted(rows, key=lambda r: -r[1]):
            print(f"  {total / 1e6:5.2f} MB of {budget / 1e6:.1f}  {rel}")
    assert not over, "\n".join(over)
    # One reader, two figure pages: the second takes plotly.js from the browser's cache.
    context = browser.new_context()
    page = context.new_page()
    fetched = []
    page.on("requestfinished", lambda req: fetched.append(req) if "plotly.min.js" in req.url else None)
    for rel in ("labs/01_introduction/tradeoff.html", "labs/03_system/early_exit.html"):
        page.goto(f"{site}/{rel}", wait_until="load")
    from_network = [r for r in fetched if r.sizes()["responseBodySize"] > 0]
    assert len(from_network) == 1, f"plotly.min.js came from the network {len(from_network)} times on two pages"
    context.close()


def test_icons_draw_from_the_web_fonts(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/book/03_system/index.html", wait_until="load")
    page.wait_for_timeout(300)
    drawn = page.evaluate(
        "() => Array.from(document.querySelectorAll('i.fa-solid, i.fas, i.fab'))"
        ".filter(i => i.getBoundingClientRect().width > 0)"
        ".map(i => [getComputedStyle(i, '::before').fontFamily, getComputedStyle(i, '::before').content])")
    assert drawn, "no visible icon on the page"
    assert all("Font Awesome" in family and content not in ("none", "normal", '""') for family, content in drawn), drawn
    page.close()


def test_nothing_is_wider_than_a_phone_screen(site, browser):
    """At 390 px no page scrolls sideways: wide tables and equations scroll in their own box, long names
    break, figures fit (book/_ext/narrow_screens.css)."""
    width, problems = 390, []
    page = browser.new_page(viewport={"width": width, "height": 800})
    for rel in _pages():
        page.goto(f"{site}/{rel}", wait_until="load")
        page.wait_for_timeout(200)
        scroll_width, sticking_out = page.evaluate(
            """(W) => {
              const inScroller = el => { for (let a = el.parentElement; a; a = a.parentElement) {
                const o = getComputedStyle(a).overflowX;
                if (['auto', 'scroll', 'hidden'].includes(o) && a.getBoundingClientRect().right <= W + 1) return true; }
                return false; };
              const out = [];
              for (const el of document.querySelectorAll(
                  '.bd-article mjx-container, .bd-article table, .bd-article .plotly-graph-div, .bd-article pre,'
                  + ' .bd-article img, .bd-article code, .bd-article dt')) {
                const r = el.getBoundingClientRect();
                if (r.width > 0 && (r.right > W + 1 || r.left < -1) && !inScroller(el))
                  out.push(`${el.tagName.toLowerCase()} ${(el.textContent || '').trim().slice(0, 40)}`);
              }
              return [document.documentElement.scrollWidth, out];
            }""", width)
        if scroll_width > width:
            problems.append(f"{rel}: the page is {scroll_width} px wide")
        problems += [f"{rel}: wider than the screen: {what}" for what in sticking_out[:3]]
    page.close()
    assert not problems, "\n".join(problems)


def test_the_code_column_holds_the_width_the_labs_are_formatted_to(site, browser):
    """labs/ruff.toml formats the labs to the characters a code cell shows at 1280 px; if the theme's column
    changes, the formatter's width must follow."""
    import re

    width = int(re.search(r"^line-length = (\d+)$", (ROOT / "labs" / "ruff.toml").read_text(), re.M).group(1))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/labs/03_system/early_exit.html", wait_until="load")
    shown = page.evaluate(
        """() => { const pre = document.querySelector('.cell_input pre'); const cs = getComputedStyle(pre);
          const probe = document.createElement('span'); probe.textContent = 'x'.repeat(100); pre.appendChild(probe);
          const char = probe.getBoundingClientRect().width / 100; probe.remove();
          return Math.floor((pre.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)) / char); }""")
    page.close()
    assert shown >= width, f"a code cell shows {shown} characters at 1280 px; labs/ruff.toml formats to {width}"
    assert shown <= width + 8, f"a code cell shows {shown} characters at 1280 px; labs could use more than {width}"


def test_figures_follow_dark_mode_and_come_back(site, browser):
    """book/_ext/figure_theme.js: in dark mode a figure has no white panel and light text; back in light mode
    its own layout returns."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/labs/02_hardware/roofline_llm.html", wait_until="load")
    page.wait_for_function("() => document.querySelector('.plotly-graph-div .main-svg')", timeout=15_000)
    state = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => {
        const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).map(Number); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
        const text = d.querySelector('.xtitle, .gtitle, .xtick text');
        const panel = getComputedStyle(d.closest('.output')).backgroundColor;
        return {paper: d.layout.paper_bgcolor ?? null, text: text ? lum(getComputedStyle(text).fill) : null,
                panel: panel}; })"""
    light = page.evaluate(state)
    assert light and all(f["text"] is not None and f["text"] < 0.5 for f in light), light
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    page.wait_for_timeout(500)
    dark = page.evaluate(state)
    for f in dark:
        assert f["text"] > 0.6, f"dark mode: figure text is dark ({f})"
        assert f["panel"] in ("rgba(0, 0, 0, 0)", "transparent"), f"dark mode: the figure sits on a panel ({f})"
        assert f["paper"] == "rgba(0,0,0,0)", f
    page.evaluate("() => { document.documentElement.dataset.theme = 'light'; }")
    page.wait_for_timeout(500)
    assert page.evaluate(state) == light, "light mode did not restore the figures' own layout"
    page.close()


# --- instruments (collab_lib.viz.instrument, viz.predict; book/_ext/instruments.js) ----------------------

TRADEOFF = "labs/01_introduction/tradeoff.html"


def _tradeoff_latencies_ms(rtt_ms: float, width: int, device: str) -> dict[str, list[float]]:
    """The trade-off lab's three curves, computed here from the library with the lab's stated assumptions
    (Wi-Fi with the given round trip, a symmetric link swept over 1-1,000 Mbit/s, 8-bit frames, 30 % of the
    roofline on both sides, an A100 in the cloud)."""
    import dataclasses

    import numpy as np
    import torch

    from collab_lib.hardware import get_device, get_link, profile_model
    from collab_lib.models import vision_cnn
    from collab_lib.system import best_split, split_latencies

    with torch.device("meta"):
        layers = profile_model(vision_cnn(width=width), torch.empty(1, 3, 224, 224))
    curves = {"device only": [], "cloud only": [], "best cut": []}
    for mbps in np.logspace(0, 3, 61):
        link = dataclasses.replace(get_link("wifi"), rtt_s=rtt_ms / 1e3, uplink_bits_per_s=mbps * 1e6,
                                   downlink_bits_per_s=mbps * 1e6)
        cuts = split_latencies(layers, get_device(device), get_device("a100-sxm"), link, input_bytes=3 * 224 * 224,
                               device_efficiency=0.3, cloud_efficiency=0.3)
        curves["device only"].append(cuts[-1].total_s * 1e3)
        curves["cloud only"].append(cuts[0].total_s * 1e3)
        curves["best cut"].append(best_split(cuts).total_s * 1e3)
    return curves


def _tradeoff_device_wins_up_to_mbps() -> float:
    """The trade-off lab's prediction, from the library: the highest swept bandwidth (Mbit/s, one decimal) at
    which the phone alone is fastest over Wi-Fi with its own 20 ms round trip."""
    import numpy as np

    curves = _tradeoff_latencies_ms(20, 256, "snapdragon-8-gen-3")
    mbps = np.logspace(0, 3, 61)
    return round(float(max(m for m, *ys in zip(mbps, *curves.values()) if ys[0] <= min(ys))), 1)


_INSTRUMENT = "Array.from(document.querySelectorAll('.plotly-graph-div')).find(d => d.layout?.meta?.instrument)"


def test_moving_an_instruments_sliders_shows_the_librarys_values(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/{TRADEOFF}", wait_until="load")
    page.wait_for_function(f"() => {_INSTRUMENT}?._collabInstrument", timeout=15_000)
    meta = page.evaluate(f"() => {_INSTRUMENT}.layout.meta.instrument")
    assert meta["params"] == ["rtt_ms", "width", "device"]
    frames = page.evaluate(f"() => {_INSTRUMENT}._transitionData._frames.length")
    assert frames == 4 * 3 * 2, "one frame per grid point"
    page.wait_for_timeout(1_500)  # what a reader sees before touching anything: the start frame, not a film
    start = page.evaluate(f"() => [{_INSTRUMENT}.layout.title.text, {_INSTRUMENT}._fullLayout.sliders.map(s => s.active)]")
    assert start == ["Snapdragon 8 Gen 3 (CPU), width 256, round trip 20 ms", [2, 2, 0]]
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    drawn = f"() => Array.from({_INSTRUMENT}.querySelectorAll('.scatterlayer path.js-line')).map(p => p.getAttribute('d'))"
    lines_before = page.evaluate(drawn)
    figure = page.locator(".plotly-graph-div", has=page.locator(".slider-container")).first
    figure.scroll_into_view_if_needed()
    rails = figure.locator(".slider-container .slider-rail-touch-rect")
    assert rails.count() == 3
    for slider, at in ((0, 0.999), (2, 0.999), (1, 0.0)):  # 50 ms, the Raspberry Pi, width 64: as a reader clicks
        box = rails.nth(slider).bounding_box()
        page.mouse.click(box["x"] + box["width"] * at, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
    shown = page.evaluate(f"""() => {{ const d = {_INSTRUMENT};
        return {{title: d.layout.title.text, traces: d.data.map(t => [t.name, Array.from(t.y)])}}; }}""")
    lines_after = page.evaluate(drawn)
    page.close()
    assert not errors, errors
    # The picture, not only the data behind it: every curve is drawn again.
    assert len(lines_after) == len(lines_before) == 3
    assert all(a != b for a, b in zip(lines_after, lines_before)), "the curves were not redrawn"
    assert shown["title"] == "Raspberry Pi 5 (8 GB), width 64, round trip 50 ms"
    want = _tradeoff_latencies_ms(50, 64, "raspberry-pi-5")
    for name, y in shown["traces"]:
        assert y == pytest.approx(want[name], rel=1e-5), name  # the figure keeps 6 significant digits


def test_a_prediction_stays_locked_until_a_guess_and_reveals_the_librarys_value(site, browser):
    from collab_lib import viz

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/{TRADEOFF}", wait_until="load")
    box = page.locator(".collab-predict").first
    page.wait_for_function("() => document.querySelector('.collab-predict')._collabPredict", timeout=15_000)
    box.locator("summary").click()
    assert not box.evaluate("e => e.querySelector('details').open"), "the reveal opened without a guess"
    box.locator("input").fill("10")
    box.locator("summary").click()
    result = box.locator(".collab-predict-result").text_content()
    locked = box.locator("input").is_disabled()
    # The JavaScript sentence against the Python one, over cases that take every branch.
    cases = [(2, 50, "×"), (100, 40, "ms"), (13, 10, "ms"), (8, 10, ""), (10, 10, "%"), (-1, 2, "s"),
             (0.1234, 0.0005, ""), (1234567, 3, "")]
    js = page.evaluate("cases => cases.map(([g, m, u]) => window.collabRevealText(g, m, u, 'number'))", cases)
    choice = page.evaluate("() => [window.collabRevealText('a', 'b', '', 'choice'), "
                           "window.collabRevealText('a', 'a', '', 'choice')]")
    page.close()
    assert result == viz.reveal_text(10, _tradeoff_device_wins_up_to_mbps(), "Mbit/s")
    assert locked, "the guess was not locked in"
    assert js == [viz.reveal_text(*case) for case in cases]
    assert choice == [viz.reveal_text("a", "b", choices=["a", "b"]), viz.reveal_text("a", "a", choices=["a", "b"])]
