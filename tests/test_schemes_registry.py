"""Scheme files and the registry: the catalogue, broken files failing with file and line (at start-up
too), GUICHET_SCHEMES_PATH, third-party adapters through the `guichet.schemes` entry points, and the
three-valued logic of the rules engine."""

import sys
import textwrap
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.config import Settings
from app.main import create_app
from app.schemes.base import SchemeDefinitionError, SchemeLevel
from app.schemes.registry import CATALOGUE_DIR, load_registry, validate
from app.schemes.rule_tree import Leaf, combine
from app.schemes.rules import RulesAdapter
from app.schemes.yamlfile import load

CODES = ["KH-CTPWC", "KH-DISAB", "KH-FAMILY-CASH", "KH-HEF", "KH-NEA-JOB", "KH-NSSF-HC", "KH-NSSF-PEN", "KH-SCHOLAR"]

GOOD = """\
code: KH-TEST
name: Test scheme
kind: social_protection
level: person
agency: Test agency
legal_reference: Test decree
sources: [https://example.org/decree]
versions:
  - version: "1"
    effective_from: 2020-01-01
    parameters:
      minimum_age: 18
    rules:
      all:
        - rule: adult
          fact: person.age_years
          ge: {param: minimum_age}
          message: "Is {minimum_age} or over"
"""


def settings_with(path: Path | None) -> SimpleNamespace:
    return SimpleNamespace(schemes_path=str(path) if path else None, partner_tokens={}, partner_urls={})


def broken(tmp_path: Path, replace: tuple[str, str] | None = None, text: str | None = None) -> Path:
    body = text if text is not None else GOOD.replace(*replace)
    path = tmp_path / "kh-test.yaml"
    path.write_text(body)
    return path


def test_the_catalogue_has_the_eight_schemes():
    registry = load_registry(settings_with(None))
    assert registry.codes() == CODES
    kinds = {a.metadata.code: a.metadata.kind.value for a in registry}
    assert kinds["KH-NEA-JOB"] == "employment" and list(kinds.values()).count("social_protection") == 7
    levels = {a.metadata.code for a in registry if a.metadata.level is SchemeLevel.household}
    assert levels == {"KH-HEF", "KH-FAMILY-CASH"}
    for adapter in registry:
        meta = adapter.metadata
        assert meta.sources and meta.legal_reference and meta.agency and meta.facts
        assert meta.version_on(date(2026, 11, 29)) is not None
    assert [m.code for m in validate([CATALOGUE_DIR])] == CODES


@pytest.mark.parametrize(("replace", "line", "words"), [
    (("fact: person.age_years", "fact: person.shoe_size"), 16, "unknown fact 'person.shoe_size'"),
    (("ge: {param: minimum_age}", "gte: {param: minimum_age}"), 17, "unknown key 'gte'"),
    (("ge: {param: minimum_age}", "ge: eighteen"), 17, "must be a number"),
    (("ge: {param: minimum_age}", "ge: {param: maximum_age}"), 17, "unknown parameter 'maximum_age'"),
    (("ge: {param: minimum_age}", "ge: {param: minimum_age}\n          lt: 99"), 15, "exactly one of"),
    (("fact: person.age_years\n          ge: {param: minimum_age}", "fact: person.sex\n          eq: woman"), 17, "one of female, male, other"),
    (("fact: person.age_years\n          ge: {param: minimum_age}", "fact: person.pregnant\n          lt: 1"), 17, "true or false"),
    (("fact: person.age_years\n          ge: {param: minimum_age}", "fact: person.age_years\n          between: [60, 15]"), 17, "reversed"),
    (('message: "Is {minimum_age} or over"', 'message: "Is {__import__} or over"'), 18, "neither a parameter"),
    (('message: "Is {minimum_age} or over"', "message: {km: ខ្មែរ}"), 18, "English"),
    (('          message: "Is {minimum_age} or over"\n', ""), 15, "needs a 'message'"),
    (("kind: social_protection", "kind: welfare"), 3, "'kind' is one of"),
    (("effective_from: 2020-01-01", "effective_from: someday"), 10, "effective_from"),
    (("      all:", "      every:"), 14, "a rule needs 'all', 'any', 'not'"),
    (("name: Test scheme", "name: Test scheme\nname: Again"), 3, "given twice"),
    (("level: person", "level: person\nadapter: magic"), 5, "unknown adapter type 'magic'"),
    (("  - version: \"1\"", "  - version: \"1\"\n    colour: blue"), 10, "unknown key 'colour'"),
])
def test_broken_files_fail_with_their_file_and_line(tmp_path, replace, line, words):
    path = broken(tmp_path, replace)
    with pytest.raises(SchemeDefinitionError) as caught:
        load_registry(settings_with(path))
    assert caught.value.source == str(path)
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_syntax_errors_and_code_tags_are_refused_with_the_line(tmp_path):
    path = broken(tmp_path, text=GOOD.replace("    parameters:", "    parameters: [unclosed"))
    with pytest.raises(SchemeDefinitionError) as caught:
        load_registry(settings_with(path))
    assert caught.value.line is not None and "YAML syntax" in str(caught.value)
    path = broken(tmp_path, text=GOOD.replace("name: Test scheme", "name: !!python/object/apply:os.system [echo hacked]"))
    with pytest.raises(SchemeDefinitionError) as caught:
        load_registry(settings_with(path))
    assert caught.value.line == 2


def test_a_broken_file_stops_start_up(tmp_path):
    path = broken(tmp_path, ("fact: person.age_years", "fact: person.income"))
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", var_dir=tmp_path,
                              secret_key="k" * 40, pseudonym_key="p", schemes_path=str(path)))

    async def start():
        async with app.router.lifespan_context(app):
            pass

    import asyncio

    with pytest.raises(SchemeDefinitionError, match=rf"{path.name}:16: unknown fact 'person.income'"):
        asyncio.run(start())


def test_schemes_path_adds_and_replaces(tmp_path):
    (tmp_path / "kh-test.yaml").write_text(GOOD)
    override = (CATALOGUE_DIR / "kh-nssf-pen.yaml").read_text().replace("pension_age: 60", "pension_age: 55")
    (tmp_path / "pension.yml").write_text(override)
    (tmp_path / "notes.txt").write_text("not a scheme")
    registry = load_registry(settings_with(tmp_path))
    assert registry.codes() == sorted([*CODES, "KH-TEST"])
    pension = registry.get("KH-NSSF-PEN")
    assert pension.metadata.source_file == str(tmp_path / "pension.yml")
    assert pension.version_on(date(2026, 1, 1)).parameters["pension_age"] == 55
    # The same code twice in the path is an error naming both files.
    (tmp_path / "again.yaml").write_text(GOOD)
    with pytest.raises(SchemeDefinitionError, match="also defined in"):
        load_registry(settings_with(tmp_path))


PLUGIN = '''
from app.schemes.base import Determination, Reason, ReasonResult, SchemeMetadata, SchemeLevel, SchemeVersion
from app.schemes.definition import DefinitionFile, parse_metadata
from app.vocabulary import Outcome, SchemeKind
from datetime import date


class AlwaysAdapter:
    """A third-party adapter type: every subject gets the outcome its file names."""

    def __init__(self, metadata, outcome):
        self._metadata, self.outcome = metadata, outcome

    @property
    def metadata(self):
        return self._metadata

    async def check(self, request):
        return [Determination(self._metadata.code, s.person_id, Outcome(self.outcome), "plugin-1",
                              [Reason("always", ReasonResult.passed, "Always")]) for s in request.subjects(self._metadata.level)]

    def describe(self, language="en"):
        return {"versions": []}

    def health(self):
        return None

    @classmethod
    def from_definition(cls, doc, *, source, settings=None):
        outcome = doc.pop("outcome")
        meta = parse_metadata(doc, DefinitionFile(source), adapter="always", facts=(), versions=(SchemeVersion("plugin-1", date(2000, 1, 1)),))
        return cls(meta, outcome)


def ready_made(settings):
    meta = SchemeMetadata(code="KH-PLUGIN-READY", name="Ready-made", kind=SchemeKind.employment, level=SchemeLevel.household,
                          agency="Plug-in agency", legal_reference="None", adapter="ready", facts=(),
                          versions=(SchemeVersion("1", date(2000, 1, 1)),))
    return AlwaysAdapter(meta, "eligible")
'''


def test_third_party_adapters_through_entry_points(tmp_path, monkeypatch):
    (tmp_path / "guichet_test_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "guichet_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: guichet-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [guichet.schemes]
        always = guichet_test_plugin:AlwaysAdapter
        ready = guichet_test_plugin:ready_made
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    schemes = tmp_path / "schemes"
    schemes.mkdir()
    (schemes / "kh-always.yaml").write_text(textwrap.dedent("""\
        code: KH-ALWAYS
        name: Always eligible
        kind: social_protection
        agency: Plug-in agency
        legal_reference: None
        adapter: always
        outcome: not_eligible
        """))
    try:
        registry = load_registry(settings_with(schemes))
        assert {"KH-ALWAYS", "KH-PLUGIN-READY"} <= set(registry.codes())
        assert registry.get("KH-ALWAYS").metadata.adapter == "always"
        assert "always" in registry.types
    finally:
        sys.modules.pop("guichet_test_plugin", None)


def test_three_valued_logic():
    def leaf(i):
        return Leaf(f"r{i}", "person.age_years", "ge", 1, {"en": "x"}, None, None, None, "unknown", index=i)

    from app.schemes.rule_tree import Group

    a, b = leaf(0), leaf(1)
    T, F, U = True, False, None
    table = {(T, U): (U, T), (F, U): (F, U), (U, U): (U, U), (T, T): (T, T), (F, F): (F, F), (T, F): (F, T)}
    for (x, y), (all_, any_) in table.items():
        assert combine(Group("all", [a, b]), [x, y]) is all_
        assert combine(Group("any", [a, b]), [x, y]) is any_
    assert combine(Group("not", [a]), [U]) is None
    assert combine(Group("not", [a]), [T]) is False


def test_effective_dates_pick_the_version_in_force():
    registry = load_registry(settings_with(None))
    ctpwc = registry.get("KH-CTPWC")
    assert ctpwc.version_on(date(2023, 7, 31)).info.version == "2019"
    assert ctpwc.version_on(date(2023, 8, 1)).info.version == "2023-08"
    cash = registry.get("KH-FAMILY-CASH")
    assert cash.version_on(date(2023, 12, 31)) is None
    assert cash.version_on(date(2024, 3, 31)).info.version == "2024-01"
    assert cash.version_on(date(2024, 4, 1)).info.version == "2024-04"
    assert "KH-FAMILY-CASH" not in [a.metadata.code for a in registry.in_force(date(2023, 12, 31))]


def test_messages_can_be_added_in_other_languages_without_touching_the_engine(tmp_path):
    text = GOOD.replace('message: "Is {minimum_age} or over"',
                        'message: {en: "Is {minimum_age} or over", fr: "A {minimum_age} ans ou plus", km: "អាយុ {minimum_age} ឆ្នាំឡើង"}')
    adapter = RulesAdapter.from_definition(load(text, source="t.yaml"), source="t.yaml")
    assert adapter.describe("fr")["versions"][0]["rules"]["all"][0]["message"] == "A 18 ans ou plus"
    assert adapter.describe("km")["versions"][0]["rules"]["all"][0]["message"] == "អាយុ 18 ឆ្នាំឡើង"
    assert adapter.describe("de")["versions"][0]["rules"]["all"][0]["message"] == "Is 18 or over"
