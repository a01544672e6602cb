"""The front ends Guichet serves itself: the clerk's console at an office's `/` and, later, the ministry's
dashboard at central's (docs/frontend.md). Both are static files under static/ (HTML pages under pages/)
that talk to the public API only; this module reads them once and answers them with the right headers.

Assets live under one content-hashed URL prefix, `/assets/<version>/`, where the version is a hash of the
whole static tree: any change to any file gives every asset a new URL, so each URL can be cached for a
year (`immutable`), and ES modules keep importing one another by relative path. The pages themselves are
revalidated on every load (`no-cache`), so a new release is picked up at the next reload."""

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

from starlette.responses import Response

from app.errors import NotFound

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PAGES = HERE / "pages"
ASSETS_PREFIX = "/assets"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    "": "text/plain; charset=utf-8",  # LICENSE files
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = {".js", ".mjs", ".css", ".json", ".svg", ".txt", ""}

IMMUTABLE = "public, max-age=31536000, immutable"
# Scripts, styles, fonts, images and API calls from this origin only; no inline script or style, no
# plugin, no frame, no <base>; forms post only here. The pages need nothing else.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self'; "
                           "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing would not pay (fonts, images)
    media_type: str


@dataclass(frozen=True)
class Assets:
    version: str
    files: dict[str, Asset]  # by path under static/, with forward slashes

    @property
    def prefix(self) -> str:
        return f"{ASSETS_PREFIX}/{self.version}"


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str


@cache
def assets() -> Assets:
    """The static tree, read once per process (a few hundred KB)."""
    files, tree = {}, hashlib.sha256()
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        name = path.relative_to(STATIC).as_posix()
        body = path.read_bytes()
        tree.update(f"{name}\0{hashlib.sha256(body).hexdigest()}\0".encode())
        packed = gzip.compress(body, compresslevel=9, mtime=0) if path.suffix in COMPRESSIBLE else None
        files[name] = Asset(body, packed if packed and len(packed) < 0.9 * len(body) else None,
                            MEDIA_TYPES.get(path.suffix, "application/octet-stream"))
    return Assets(tree.hexdigest()[:16], files)


@cache
def page(name: str) -> Page:
    """A page of pages/, its `${assets}` placeholders naming the current asset prefix."""
    body = Template((PAGES / f"{name}.html").read_text(encoding="utf-8")).substitute(assets=assets().prefix).encode()
    return Page(body, f'"{hashlib.sha256(body).hexdigest()[:16]}"')


def page_response(name: str, if_none_match: str | None) -> Response:
    """A page, revalidated at every load (304 when unchanged), under the Content-Security-Policy."""
    found = page(name)
    headers = {**PAGE_HEADERS, "ETag": found.etag}
    if if_none_match == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type="text/html; charset=utf-8", headers=headers)


def asset_response(version: str, path: str, accept_encoding: str | None) -> Response:
    """An asset of this release, cacheable for a year. Another release's version answers 404: a page that
    old must be reloaded, and caching this release's file under the old URL would mix the two."""
    tree = assets()
    found = tree.files.get(path) if version == tree.version else None
    if found is None:
        raise NotFound(f"No asset {path} in this release ({tree.version}); reload the page.")
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    body = found.body
    if found.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
        if accepts_gzip(accept_encoding):
            body, headers["Content-Encoding"] = found.gzipped, "gzip"
    return Response(body, media_type=found.media_type, headers=headers)


def accepts_gzip(accept_encoding: str | None) -> bool:
    for coding in (accept_encoding or "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
