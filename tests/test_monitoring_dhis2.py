"""DHIS2: the data value set central answers for a period (JSON and ADX) from the mapping file, with small
cells left out; its push to a DHIS2 stand-in over HTTP (tests/dhis2_server.py) by code, dry run first,
safe to repeat, with DHIS2's conflicts reported; the CLI command that does it; and who may read it."""

from xml.etree import ElementTree

import pytest

from app.services.monitoring import dhis2
from dhis2_server import Dhis2, RunningDhis2
from helpers import assert_problem
from monitoring_support import at, person_registered, relay_token
from test_cli import seeded  # noqa: F401  (the CLI on a database of its own)

URL = "/api/v1/monitoring/dhis2/dataValueSets"
PLACE_02 = {"province": "02", "district": "0201", "commune": "020101", "village": "02010101"}
PLACE_12 = {"province": "12", "district": "1201", "commune": "120101", "village": "12010101"}


@pytest.fixture
async def july(client, app, settings):
    """Registered in July 2026: province 17, 12 women and 20 men; 12, 10 women and 8 men; 02, 7 women and
    2 men (small)."""
    day = at("2026-07-07")
    events = ([person_registered(at=day) for _ in range(12)] + [person_registered(sex="male", at=day) for _ in range(20)]
              + [person_registered(at=day, **PLACE_12) for _ in range(10)]
              + [person_registered(sex="male", at=day, **PLACE_12) for _ in range(8)]
              + [person_registered(at=day, **PLACE_02) for _ in range(7)]
              + [person_registered(sex="male", at=day, **PLACE_02) for _ in range(2)])
    response = await client.post("/api/v1/monitoring/events", json={"events": events},
                                 headers=await relay_token(app, settings, "SR-ACH"))
    assert response.status_code == 200 and response.json()["rejected"] == []


def registered(body):
    return {(v["orgUnit"], v.get("categoryOptionCombo")): v["value"] for v in body["dataValues"]
            if v["dataElement"] == "GCH_PERSONS_REGISTERED"}


async def test_a_month_as_a_dhis2_data_value_set(client, world, july):
    response = await client.get(URL, params={"period": "202607"}, headers=world.monitor.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["period"] == "202607" and body["dataSet"] == "GUICHET_MONTHLY"
    # Province 02 has 2 men: hidden, with the complements that keep them hidden (02's women, 12's men and
    # then 12's women); not sent at all, rather than as zero.
    assert registered(body) == {("17", "SEX_F"): "12", ("17", "SEX_M"): "20"}
    assert int(response.headers["suppressed-cells"]) == 8  # persons_registered's 4 and clients_served's 4
    assert all(v["period"] == "202607" and isinstance(v["value"], str) for v in body["dataValues"])
    # What DHIS2 would say of it: every value accepted.
    status, summary = Dhis2().import_values({"idScheme": "code", "importStrategy": "CREATE_AND_UPDATE",
                                              "dryRun": "true"}, body)
    assert status == 200 and summary["response"]["conflicts"] == [], summary
    # A quarter is a DHIS2 period too.
    quarter = (await client.get(URL, params={"period": "2026Q3"}, headers=world.monitor.headers)).json()
    assert quarter["period"] == "2026Q3" and registered(quarter) == registered(body)


async def test_adx_as_the_second_format(client, world, july):
    response = await client.get(URL, params={"period": "202607"},
                                headers={**world.monitor.headers, "Accept": "application/adx+xml"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/adx+xml"
    root = ElementTree.fromstring(response.content)
    ns = {"adx": dhis2.ADX_NAMESPACE}
    assert root.tag == f"{{{dhis2.ADX_NAMESPACE}}}adx" and root.get("exported")
    (group,) = root.findall("adx:group", ns)
    assert group.attrib == {"orgUnit": "17", "period": "2026-07-01/P1M", "dataSet": "GUICHET_MONTHLY"}
    values = {(v.get("dataElement"), v.get("SEX")): v.get("value") for v in group.findall("adx:dataValue", ns)}
    assert values == {(element, sex): value for element in ("GCH_PERSONS_REGISTERED", "GCH_CLIENTS_SERVED")
                      for sex, value in (("SEX_F", "12"), ("SEX_M", "20"))}


@pytest.mark.parametrize("period", ["2026-07", "202613", "2026Q5", "July", "2026W3"])
async def test_a_period_dhis2_does_not_take_here_is_a_422(client, world, period):
    body = assert_problem(await client.get(URL, params={"period": period}, headers=world.monitor.headers), 422,
                          "validation")
    assert "#/query/period" in [e["pointer"] for e in body["errors"]]


async def test_only_monitors_and_admins_read_it(client, app, settings, world):
    params = {"period": "202607"}
    assert (await client.get(URL, params=params, headers=world.admin.headers)).status_code == 200
    for account in (world.clerk_a, world.supervisor_a, world.partner):
        assert_problem(await client.get(URL, params=params, headers=account.headers), 403, "forbidden")
    assert_problem(await client.get(URL, params=params), 401, "unauthenticated")


async def value_set(app, settings, mapping=None):
    async with app.state.sessionmaker() as session:
        return await dhis2.data_value_set(session, period="202607", mapping=dhis2.load_mapping(mapping),
                                          k=settings.small_cell_k)


async def test_push_dry_run_then_for_real_then_again(app, settings, july):
    values = await value_set(app, settings)
    with RunningDhis2() as server:
        stand_in = server.dhis2
        dry = await dhis2.push(values, url=server.url, token=stand_in.token, username=None, password=None, dry_run=True)
        sent = len(values.values)  # persons registered and clients served, by sex, in province 17
        assert sent == 4
        assert (dry.status, dry.imported, dry.conflicts) == ("SUCCESS", sent, []) and stand_in.stored == {}
        first = await dhis2.push(values, url=server.url, token=None, username="admin", password="district", dry_run=False)
        assert (first.status, first.imported, first.updated) == ("SUCCESS", sent, 0)
        assert {k: v for k, v in stand_in.stored.items() if k[0] == "GCH_PERSONS_REGISTERED"} == {
            ("GCH_PERSONS_REGISTERED", "202607", "17", "SEX_F"): "12",
            ("GCH_PERSONS_REGISTERED", "202607", "17", "SEX_M"): "20"}
        again = await dhis2.push(values, url=server.url, token=stand_in.token, username=None, password=None, dry_run=False)
        assert (again.imported, again.updated) == (0, sent) and len(stand_in.stored) == sent
        query = stand_in.requests[-1]["query"]
        assert query["idScheme"] == "code" and query["importStrategy"] == "CREATE_AND_UPDATE"
        assert [r["query"]["dryRun"] for r in stand_in.requests] == ["true", "false", "false"]
        with pytest.raises(RuntimeError, match="401"):
            await dhis2.push(values, url=server.url, token=None, username="admin", password="wrong", dry_run=True)


async def test_dhis2_conflicts_are_reported(app, settings, july, tmp_path):
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(dhis2.DEFAULT_MAPPING.read_text().replace("GCH_PERSONS_REGISTERED", "GCH_NOT_IN_DHIS2"))
    values = await value_set(app, settings, mapping_file)
    with RunningDhis2() as server:
        summary = await dhis2.push(values, url=server.url, token=server.dhis2.token, username=None, password=None,
                                   dry_run=True)
    assert (summary.status, summary.imported, summary.ignored) == ("WARNING", 2, 2)  # clients served go in
    assert summary.conflicts == ["GCH_NOT_IN_DHIS2: Data element not found or not accessible"] * 2
    assert "conflict: GCH_NOT_IN_DHIS2" in summary.describe(True)


def test_a_mapping_that_names_what_guichet_lacks_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data_elements:\n  - {indicator: happiness, data_element: X}\n")
    with pytest.raises(ValueError, match="unknown indicator happiness"):
        dhis2.load_mapping(bad)
    bad.write_text("data_elements:\n  - {indicator: screenings, data_element: X, breakdown: sex, "
                   "category_option_combos: {female: F}}\n")
    with pytest.raises(ValueError, match="cannot be broken down by sex"):
        dhis2.load_mapping(bad)


async def test_the_push_command_prints_dhis2s_summary_and_is_safe_to_repeat(seeded):
    # The CLI's own database: July's women of province 17 in the province-by-sex rollup, as ingest keeps it.
    await seeded.execute("DELETE FROM monitoring_rollup_sex")
    await seeded.execute("INSERT INTO monitoring_rollup_sex (metric, grain, period_start, province, scheme, detail, sex, "
                         "value) VALUES ('persons_registered', 'month', '2026-07-01', '17', '', '', 'female', 12)")
    with RunningDhis2() as server:
        seeded.env = {**seeded.env, "GUICHET_DHIS2_URL": server.url, "GUICHET_DHIS2_USERNAME": "admin",
                      "GUICHET_DHIS2_PASSWORD": "district"}
        dry = seeded.ok("monitoring", "push-dhis2", "--period", "202607", "--dry-run")
        assert "1 values for 202607" in dry and "DHIS2 import (dry run): SUCCESS; imported 1, updated 0" in dry
        assert server.dhis2.stored == {}
        assert "imported 1, updated 0" in seeded.ok("monitoring", "push-dhis2", "--period", "202607")
        assert "imported 0, updated 1" in seeded.ok("monitoring", "push-dhis2", "--period", "202607")
        assert server.dhis2.stored == {("GCH_PERSONS_REGISTERED", "202607", "17", "SEX_F"): "12"}
        await seeded.fail_all((("monitoring", "push-dhis2", "--period", "2026-07"), None, "YYYYMM"))
        seeded.env["GUICHET_DHIS2_PASSWORD"] = "wrong"
        refused = seeded("monitoring", "push-dhis2", "--period", "202607")
        assert refused.returncode == 1 and "401" in refused.stderr
