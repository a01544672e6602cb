"""The console's first load stays light (issue 16): at most 200 KB transferred without the Khmer font and
400 KB with it, measured in Chromium as the bytes that crossed the wire (compressed bodies and headers),
signed in and on the search screen: every module of the console, its styles, catalogues and fonts."""

import pytest
from playwright.async_api import expect

from conftest import PASSWORD

pytestmark = pytest.mark.browser

KB = 1024


async def test_first_load_is_at_most_200_kb_without_the_font_and_400_kb_with_it(page):
    loaded = []
    page.on("requestfinished", lambda request: loaded.append(request))
    await page.goto("/")
    await page.locator("input[name=username]").fill("clerk.a")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("input[name=password]").press("Enter")
    await expect(page.locator("[data-testid=search]")).to_be_focused()
    await page.evaluate("document.fonts.ready")

    sizes = {}
    for request in loaded:
        if "/api/v1/" in request.url:
            continue  # the API's answers are data, not page weight
        size = await request.sizes()
        sizes[request.url] = size["responseBodySize"] + size["responseHeadersSize"]
    fonts = sum(n for url, n in sizes.items() if url.endswith(".woff2"))
    everything = sum(sizes.values())
    assert fonts > 0, sizes  # Khmer is drawn with the shipped font
    assert any(url.endswith("/console/main.js") for url in sizes)
    print(f"first load: {everything / KB:.1f} KB with the font, {(everything - fonts) / KB:.1f} KB without")
    assert everything - fonts <= 200 * KB, sizes
    assert everything <= 400 * KB, sizes
