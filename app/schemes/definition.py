"""Scheme definition files: what every adapter's file shares (the scheme's metadata, its effective-dated
versions, parameters, messages by language) and where a problem in it is (`DefinitionFile.fail`, with the
line). The rules adapter (app/schemes/rules.py) and the HTTP and DCI adapters parse their files with it;
so can a plug-in."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from app.schemes.base import Messages, SchemeDefinitionError, SchemeLevel, SchemeMetadata, SchemeVersion
from app.schemes.yamlfile import LDict, LList
from app.vocabulary import SchemeKind

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


class DefinitionFile:
    """Where in which file: turns a problem into a SchemeDefinitionError with the line."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, message: str, node: Any = None, key: Any = None) -> SchemeDefinitionError:
        line = None
        if isinstance(node, LDict):
            line = node.line_of(key) if key is not None else node.line
        elif isinstance(node, LList):
            line = node.line_of(key) if isinstance(key, int) else node.line
        return SchemeDefinitionError(message, source=self.source, line=line)


def parse_messages(value: Any, where: DefinitionFile, parent: Any, key: str, *, placeholders: set[str]) -> Messages:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, dict) or not value:
        raise where.fail(f"'{key}' must be a text or a mapping of language to text", parent, key)
    if "en" not in value:
        raise where.fail(f"'{key}' needs an English ('en') text", parent, key)
    for language, text in value.items():
        # A plain text has no lines of its own: point at the key that holds it.
        node, at = (value, language) if isinstance(value, LDict) else (parent, key)
        if not isinstance(language, str) or not LANGUAGE.match(language):
            raise where.fail(f"'{language}' is not a language code (en, km, fr...)", node, at)
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise where.fail(f"the '{language}' text of '{key}' must be 1 to 500 characters", node, at)
        for name in PLACEHOLDER.findall(text):
            if name not in placeholders:
                raise where.fail(f"the message names {{{name}}}, which is neither a parameter nor 'value'", node, at)
    return {str(k): v for k, v in value.items()}


def parse_version_info(raw: LDict, where: DefinitionFile) -> SchemeVersion:
    version = raw.get("version")
    if not isinstance(version, (str, int)) or not str(version).strip() or len(str(version)) > 40:
        raise where.fail("a version needs a 'version' label (up to 40 characters), e.g. \"2023-10\"", raw, "version" if "version" in raw else None)
    start, end = raw.get("effective_from"), raw.get("effective_to")
    if not isinstance(start, date):
        raise where.fail("'effective_from' must be a date (YYYY-MM-DD)", raw, "effective_from" if "effective_from" in raw else None)
    if end is not None and (not isinstance(end, date) or end < start):
        raise where.fail("'effective_to' must be a date on or after effective_from", raw, "effective_to")
    return SchemeVersion(str(version), start, end)


def parse_parameters(raw: Any, where: DefinitionFile, parent: LDict) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if raw is None:
        return {}, {}
    if not isinstance(raw, LDict):
        raise where.fail("'parameters' is a mapping of name to value", parent, "parameters")
    params, notes = {}, {}
    for name, value in raw.items():
        if not isinstance(name, str) or not RULE_ID.match(name):
            raise where.fail(f"parameter name {name!r} must be lower-case letters, digits and _", raw, name)
        note: dict[str, Any] = {}
        if isinstance(value, LDict):
            for key in value:
                if key not in ("value", "unverified", "note", "source"):
                    raise where.fail(f"unknown key '{key}' in parameter '{name}' (value, unverified, note, source)", value, key)
            if "value" not in value:
                raise where.fail(f"parameter '{name}' needs a 'value'", raw, name)
            if "unverified" in value and not isinstance(value["unverified"], bool):
                raise where.fail("'unverified' is true or false", value, "unverified")
            note = {k: value[k] for k in ("unverified", "note", "source") if k in value}
            value = value["value"]
        if isinstance(value, LDict) or value is None:
            raise where.fail(f"parameter '{name}' must have a number, text, date, boolean or list value", raw, name)
        params[name] = list(value) if isinstance(value, LList) else value
        notes[name] = note
    return params, notes


METADATA_KEYS = {"code", "name", "kind", "level", "agency", "legal_reference", "sources", "description",
                 "service_level_days", "adapter", "versions", "http", "dci"}


def parse_metadata(doc: LDict, where: DefinitionFile, *, adapter: str, facts: tuple[str, ...],
                   versions: tuple[SchemeVersion, ...]) -> SchemeMetadata:
    for key in doc:
        if key not in METADATA_KEYS:
            raise where.fail(f"unknown key '{key}' in a scheme (known: {', '.join(sorted(METADATA_KEYS))})", doc, key)
    code = doc.get("code")
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", code):
        raise where.fail("'code' is 1 to 40 letters, digits, '.', '_' or '-' (e.g. KH-HEF)", doc, "code" if "code" in doc else None)

    def text(key: str, limit: int) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise where.fail(f"'{key}' is a text of 1 to {limit} characters", doc, key if key in doc else None)
        return value.strip()

    kind = doc.get("kind")
    if kind not in SchemeKind.__members__:
        raise where.fail(f"'kind' is one of {', '.join(SchemeKind.__members__)}", doc, "kind" if "kind" in doc else None)
    level = doc.get("level", "person")
    if level not in SchemeLevel.__members__:
        raise where.fail("'level' is person or household", doc, "level")
    sources = doc.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        raise where.fail("'sources' is a list of texts (URLs, documents)", doc, "sources")
    sla = doc.get("service_level_days")
    if sla is not None and (isinstance(sla, bool) or not isinstance(sla, int) or not 0 < sla <= 3650):
        raise where.fail("'service_level_days' is a whole number of days (1 to 3650)", doc, "service_level_days")
    description = parse_messages(doc["description"], where, doc, "description", placeholders=set()) if "description" in doc else {}
    # The name and the agency are a text (English) or a mapping of language to text, like the messages;
    # `name` and `agency` stay the English ones (stored with each determination and application),
    # `names` and `agencies` hold every language.
    names = parse_messages(doc["name"], where, doc, "name", placeholders=set()) if isinstance(doc.get("name"), dict) else {}
    agencies = parse_messages(doc["agency"], where, doc, "agency", placeholders=set()) if isinstance(doc.get("agency"), dict) else {}
    return SchemeMetadata(
        code=code, name=names["en"].strip() if names else text("name", 200), names=names, kind=SchemeKind(kind),
        level=SchemeLevel(level), agency=agencies["en"].strip() if agencies else text("agency", 200), agencies=agencies,
        legal_reference=text("legal_reference", 500), adapter=adapter, facts=facts, versions=versions,
        sources=tuple(s.strip() for s in sources), description=description, service_level_days=sla, source_file=where.source,
    )
