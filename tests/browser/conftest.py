"""Browser tests: pytest + Playwright for Python driving Debian's Chromium.

`make test` installs the Debian package `chromium` (/usr/bin/chromium) and the pinned
`playwright` Python package. Playwright's own browser download (`playwright install`)
is never used: the browser is launched with executable_path, headless. With CI=true a
missing Chromium or Playwright fails the run instead of skipping.

Fixtures:
  chromium   one headless browser for the session
  ui         a fresh browser context (own cookies) per call: ui() -> Page;
             ui(javascript=False) -> a Page with JavaScript turned off
  site       the live server's base URL (tests/conftest.py live_server, on each database)
  shots      shots(page, "step-name") writes tests/artifacts/browser/<test>/<NN>-step-name.png
"""
import os
import re
import shutil

import pytest

from tests.conftest import missing

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts", "browser")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        missing(f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (make test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package is not installed (requirements-test.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def settings():
    """The web accepts the development chain 31337 (anvil) in these tests."""
    return {"ALLOW_DEV_CHAIN": "1"}


@pytest.fixture
def site(live_server):
    return live_server


@pytest.fixture
def ui(chromium):
    """ui() -> a Page in a fresh context. At the end, no page may have logged a JavaScript
    error or a console error (a Content-Security-Policy violation is one)."""
    contexts = []
    problems = []

    def new_page(javascript=True):
        context = chromium.new_context(viewport={"width": 1200, "height": 900}, locale="en-US",
                                       java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and "status of 4" not in msg.text else None)
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def shots(request):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = os.path.join(ARTIFACTS, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    counter = [0]

    def shot(page, step):
        counter[0] += 1
        page.screenshot(path=os.path.join(folder, f"{counter[0]:02d}-{step}.png"), full_page=True)

    shot.folder = folder
    return shot

