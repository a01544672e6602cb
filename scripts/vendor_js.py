"""Vendors the front ends' browser libraries from the npm registry, so that Guichet needs no Node, no build
step and no CDN at install or run time (docs/frontend.md).

    .venv/bin/python scripts/vendor_js.py           # fetch the pinned versions below, rewrite the vendored files
    .venv/bin/python scripts/vendor_js.py --check   # offline: the vendored files are the manifest's, byte for byte

For each library pinned in LIBRARIES it reads the version's metadata from the registry, downloads the
tarball, checks it against the registry's `dist.integrity` (sha512) and against the integrity the manifest
recorded for that version before (a version's tarball never changes: a different one is refused), and
writes the chosen files with the package's licence files into `<destination>/<name>-<version>/`. ES modules
import each other by bare specifier (`from "preact"`); browsers need URLs, so each such specifier is
rewritten to the relative path of the vendored file that provides it (no import map: it would be an inline
script, which the Content-Security-Policy forbids), and the source-map comment is dropped (the maps are not
vendored). The manifest (app/console/static/vendor/manifest.json) records versions, integrity, licences and
a sha256 of every file written.

To update a library: change its version here, run the script, fix the paths that name the old version in
our own files (tests/test_console.py fails on any that does not resolve), run the browser tests, commit."""

import argparse
import base64
import hashlib
import io
import json
import posixpath
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STATIC_VENDOR = "app/console/static/vendor"
MANIFEST = ROOT / STATIC_VENDOR / "manifest.json"
REGISTRY = "https://registry.npmjs.org"

# `from "x"`, `import "x"`, `import("x")`, `export ... from "x"`: the specifiers a module loads.
SPECIFIER = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'\n]+)\2""")
SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S+\s*$")


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    why: str
    files: dict[str, str]  # path in the package -> file name in the vendored directory
    provides: dict[str, str] = field(default_factory=dict)  # import specifier -> vendored file name
    licences: tuple[str, ...] = ("LICENSE",)
    destination: str = STATIC_VENDOR

    @property
    def directory(self) -> str:
        return f"{self.destination}/{self.name.lstrip('@').replace('/', '-')}-{self.version}"


LIBRARIES = [
    Library("preact", "11.2.0", "components and hooks for the console and the dashboard (6.5 KB gzipped)",
            {"dist/preact.mjs": "preact.mjs", "hooks/dist/hooks.mjs": "hooks.mjs"},
            {"preact": "preact.mjs", "preact/hooks": "hooks.mjs"}),
    Library("@preact/signals-core", "1.14.5", "reactive state shared across screens (2 KB gzipped)",
            {"dist/signals-core.mjs": "signals-core.mjs"}, {"@preact/signals-core": "signals-core.mjs"}),
    Library("@preact/signals", "2.11.4", "signals bound to Preact components (1.8 KB gzipped)",
            {"dist/signals.mjs": "signals.mjs"}, {"@preact/signals": "signals.mjs"}),
    Library("htm", "3.1.1", "JSX-like templates in plain JavaScript, so no build step (0.65 KB gzipped)",
            {"dist/htm.mjs": "htm.mjs"}, {"htm": "htm.mjs"}),
    Library("uplot", "1.6.32",
            "the dashboard's time-series charts on canvas, exportable as PNG (ES-module build: 42 KB gzipped)",
            {"dist/uPlot.esm.js": "uPlot.esm.js", "dist/uPlot.min.css": "uPlot.min.css"}, {"uplot": "uPlot.esm.js"}),
    Library("@fontsource-variable/noto-sans-khmer", "5.3.0",
            "Noto Sans Khmer (OFL), variable weight, its Khmer and Latin subsets as woff2 (59 + 25 KB)",
            {"files/noto-sans-khmer-khmer-wght-normal.woff2": "noto-sans-khmer-khmer.woff2",
             "files/noto-sans-khmer-latin-wght-normal.woff2": "noto-sans-khmer-latin.woff2"}),
    Library("axe-core", "4.14.1", "accessibility checks in the browser tests only (not served)",
            {"axe.min.js": "axe.min.js"}, licences=("LICENSE", "LICENSE-3RD-PARTY.txt"),
            destination="tests/browser/vendor"),
]


def sha256(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def fetch(http: httpx.Client, library: Library, locked: dict | None) -> tuple[dict, tarfile.TarFile]:
    meta = http.get(f"{REGISTRY}/{library.name.replace('/', '%2F')}/{library.version}")
    meta.raise_for_status()
    meta = meta.json()
    dist = meta["dist"]
    algorithm, _, expected = dist["integrity"].partition("-")
    if algorithm != "sha512":
        sys.exit(f"{library.name}@{library.version}: the registry gives no sha512 integrity ({dist['integrity']})")
    if locked and locked["integrity"] != dist["integrity"]:
        sys.exit(f"{library.name}@{library.version}: the registry's integrity {dist['integrity']} is not the one "
                 f"vendored before ({locked['integrity']}); refusing")
    tarball = http.get(dist["tarball"])
    tarball.raise_for_status()
    actual = base64.b64encode(hashlib.sha512(tarball.content).digest()).decode()
    if actual != expected:
        sys.exit(f"{library.name}@{library.version}: the tarball's sha512 is {actual}, the registry says {expected}")
    entry = {"name": library.name, "version": library.version, "licence": meta.get("license"), "why": library.why,
             "tarball": dist["tarball"], "integrity": dist["integrity"], "directory": library.directory}
    return entry, tarfile.open(fileobj=io.BytesIO(tarball.content), mode="r:gz")


def read(archive: tarfile.TarFile, path: str) -> bytes:
    member = archive.extractfile(f"package/{path}")
    if member is None:
        raise FileNotFoundError(path)
    return member.read()


def rewrite_imports(source: str, here: str, providers: dict[str, str]) -> str:
    """Bare specifiers become relative paths to the vendored file providing them; any left is an error."""

    def relative(match: re.Match) -> str:
        keyword, quote, specifier = match.groups()
        if specifier.startswith((".", "/")):
            return match.group(0)
        if specifier not in providers:
            raise SystemExit(f"{here}: imports {specifier!r}, which no vendored library provides")
        path = posixpath.relpath(providers[specifier], posixpath.dirname(here))
        return f"{keyword}{quote}{path if path.startswith('.') else './' + path}{quote}"

    return SOURCE_MAP.sub("", SPECIFIER.sub(relative, source))


def vendor() -> None:
    old = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"libraries": []}
    locked = {(e["name"], e["version"]): e for e in old["libraries"]}
    providers = {specifier: f"{library.directory}/{name}"
                 for library in LIBRARIES for specifier, name in library.provides.items()}
    outputs: list[tuple[Library, dict[str, bytes]]] = []
    entries = []
    with httpx.Client(timeout=60, follow_redirects=True) as http:
        for library in LIBRARIES:
            entry, archive = fetch(http, library, locked.get((library.name, library.version)))
            modules = set(library.provides.values())
            files: dict[str, bytes] = {}
            outputs.append((library, files))
            for source, name in [*library.files.items(), *((licence, licence) for licence in library.licences)]:
                data = read(archive, source)
                if name in modules:
                    data = rewrite_imports(data.decode(), f"{library.directory}/{name}", providers).encode()
                files[name] = data
            entries.append({**entry, "provides": library.provides, "files": {n: sha256(d) for n, d in files.items()}})
    # Everything fetched and checked: only now is the vendored tree replaced.
    for entry in old["libraries"]:
        shutil.rmtree(ROOT / entry["directory"], ignore_errors=True)
    for library, files in outputs:
        target = ROOT / library.directory
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (target / name).write_bytes(data)
        print(f"{library.name}@{library.version}: {', '.join(files)} -> {library.directory}")
    MANIFEST.write_text(json.dumps({"generated_by": "scripts/vendor_js.py", "libraries": entries}, indent=2) + "\n")


def check() -> list[str]:
    """What differs between the vendored files and the manifest (nothing, when all is well)."""
    problems = []
    manifest = json.loads(MANIFEST.read_text())
    pinned = {(library.name, library.version) for library in LIBRARIES}
    vendored = {(entry["name"], entry["version"]) for entry in manifest["libraries"]}
    if pinned != vendored:
        problems.append(f"scripts/vendor_js.py pins {sorted(pinned)}, the manifest has {sorted(vendored)}: "
                        "run the script")
    listed = {entry["directory"] for entry in manifest["libraries"]}
    for destination in {library.destination for library in LIBRARIES}:
        for directory in sorted(p for p in (ROOT / destination).iterdir() if p.is_dir()):
            if directory.relative_to(ROOT).as_posix() not in listed:
                problems.append(f"{directory.relative_to(ROOT).as_posix()}: not in the manifest (left behind?)")
    for entry in manifest["libraries"]:
        directory = ROOT / entry["directory"]
        present = {p.name for p in directory.iterdir()} if directory.is_dir() else set()
        if present != set(entry["files"]):
            problems.append(f"{entry['directory']}: holds {sorted(present)}, "
                            f"the manifest lists {sorted(entry['files'])}")
        for name, digest in entry["files"].items():
            if name in present and sha256((directory / name).read_bytes()) != digest:
                problems.append(f"{entry['directory']}/{name}: changed since it was vendored")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the vendored files against the manifest (offline)")
    if parser.parse_args().check:
        problems = check()
        print("\n".join(problems) or "the vendored files are the manifest's")
        sys.exit(1 if problems else 0)
    vendor()


if __name__ == "__main__":
    main()
