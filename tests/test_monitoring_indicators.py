"""Indicators at central: every event type of the contract counted, unique persons per period, period
bucketing at month and year boundaries in the offices' time zone, ratios and medians, overdue as of a
date, small-cell suppression, CSV, the catalog, the offices' sync view, and who may read them."""

import csv
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from app.events import EVENT_TYPES
from app.models import MonitoringEvent
from app.services.monitoring import indicators, ingest, rollups, suppression
from helpers import assert_problem
from monitoring_support import (
    at,
    decided,
    household_dims,
    household_registered,
    person_dims,
    person_registered,
    pseudonym,
    relay_token,
    sample,
)

URL = "/api/v1/monitoring/indicators"


@pytest.fixture
def k1(settings, monkeypatch):
    """Exact numbers: suppression off (k = 1) unless a test says otherwise."""
    monkeypatch.setattr(settings, "small_cell_k", 1)


async def post(client, app, settings, events, office="SR-ACH"):
    headers = await relay_token(app, settings, office)
    for i in range(0, len(events), 1000):
        response = await client.post("/api/v1/monitoring/events", json={"events": events[i:i + 1000]}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.json()["rejected"]


async def values(client, world, indicator, *, frm="2026-01-01", to="2026-12-31", period="month", group_by=None, **filters):
    params = {"indicator": indicator, "from": frm, "to": to, "period": period, **filters}
    if group_by:
        params["group_by"] = group_by
    response = await client.get(URL, params=params, headers=world.monitor.headers)
    assert response.status_code == 200, response.text
    return response.json()


def table(body, *dims):
    return {(row["period"], *(row[d] for d in dims)): row["value"] for row in body["rows"]}


async def test_every_event_type_of_the_contract_is_counted(client, app, settings, world, k1):
    events = [sample(event_type, at=at("2026-02-10")) for event_type, _ in EVENT_TYPES]
    await post(client, app, settings, events)
    expected = {
        "households_registered": 1, "persons_registered": 1, "households_updated": 1, "screenings": 1,
        "eligible_determinations": 1, "determinations": 1, "applications_submitted": 1, "applications_approved": 1,
        "applications_rejected": None, "approval_rate": 1.0, "median_days_to_decision": 12.0,
        "decisions_within_service_level": 1.0, "beneficiaries": 1, "women_share_of_beneficiaries": 1.0,
        "referrals_issued": 1, "referrals_completed": 1, "grievances_opened": 1, "grievances_by_channel": 1,
        "grievances_resolved": 1, "cases_opened": 1, "cases_closed": 1,
        "clients_served": 12,  # every event that names a person, each with its own pseudonym here
        "households_reached": len(events), "female_headed_households_reached": len(events),
    }
    for name, value in expected.items():
        body = await values(client, world, name, frm="2026-02-01", to="2026-02-28")
        assert table(body) == ({("2026-02",): value} if value is not None else {}), name


async def test_clients_served_counts_each_person_once_per_period(client, app, settings, world, k1):
    someone, other = pseudonym(), pseudonym()
    events = [person_registered(person=someone, at=at("2026-01-05")),
              sample("screening.determination", person=someone, at=at("2026-01-05")),
              sample("application.submitted", person=someone, at=at("2026-01-20")),
              sample("referral.issued", person=someone, at=at("2026-02-03")),
              person_registered(person=other, sex="male", at=at("2026-03-30"))]
    await post(client, app, settings, events[::-1])  # out of order: nothing depends on arrival order
    by_month = await values(client, world, "clients_served", frm="2026-01-01", to="2026-03-31")
    assert table(by_month) == {("2026-01",): 1, ("2026-02",): 1, ("2026-03",): 1}
    by_quarter = await values(client, world, "clients_served", period="quarter", frm="2026-01-01", to="2026-03-31",
                              group_by="sex")
    assert table(by_quarter, "sex") == {("2026-Q1", "female"): 1, ("2026-Q1", "male"): 1}
    by_day = await values(client, world, "clients_served", period="day", frm="2026-01-01", to="2026-01-31")
    assert table(by_day) == {("2026-01-05",): 1, ("2026-01-20",): 1}
    # Re-sending everything changes nothing.
    await post(client, app, settings, events)
    assert table(await values(client, world, "clients_served", frm="2026-01-01", to="2026-03-31")) == table(by_month)


async def test_periods_are_the_offices_calendar_at_month_and_year_boundaries(client, app, settings, world, k1):
    # Local (UTC+7) New Year's Eve at 23:30 is 16:30 UTC; five minutes past local midnight is still
    # 31 December in UTC, but it is January 2026 at the office.
    events = [person_registered(at=at("2025-12-31", hour=23).replace(minute=30)),
              person_registered(at=at("2026-01-01", hour=0).replace(minute=5)),
              person_registered(at=at("2026-01-31", hour=23).replace(minute=59)),
              person_registered(at=at("2026-02-01", hour=0))]
    await post(client, app, settings, events)
    for name in ("persons_registered", "clients_served"):
        months = await values(client, world, name, frm="2025-12-01", to="2026-02-28")
        assert table(months) == {("2025-12",): 1, ("2026-01",): 2, ("2026-02",): 1}, name
        quarters = await values(client, world, name, period="quarter", frm="2025-10-01", to="2026-03-31")
        assert table(quarters) == {("2025-Q4",): 1, ("2026-Q1",): 3}, name
        assert quarters["from"] == "2025-10-01" and quarters["to"] == "2026-03-31"
        # 31 Dec 2025 is a Wednesday: ISO week 2026-W01 runs from Monday 29 Dec 2025 to Sunday 4 Jan.
        weeks = await values(client, world, name, period="week", frm="2025-12-22", to="2026-01-04")
        assert table(weeks) == {("2026-W01",): 2}, name
        assert weeks["rows"][0]["period_start"] == "2025-12-29"
        days = await values(client, world, name, period="day", frm="2025-12-31", to="2026-01-01")
        assert table(days) == {("2025-12-31",): 1, ("2026-01-01",): 1}, name
        feb = await values(client, world, name, period="day", frm="2026-01-31", to="2026-02-01")
        assert table(feb) == {("2026-01-31",): 1, ("2026-02-01",): 1}, name
    # A range inside a period is widened to whole periods, and says so.
    partial = await values(client, world, "persons_registered", frm="2026-01-15", to="2026-02-10")
    assert (partial["from"], partial["to"]) == ("2026-01-01", "2026-02-28")


async def test_breakdowns_and_filters(client, app, settings, world, k1):
    events = ([person_registered(sex="female", disability=True, at=at("2026-04-02")) for _ in range(3)]
              + [person_registered(sex="male", age_band="60+", at=at("2026-04-03")) for _ in range(2)]
              + [person_registered(sex="female", district="1712", commune="171201", village="17120101",
                                   at=at("2026-05-02"), office="SR-SSN")])
    await post(client, app, settings, events[:5])
    await post(client, app, settings, events[5:], office="SR-SSN")
    body = await values(client, world, "persons_registered", group_by="district,sex", frm="2026-04-01", to="2026-05-31")
    assert table(body, "district", "sex") == {("2026-04", "1701", "female"): 3, ("2026-04", "1701", "male"): 2,
                                              ("2026-05", "1712", "female"): 1}
    by_office = await values(client, world, "persons_registered", group_by="office,age_band", period="quarter",
                             frm="2026-04-01", to="2026-06-30")
    assert table(by_office, "office", "age_band") == {("2026-Q2", "SR-ACH", "18-59"): 3, ("2026-Q2", "SR-ACH", "60+"): 2,
                                                      ("2026-Q2", "SR-SSN", "18-59"): 1}
    disabled = await values(client, world, "persons_registered", group_by="disability", frm="2026-04-01", to="2026-04-30",
                            sex="female", office="SR-ACH")
    assert table(disabled, "disability") == {("2026-04", True): 3}
    assert disabled["filters"] == {"sex": "female", "office": "SR-ACH"}
    by_idpoor = await values(client, world, "persons_registered", group_by="idpoor_level,female_headed",
                             frm="2026-04-01", to="2026-04-26", period="week")
    assert table(by_idpoor, "idpoor_level", "female_headed") == {("2026-W14", 1, True): 5}
    unknown = await values(client, world, "households_registered", frm="2026-04-01", to="2026-04-30", idpoor_level="none")
    assert unknown["rows"] == []


async def test_applications_ratios_and_median_days(client, app, settings, world, k1):
    day = at("2026-06-10")
    events = [decided("approved", days=d, at=day, sex="female") for d in (3, 5, 9)]
    events += [decided("approved", days=400, at=day, sex="male", sla=False)]
    events += [decided("rejected", days=20, at=day, sex="male", reason="income_above_threshold")]
    events += [decided("withdrawn", days=1, at=day, sex="male")]
    events += [decided("approved", scheme="KH-CTP", days=2, at=day, sex="female")]
    await post(client, app, settings, events)
    june = {"frm": "2026-06-01", "to": "2026-06-30"}
    assert table(await values(client, world, "applications_approved", group_by="scheme", **june), "scheme") == {
        ("2026-06", "KH-CTP"): 1, ("2026-06", "KH-HEF"): 4}
    assert table(await values(client, world, "approval_rate", scheme="KH-HEF", **june)) == {("2026-06",): 0.8}
    # 3, 5, 9, 20 and 400 (counted as 365) days: the median is 9.
    assert table(await values(client, world, "median_days_to_decision", scheme="KH-HEF", **june)) == {("2026-06",): 9.0}
    assert table(await values(client, world, "median_days_to_decision", group_by="scheme", **june), "scheme") == {
        ("2026-06", "KH-CTP"): 2.0, ("2026-06", "KH-HEF"): 9.0}
    assert table(await values(client, world, "decisions_within_service_level", scheme="KH-HEF", **june)) == {("2026-06",): 0.8}
    assert table(await values(client, world, "rejection_reasons", group_by="reason", **june), "reason") == {
        ("2026-06", "income_above_threshold"): 1}
    # Beneficiaries: 4 at KH-HEF (3 women), 1 at KH-CTP (a woman): 4 of 5 beneficiary-scheme pairs are women's.
    assert table(await values(client, world, "women_share_of_beneficiaries", **june)) == {("2026-06",): 0.8}
    assert table(await values(client, world, "women_share_of_beneficiaries", group_by="scheme", **june), "scheme") == {
        ("2026-06", "KH-CTP"): 1.0, ("2026-06", "KH-HEF"): 0.75}


async def test_overdue_is_counted_as_of_the_end_of_each_period(client, app, settings, world, k1):
    late, on_time, never_closed, closed_late = pseudonym(), pseudonym(), pseudonym(), pseudonym()
    events = [
        sample("referral.issued", referral=late, due_date="2026-01-20", at=at("2026-01-05")),
        sample("referral.issued", referral=on_time, due_date="2026-01-20", at=at("2026-01-06")),
        sample("referral.status_changed", referral=on_time, status="completed", at=at("2026-01-18")),
        sample("referral.issued", referral=never_closed, agency="moh", due_date="2026-02-10", at=at("2026-01-25")),
        sample("referral.issued", referral=closed_late, due_date="2026-01-31", at=at("2026-01-25")),
        sample("referral.status_changed", referral=closed_late, status="completed", at=at("2026-02-15")),
        sample("referral.status_changed", referral=late, status="accepted", at=at("2026-01-25")),  # not a closing
    ]
    await post(client, app, settings, events[::-1])  # closings before openings
    body = await values(client, world, "referrals_overdue", frm="2026-01-01", to="2026-04-30")
    # End of January: late and closed_late are not due until the 31st... late (due 20th) is overdue.
    # End of February: late, and never_closed (due 10 Feb); closed_late closed on the 15th.
    assert table(body) == {("2026-01",): 1, ("2026-02",): 2, ("2026-03",): 2, ("2026-04",): 2}
    by_agency = await values(client, world, "referrals_overdue", group_by="agency", frm="2026-02-01", to="2026-02-28")
    assert table(by_agency, "agency") == {("2026-02", "moh"): 1, ("2026-02", "nea"): 1}
    # As of a day inside a period, for the current one.
    service_answer = await _direct(app, "referrals_overdue", date(2026, 2, 1), date(2026, 2, 28), today=date(2026, 2, 12))
    assert [(c.start, c.value) for c in service_answer.cells] == [(date(2026, 2, 1), 3)]  # closed_late still open on the 12th
    assert table(await values(client, world, "referrals_issued", group_by="agency", frm="2026-01-01", to="2026-01-31"),
                 "agency") == {("2026-01", "moh"): 1, ("2026-01", "nea"): 3}
    assert table(await values(client, world, "referrals_completed", frm="2026-01-01", to="2026-02-28")) == {
        ("2026-01",): 1, ("2026-02",): 1}


async def test_grievances_by_category_and_overdue(client, app, settings, world, k1):
    anonymous = {"dimensions": {"province": "17", "district": "1701"}, "person": None, "household": None}
    g1, g2, g3 = pseudonym(), pseudonym(), pseudonym()
    events = [
        sample("grievance.opened", grievance=g1, category="payment", sla_due_date="2026-03-10", at=at("2026-03-01")),
        sample("grievance.opened", grievance=g2, category="exclusion_error", channel="in_person",
               sla_due_date="2026-03-05", at=at("2026-03-01"), **anonymous),
        sample("grievance.opened", grievance=g3, category="appeal", sla_due_date="2026-03-30", appeal_scheme="KH-HEF",
               at=at("2026-03-02")),
        sample("grievance.status_changed", grievance=g1, category="payment", status="resolved", at=at("2026-03-08")),
        sample("grievance.status_changed", grievance=g2, category="exclusion_error", status="escalated", level=2,
               at=at("2026-03-09")),
        sample("grievance.status_changed", grievance=g3, category="appeal", status="resolved", upheld=True,
               at=at("2026-03-20")),
    ]
    await post(client, app, settings, events)
    march = {"frm": "2026-03-01", "to": "2026-03-31"}
    assert table(await values(client, world, "grievances_opened", group_by="category", **march), "category") == {
        ("2026-03", "appeal"): 1, ("2026-03", "exclusion_error"): 1, ("2026-03", "payment"): 1}
    assert table(await values(client, world, "grievances_opened", group_by="sex", **march), "sex") == {
        ("2026-03", None): 1, ("2026-03", "female"): 2}
    assert table(await values(client, world, "grievances_by_channel", group_by="channel", **march), "channel") == {
        ("2026-03", "hotline"): 2, ("2026-03", "in_person"): 1}
    assert table(await values(client, world, "grievances_resolved", group_by="category", **march), "category") == {
        ("2026-03", "appeal"): 1, ("2026-03", "payment"): 1}
    assert table(await values(client, world, "grievances_escalated", **march)) == {("2026-03",): 1}
    assert table(await values(client, world, "appeals_upheld", **march)) == {("2026-03",): 1}
    assert table(await values(client, world, "grievances_overdue", group_by="category", **march), "category") == {
        ("2026-03", "exclusion_error"): 1}  # escalated is not closed


async def test_appeals_by_the_scheme_they_contest(client, app, settings, world, k1):
    hef, ctp, unnamed = pseudonym(), pseudonym(), pseudonym()
    may = {"sla_due_date": "2026-06-01", "at": at("2026-05-04")}
    events = [
        sample("grievance.opened", grievance=hef, category="appeal", appeal_scheme="KH-HEF", **may),
        sample("grievance.opened", grievance=ctp, category="appeal", appeal_scheme="KH-CTP", **may),
        sample("grievance.opened", grievance=unnamed, category="appeal", appeal_scheme="KH-HEF", **may),
        sample("grievance.opened", category="payment", **may),
        sample("grievance.status_changed", grievance=hef, category="appeal", status="resolved", upheld=True,
               appeal_scheme="KH-HEF", at=at("2026-05-20")),
        sample("grievance.status_changed", grievance=ctp, category="appeal", status="resolved", upheld=False,
               appeal_scheme="KH-CTP", at=at("2026-05-21")),
        # An office that does not send appeal_scheme yet: the verdict counts, under no scheme.
        sample("grievance.status_changed", grievance=unnamed, category="appeal", status="resolved", upheld=True,
               at=at("2026-05-22")),
    ]
    await post(client, app, settings, events)
    may_range = {"frm": "2026-05-01", "to": "2026-05-31"}
    assert table(await values(client, world, "appeals_lodged", group_by="scheme", **may_range), "scheme") == {
        ("2026-05", "KH-CTP"): 1, ("2026-05", "KH-HEF"): 2}
    assert table(await values(client, world, "appeals_upheld", group_by="scheme", **may_range), "scheme") == {
        ("2026-05", None): 1, ("2026-05", "KH-HEF"): 1}
    assert table(await values(client, world, "appeals_upheld_rate", group_by="scheme", **may_range), "scheme") == {
        ("2026-05", None): 1.0, ("2026-05", "KH-CTP"): 0.0, ("2026-05", "KH-HEF"): 1.0}
    assert table(await values(client, world, "appeals_upheld", scheme="KH-HEF", **may_range)) == {("2026-05",): 1}
    assert table(await values(client, world, "grievances_resolved", group_by="scheme", **may_range), "scheme") == {
        ("2026-05", None): 1, ("2026-05", "KH-CTP"): 1, ("2026-05", "KH-HEF"): 1}


async def test_small_cells_are_suppressed_with_their_complements(client, app, settings, world):
    assert settings.small_cell_k == 5
    day = at("2026-07-07")
    # Province 17: 12 women, 2 men. Province 02: 6 women, 7 men. District rows for the CSV too.
    events = ([person_registered(sex="female", at=day) for _ in range(12)]
              + [person_registered(sex="male", at=day) for _ in range(2)]
              + [person_registered(sex="female", province="02", district="0201", commune="020101", village="02010101",
                                   at=day) for _ in range(6)]
              + [person_registered(sex="male", province="02", district="0201", commune="020101", village="02010101",
                                   at=day) for _ in range(7)])
    await post(client, app, settings, events)
    body = await values(client, world, "persons_registered", group_by="province,sex", frm="2026-07-01", to="2026-07-31")
    cells = {(r["province"], r["sex"]): (r["value"], r["suppressed"]) for r in body["rows"]}
    # (17, male) = 2 is small. Along sex within province 17, it is alone: (17, female) is hidden too,
    # or 17's total (14) minus 12 gives it away. Along province within "male", (02, male) follows.
    # Along sex within 02, (02, female) follows; then every line holds two hidden cells.
    assert cells == {("02", "female"): (None, True), ("02", "male"): (None, True),
                     ("17", "female"): (None, True), ("17", "male"): (None, True)}
    assert body["suppressed"] == 4 and body["k"] == 5
    one_line = await values(client, world, "persons_registered", group_by="sex", frm="2026-07-01", to="2026-07-31",
                            province="17")
    assert [(r["sex"], r["value"], r["suppressed"]) for r in one_line["rows"]] == [("female", None, True), ("male", None, True)]
    totals = await values(client, world, "persons_registered", group_by="province", frm="2026-07-01", to="2026-07-31")
    assert table(totals, "province") == {("2026-07", "02"): 13, ("2026-07", "17"): 14} and totals["suppressed"] == 0
    # Ratios are hidden when a count behind them is small.
    await post(client, app, settings, [decided("approved", at=day) for _ in range(6)] + [decided("rejected", at=day)])
    rate = await values(client, world, "approval_rate", frm="2026-07-01", to="2026-07-31")
    assert [(r["value"], r["suppressed"]) for r in rate["rows"]] == [(None, True)] and rate["suppressed"] == 1
    # The CSV says the same.
    response = await client.get(URL, params={"indicator": "persons_registered", "from": "2026-07-01", "to": "2026-07-31",
                                             "group_by": "province,sex"},
                                headers={**world.monitor.headers, "Accept": "text/csv"})
    assert response.headers["suppressed-cells"] == "4"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["period", "period_start", "province", "sex", "value", "suppressed"]
    assert rows[1] == ["2026-07", "2026-07-01", "02", "female", "", "true"]


def test_complementary_suppression_on_a_table():
    indicator = indicators.CATALOG["persons_registered"]
    july = date(2026, 7, 1)
    grid = {("17", "female"): 30, ("17", "male"): 3, ("17", "other"): 12, ("02", "female"): 20, ("02", "male"): 25,
            ("02", "other"): 40, ("03", "female"): 9, ("03", "male"): 8, ("03", "other"): 7}
    cells = [suppression.Cell(july, key, value) for key, value in sorted(grid.items())]
    answer = indicators.Answer(indicator, "month", july, july, ["province", "sex"], {}, 5, cells)
    suppression.protect(cells, 5)
    hidden = {c.key for c in cells if c.suppressed}
    # (17, male) = 3 is small. Row 17's smallest other, (17, other) = 12, goes with it; column "male"'s
    # smallest other, (03, male) = 8; column "other" then (03, other) = 7... until no row or column
    # holds a lone hidden cell. Row 02 and column "female" stay whole.
    assert ("17", "male") in hidden and ("02", "female") not in hidden
    for axis in (0, 1):
        lines: dict[str, list] = {}
        for c in cells:
            lines.setdefault(c.key[axis], []).append(c)
        assert all(sum(c.suppressed for c in line) != 1 for line in lines.values()), axis
    assert answer.suppressed == len(hidden) == 4
    assert hidden == {("17", "male"), ("17", "other"), ("03", "male"), ("03", "other")}


async def test_csv_and_content_negotiation(client, app, settings, world, k1):
    await post(client, app, settings, [household_registered(at=at("2026-08-01")), household_registered(
        female_headed=False, idpoor_level=None, at=at("2026-08-02"))])
    params = {"indicator": "households_registered", "from": "2026-08-01", "to": "2026-08-31",
              "group_by": "female_headed,idpoor_level"}
    response = await client.get(URL, params=params, headers={**world.monitor.headers, "Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == ["period,period_start,female_headed,idpoor_level,value,suppressed",
                                          "2026-08,2026-08-01,false,,1,false", "2026-08,2026-08-01,true,1,1,false"]
    json_response = await client.get(URL, params=params, headers={**world.monitor.headers, "Accept": "application/json"})
    assert json_response.headers["content-type"].startswith("application/json")
    assert_problem(await client.get(URL, params=params, headers={**world.monitor.headers, "Accept": "application/xml"}),
                   406, "not-acceptable")


@pytest.mark.parametrize("params, pointer", [
    ({"indicator": "happiness"}, "#/query/indicator"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "#/query/from"),
    ({"period": "year"}, "#/query/period"),
    ({"from": "2026-13-01"}, "#/query/from"),
    ({"from": None}, "#/query/from"),
    ({"group_by": "favourite_colour"}, "#/query/group_by/0"),
    ({"group_by": "sex,sex"}, "#/query/group_by"),
    ({"group_by": "sex,"}, "#/query/group_by"),
    ({"indicator": "households_registered", "group_by": "sex"}, "#/query/group_by/0"),
    ({"sex": "unknown-ish"}, "#/query/sex"),
    ({"province": "170"}, "#/query/province"),
    ({"disability": "yes"}, "#/query/disability"),
    ({"scheme": "x" * 41}, "#/query/scheme"),
    ({"office": "SR ACH"}, "#/query/office"),
    ({"category": "payment"}, "#/query/category"),  # not a breakdown of persons_registered
    ({"sexx": "female"}, "#/query/sexx"),
    ({"from": "2010-01-01", "to": "2026-01-01"}, "#/query/to"),
    ({"period": "day", "from": "2025-01-01", "to": "2026-12-31"}, "#/query/to"),
])
async def test_bad_queries_get_a_clear_422(client, world, params, pointer):
    query = {"indicator": "persons_registered", "from": "2026-01-01", "to": "2026-12-31", **params}
    query = {k: v for k, v in query.items() if v is not None}
    body = assert_problem(await client.get(URL, params=query, headers=world.monitor.headers), 422, "validation")
    assert pointer in [e["pointer"] for e in body["errors"]], body


async def test_catalog_lists_every_indicator_with_its_breakdowns(client, world):
    response = await client.get(URL + "/catalog", headers=world.monitor.headers)
    assert response.status_code == 200
    body = response.json()
    names = {item["name"] for item in body["items"]}
    assert {"clients_served", "households_registered", "screenings", "eligible_determinations", "applications_submitted",
            "applications_approved", "applications_rejected", "approval_rate", "median_days_to_decision",
            "referrals_issued", "referrals_completed", "referrals_overdue", "grievances_opened", "grievances_resolved",
            "grievances_overdue", "women_share_of_beneficiaries", "female_headed_households_reached"} <= names
    by_name = {item["name"]: item for item in body["items"]}
    assert {"sex", "age_band", "disability", "province", "office"} <= set(by_name["clients_served"]["breakdowns"])
    assert "category" in by_name["grievances_overdue"]["breakdowns"] and "scheme" in by_name["approval_rate"]["breakdowns"]
    assert all(item["definition"] and item["unit"] for item in body["items"])
    assert body["k"] == 5 and "suppressed" in body["suppression"]


async def test_offices_show_when_central_last_heard_from_them(client, app, settings, world):
    await post(client, app, settings, [person_registered(at=at("2026-09-01")), person_registered(at=at("2026-09-02"))])
    response = await client.get("/api/v1/monitoring/offices", headers=world.monitor.headers)
    assert response.status_code == 200
    offices = {o["office_code"]: o for o in response.json()["items"]}
    assert offices["SR-ACH"]["events_received"] == 2 and offices["SR-ACH"]["last_event_at"].startswith("2026-09-01T20:00")
    assert offices["SR-ACH"]["lag_seconds"] > 0 and offices["SR-ACH"]["silent_seconds"] >= 0
    assert offices["SR-SSN"]["events_received"] == 0 and offices["SR-SSN"]["last_sync_at"] is None


@pytest.mark.parametrize("path", [URL + "?indicator=clients_served&from=2026-01-01&to=2026-01-31", URL + "/catalog",
                                  "/api/v1/monitoring/offices"])
async def test_only_monitors_and_admins_read_indicators(client, app, settings, world, path):
    assert (await client.get(path, headers=world.monitor.headers)).status_code == 200
    assert (await client.get(path, headers=world.admin.headers)).status_code == 200
    for account in (world.clerk_a, world.supervisor_a, world.partner):
        assert_problem(await client.get(path, headers=account.headers), 403, "forbidden")
    assert_problem(await client.get(path, headers=await relay_token(app, settings, "SR-ACH")), 403, "forbidden")
    assert_problem(await client.get(path), 401, "unauthenticated")


async def test_rebuilding_from_stored_events_gives_the_same_rollups(client, app, settings, world, k1):
    events = [sample(t, at=at(f"2026-{m:02d}-{d:02d}")) for m in (1, 2, 3) for d in (3, 17) for t, _ in EVENT_TYPES]
    someone = pseudonym()
    events += [person_registered(person=someone, at=at("2026-01-04")), decided("approved", person=someone, at=at("2026-02-04"))]
    await post(client, app, settings, events)

    async def snapshot():
        # Every counter by its key (F is a log of increments: a key's rows are summed, as readers do).
        async with app.state.sessionmaker() as session:
            out = set()
            for name, table in rollups.ROLLUP_TABLES.items():
                key = [table.c[c] for c in rollups.rollup_columns(name)]
                out |= {(name, *row) for row in await session.execute(select(*key, func.sum(table.c.value)).group_by(*key))}
            return out

    before = await snapshot()
    async with app.state.sessionmaker() as session, session.begin():
        assert await ingest.rebuild(session, batch=7) == len(events)
    assert await snapshot() == before


async def test_the_rollups_hold_what_each_event_counts_summed(client, app, settings, world, k1):
    """On PostgreSQL the counted rows are summed in SQL; the tables must hold exactly the sums that
    Python makes of the same rows (Increments, the SQLite path)."""
    someone, household = pseudonym(), pseudonym()
    events = [sample(t, at=at(f"2026-{m:02d}-{d:02d}", hour=h)) for m, d, h in ((1, 5, 1), (3, 30, 2), (4, 2, 3))
              for t, _ in EVENT_TYPES]
    events += [sample("screening.determination", person=someone, household=household, scheme=scheme,
                      dimensions=person_dims(sex=sex, age_band=band), at=at(day, hour=4))
               for scheme, sex, band, day in (("KH-HEF", "female", "18-59", "2026-01-05"), ("KH-CTP", "female", "18-59", "2026-01-06"),
                                              ("KH-HEF", "male", "60+", "2026-02-09"), ("KH-CTP", "other", "5-17", "2026-03-31"))]
    events += [decided("approved", person=someone, at=at("2026-03-31", hour=5))]
    await post(client, app, settings, events)

    async with app.state.sessionmaker() as session:
        stored = (await session.execute(select(MonitoringEvent).order_by(MonitoringEvent.occurred_at))).scalars().all()
        counts, known = rollups.Counts(), {}
        for event in stored:
            payload = EVENT_TYPES[(event.type, event.schema_version)].model_validate(event.payload)
            fact = rollups.Fact(event.type, rollups.local_day(event.occurred_at),
                                   rollups.event_dimensions(event.office_code, payload), payload)
            counts.add_fact(fact)
            for kind, subject in rollups.subjects(fact):
                rollups.count_subject(known.setdefault((kind, subject), set()), kind, fact, counts)
        increments = rollups.Increments()
        increments.add_rows(counts.rows)
        tables = set()
        for name, table in rollups.ROLLUP_TABLES.items():
            key = [table.c[c] for c in rollups.rollup_columns(name)]
            tables |= {(name, *row) for row in await session.execute(select(*key, func.sum(table.c.value)).group_by(*key))}
    assert len(tables) > 200
    assert tables == {(*key, value) for key, value in increments.counts.items()}


async def _direct(app, name, start, end, *, today):
    async with app.state.sessionmaker() as session:
        return await indicators.indicator_values(session, name=name, date_from=start, date_to=end, period="month",
                                                 group_by=[], filters={}, k=1, today=today)


def test_dimensions_helpers():
    assert household_dims()["female_headed"] is True and person_dims(idpoor_level=None).get("idpoor_level") is None


def test_first_seen_counts_a_subject_once_per_period():
    seen: set[int] = set()

    def see(day: str) -> list[str]:
        grains = rollups.first_seen(seen, date.fromisoformat(day))
        seen.add(date.fromisoformat(day).toordinal())
        return grains

    assert see("2026-03-30") == ["day", "week", "month", "quarter"]  # a Monday
    assert see("2026-03-30") == []
    assert see("2026-04-02") == ["day", "month", "quarter"]  # same ISO week, new month and quarter
    assert see("2026-04-05") == ["day"]  # Sunday of that week
    assert see("2026-04-06") == ["day", "week"]
    assert see("2026-03-01") == ["day", "week"]  # out of order: March and Q1 were already seen
