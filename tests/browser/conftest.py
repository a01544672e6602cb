"""Fixtures of the browser tests (tests/browser/support.py has the machinery, docs/frontend.md the why).

One Chromium for the whole session, a new context per test; the app is the session's own (migrated,
with the world's offices and users) served by uvicorn on loopback, once per database backend. Without
Chromium (or Playwright) the tests are skipped, saying why; GUICHET_TEST_BROWSER=required (set by
.ci/run) makes that a failure instead."""

import importlib.util
import os
from collections.abc import AsyncIterator

import pytest

from browser.support import LiveServer, Watch, chromium, launch, new_context
from conftest import empty_data_tables

REQUIRED = os.environ.get("GUICHET_TEST_BROWSER") == "required"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (.venv/bin/pip install -e '.[test]')"
    if chromium() is None:
        return "Chromium is not installed (Debian: apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
async def browser():
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"browser tests are required here (GUICHET_TEST_BROWSER=required): {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
async def live_server(app, world):
    async with LiveServer(app, lifespan="off") as server:
        yield server


@pytest.fixture
def watch(live_server) -> Watch:
    return Watch(live_server.url)


@pytest.fixture
async def page(browser, live_server, watch, app) -> AsyncIterator:
    """A page in a fresh context that reaches the app only; the test fails on anything `watch` saw."""
    context = await new_context(browser, watch)
    try:
        yield await context.new_page()
    finally:
        await context.close()
        await empty_data_tables(app)
    watch.assert_clean()
