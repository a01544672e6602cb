"""Headless Chromium for the browser tests and scripts/screenshots.py (docs/frontend.md).

Debian's `chromium` driven by Playwright (pip `playwright`, whose driver ships its own Node): no browser
download. Every page runs in a context that lets requests reach the app's own origin only; any other is
aborted and remembered, and so are console errors, uncaught exceptions, Content-Security-Policy
violations, failed requests and server errors: a test fails on any of them. Playwright is imported by
the callers only, so that this module loads (and the tests can say what is missing) without it."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright, Request, Route, WebSocketRoute

# Without the networking flags Chromium calls Google's hosts in the background (component updates, sync,
# field trials), which this machine refuses. Playwright gives each launch a fresh temporary profile
# (--user-data-dir), removed when the browser closes.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = next((Path(__file__).parent / "vendor").glob("axe-core-*/axe.min.js"))  # scripts/vendor_js.py
SERIOUS = ("serious", "critical")
TIMEOUT_MS = 10_000

# Chromium logs most CSP refusals in words of its own; this line names the directive, the same way each time.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
});
"""


def chromium() -> str | None:
    return shutil.which("chromium")


async def launch(playwright: Playwright) -> Browser:
    executable = chromium()
    if executable is None:
        raise RuntimeError("no Chromium on PATH (Debian: apt-get install chromium)")
    return await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Watch:
    """What a page did that a test must not let pass. `allow` a console error a test provokes on purpose
    (e.g. the 409 of a duplicate: Chromium logs every 4xx answer of fetch as an error)."""

    origin: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def error(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.allowed):
            self.errors.append(text)

    def take(self) -> list[str]:
        """Everything seen so far, forgotten once read."""
        found = [f"request to another origin, blocked: {b}" for b in self.blocked] + self.errors
        self.blocked, self.errors = [], []
        return found

    def assert_clean(self) -> None:
        found = self.take()
        assert not found, "the page did what a page of Guichet must not:\n  " + "\n  ".join(found)

    async def route(self, route: Route) -> None:
        request = route.request
        if origin_of(request.url) == self.origin:
            await route.continue_()
        else:
            self.blocked.append(f"{request.method} {request.url}")
            await route.abort("blockedbyclient")

    async def route_web_socket(self, socket: WebSocketRoute) -> None:
        if origin_of(socket.url.replace("ws", "http", 1)) == self.origin:
            socket.connect_to_server()
        else:
            self.blocked.append(f"WebSocket {socket.url}")
            await socket.close()

    def request_failed(self, request: Request) -> None:
        if origin_of(request.url) == self.origin:  # the blocked ones are already reported as such
            self.error(f"request failed: {request.method} {request.url} ({request.failure})")

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: message.type == "error" and self.error(f"console error: {message.text}"))
        page.on("pageerror", lambda error: self.error(f"uncaught exception: {error}"))
        page.on("requestfailed", self.request_failed)
        page.on("response", lambda response: response.status >= 500
                and self.error(f"server error: {response.status} {response.request.method} {response.url}"))


async def new_context(browser: Browser, watch: Watch, **options) -> BrowserContext:
    """A fresh context (no cookies, no storage) whose pages reach the watch's origin only. Service workers
    are blocked: their requests would escape the route below."""
    context = await browser.new_context(base_url=watch.origin, service_workers="block", **options)
    context.set_default_timeout(TIMEOUT_MS)
    await context.route("**/*", watch.route)
    await context.route_web_socket(re.compile(".*"), watch.route_web_socket)
    await context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("page", watch.watch)
    return context


async def switch_language(page: Page, code: str) -> None:
    """Chooses a language with the page's switcher (a button with data-language) and waits until the page
    shows it (<html lang> is set once the catalogues are in)."""
    await page.locator(f'[data-language="{code}"]').click()
    await page.locator(f'html[lang="{code}"]').wait_for(state="attached")


async def assert_accessible(page: Page, *, impacts: tuple[str, ...] = SERIOUS) -> None:
    """axe-core over the page as it is now: fails on any violation of those impacts, listed readably."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern (a <script> would be refused).
    await page.evaluate(_axe_source())
    results = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    violations = [v for v in results["violations"] if v["impact"] in impacts]
    assert not violations, f"axe-core: {len(violations)} violation(s) on {page.url}\n" + "\n".join(
        _describe(v) for v in violations)


def _describe(violation: dict) -> str:
    lines = [f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})"]
    for node in violation["nodes"][:5]:
        summary = " ".join(node.get("failureSummary", "").split())
        lines.append(f"    at {json.dumps(node['target'])}: {summary[:300]}")
    if len(violation["nodes"]) > 5:
        lines.append(f"    ... and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


async def screenshot(page: Page, path: Path) -> Path:
    """The whole page as a PNG at `path` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True, animations="disabled")
    return path


async def rendering_fonts(page: Page, selector: str) -> list[dict]:
    """The fonts Chromium drew an element's own text with (DevTools' "Rendered Fonts"): each with
    `familyName`, `isCustomFont` (a web font, not one of the machine's) and `glyphCount`."""
    cdp = await page.context.new_cdp_session(page)
    try:
        document = await cdp.send("DOM.getDocument", {"depth": 0})
        node = await cdp.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
        await cdp.send("CSS.enable")
        return (await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]}))["fonts"]
    finally:
        await cdp.detach()


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in the current event loop. `lifespan="off"`
    for an app whose lifespan is already running (the tests' session app)."""

    def __init__(self, app, *, lifespan: str = "on"):
        import socket

        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan,
                                                    timeout_graceful_shutdown=1))

    async def __aenter__(self) -> LiveServer:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # start-up failed: say why
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task
        self.sock.close()
