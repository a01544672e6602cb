"""Reasons a clerk can follow: each determination explains itself in the rule's own structure (which
path of an `any` made the verdict, which criterion of an `all` failed), beside the flat reasons[]; a
person outside a scheme's target group gets one plain reason and no requests for facts that cannot
matter; the shipped schemes' messages do not mislead."""

from datetime import date

import pytest

from helpers import assert_problem, household_body

from app.schemes.base import SchemeDefinitionError
from app.schemes.rules import RulesAdapter
from app.schemes.yamlfile import load

SCREEN = "/api/v1/households/{}/screenings"


def decisive(node: dict | None) -> list[str]:
    """The criteria (leaves) that decided, in the rule's order."""
    if node is None or not node["decisive"]:
        return []
    if node.get("op") is None:
        return [node["rule"]]
    return [rule for child in node["children"] for rule in decisive(child)]


def the_issue_household() -> dict:
    """What the first office met: a 76-year-old head with a severe disability whose work is not recorded,
    and a 36-year-old son out of work, in an IDPoor household."""
    body = household_body(members=2)
    head, son = body["members"]
    head |= {"birth_date": "1950-03-14", "employment_status": None, "monthly_income": None,
             "disability": {"walking": "a_lot"}}
    son |= {"birth_year": 1990, "relationship": "child", "employment_status": "unemployed", "school_enrolled": None}
    return body


async def screen(client, world, body: dict) -> tuple[dict, dict]:
    household = (await client.post("/api/v1/households", json=body, headers=world.clerk_a.headers)).json()
    response = await client.post(SCREEN.format(household["id"]), headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    return household, response.json()


async def test_each_verdict_explains_itself_in_the_rules_structure_and_is_kept(client, world):
    household, screening = await screen(client, world, the_issue_household())
    head, son = (m["id"] for m in household["members"])
    by_key = {(d["scheme_code"], d["person_id"]): d for d in screening["determinations"]}

    # KH-HEF is eligible by the IDPoor card; the vulnerable-family path, with criteria not met, did not matter.
    hef = by_key[("KH-HEF", None)]
    assert hef["outcome"] == "eligible" and decisive(hef["explanation"]["rules"]) == ["idpoor_card"]
    [family] = [c for c in hef["explanation"]["rules"]["children"] if c.get("rule") == "vulnerable_family"]
    assert family["decisive"] is False and family["message"] == "A vulnerable family near the poverty line"
    assert {r["rule"] for r in hef["reasons"]} >= {"idpoor_card", "member_under_2", "single_mother"}  # reasons[] as before

    # KH-NEA-JOB is eligible because he is unemployed; "not looking for other work" did not decide it.
    job = by_key[("KH-NEA-JOB", son)]
    assert job["outcome"] == "eligible" and decisive(job["explanation"]["target"]) == ["minimum_age"]
    assert decisive(job["explanation"]["rules"]) == ["unemployed"]
    assert [(r["rule"], r["result"]) for r in job["reasons"]] == [
        ("minimum_age", "passed"), ("unemployed", "passed"), ("seeking_better_work", "failed")]

    # KH-DISAB waits for the employment status, and tells a 76-year-old nothing about "working age".
    disab = by_key[("KH-DISAB", head)]
    assert disab["outcome"] == "needs_information" and disab["missing_facts"] == ["person.employment_status"]
    assert decisive(disab["explanation"]["rules"]) == ["not_employed_full_time"]
    assert not any("working age" in r["message"] for r in disab["reasons"]), disab["reasons"]

    # KH-SCHOLAR is for ages 6 to 18: one plain reason for a man of 36, and nothing asked about school.
    scholar = by_key[("KH-SCHOLAR", son)]
    assert scholar["outcome"] == "not_eligible" and scholar["missing_facts"] == [] and scholar["hints"] == []
    assert [(r["rule"], r["result"], r["message"]) for r in scholar["reasons"]] == [
        ("school_age", "failed", "The scholarship is for students aged 6 to 18 (this person is 36)")]
    assert scholar["explanation"] == {"target": {"op": None, "rule": "school_age", "message": None, "result": "failed",
                                                 "decisive": True, "children": []}, "rules": None}
    # The same for the other schemes with a target group: the pension and the cash transfer for mothers.
    assert [r["rule"] for r in by_key[("KH-NSSF-PEN", son)]["reasons"]] == ["pension_age"]
    ctpwc = by_key[("KH-CTPWC", head)]["reasons"]
    assert [(r["rule"], r["message"]) for r in ctpwc] == [
        ("pregnant_or_under_2", "The cash transfer is for pregnant women and children under 2")]
    assert ctpwc[0]["facts"] == {"person.pregnant": False, "person.age_months": 920}

    # Stored with the screening: read back the same.
    again = (await client.get(f"/api/v1/screenings/{screening['id']}", headers=world.clerk_a.headers)).json()
    assert again["determinations"] == screening["determinations"]


async def test_a_preview_explains_too_and_bad_input_is_still_refused(client, world):
    body = the_issue_household()
    preview = await client.post("/api/v1/screenings/preview", json=body, headers=world.clerk_a.headers)
    assert preview.status_code == 200, preview.text
    job = [d for d in preview.json()["determinations"] if d["scheme_code"] == "KH-NEA-JOB" and d["member_index"] == 1]
    assert decisive(job[0]["explanation"]["rules"]) == ["unemployed"]
    assert_problem(await client.post("/api/v1/screenings/preview", json={**body, "explanation": True},
                                     headers=world.clerk_a.headers), 422, "validation")


async def test_the_scheme_says_whom_it_is_for(client, world):
    scheme = (await client.get("/api/v1/schemes/KH-SCHOLAR", headers=world.clerk_a.headers)).json()
    version = scheme["versions"][-1]
    assert version["target"]["rule"] == "school_age" and version["target"]["value"] == [6, 18]
    assert version["target"]["failed"].startswith("The scholarship is for students aged 6 to 18")
    assert "school_age" not in str(version["rules"])
    hef = (await client.get("/api/v1/schemes/KH-HEF", headers=world.clerk_a.headers)).json()
    assert hef["versions"][-1]["target"] is None  # every household


# ---- the engine -----------------------------------------------------------------------------------------

SCHEME = """\
code: KH-TEST
name: Test scheme
kind: social_protection
level: person
agency: Test agency
legal_reference: Test decree
versions:
  - version: "1"
    effective_from: 2020-01-01
    parameters: {minimum_age: 6, maximum_age: 18}
    target:
      rule: child_or_pregnant
      message: {en: "For children and pregnant women", km: "សម្រាប់កុមារ និងស្ត្រីមានផ្ទៃពោះ"}
      failed: {en: "For children aged {minimum_age} to {maximum_age} and pregnant women", fr: "Pour les enfants de {minimum_age} à {maximum_age} ans et les femmes enceintes"}
      any:
        - {rule: child, fact: person.age_years, between: [{param: minimum_age}, {param: maximum_age}], message: "Is a child"}
        - {rule: pregnant, fact: person.pregnant, eq: true, message: Is pregnant}
    rules:
      all:
        - {rule: enrolled, fact: person.school_enrolled, eq: true, message: Is enrolled, unknown: Record the enrolment}
        - rule: poor
          message: Is poor
          failed: Is not poor by either measure
          any:
            - {rule: idpoor_card, fact: household.idpoor_valid, eq: true, message: Holds an IDPoor card}
            - {rule: low_income, fact: person.monthly_income, lt: 100000, message: Earns little}
"""


def adapter(text: str = SCHEME) -> RulesAdapter:
    return RulesAdapter.from_definition(load(text, source="t.yaml"), source="t.yaml")


def check(facts: dict, language: str = "en"):
    base = {"person.age_years": 30, "person.pregnant": False, "person.school_enrolled": None, "household.idpoor_valid": None,
            "person.monthly_income": None}
    return adapter().versions[0].evaluate("KH-TEST", None, base | facts, language)


def test_outside_the_target_group_one_plain_reason_and_nothing_asked():
    outside = check({})
    assert outside.outcome.value == "not_eligible" and outside.missing_facts == [] and outside.hints == []
    assert [(r.rule, r.message) for r in outside.reasons] == [("child_or_pregnant", "For children aged 6 to 18 and pregnant women")]
    assert outside.reasons[0].facts == {"person.age_years": 30, "person.pregnant": False}
    assert outside.explanation["rules"] is None
    assert outside.explanation["target"]["decisive"] and outside.explanation["target"]["result"] == "failed"
    # Translating is a change of the file: the group's messages are keyed by language like every other.
    assert check({}, "fr").reasons[0].message == "Pour les enfants de 6 à 18 ans et les femmes enceintes"
    assert check({}, "km").reasons[0].message == "For children aged 6 to 18 and pregnant women"  # no km failed text: English
    # Inside it, the rules are asked as before, the target's criteria first among the reasons.
    inside = check({"person.age_years": 10})
    assert inside.outcome.value == "needs_information"
    assert inside.missing_facts == ["person.school_enrolled", "household.idpoor_valid", "person.monthly_income"]
    assert [r.rule for r in inside.reasons] == ["child", "pregnant", "enrolled", "idpoor_card", "low_income"]
    # When who the person is is not known, that is asked too.
    unknown = check({"person.age_years": 30, "person.pregnant": None})
    assert unknown.outcome.value == "needs_information" and unknown.missing_facts[0] == "person.pregnant"


def test_decisive_nodes_follow_all_and_any():
    def tree(d):
        return decisive(d.explanation["target"]) + decisive(d.explanation["rules"])

    # Eligible by the IDPoor card: the income path did not matter.
    eligible = check({"person.age_years": 10, "person.school_enrolled": True, "household.idpoor_valid": True,
                      "person.monthly_income": 500000})
    assert eligible.outcome.value == "eligible" and tree(eligible) == ["child", "enrolled", "idpoor_card"]
    poor = eligible.explanation["rules"]["children"][1]
    assert poor["message"] == "Is poor" and [c["decisive"] for c in poor["children"]] == [True, False]
    # Not eligible: the criterion of the `all` that failed, and every path of the `any` that failed with it.
    refused = check({"person.age_years": 10, "person.school_enrolled": True, "household.idpoor_valid": False,
                     "person.monthly_income": 500000})
    assert refused.outcome.value == "not_eligible" and tree(refused) == ["idpoor_card", "low_income"]
    assert refused.explanation["rules"]["children"][1]["message"] == "Is not poor by either measure"
    assert refused.explanation["target"]["decisive"] is False and refused.explanation["rules"]["children"][0]["decisive"] is False
    # Unknown: what would settle it, which is what missing_facts names.
    waiting = check({"person.age_years": 10, "person.school_enrolled": True, "household.idpoor_valid": False})
    assert waiting.outcome.value == "needs_information" and tree(waiting) == ["low_income"]
    assert waiting.missing_facts == ["person.monthly_income"]


@pytest.mark.parametrize(("replace", "line", "words"), [
    (('      message: {en: "For children and pregnant women", km: "សម្រាប់កុមារ និងស្ត្រីមានផ្ទៃពោះ"}\n', ""), 12,
     "a target group needs a 'message'"),
    (("{rule: child, fact: person.age_years", "{rule: child, fact: person.shoe_size"), 16, "unknown fact 'person.shoe_size'"),
    (("      failed: {en:", "      because: {en:"), 14, "unknown key 'because'"),
    (("{rule: pregnant,", "{rule: enrolled,"), 20, "'enrolled' is used twice"),
])
def test_a_broken_target_fails_with_its_line(tmp_path, replace, line, words):
    with pytest.raises(SchemeDefinitionError) as caught:
        adapter(SCHEME.replace(*replace))
    assert caught.value.line == line and words in caught.value.message, str(caught.value)


def test_shipped_messages_do_not_mislead_an_older_person():
    from types import SimpleNamespace

    from app.schemes.registry import load_registry

    registry = load_registry(SimpleNamespace(schemes_path=None, partner_tokens={}, partner_urls={}), plugins=False)
    facts = {"person.age_years": 76, "person.age_months": 76 * 12, "person.severe_disability": True, "person.pregnant": False,
             "household.idpoor_valid": True, "person.employment_status": None, "person.attributes.seeking_work": None,
             "person.nssf_member": None, "person.nssf_contribution_months": None, "person.school_enrolled": None,
             "person.school_attendance_percent": None, "household.female_nssf_members": 0, "household.female_civil_servants": 0}
    for code in ("KH-DISAB", "KH-NSSF-HC", "KH-NEA-JOB"):
        version = registry.get(code).version_on(date(2026, 11, 29))
        determination = version.evaluate(code, None, facts, "en")
        assert not any("working age" in r.message for r in determination.reasons), (code, determination.reasons)


def test_a_file_without_a_target_explains_its_rules_alone():
    plain = SCHEME.split("    target:")[0] + "    rules:" + SCHEME.split("    rules:")[1]
    d = adapter(plain).versions[0].evaluate("KH-TEST", None, {"person.school_enrolled": True, "household.idpoor_valid": True}, "en")
    assert d.outcome.value == "eligible" and d.explanation["target"] is None and decisive(d.explanation["rules"]) == [
        "enrolled", "idpoor_card"]
