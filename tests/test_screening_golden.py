"""Golden households (tests/golden/households.yaml): every scheme's verdict for every member and
household, so that a rules change that alters a verdict is seen. The households are screened the way
a preview is (the registration body, no database), with the reference partner on loopback."""

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from partner_server import RunningPartner, create_partner_app
from test_schemes_http import TOKEN, partner_scheme

from app.schemas.households import MemberCreate
from app.schemes.facts import FlatMember
from app.schemes.registry import load_registry
from app.services.screening import build_request, run_schemes
from app.vocabulary import Outcome

GOLDEN = yaml.safe_load((Path(__file__).parent / "golden" / "households.yaml").read_text(encoding="utf-8"))
DEFAULT_AS_OF = date(2026, 11, 29)
CATALOGUE = load_registry(SimpleNamespace(schemes_path=None), plugins=False)


def test_the_table_is_big_enough():
    assert len(GOLDEN) >= 30
    assert len({h["name"] for h in GOLDEN}) == len(GOLDEN)
    assert sum(len(h["members"]) for h in GOLDEN) >= 60


@pytest.fixture(scope="module")
async def youth_partner():
    async with RunningPartner(create_partner_app(token=TOKEN)) as running:
        adapter = partner_scheme(running.url, read=2.0, overall=5.0)
        yield adapter
        await adapter.aclose()


def decisive_criteria(node: dict | None) -> list[tuple[str, str]]:
    """(rule, result) of the criteria an explanation marks decisive, in the rule's order."""
    if node is None or not node["decisive"]:
        return []
    if node.get("op") is None:
        return [(node["rule"], node["result"])]
    return [found for child in node["children"] for found in decisive_criteria(child)]


_DECIDING = {Outcome.eligible: "passed", Outcome.not_eligible: "failed", Outcome.needs_information: "unknown"}


def explanation_problems(d, who: str) -> list[str]:
    """A rules verdict explains itself: what it marks decisive all passed for an eligible verdict, all
    failed for a not-eligible one, and for needs_information is exactly what missing_facts asks (the
    catalogue has no `not`); a subject outside the target group has that one reason and nothing asked."""
    code, explained = d.scheme_code, d.explanation
    if explained is None:
        return [f"{who} {code}: no explanation"]
    found = decisive_criteria(explained["target"]) + decisive_criteria(explained["rules"])
    problems = []
    if not found or {result for _, result in found} != {_DECIDING[d.outcome]}:
        problems.append(f"{who} {code}: {d.outcome.value} decided by {found}")
    if d.outcome is Outcome.needs_information:
        facts = {r.rule: next(iter(r.facts)) for r in d.reasons}  # a criterion's reason names its one fact
        if {facts[rule] for rule, _ in found} != set(d.missing_facts):
            problems.append(f"{who} {code}: decided by {found}, missing {d.missing_facts}")
    if explained["rules"] is None and (len(d.reasons) != 1 or d.missing_facts or d.hints):
        problems.append(f"{who} {code}: outside the target group with {[r.rule for r in d.reasons]}, {d.missing_facts}")
    return problems


def expected_outcome(expect: dict, code: str) -> tuple[Outcome, list[str] | None]:
    if code in expect.get("eligible", []):
        return Outcome.eligible, None
    if code in expect.get("needs_information", {}):
        return Outcome.needs_information, expect["needs_information"][code]
    return Outcome.not_eligible, None


@pytest.mark.parametrize("case", GOLDEN, ids=[h["name"] for h in GOLDEN])
async def test_golden_household(case, youth_partner):
    as_of = case.get("as_of", DEFAULT_AS_OF)
    adapters = [*CATALOGUE.in_force(as_of), youth_partner]
    spec = case["household"]
    idpoor = spec.get("idpoor") or {}
    household = SimpleNamespace(id=None, village_code="17010101", area_type=spec["area_type"],
                                idpoor_level=idpoor.get("level"), idpoor_valid_until=idpoor.get("valid_until"))
    members = []
    for i, raw in enumerate(case["members"]):
        facts = {k: v for k, v in raw.items() if k != "expect"} | {"given_name": f"Member{i}", "family_name": "Golden"}
        members.append(FlatMember(MemberCreate.model_validate(facts)))
    request = build_request(household, members, frozenset(spec["consent"]), as_of)
    results = await run_schemes(adapters, request)

    problems = []
    for adapter, determinations in results:
        code = adapter.metadata.code
        household_level = adapter.metadata.level.value == "household"
        for index, determination in enumerate(determinations):
            expect = case.get("expect", {}) if household_level else case["members"][index]["expect"]
            who = "household" if household_level else f"member {index}"
            outcome, missing = expected_outcome(expect, code)
            if determination.outcome is not outcome:
                reasons = "; ".join(f"{r.rule}={r.result.value}" for r in determination.reasons)
                problems.append(f"{who} {code}: {determination.outcome.value}, expected {outcome.value} ({reasons})")
            elif missing is not None and determination.missing_facts != missing:
                problems.append(f"{who} {code}: missing {determination.missing_facts}, expected {missing}")
            benefit = expect.get("benefits", {}).get(code)
            if benefit is not None and (determination.benefit is None or determination.benefit.amount != benefit):
                problems.append(f"{who} {code}: benefit {determination.benefit}, expected {benefit}")
            version = expect.get("versions", {}).get(code)
            if version is not None and determination.rules_version != version:
                problems.append(f"{who} {code}: rules version {determination.rules_version}, expected {version}")
            if adapter.metadata.adapter == "rules":
                problems += explanation_problems(determination, who)
            else:
                assert determination.explanation is None  # a partner's reasons are a flat list
            decisive = expect.get("decisive", {}).get(code)
            explained = determination.explanation or {"target": None, "rules": None}
            found = [rule for rule, _ in decisive_criteria(explained["target"]) + decisive_criteria(explained["rules"])]
            if decisive is not None and found != decisive:
                problems.append(f"{who} {code}: decided by {found}, expected {decisive}")
            reasons = expect.get("reasons", {}).get(code)
            if reasons is not None and [r.rule for r in determination.reasons] != reasons:
                problems.append(f"{who} {code}: reasons {[r.rule for r in determination.reasons]}, expected {reasons}")
            # Every verdict explains itself; `error` never stands for "not eligible".
            assert determination.reasons and all(r.message for r in determination.reasons)
    for code in case.get("expect", {}).get("versions", {}):
        assert code in {a.metadata.code for a, _ in results}, f"{code} not in force on {as_of}"
    assert not problems, "\n".join(problems)
