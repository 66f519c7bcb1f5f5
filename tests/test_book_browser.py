"""The built book as a reader sees it: every page opens in headless Chromium without console errors, and
every plotly figure has drawn (an SVG with content). A screenshot of each lab page goes to _build/screenshots.

The book is built here from the labs' stored outputs (tests/book_build.py). Chromium is Debian's package
(`make test` installs it); Playwright drives it and never downloads a browser of its own.
"""

import functools
import http.server
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


@pytest.fixture(scope="module")
def site():
    proc = build_book(ROOT)
    assert proc.returncode == 0, "book build failed:\n" + proc.stdout[-4000:] + proc.stderr[-4000:]
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
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
