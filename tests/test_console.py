"""The front ends' serving (app/console, docs/frontend.md) over HTTP, without a browser: the console's page
and its headers, assets under the release's content-hashed prefix, what an office and central each serve,
and the static tree itself (every reference resolves, catalogues agree, vendored files are the manifest's).
tests/browser/ shows the same page working in Chromium."""

import gzip
import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from app import console
from app.config import InstanceRole
from app.main import create_app
from helpers import assert_problem

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = {"km", "en", "fr"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self'; connect-src 'self'; "
       "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class Elements(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


async def test_the_console_page_is_served_at_an_offices_root_under_a_strict_csp(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    elements = Elements(response.text).elements
    prefix = console.assets().prefix
    assert ("script", {"type": "module", "src": f"{prefix}/console/main.js"}) in elements
    assert ("link", {"rel": "stylesheet", "href": f"{prefix}/shared/base.css"}) in elements
    # Nothing the CSP would refuse: every script from a file, no style element or attribute, no handler.
    assert all(attrs.get("src") for tag, attrs in elements if tag == "script")
    assert not [tag for tag, attrs in elements
                if tag == "style" or "style" in attrs or any(a.startswith("on") for a in attrs)]


async def test_the_page_is_revalidated_by_its_etag(client):
    first = await client.get("/")
    etag = first.headers["etag"]
    unchanged = await client.get("/", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["content-security-policy"] == CSP
    stale = await client.get("/", headers={"If-None-Match": '"0000000000000000"'})
    assert stale.status_code == 200 and stale.content == first.content


async def test_assets_are_immutable_under_the_release_prefix_and_gzipped_when_asked(client):
    prefix = console.assets().prefix
    module = await client.get(f"{prefix}/shared/ui.js", headers={"Accept-Encoding": "gzip"})
    assert module.status_code == 200
    assert module.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"
    assert module.headers["content-encoding"] == "gzip" and module.headers["vary"] == "Accept-Encoding"
    assert module.text == (console.STATIC / "shared/ui.js").read_text()  # httpx undid the gzip
    plain = await client.get(f"{prefix}/shared/ui.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == module.text
    refused = await client.get(f"{prefix}/shared/ui.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers

    vendored = await client.get(f"{prefix}/vendor/preact-11.2.0/preact.mjs", headers={"Accept-Encoding": "gzip"})
    assert vendored.headers["content-type"] == "text/javascript; charset=utf-8"
    font = await client.get(f"{prefix}/vendor/fontsource-variable-noto-sans-khmer-5.3.0/noto-sans-khmer-khmer.woff2",
                            headers={"Accept-Encoding": "gzip"})
    assert font.status_code == 200 and font.headers["content-type"] == "font/woff2"
    assert "content-encoding" not in font.headers  # woff2 is compressed already
    assert font.content[:4] == b"wOF2"
    assert (await client.get(f"{prefix}/shared/base.css")).headers["content-type"] == "text/css; charset=utf-8"
    assert (await client.get(f"{prefix}/console/i18n/km.json")).json()["console.title"]


async def test_another_release_or_a_missing_asset_answers_404(client):
    version = console.assets().version
    other = "0" * len(version)
    body = assert_problem(await client.get(f"/assets/{other}/shared/ui.js"), 404, "not-found")
    assert "reload the page" in body["detail"]
    assert_problem(await client.get(f"/assets/{version}/shared/nothing.js"), 404, "not-found")
    assert_problem(await client.get(f"/assets/{version}/..%2F..%2F__init__.py"), 404, "not-found")
    assert_problem(await client.get(f"/assets/{version}/"), 404, "not-found")
    assert_problem(await client.get(f"/assets/{version}", follow_redirects=True), 404, "not-found")
    assert_problem(await client.get(f"/assets/{'a' * 65}/shared/ui.js"), 422, "validation")
    assert_problem(await client.get(f"/assets/{version}/{'a' * 301}"), 422, "validation")
    # Public: a caller's token, even a bad one, changes nothing.
    garbage = {"Authorization": "Bearer not-a-token"}
    assert (await client.get(f"/assets/{version}/shared/ui.js", headers=garbage)).status_code == 200
    assert (await client.get("/", headers=garbage)).status_code == 200


async def test_central_serves_the_dashboard_at_its_root_and_the_assets(settings):
    application = create_app(settings.model_copy(update={"role": InstanceRole.central}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://central.test") as http:
        root = await http.get("/")
        assert root.status_code == 200 and "/dashboard/main.js" in root.text
        assert root.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
        assert_problem(await http.get("/office-report"), 404, "not-found")  # an office's page
        assert (await http.get(f"{console.assets().prefix}/shared/ui.js")).status_code == 200


@pytest.fixture
def static_copy(tmp_path, monkeypatch):
    """The static tree copied where a test may change it, served in place of the real one."""
    copy = tmp_path / "static"
    shutil.copytree(console.STATIC, copy)
    monkeypatch.setattr(console, "STATIC", copy)
    console.assets.cache_clear()
    console.page.cache_clear()
    yield copy
    console.assets.cache_clear()
    console.page.cache_clear()


def test_any_change_to_any_static_file_gives_every_asset_a_new_url(static_copy):
    before = console.assets().version
    assert console.assets().version == before  # the same tree, the same version
    (static_copy / "vendor/htm-3.1.1/LICENSE").write_text("changed")
    console.assets.cache_clear()
    changed = console.assets().version
    assert changed != before
    (static_copy / "shared/new.css").write_text("")
    console.assets.cache_clear()
    assert console.assets().version not in (before, changed)
    assert console.page("console").body.decode().count(f"/assets/{console.assets().version}/") == 4  # 2 styles, 1 script, the Khmer font


def test_text_assets_are_gzipped_once_and_fonts_are_not():
    files = console.assets().files
    ui = files["shared/ui.js"]
    assert gzip.decompress(ui.gzipped) == ui.body
    assert files["vendor/fontsource-variable-noto-sans-khmer-5.3.0/noto-sans-khmer-khmer.woff2"].gzipped is None
    assert console.accepts_gzip("br, gzip;q=0.8") and console.accepts_gzip("*")
    assert not console.accepts_gzip(None) and not console.accepts_gzip("br") and not console.accepts_gzip("gzip;q=0")


# ---- the static tree ------------------------------------------------------------------------------------------

SPECIFIER = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"'\n]+)["']""")
NEW_URL = re.compile(r"""new URL\(\s*[`"']([^`"']+)[`"']\s*,\s*import\.meta\.url\s*\)""")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def _resolve(base: str, reference: str) -> str:
    parts: list[str] = base.split("/")[:-1]
    for part in reference.split("/"):
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def test_every_reference_in_the_static_tree_and_the_pages_resolves():
    """Imports, module-relative URLs and CSS urls name files of the tree; a vendored library's update that
    leaves an old path behind fails here, before any browser."""
    files = console.assets().files
    broken = []
    for name, asset in files.items():
        if name.endswith((".js", ".mjs")):
            text = asset.body.decode()
            for specifier in SPECIFIER.findall(text):
                if not specifier.startswith("."):
                    broken.append(f"{name}: bare import {specifier!r} (scripts/vendor_js.py rewrites these)")
                elif _resolve(name, specifier) not in files:
                    broken.append(f"{name}: imports {specifier}, which is not in the tree")
            for url in NEW_URL.findall(text):
                target = _resolve(name, url)
                if target not in files and not any(f.startswith(target) for f in files):
                    broken.append(f"{name}: new URL({url!r}) names nothing in the tree")
        elif name.endswith(".css"):
            for url in CSS_URL.findall(asset.body.decode()):
                if not url.startswith("data:") and _resolve(name, url) not in files:
                    broken.append(f"{name}: url({url}) is not in the tree")
    for page in console.PAGES.glob("*.html"):
        for path in re.findall(r"\$\{assets\}/([^\"'\s>]+)", page.read_text()):
            if path not in files:
                broken.append(f"pages/{page.name}: {path} is not in the tree")
    assert not broken, "\n".join(broken)


def test_every_catalogue_has_the_same_keys_in_khmer_english_and_french():
    catalogues = sorted(console.STATIC.rglob("i18n/"))
    assert {p.relative_to(console.STATIC).as_posix() for p in catalogues} >= {"shared/i18n", "console/i18n"}
    for directory in catalogues:
        assert {p.stem for p in directory.glob("*.json")} == LANGUAGES, directory
        messages = {language: json.loads((directory / f"{language}.json").read_text()) for language in LANGUAGES}
        keys = set(messages["km"])
        for language, catalogue in messages.items():
            assert set(catalogue) == keys, f"{directory}/{language}.json: {sorted(set(catalogue) ^ keys)}"
            assert all(isinstance(text, str) and text.strip() for text in catalogue.values()), (directory, language)


def _vendor_script():
    spec = importlib.util.spec_from_file_location("vendor_js", ROOT / "scripts" / "vendor_js.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_vendored_files_are_the_manifests_with_their_licences():
    vendor_js = _vendor_script()
    assert vendor_js.check() == []
    manifest = json.loads(vendor_js.MANIFEST.read_text())
    for entry in manifest["libraries"]:
        assert entry["integrity"].startswith("sha512-") and entry["licence"], entry["name"]
        assert any(name.startswith("LICENSE") for name in entry["files"]), entry["name"]


def test_the_vendor_check_finds_a_changed_or_stray_file(tmp_path, monkeypatch):
    vendor_js = _vendor_script()
    for destination in {library.destination for library in vendor_js.LIBRARIES}:
        shutil.copytree(ROOT / destination, tmp_path / destination)
    monkeypatch.setattr(vendor_js, "ROOT", tmp_path)
    monkeypatch.setattr(vendor_js, "MANIFEST", tmp_path / vendor_js.STATIC_VENDOR / "manifest.json")
    assert vendor_js.check() == []
    (tmp_path / vendor_js.STATIC_VENDOR / "htm-3.1.1/htm.mjs").write_text("export default 1")
    (tmp_path / vendor_js.STATIC_VENDOR / "htm-3.1.1/extra.js").write_text("")
    (tmp_path / vendor_js.STATIC_VENDOR / "left-behind-1.0.0").mkdir()
    problems = vendor_js.check()
    assert any("htm-3.1.1/htm.mjs: changed since it was vendored" in p for p in problems), problems
    assert any("extra.js" in p for p in problems), problems
    assert any("left-behind-1.0.0" in p for p in problems), problems


def test_import_specifiers_are_rewritten_to_the_vendored_files():
    vendor_js = _vendor_script()
    providers = {"preact": "app/console/static/vendor/preact-11.2.0/preact.mjs",
                 "preact/hooks": "app/console/static/vendor/preact-11.2.0/hooks.mjs"}
    source = 'import{a}from"preact";import{b}from "preact/hooks";import"./local.js";export*from"preact"\n' \
             "//# sourceMappingURL=x.mjs.map\n"
    signals = "app/console/static/vendor/preact-signals-2.11.4/signals.mjs"
    rewritten = vendor_js.rewrite_imports(source, signals, providers)
    assert rewritten == ('import{a}from"../preact-11.2.0/preact.mjs";import{b}from "../preact-11.2.0/hooks.mjs";'
                         'import"./local.js";export*from"../preact-11.2.0/preact.mjs"')
    same_directory = vendor_js.rewrite_imports('import{a}from"preact"', providers["preact/hooks"], providers)
    assert same_directory == 'import{a}from"./preact.mjs"'
    with pytest.raises(SystemExit, match="no vendored library provides"):
        vendor_js.rewrite_imports('import x from "left-pad"', providers["preact"], providers)
