"""The clerk's console in headless Chromium (issue 16), through whole journeys on each database: a clerk's
visit in Khmer and in English; a supervisor's decision and the client's appeal; a session that ends in the
middle of a registration and a server that cannot be reached, with the draft kept; an edit that meets
someone else's; names holding HTML. Every screen passes axe-core, every other origin is blocked (the
`page` fixture), and every request the console makes must be a route of /openapi.json."""

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from app.console import STATIC
from browser.support import assert_accessible, switch_language
from conftest import PASSWORD

pytestmark = pytest.mark.browser

CATALOGUES = {code: json.loads((STATIC / "console" / "i18n" / f"{code}.json").read_text(encoding="utf-8"))
              for code in ("km", "en")}
VILLAGE = ("អានូក", "17010103")  # Anuk, Char Chhuk commune, Angkor Chum district: the office SR-ACH's
HOUSEHOLD_ID = re.compile(r"#/household/[0-9a-f-]{36}$")


class Requests:
    """The API requests a page made, to check against /openapi.json."""

    def __init__(self, page):
        self.seen: set[tuple[str, str]] = set()
        page.on("request", lambda r: "/api/v1/" in r.url and self.seen.add((r.method, r.url.split("?")[0])))

    async def assert_documented(self, base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url) as http:
            schema = (await http.get("/openapi.json")).json()
        routes = [(method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
                  for path, operations in schema["paths"].items() for method in operations]
        undocumented = sorted(f"{method} {url}" for method, url in self.seen
                              if not any(m == method and p.match(url.split(base_url, 1)[1]) for m, p in routes))
        assert self.seen and not undocumented, undocumented


async def sign_in(page, username="clerk.a", password=PASSWORD):
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    await page.locator("input[name=password]").press("Enter")


async def fill_member(page, index, family, given, sex, born, relationship=None, national_id=None):
    member = page.locator(f"[data-member='{index}']")
    await member.locator(f"[name=family_name_{index}]").fill(family)
    await member.locator(f"[name=given_name_{index}]").fill(given)
    await member.locator(f"[name=sex_{index}]").select_option(sex)
    if relationship:
        await member.locator(f"[name=relationship_{index}]").select_option(relationship)
    await member.locator(f"[name=birth_date_{index}]").fill(born)
    if national_id:
        await member.locator(f"[name=national_id_{index}]").fill(national_id)


async def wizard_to_review(page, members, *, check_each_step=False):
    """Through the wizard from the search screen: the village by its Khmer name, the members, consent;
    stops at the review."""
    await page.locator("a[href='#/register']").first.click()
    await page.locator("[data-testid=village-search]").fill(VILLAGE[0])
    await page.locator(f"[data-code='{VILLAGE[1]}']").click()
    await page.locator("form[data-step=place] select").nth(1).select_option("1")  # IDPoor level 1
    if check_each_step:
        await assert_accessible(page)
    await page.locator("[data-testid=next]").click()
    for index, member in enumerate(members):
        if index:
            await page.locator("[data-testid=add-member]").click()
        await fill_member(page, index, *member)
    await page.locator("[name=wg_walking_0]").select_option("cannot")  # the head: the disability allowance
    if check_each_step:
        await assert_accessible(page)
    await page.locator("[data-testid=next]").click()
    await page.locator("[name=purpose_eligibility_sharing]").check()
    if check_each_step:
        await assert_accessible(page)
    await page.locator("[data-testid=next]").click()
    await expect(page.locator("form[data-step=review]")).to_be_visible()


async def register_by_api(base_url, token, members, village="17010103", idpoor=None):
    body = {"village_code": village, "area_type": "rural", "confirm_new": True, "idpoor": idpoor,
            "consent": {"purposes": ["registry"], "given_by": "Sok Dara", "method": "verbal"}, "members": members}
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.post("/api/v1/households", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("language", ["km", "en"])
async def test_a_clerks_whole_visit(page, live_server, world, watch, language):
    m = CATALOGUES[language]
    requests = Requests(page)
    # Already registered elsewhere in the village: the wife's sister, whom the wizard will meet.
    await register_by_api(live_server.url, world.clerk_a.token, [
        {"given_name": "Sreymom", "family_name": "Chan", "sex": "female", "birth_date": "1984-06-02", "relationship": "head"}])

    await page.goto("/")
    if language != "km":
        await switch_language(page, language)
    await expect(page.get_by_role("heading", level=1)).to_have_text(m["signin.title"])
    await assert_accessible(page)
    await sign_in(page)
    search = page.locator("[data-testid=search]")
    await expect(search).to_be_focused()
    await search.fill("Sreymom")
    await expect(page.locator(".results li")).to_have_count(1)
    await expect(page.locator(".results li")).to_contain_text("អានូក" if language == "km" else "Anuk")  # a name, not 17010103
    await assert_accessible(page)

    # A five-member household through the wizard; the API finds a likely duplicate before saving.
    await wizard_to_review(page, [
        ("Sok", "Dara", "male", "1975-03-01", None, "170555001"),
        ("Chan", "Sreymom", "female", "1984-06-02", "spouse"),
        ("Sok", "Vicheka", "female", "2015-01-09", "child"),
        ("Sok", "Rithy", "male", "2019-05-20", "child"),
        ("Mao", "Sophea", "female", "1935-02-11", "parent"),
    ], check_each_step=True)
    await assert_accessible(page)
    watch.allow("409")
    await page.locator("[data-testid=next]").click()
    duplicates = page.locator("[data-testid=duplicates]")
    await expect(duplicates).to_contain_text("Chan Sreymom")
    await expect(duplicates).to_contain_text(m["field.name"])
    await assert_accessible(page)
    await duplicates.get_by_role("button", name=m["duplicate.different"]).click()
    await expect(page).to_have_url(HOUSEHOLD_ID)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sok Dara")
    await expect(page.locator("[data-testid=members] tbody tr")).to_have_count(5)

    # The national ID reaches the household in three keystroke groups: Search, the number, Enter.
    await page.locator("nav a[href='#/']").click()
    await search.fill("170555001")
    await expect(page.locator(".results li")).to_have_count(1)
    await search.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sok Dara")

    # Screen everyone, read the reasons, file an application from a cell, print its receipt.
    await page.locator("[data-testid=screen]").click()
    grid = page.locator("[data-testid=grid]")
    await expect(grid.locator("tbody tr")).to_have_count(6)  # five members and the household
    cell = grid.locator("td[data-outcome=eligible]").first
    await cell.locator("summary").click()
    await expect(cell.locator("details li").first).to_contain_text(m["reason.passed"])
    await assert_accessible(page)
    await cell.locator("[data-testid=apply]").click()
    await expect(cell.get_by_role("status")).to_contain_text(m["eligibility.filed"])
    await page.locator("[data-testid=application] a").first.click()
    printable = page.locator("[data-testid=printable]")
    await expect(printable.get_by_role("heading", level=1)).to_have_text(m["print.receipt_title"])
    await expect(printable).to_contain_text("SR-ACH-")
    await assert_accessible(page)
    await page.emulate_media(media="print")
    await expect(page.locator("header.bar")).to_be_hidden()
    await expect(printable.get_by_role("heading", level=1)).to_be_visible()
    await page.emulate_media(media="screen")
    await page.go_back()

    # Refer, schedule a follow-up, take a grievance; the timeline tells it all.
    case = page.locator("[data-testid=case]")
    await case.get_by_role("button", name=m["referral.new"], exact=True).click()
    form = page.locator("[data-testid=referral-form]")
    await expect(form.locator("button[type=submit]")).to_be_enabled()  # once the agencies are in
    await form.locator("[name=reason]").fill("Job counselling")
    await form.locator("[name=reason]").press("Enter")
    await expect(page.locator("[data-testid=referral]")).to_have_count(1)
    await page.locator("[data-testid=referral] a").click()
    await expect(printable.get_by_role("heading", level=1)).to_have_text(m["print.slip_title"])
    await page.go_back()
    await page.locator("[data-testid=new-follow-up]").click()
    await page.locator("[data-testid=follow-up-form] [name=action]").fill("Call about the birth certificate")
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-testid=follow-up]")).to_have_count(1)
    await page.locator("[data-testid=new-grievance]").click()
    await page.locator("[data-testid=grievance-form] [name=description]").fill("Left out of the pension")
    await page.locator("[data-testid=grievance-form] button[type=submit]").click()
    await expect(page.locator("[data-testid=grievance]")).to_have_count(1)
    await page.locator("[data-testid=grievance] a").click()
    await expect(printable.get_by_role("heading", level=1)).to_have_text(m["print.acknowledgement_title"])
    await page.go_back()
    timeline = page.locator("[data-testid=timeline]")
    for kind in ("case.opened", "screening.completed", "application.submitted", "referral.issued",
                 "follow_up.created", "grievance.opened"):
        await expect(timeline).to_contain_text(m[f"timeline.{kind}"])
    await assert_accessible(page)

    await page.locator("nav a[href='#/queue']").click()
    await expect(page.locator("[data-testid=queue-grievances]")).to_be_visible()
    await assert_accessible(page)

    # Signing out forgets everything local.
    await page.get_by_role("button", name=m["signin.out"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(m["signin.title"])
    stored = await page.evaluate("Object.keys(localStorage)")
    assert stored == ["guichet.language"] or stored == [], stored
    await requests.assert_documented(live_server.url)


async def test_a_supervisor_decides_and_the_client_appeals(page, live_server, world, watch):
    m = CATALOGUES["en"]
    requests = Requests(page)
    household = await register_by_api(live_server.url, world.clerk_a.token, [
        {"given_name": "Dara", "family_name": "Sok", "sex": "male", "birth_date": "1950-03-01", "relationship": "head",
         "disability": {"walking": "cannot"}}], idpoor={"level": 1})
    await page.goto("/")
    await switch_language(page, "en")
    await sign_in(page, "supervisor.a")
    await page.goto(f"/#/household/{household['id']}")
    await page.locator("[data-testid=screen]").click()
    await page.locator("td[data-outcome=eligible] [data-testid=apply]").first.click()
    application = page.locator("[data-testid=application]")
    await application.get_by_role("button", name=m["decision.title"]).click()
    decision = page.locator("[data-testid=decision-form]")
    await decision.get_by_label(m["decision.reject"]).check()
    await decision.locator("[name=reason_text]").fill("The card shows a higher income")
    await decision.get_by_role("button", name=m["decision.record"]).click()
    await expect(application).to_contain_text(m["application.rejected"])
    await expect(application).to_contain_text("The card shows a higher income")
    await assert_accessible(page)

    await application.get_by_role("button", name=m["appeal.title"]).click()
    await page.locator("[data-testid=grievance-form] [name=description]").fill("My income fell last month")
    await page.locator("[data-testid=grievance-form] button[type=submit]").click()
    await expect(page.locator("[data-testid=grievance]")).to_contain_text(m["category.appeal"])

    await page.locator("nav a[href='#/queue']").click()
    await expect(page.locator("[data-testid=queue-appeals] li")).to_have_count(1)
    await assert_accessible(page)
    await page.locator("nav a[href='#/audit']").click()
    await expect(page.locator("[data-testid=audit] tbody tr").first).to_be_visible()
    await assert_accessible(page)
    await switch_language(page, "km")
    await expect(page.get_by_role("heading", level=1)).to_have_text(CATALOGUES["km"]["audit.title"])
    await assert_accessible(page)
    await requests.assert_documented(live_server.url)


async def test_a_session_ending_mid_form_and_the_server_down_keep_the_draft(page, live_server, world, watch, make_account):
    m = CATALOGUES["en"]
    account = await make_account()
    await page.goto("/")
    await switch_language(page, "en")
    await sign_in(page, account.username)
    await wizard_to_review(page, [("Keo", "Sophal", "male", "1975-04-02")])

    # The server cannot be reached: the console says so; the draft stays.
    watch.allow("ERR_FAILED|net::|Failed to fetch|Failed to load resource")
    await page.route("**/api/v1/households", lambda route: route.abort("connectionrefused"))
    await page.locator("[data-testid=next]").click()
    await expect(page.locator(".offline")).to_have_text(m["offline"])
    await page.unroute("**/api/v1/households")
    await page.reload()
    await expect(page.locator("form[data-step=review]")).to_contain_text("Keo Sophal")

    # An administrator resets the clerk's password: the session ends at the next request.
    async with httpx.AsyncClient(base_url=live_server.url, headers=world.admin.headers) as http:
        version = (await http.get(f"/api/v1/users/{account.id}")).headers["ETag"]
        reset = await http.patch(f"/api/v1/users/{account.id}", json={"password": "a new password for today"},
                                 headers={"If-Match": version})
        assert reset.status_code == 200, reset.text
    watch.allow("401")
    await page.locator("[data-testid=next]").click()
    await expect(page.locator(".signin [role=status]")).to_have_text(m["signin.ended"])
    await sign_in(page, account.username, "a new password for today")
    await expect(page.locator("form[data-step=review]")).to_contain_text("Keo Sophal")
    await page.locator("[data-testid=next]").click()
    await expect(page).to_have_url(HOUSEHOLD_ID)
    assert await page.evaluate("localStorage.getItem('guichet.draft.registration')") is None


async def test_an_edit_that_meets_another_shows_what_changed_and_reapplies(page, live_server, world, watch):
    m = CATALOGUES["en"]
    household = await register_by_api(live_server.url, world.clerk_a.token, [
        {"given_name": "Dara", "family_name": "Sok", "sex": "male", "birth_date": "1970-03-01", "relationship": "head"}])
    await page.goto("/")
    await switch_language(page, "en")
    await sign_in(page)
    await page.goto(f"/#/household/{household['id']}")
    await page.locator("[data-testid=edit]").click()
    form = page.locator("[data-testid=edit-household]")
    await form.locator("[name=address]").fill("Near the school")
    async with httpx.AsyncClient(base_url=live_server.url, headers=world.clerk_a.headers) as http:
        changed = await http.patch(f"/api/v1/households/{household['id']}", json={"address": "Behind the pagoda"},
                                   headers={"If-Match": f'"{household["version"]}"'})
        assert changed.status_code == 200, changed.text
    watch.allow("412")
    await form.locator("[name=address]").press("Enter")
    conflict = page.locator("[data-testid=conflict]")
    await expect(conflict).to_contain_text("Behind the pagoda")
    await assert_accessible(page)
    await form.get_by_role("button", name=m["household.reapply"]).click()
    await expect(page.locator("main section > p").first).to_contain_text("Near the school")


async def test_names_holding_html_are_shown_as_text(page, live_server, world):
    hostile = "<img src=x onerror=alert(1)>Dara"
    household = await register_by_api(live_server.url, world.clerk_a.token, [
        {"given_name": hostile, "family_name": "<b>Sok</b>", "sex": "male", "birth_date": "1970-03-01", "relationship": "head"}])
    await page.goto("/")
    await sign_in(page)
    await page.locator("[data-testid=search]").fill("Dara")
    await expect(page.locator(".results li")).to_contain_text(f"<b>Sok</b> {hostile}")
    await page.goto(f"/#/household/{household['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"<b>Sok</b> {hostile}")
    assert await page.locator("main img, main b").count() == 0


async def test_a_save_whose_answer_was_lost_is_not_registered_twice(page, live_server, world, watch):
    """The server stored the household but its answer never reached the browser: saving again replays the
    first answer (the draft kept its Idempotency-Key) instead of registering the household a second time."""
    await page.goto("/")
    await sign_in(page)
    await wizard_to_review(page, [("Keo", "Sophal", "male", "1975-04-02")])

    async def lost(route):
        await route.fetch()  # the server does the work...
        await route.abort("connectionreset")  # ...and the answer is lost on the way back

    watch.allow("ERR_|net::|Failed to fetch|Failed to load resource")
    await page.route("**/api/v1/households", lost)
    await page.locator("[data-testid=next]").click()
    await expect(page.locator(".offline")).to_be_visible()
    await page.unroute("**/api/v1/households")
    await page.locator("[data-testid=next]").click()
    await expect(page).to_have_url(HOUSEHOLD_ID)
    async with httpx.AsyncClient(base_url=live_server.url, headers=world.clerk_a.headers) as http:
        found = (await http.get("/api/v1/households", params={"name": "Sophal"})).json()
    assert found["total"] == 1, found
