"""The gettext catalogues of app/locale (docs/i18n.md): `make i18n` runs extract, update and compile.

    python scripts/i18n.py extract   # app/locale/guichet.pot from the code
    python scripts/i18n.py update    # merge the template into km and fr (translations kept, new ones empty)
    python scripts/i18n.py compile   # the .mo files the service reads (committed: no build step to forget)
    python scripts/i18n.py check     # exit 1 when a message lacks a language or its placeholders differ

What is extracted, so that the services keep raising plain English (no wrapper at the call sites):
- the first argument (or `detail=`) of every domain error raised, ValueError of the request schemas and
  `problem_response`, the detail of every plausibility finding: constants as they are, f-strings as templates whose placeholders are named after
  their expressions (`f"There is no scheme {code}."` -> `There is no scheme {code}.`);
- `_("...")` and `N_("...")` calls;
- tables read at run time: the problem types' titles and descriptions, Pydantic's messages by type, the
  indicators' titles, the referral agencies and their services."""

import ast
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import i18n  # noqa: E402

LOCALE = i18n.LOCALE_DIR
TEMPLATE = LOCALE / f"{i18n.DOMAIN}.pot"
TRANSLATED = [language for language in i18n.LANGUAGES if language != "en"]
ERRORS = {"DomainError", "BadRequest", "NotFound", "Forbidden", "Conflict", "Unauthenticated", "InvalidInput",
          "PreconditionRequired", "PreconditionFailed", "ValueError", "problem_response"}
MARKERS = {"_", "N_", "Message"}
# The registry's plausibility findings (app/services/plausibility.py): (field, detail[, code]).
FINDINGS = {"Finding", "finding"}
# A ValueError says something to an API caller only from a request schema (Pydantic's "Value error, ...");
# elsewhere it is an operator's or a programmer's message, kept English.
VALUE_ERRORS_IN = ("app/schemas/", "app/routers/")
REVIEW = ("Machine-drafted translation, NOT yet reviewed by a native speaker: have it reviewed before a real "
          "deployment (docs/i18n.md).")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _template(node: ast.expr) -> str | None:
    """A literal as its msgid: a constant, or an f-string with `{placeholder}` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts, unnamed = [], 0
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
                continue
            source = ast.unparse(value.value)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", source):
                unnamed += 1
                source = "value" if unnamed == 1 else f"value{unnamed}"
            parts.append("{" + source + "}")
        return "".join(parts)
    return None


def from_code() -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            candidates = []
            if name in MARKERS and node.args:
                candidates.append(node.args[0])
            elif name in FINDINGS and len(node.args) > 1:
                candidates.append(node.args[1])
            elif name in ERRORS and (name != "ValueError" or relative.startswith(VALUE_ERRORS_IN)):
                if node.args and name != "problem_response":
                    candidates.append(node.args[0])
                candidates += [k.value for k in node.keywords if k.arg == "detail"]
            for candidate in candidates:
                text = _template(candidate)
                if text and text.strip():
                    found.setdefault(text, []).append((relative, node.lineno))
    return found


def from_tables() -> dict[str, list[tuple[str, int]]]:
    from app.config import DEFAULT_REFERRAL_AGENCIES
    from app.errors import PROBLEM_TYPES
    from app.services.monitoring.indicators import CATALOG

    found: dict[str, list[tuple[str, int]]] = {}

    def add(text: str, where: str) -> None:
        found.setdefault(text, []).append((where, 0))

    for slug, (_status, title, description) in PROBLEM_TYPES.items():
        add(title, f"app/errors.py:PROBLEM_TYPES[{slug}]")
        add(description, f"app/errors.py:PROBLEM_TYPES[{slug}]")
    for kind, message in i18n.VALIDATION_MESSAGES.items():
        add(message, f"app/i18n.py:VALIDATION_MESSAGES[{kind}]")
    for name, indicator in CATALOG.items():
        add(indicator.title, f"app/services/monitoring/indicators.py:CATALOG[{name}]")
        add(indicator.definition, f"app/services/monitoring/indicators.py:CATALOG[{name}]")
    for code, agency in DEFAULT_REFERRAL_AGENCIES.items():
        add(agency.name, f"app/config.py:DEFAULT_REFERRAL_AGENCIES[{code}]")
        for service in agency.services.values():
            add(service, f"app/config.py:DEFAULT_REFERRAL_AGENCIES[{code}]")
    return found


# Locations name the file, not the line: the catalogues do not change each time code moves.
def extract() -> Catalog:
    catalog = Catalog(project="Guichet", domain=i18n.DOMAIN, header_comment=f"# {REVIEW}",
                      creation_date=datetime(2026, 12, 8, tzinfo=timezone.utc), fuzzy=False)
    messages = from_code()
    for text, where in from_tables().items():
        messages.setdefault(text, []).extend(where)
    for text, where in sorted(messages.items()):
        catalog.add(text, locations=[(path, line) for path, line in where])
    LOCALE.mkdir(parents=True, exist_ok=True)
    with TEMPLATE.open("wb") as out:
        write_po(out, catalog, width=120, omit_header=False, sort_output=True, include_lineno=False)
    return catalog


def _po(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"


def update() -> None:
    with TEMPLATE.open("rb") as f:
        template = read_po(f)
    for language in TRANSLATED:
        path = _po(language)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=language)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, domain=i18n.DOMAIN, project="Guichet", fuzzy=False)
        catalog.header_comment = f"# {REVIEW}"
        catalog.last_translator = "machine-drafted (Guichet issue 15), needs native review"
        # No fuzzy matching: a near-miss guess would be served as if it were a translation.
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as out:
            write_po(out, catalog, width=120, sort_output=True, ignore_obsolete=True, include_lineno=False)


def compile_() -> None:
    for language in TRANSLATED:
        with _po(language).open("rb") as f:
            catalog = read_po(f, locale=language)
        with _po(language).with_suffix(".mo").open("wb") as out:
            write_mo(out, catalog, use_fuzzy=False)


def problems() -> list[str]:
    """What is wrong with the catalogues: a message without a translation, or whose placeholders differ."""
    with TEMPLATE.open("rb") as f:
        template = read_po(f)
    wanted = {m.id for m in template if m.id}
    found = []
    for language in TRANSLATED:
        with _po(language).open("rb") as f:
            catalog = read_po(f, locale=language)
        for msgid in sorted(wanted):
            message = catalog.get(msgid)
            if message is None or not message.string:
                found.append(f"{language}: no translation of {msgid!r}")
            elif set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(message.string)):
                found.append(f"{language}: the placeholders of {msgid!r} differ in {message.string!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "all"
    if command in ("extract", "all"):
        extract()
    if command in ("update", "all"):
        update()
    if command in ("compile", "all"):
        compile_()
    if command in ("check", "all"):
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
