"""Regenerates docs/screenshots/: each screen of the front ends in Khmer and in English, taken by headless
Chromium exactly as the browser tests drive it (tests/browser/support.py), requests to any other origin
blocked.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--only NAME]

Starts Guichet on a temporary SQLite database (migrated, the demo data loaded, every demo login with the
password below) served on loopback, and stops it afterwards. SCREENS lists what to photograph: a name, the
path to open, and what to do there first (sign in, search, open a household...); the console's and the
dashboard's work add their screens to it. A screen that logs an error fails the run."""

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.async_api import Page, async_playwright  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations_state import alembic_config  # noqa: E402
from app.services import demo  # noqa: E402
from browser.support import LiveServer, Watch, launch, new_context, screenshot, switch_language  # noqa: E402

DEMO_PASSWORD = "demo password for screenshots"
LANGUAGES = ("km", "en")
VIEWPORT = {"width": 1280, "height": 800}


@dataclass(frozen=True)
class Screen:
    name: str
    path: str
    prepare: Callable[[Page], Awaitable[None]] | None = None


async def _sign_in(page: Page, username: str = "clerk.ach") -> None:
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(DEMO_PASSWORD)
    await page.locator("form.signin button[type=submit]").click()
    await page.locator("[data-testid=search]").wait_for()


async def _search(page: Page) -> None:
    await _sign_in(page)
    await page.locator("[data-testid=search]").fill("Sok")
    await page.locator(".results li").first.wait_for()


def _wizard(step: str):
    async def prepare(page: Page) -> None:
        await _sign_in(page)
        await page.goto("/#/register")
        await page.locator("[data-testid=village-search]").fill("ប្រាសាទ")
        await page.locator("[data-code='17010101']").click()
        if step == "place":
            return
        await page.locator("[data-testid=next]").click()
        await page.locator("[name=family_name_0]").fill("Keo")
        await page.locator("[name=given_name_0]").fill("Sophal")
        await page.locator("[name=sex_0]").select_option("male")
        await page.locator("[name=birth_date_0]").fill("1975-04-02")
        await page.locator("[name=wg_walking_0]").select_option("a_lot")
        if step == "members":
            return
        await page.locator("[data-testid=next]").click()
        await page.locator("[name=purpose_eligibility_sharing]").check()
        if step == "consent":
            return
        await page.locator("[data-testid=next]").click()
    return prepare


async def _household(page: Page, username: str = "clerk.ach") -> None:
    await _sign_in(page, username)
    await page.locator("[data-testid=search]").fill("Chanthou")
    await page.locator(".results li").first.wait_for()
    await page.keyboard.press("Enter")
    await page.locator("[data-testid=screen]").click()
    await page.locator("[data-testid=grid]").wait_for()
    # The cases (with what is in them) or the offer to open one: whether an application was filed before.
    await page.locator("[data-testid=case] ul, #cases-title ~ button").first.wait_for()
    if not await page.locator("[data-testid=application]").count():
        await page.locator("td[data-outcome=eligible] [data-testid=apply]").first.click()
        await page.locator("[data-testid=application]").first.wait_for()
    await page.locator("td[data-outcome] details").first.evaluate("d => d.open = true")


async def _receipt(page: Page) -> None:
    await _household(page)
    await page.locator("[data-testid=application] a").first.click()
    await page.locator("[data-testid=printable] h1").wait_for()


async def _queue(page: Page) -> None:
    await _sign_in(page, "supervisor.ach")
    await page.goto("/#/queue")
    await page.locator("[data-testid=queue-appeals]").wait_for()


async def _audit(page: Page) -> None:
    await _sign_in(page, "supervisor.ach")
    await page.goto("/#/audit")
    await page.locator("[data-testid=audit]").wait_for()


SCREENS = [
    Screen("console-sign-in", "/"),
    Screen("console-search", "/", _search),
    Screen("console-register-place", "/", _wizard("place")),
    Screen("console-register-members", "/", _wizard("members")),
    Screen("console-register-consent", "/", _wizard("consent")),
    Screen("console-register-review", "/", _wizard("review")),
    Screen("console-household", "/", _household),
    Screen("console-receipt", "/", _receipt),
    Screen("console-queue", "/", _queue),
    Screen("console-audit", "/", _audit),
]


async def start_guichet(directory: Path):
    """The app on a new SQLite database, migrated, with the demo data."""
    from alembic import command

    settings = Settings(database_url=f"sqlite+aiosqlite:///{directory / 'guichet.db'}", var_dir=directory,
                        secret_key="screenshots-secret-key-long-enough-0123456789", pseudonym_key="screenshots")
    config = alembic_config(settings.database_url)
    config.attributes["skip_logging_config"] = True
    await asyncio.to_thread(command.upgrade, config, "head")
    app = create_app(settings)  # first: it sets up what the demo's registrations need (the pseudonym key)
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await demo.seed(session, dict.fromkeys(demo.DEMO_USERNAMES, DEMO_PASSWORD))
    await engine.dispose()
    return app


async def take(out: Path, only: str | None) -> list[Path]:
    taken = []
    with tempfile.TemporaryDirectory() as directory:
        async with LiveServer(await start_guichet(Path(directory))) as server, async_playwright() as playwright:
            browser = await launch(playwright)
            try:
                for screen in SCREENS:
                    if only and screen.name != only:
                        continue
                    for language in LANGUAGES:
                        watch = Watch(server.url)
                        context = await new_context(browser, watch, viewport=VIEWPORT)
                        page = await context.new_page()
                        await page.goto(screen.path)
                        await switch_language(page, language)
                        if screen.prepare:
                            await screen.prepare(page)
                        await page.evaluate("document.fonts.ready")
                        taken.append(await screenshot(page, out / f"{screen.name}-{language}.png"))
                        await context.close()
                        watch.assert_clean()
            finally:
                await browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", help="one screen, by name")
    args = parser.parse_args()
    for path in asyncio.run(take(args.out, args.only)):
        print(path)


if __name__ == "__main__":
    main()
