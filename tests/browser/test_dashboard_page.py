"""The ministry's dashboard and the office report in headless Chromium: a monitor signs in, drills from the
country to a province, a district and an office, breaks the trend down by sex, sees a small cell as
suppressed (never 0), and exports a table as Excel and CSV and the chart as PNG; a supervisor reads their
office's report, this month against the last. Every other origin is blocked (the `page` fixture fails the
test on any request elsewhere, console error or CSP violation); axe-core finds no serious or critical
violation. With GUICHET_SCREENSHOTS set to a folder (docs/screenshots), the screens are saved there in
Khmer and English."""

import io
import os
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.async_api import expect

from app.models import ActivityEvent
from browser.support import assert_accessible, screenshot, switch_language
from conftest import PASSWORD
from monitoring_support import at, person_registered, relay_token

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ["GUICHET_SCREENSHOTS"]) if os.environ.get("GUICHET_SCREENSHOTS") else None

ACH = {"district": "1701", "commune": "170101", "village": "17010101"}
SSN = {"district": "1712", "commune": "171201", "village": "17120101"}
P12 = {"province": "12", "district": "1201", "commune": "120101", "village": "12010101"}
P02 = {"province": "02", "district": "0201", "commune": "020101", "village": "02010101"}


async def central_has_november(client, app, settings):
    """October and November 2026 as two offices relayed them: province 17 (SR-ACH's district 1701: 25
    women and 15 men in November; SR-SSN's 1712: 16), province 12 (8) and province 02 (3: small)."""
    nov, octo = at("2026-11-10"), at("2026-10-12")
    ach = ([person_registered(at=nov, **ACH) for _ in range(25)] + [person_registered(sex="male", at=nov, **ACH) for _ in range(15)]
           + [person_registered(at=octo, **ACH) for _ in range(10)])
    ssn = ([person_registered(office="SR-SSN", at=nov, **SSN) for _ in range(10)]
           + [person_registered(office="SR-SSN", sex="male", at=nov, **SSN) for _ in range(6)]
           + [person_registered(office="SR-SSN", at=nov, **P12) for _ in range(8)]
           + [person_registered(office="SR-SSN", at=nov, **P02) for _ in range(3)])
    for office, events in (("SR-ACH", ach), ("SR-SSN", ssn)):
        response = await client.post("/api/v1/monitoring/events", json={"events": events},
                                     headers=await relay_token(app, settings, office))
        assert response.status_code == 200 and response.json()["rejected"] == [], response.text


async def sign_in(page, path, account):
    await page.goto(path)
    await page.locator('input[name="username"]').fill(account.username)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.locator('button[type="submit"]').click()


async def test_a_monitor_drills_from_the_country_to_an_office_and_exports(page, client, app, settings, world, tmp_path):
    await central_has_november(client, app, settings)
    await sign_in(page, "/dashboard", world.monitor)
    await switch_language(page, "en")
    await page.get_by_label("Up to the month").fill("2026-11")
    await page.get_by_label("Up to the month").dispatch_event("change")
    await page.get_by_label("Indicator").select_option("persons_registered")
    places = page.locator("#place-table")
    # The country by province: 02's 3 persons suppressed, and 12 with it (else 17 + 12 + 02 = the total gives it away).
    await expect(places.locator("tbody tr")).to_have_count(3)
    row_02 = places.locator("tbody tr", has_text="02")
    await expect(row_02.locator("td.number")).to_have_text("suppressed")  # never 0
    row_17 = places.locator("tbody tr").filter(has=page.locator("td", has_text="17"))
    await expect(row_17.locator("td.number")).to_have_text("56")
    await expect(page.locator("#trend-table tbody tr")).to_have_count(2)  # October and November
    await assert_accessible(page)
    if SHOTS:
        await screenshot(page, SHOTS / "dashboard-country-en.png")

    # Drill: province 17 -> district 1701 -> office SR-ACH.
    await places.get_by_role("button", name="Open Siem Reap").click()
    await expect(page.get_by_role("navigation", name="Where")).to_contain_text("Province: Siem Reap")
    await expect(places.locator("tbody tr")).to_have_count(2)
    await places.locator("tbody tr", has_text="1701").get_by_role("button").click()
    await expect(places.locator("tbody tr")).to_have_count(1)
    await places.get_by_role("button", name="Open SR-ACH").click()
    await expect(page.get_by_role("navigation", name="Where")).to_contain_text("Office: SR-ACH")
    await expect(places.locator("tbody tr td.number")).to_have_text("40")
    await page.get_by_label("Broken down by").select_option("sex")
    trend = page.locator("#trend-table")
    await expect(trend.locator("tbody tr")).to_have_count(3)  # October's women; November's women and men
    await expect(trend).to_contain_text("Men")
    await assert_accessible(page)

    # Exports: the table as Excel (headers in English, codes beside) and CSV, the chart as PNG.
    async with page.expect_download() as download_info:
        await trend.locator("xpath=..").get_by_role("button", name="Download Excel").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0] == ("Month", "Sex", "Value", "Suppressed") and rows[1] == ("period", "sex", "value", "suppressed")
    assert ("2026-11", "male", 15, False) in rows
    async with page.expect_download() as download_info:
        await trend.locator("xpath=..").get_by_role("button", name="Download CSV").click()
    text = Path(await (await download_info.value).path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[:2] == ["Month,Sex,Value,Suppressed", "period,sex,value,suppressed"]
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download image (PNG)").click()
    png = Path(await (await download_info.value).path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000

    # Khmer: the same page, headers and the suppressed word in Khmer.
    await switch_language(page, "km")
    await expect(page.get_by_role("heading", level=1)).to_have_text("ច្រកចេញចូលតែមួយ៖ ការតាមដាន")
    await assert_accessible(page)
    if SHOTS:
        await page.get_by_role("button", name="កម្ពុជា").click()
        await expect(places.locator("tbody tr")).to_have_count(3)
        await screenshot(page, SHOTS / "dashboard-country-km.png")


async def test_office_health_flags_an_office_that_never_reported(page, client, app, settings, world):
    await central_has_november(client, app, settings)
    response = await client.get("/api/v1/monitoring/offices", headers=world.monitor.headers)
    assert {o["office_code"] for o in response.json()["items"]} >= {"SR-ACH", "SR-SSN"}
    await sign_in(page, "/dashboard", world.monitor)
    await switch_language(page, "en")
    health = page.locator("#health-table")
    await expect(health.locator("tbody tr", has_text="SR-ACH")).to_contain_text("Reporting")


async def test_a_supervisor_reads_the_office_report(page, app, world):
    async with app.state.sessionmaker() as session, session.begin():
        events = ([person_registered(at=at("2026-11-03")) for _ in range(6)]
                  + [person_registered(sex="male", at=at("2026-10-03")) for _ in range(2)])
        session.add_all([ActivityEvent(id=uuid.UUID(e["id"]), type=e["type"], schema_version=1, office_code="SR-ACH",
                                       occurred_at=datetime.fromisoformat(e["occurred_at"]), payload=e["payload"])
                         for e in events])
    await sign_in(page, "/office-report", world.supervisor_a)
    await switch_language(page, "en")
    await page.get_by_label("Month").fill("2026-11")
    await page.get_by_label("Month").dispatch_event("change")
    table = page.locator("#report-table")
    await expect(table).to_contain_text("SR-ACH: 2026-11 against 2026-10")
    registered = table.locator("tbody tr", has_text="Persons registered")
    await expect(registered.locator("td.number")).to_have_text(["6", "2", "4"])
    await assert_accessible(page)
    if SHOTS:
        await screenshot(page, SHOTS / "office-report-en.png")
    await switch_language(page, "km")
    await expect(table.locator("tbody tr", has_text="មនុស្សដែលបានចុះឈ្មោះ")).to_be_visible()
    await assert_accessible(page)
    if SHOTS:
        await screenshot(page, SHOTS / "office-report-km.png")
