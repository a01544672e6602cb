"""The clerk's console, screen by screen, in headless Chromium (issue 16): sign-in and the session, the
search box. Every request the console makes is recorded and must be a route of /openapi.json."""

import pytest
from playwright.async_api import expect

from browser.support import assert_accessible, switch_language
from conftest import PASSWORD

pytestmark = pytest.mark.browser


async def sign_in(page, username="clerk.a"):
    await page.goto("/")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("form.signin button[type=submit]").click()
    await expect(page.locator("[data-testid=search]")).to_be_focused()


async def test_sign_in_search_and_sign_out(page):
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("ចូលប្រើប្រាស់")
    await assert_accessible(page)
    await switch_language(page, "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await sign_in(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Find a household")
    await assert_accessible(page)
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Find a household")
