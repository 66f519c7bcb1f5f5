"""A lab as a reader meets it in JupyterLab: a real server and kernel, driven in headless Chromium.

The trade-off lab is copied to a temporary folder (JupyterLab autosaves; the repository's copy must not
change), opened, and run with Run > Run All Cells. Its instrument (``collab_lib.viz.instrument``) must
then be a live widget: pressing the "raspberry-pi-5" button re-runs the lab's function in the kernel and
redraws the same plotly figure with the library's values for that device, and its prediction
(``viz.predict``) locks a guess in and reveals the value beside it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_book_browser import CHROMIUM_ARGS, _chromium, _tradeoff_device_wins_up_to_mbps, _tradeoff_latencies_ms

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "labs" / "01_introduction" / "tradeoff.ipynb"
TOKEN = "collab-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyterlab")
    shutil.copy(LAB, home / LAB.name)
    # No news prompt over the notebook (the machine may be offline), and every setting in the temporary folder.
    news = home / ".settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Every cell rendered, not only those in view, so that a test can find the lab's exercises at its end.
    tracker = home / ".settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(home / ".settings"), JUPYTER_CONFIG_DIR=str(home / ".config"),
               JUPYTER_RUNTIME_DIR=str(home / ".runtime"), JUPYTERLAB_WORKSPACES_DIR=str(home / ".workspaces"))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={home}", "--allow-root",
         "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("JupyterLab did not start within 60 s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _accept_kernel(page) -> bool:
    """Answer JupyterLab's "Select Kernel" dialog with the notebook's own kernel, if it is showing."""
    select = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    if select.count() and select.first.is_visible():
        select.first.click()
        return True
    return False


def test_a_labs_instrument_is_live_in_jupyterlab(jupyterlab):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{jupyterlab}/lab/tree/{LAB.name}?token={TOKEN}", wait_until="load")
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_timeout(3_000)
        _accept_kernel(page)  # JupyterLab may ask which kernel to start
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset?.status === 'idle'",
            timeout=60_000,
        )
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        page.wait_for_timeout(2_000)
        if _accept_kernel(page):
            page.wait_for_timeout(3_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
        live = ".jp-OutputArea-output .jupyter-widgets .js-plotly-plot"
        try:
            page.wait_for_selector(f"{live} .gtitle", state="attached", timeout=180_000)
        except Exception:
            page.screenshot(path=str(ROOT / "_build" / "jupyterlab_failure.png"))
            raise

        def shown():
            return page.evaluate(f"""() => {{ const d = document.querySelector('{live}');
                return {{title: d.layout.title.text, traces: d.data.map(t => [t.name, Array.from(t.y)])}}; }}""")

        before = shown()
        assert before["title"] == "Snapdragon 8 Gen 3 (CPU), width 256, round trip 20 ms"
        page.locator(".widget-toggle-buttons button", has_text="raspberry-pi-5").click()
        page.wait_for_function(
            f"() => document.querySelector('{live}').layout.title.text.startsWith('Raspberry')", timeout=30_000
        )
        after = shown()
        # The prediction: locked until a guess, then the guess beside the library's value.
        button = page.get_by_role("button", name="Lock in and reveal")
        form = page.locator(".jp-OutputArea-output", has=button)
        button.click()  # no guess yet: nothing is revealed
        page.wait_for_function("() => document.body.innerText.includes('Enter a guess first')", timeout=15_000)
        form.locator("input").fill("10")
        button.click()
        page.wait_for_function("() => document.body.innerText.includes('You predicted 10 Mbit/s')", timeout=15_000)
        measured = f"this run measured {_tradeoff_device_wins_up_to_mbps():g} Mbit/s"
        revealed = page.evaluate("text => document.body.innerText.includes(text)", measured)
        browser.close()
    assert not errors, errors
    assert after["title"] == "Raspberry Pi 5 (8 GB), width 256, round trip 20 ms"
    want = _tradeoff_latencies_ms(20, 256, "raspberry-pi-5")
    for name, y in after["traces"]:
        assert y == pytest.approx(want[name], rel=1e-5), name
    assert after["traces"] != before["traces"]
    assert revealed


def test_a_labs_solutions_are_folded_in_jupyterlab(jupyterlab):
    """jupyterlab-myst renders the lab's exercises as the book does, each solution folded until opened."""
    import json
    import re

    md = [
        "".join(c["source"]) for c in json.loads(LAB.read_text())["cells"] if c["cell_type"] == "markdown"
    ]
    solutions = re.findall(r":::\{solution\}.*?```python\n(.*?)```", "\n".join(md), re.S)
    assert solutions, "the trade-off lab has a worked solution in code"
    line = next(x.strip() for x in solutions[0].splitlines()[1:] if len(x.strip()) > 20)  # a line of its body
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{jupyterlab}/lab/tree/{LAB.name}?token={TOKEN}", wait_until="load", timeout=120_000)
        page.wait_for_function("() => document.body.textContent.includes('Solution to Exercise')", timeout=180_000)
        _accept_kernel(page)
        folded = page.evaluate("""() => [...document.querySelectorAll('details')]
            .filter(d => d.querySelector('summary')?.innerText.startsWith('Solution'))
            .map(d => d.open)""")
        in_dom = page.evaluate("t => document.body.textContent.includes(t)", line)
        shown_before = page.evaluate("t => document.body.innerText.includes(t)", line)
        page.evaluate("""t => [...document.querySelectorAll('details')].find(d => d.textContent.includes(t))
            .querySelector('summary').click()""", line)
        page.wait_for_timeout(500)
        shown_after = page.evaluate("t => document.body.innerText.includes(t)", line)
        browser.close()
    assert len(folded) == len(re.findall(r":::\{solution\}", "\n".join(md))) and not any(folded), folded
    assert in_dom and not shown_before and shown_after, (in_dom, shown_before, shown_after, line)
