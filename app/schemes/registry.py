"""The scheme registry: every scheme this office screens for, keyed by code.

Adapters are found three ways:
1. built-in adapter types registered in code: `rules` (app/schemes/rules.py), `http` (app/schemes/http.py) and
   `dci` (app/schemes/dci.py);
2. third-party packages through the `guichet.schemes` entry-point group. An entry point may name
   - an adapter type (a class with `from_definition(doc, *, source, settings)`), used by scheme files
     that say `adapter: <entry point name>`;
   - a ready adapter object (anything with `metadata`, `check`, `describe`, `health`), or a callable
     taking the settings and returning one adapter or a list of them;
3. scheme files (YAML): the catalogue shipped in app/schemes/catalogue/, then every file in the
   directories or files of GUICHET_SCHEMES_PATH (separated by the OS path separator). A file of the
   path replaces a catalogue scheme of the same code, so an office can adjust an UNVERIFIED figure
   without editing the package.

Everything is loaded and checked at start-up: a broken file stops the service with its file and line."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from app.schemes.base import Closable, SchemeAdapter, SchemeDefinitionError, SchemeMetadata
from app.schemes.dci import DciAdapter
from app.schemes.http import HttpAdapter
from app.schemes.rules import RulesAdapter
from app.schemes.yamlfile import LDict, load_file

logger = logging.getLogger("guichet.schemes")

ENTRY_POINT_GROUP = "guichet.schemes"
CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogue"
BUILTIN_TYPES: dict[str, Any] = {"rules": RulesAdapter, "http": HttpAdapter, "dci": DciAdapter}
SCHEME_FILE_SUFFIXES = (".yaml", ".yml")


class SchemeRegistry:
    def __init__(self, types: dict[str, Any] | None = None):
        self.types: dict[str, Any] = dict(BUILTIN_TYPES if types is None else types)
        self._adapters: dict[str, SchemeAdapter] = {}

    def register_type(self, name: str, factory: Any) -> None:
        self.types[name] = factory

    def register(self, adapter: SchemeAdapter, *, replace: bool = False) -> None:
        code = adapter.metadata.code
        existing = self._adapters.get(code)
        if existing is not None and not replace:
            raise SchemeDefinitionError(
                f"scheme {code} is defined twice (also in {existing.metadata.source_file or 'code'})",
                source=adapter.metadata.source_file)
        self._adapters[code] = adapter

    def get(self, code: str) -> SchemeAdapter | None:
        return self._adapters.get(code)

    def __iter__(self) -> Iterator[SchemeAdapter]:
        return iter(sorted(self._adapters.values(), key=lambda a: a.metadata.code))

    def __len__(self) -> int:
        return len(self._adapters)

    def codes(self) -> list[str]:
        return sorted(self._adapters)

    def in_force(self, on: date) -> list[SchemeAdapter]:
        return [a for a in self if a.metadata.version_on(on) is not None]

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            if isinstance(adapter, Closable):
                await adapter.aclose()


def scheme_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SCHEME_FILE_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    raise SchemeDefinitionError("no such file or directory", source=str(path))


def load_scheme_file(path: Path, types: dict[str, Any], settings: Any = None) -> SchemeAdapter:
    doc = load_file(path)
    source = str(path)
    if not isinstance(doc, LDict):
        raise SchemeDefinitionError("a scheme file holds one mapping (code, name, kind, ...)", source=source, line=1)
    adapter_type = doc.get("adapter", "rules")
    factory = types.get(adapter_type) if isinstance(adapter_type, str) else None
    if factory is None:
        raise SchemeDefinitionError(f"unknown adapter type {adapter_type!r} (known: {', '.join(sorted(types))})",
                                    source=source, line=doc.line_of("adapter"))
    adapter = factory.from_definition(doc, source=source, settings=settings)
    if not isinstance(adapter, SchemeAdapter):
        raise SchemeDefinitionError(f"adapter type {adapter_type!r} did not make a scheme adapter", source=source)
    return adapter


def _load_entry_points(registry: SchemeRegistry, settings: Any) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must stop start-up with its name, whatever it raised
            raise SchemeDefinitionError(f"cannot load: {type(exc).__name__}: {exc}", source=where) from exc
        if isinstance(obj, type) and hasattr(obj, "from_definition"):
            registry.register_type(ep.name, obj)
            continue
        made = obj if isinstance(obj, SchemeAdapter) else obj(settings) if callable(obj) else None
        adapters = made if isinstance(made, (list, tuple)) else [made]
        for adapter in adapters:
            if not isinstance(adapter, SchemeAdapter):
                raise SchemeDefinitionError("is neither an adapter type, an adapter, nor a factory of adapters", source=where)
            registry.register(adapter)


def search_path(settings: Any) -> list[Path]:
    raw = getattr(settings, "schemes_path", None) or ""
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def load_registry(settings: Any = None, *, catalogue: bool = True, plugins: bool = True) -> SchemeRegistry:
    """Every scheme, checked. Raises SchemeDefinitionError naming the file and line of the first problem."""
    registry = SchemeRegistry()
    if plugins:
        _load_entry_points(registry, settings)
    if catalogue:
        for path in scheme_files(CATALOGUE_DIR):
            registry.register(load_scheme_file(path, registry.types, settings))
    local: dict[str, str] = {}
    for entry in search_path(settings):
        for path in scheme_files(entry):
            adapter = load_scheme_file(path, registry.types, settings)
            code = adapter.metadata.code
            if code in local:
                raise SchemeDefinitionError(f"scheme {code} is also defined in {local[code]}", source=str(path))
            local[code] = str(path)
            if registry.get(code) is not None:
                logger.info("scheme %s from %s replaces the catalogue's", code, path)
            registry.register(adapter, replace=True)
    return registry


def validate(paths: list[Path], settings: Any = None) -> list[SchemeMetadata]:
    """`guichet schemes validate PATH`: load the files as start-up would; raise on the first problem."""
    types = dict(BUILTIN_TYPES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, type) and hasattr(obj, "from_definition"):
            types[ep.name] = obj
    seen: dict[str, str] = {}
    found = []
    for entry in paths:
        for path in scheme_files(entry):
            metadata = load_scheme_file(path, types, settings).metadata
            if metadata.code in seen:
                raise SchemeDefinitionError(f"scheme {metadata.code} is also defined in {seen[metadata.code]}", source=str(path))
            seen[metadata.code] = str(path)
            found.append(metadata)
    return found
