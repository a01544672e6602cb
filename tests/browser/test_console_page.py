"""The console's page in headless Chromium, on each database: it loads from the app alone (every other
origin blocked), in Khmer first, drawn with the Noto Sans Khmer that Guichet ships, under its
Content-Security-Policy, accessible; English one click away, and the choice survives a reload. And the
guard itself: what a page must not do is caught."""

import pytest
from playwright.async_api import expect

from app import console
from browser.support import assert_accessible, rendering_fonts, screenshot, switch_language

pytestmark = pytest.mark.browser

# The first screen is the sign-in.
WELCOME = {"km": "ចូលប្រើប្រាស់", "en": "Sign in", "fr": "Connexion"}


async def test_the_console_loads_from_the_app_alone_in_khmer_with_the_shipped_font(page, live_server, tmp_path):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto("/")
    assert response.status == 200
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text(WELCOME["km"])
    assert await page.evaluate("document.documentElement.lang") == "km"
    assert await page.title() == "Guichet · ច្រកចេញចូលតែមួយ"

    # Drawn with the web font Guichet serves (not a font of this machine), and nothing else.
    await page.evaluate("document.fonts.ready")
    fonts = await rendering_fonts(page, "h1")
    assert [(f["familyName"], f["isCustomFont"]) for f in fonts] == [("Noto Sans Khmer", True)], fonts
    prefix = f"{live_server.url}{console.assets().prefix}/"
    assert f"{prefix}vendor/fontsource-variable-noto-sans-khmer-5.3.0/noto-sans-khmer-khmer.woff2" in requested
    # The page, then only assets of this release and the catalogues.
    assert requested[0] == f"{live_server.url}/" and all(url.startswith(prefix) for url in requested[1:]), requested

    await assert_accessible(page)
    shot = await screenshot(page, tmp_path / "console-km.png")
    assert shot.stat().st_size > 5_000

    await switch_language(page, "en")
    await expect(heading).to_have_text(WELCOME["en"])
    await expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    assert await page.title() == "Guichet · single window"
    await assert_accessible(page)

    await page.reload()
    await expect(heading).to_have_text(WELCOME["en"])


async def test_french_is_one_click_away_too(page):
    await page.goto("/")
    await switch_language(page, "fr")
    await expect(page.get_by_role("heading", level=1)).to_have_text(WELCOME["fr"])
    await expect(page.get_by_role("group", name="Langue")).to_be_visible()


async def test_what_a_page_must_not_do_is_caught(page, watch):
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_have_text(WELCOME["km"])
    # The CSP refuses inline script and other origins in the page itself...
    ran = await page.evaluate("""async () => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.head.append(script);
        await fetch("http://elsewhere.invalid/data").catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 100));
        return window.injected === true;
    }""")
    assert ran is False
    found = watch.take()
    assert any("CSP violation: script-src" in line for line in found), found
    assert any("CSP violation: connect-src blocked http://elsewhere.invalid/data" in line for line in found), found

    # ...and where no CSP applies (a JSON answer), the route stops any request to another origin.
    await page.goto("/healthz")
    await page.evaluate("fetch('http://elsewhere.invalid/data').catch(() => {})")
    await page.evaluate("console.error('something broke')")
    await page.wait_for_timeout(100)
    found = watch.take()
    assert "request to another origin, blocked: GET http://elsewhere.invalid/data" in found, found
    assert "console error: something broke" in found, found

    watch.allow("expected here")
    await page.evaluate("console.error('an error expected here')")
    await page.wait_for_timeout(100)
    assert watch.take() == []
