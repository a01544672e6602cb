"""The clerk's console, screen by screen, in headless Chromium (issue 16): sign-in and the session, the
search box. Every request the console makes is recorded and must be a route of /openapi.json."""

import re

import pytest
from playwright.async_api import expect

from browser.support import assert_accessible, switch_language
from conftest import PASSWORD

pytestmark = pytest.mark.browser


async def sign_in(page, username="clerk.a"):
    await page.goto("/")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("form.signin button[type=submit]").click()
    await expect(page.locator("[data-testid=search]")).to_be_focused()


async def test_sign_in_search_and_sign_out(page):
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("ចូលប្រើប្រាស់")
    await assert_accessible(page)
    await switch_language(page, "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await sign_in(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Find a household")
    await assert_accessible(page)
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Find a household")


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


async def register_household(page, members, *, village="អានូក", code="17010103"):
    """Through the wizard: the village by its Khmer name, the members, consent, review; stops before saving."""
    await page.goto("/#/register")
    await page.locator("[data-testid=village-search]").fill(village)
    await page.locator(f"[data-code='{code}']").click()
    await page.locator("[data-testid=next]").click()
    for index, member in enumerate(members):
        if index:
            await page.locator("[data-testid=add-member]").click()
        await fill_member(page, index, *member)
    await page.locator("[data-testid=next]").click()
    await page.locator("[name=purpose_eligibility_sharing]").check()
    await page.locator("[data-testid=next]").click()
    await expect(page.locator("form[data-step=review]")).to_be_visible()


async def test_the_wizard_registers_and_warns_of_a_duplicate_before_saving(page, watch):
    await sign_in(page)
    await switch_language(page, "en")
    members = [("Sok", "Dara", "male", "1980-03-01", None, "120345678"), ("Chan", "Sreymom", "female", "1984-06-02", "spouse")]
    await register_household(page, members)
    await assert_accessible(page)
    await page.locator("[data-testid=next]").click()
    await expect(page).to_have_url(re.compile(r"#/household/[0-9a-f-]{36}$"))
    assert await page.evaluate("localStorage.getItem('guichet.draft.registration')") is None

    # The same wife again, in a new household: the API finds her before anything is saved.
    watch.allow("409")
    await register_household(page, [("Keo", "Vanna", "male", "1979-01-01"), ("Chan", "Sreymom", "female", "1984-06-02", "spouse")])
    await page.locator("[data-testid=next]").click()
    duplicates = page.locator("[data-testid=duplicates]")
    await expect(duplicates).to_contain_text("Chan Sreymom")
    await expect(duplicates).to_contain_text("name")
    await assert_accessible(page)
    await duplicates.get_by_role("button", name="Different people: register as new").click()
    await expect(page).to_have_url(re.compile(r"#/household/[0-9a-f-]{36}$"))


async def test_household_screening_application_receipt_referral_follow_up_grievance_timeline(page):
    await sign_in(page)
    await switch_language(page, "en")
    await register_household(page, [("Sok", "Dara", "male", "1950-03-01"), ("Chan", "Sreymom", "female", "1984-06-02", "spouse"),
                                    ("Sok", "Vicheka", "female", "2015-01-09", "child")])
    await page.locator("[data-testid=next]").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sok Dara")
    await expect(page.locator("[data-testid=members] tbody tr")).to_have_count(3)

    await page.locator("[data-testid=screen]").click()
    grid = page.locator("[data-testid=grid]")
    await expect(grid).to_be_visible()
    await assert_accessible(page)
    cell = grid.locator("td[data-outcome=eligible], td[data-outcome=needs_information]").first
    await cell.locator("summary").click()
    await cell.locator("[data-testid=apply]").click()
    await expect(cell.get_by_role("status")).to_contain_text("Application filed")
    await expect(page.locator("[data-testid=application]")).to_have_count(1)

    await page.locator("[data-testid=application] a", has_text="Receipt").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Application receipt")
    await assert_accessible(page)
    await page.go_back()

    case = page.locator("[data-testid=case]")
    await case.get_by_role("button", name="Refer").click()
    form = page.locator("[data-testid=referral-form]")
    await form.locator("[name=reason]").fill("Needs job counselling")
    await form.get_by_role("button", name="Issue the referral").click()
    await expect(page.locator("[data-testid=referral]")).to_have_count(1)

    await page.locator("[data-testid=new-follow-up]").click()
    await page.locator("[data-testid=follow-up-form] [name=action]").fill("Call about the documents")
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-testid=follow-up]")).to_have_count(1)

    await page.locator("[data-testid=new-grievance]").click()
    await page.locator("[data-testid=grievance-form] [name=description]").fill("Was not told about the <b>pension</b>")
    await page.locator("[data-testid=grievance-form] button[type=submit]").click()
    await expect(page.locator("[data-testid=grievance]")).to_have_count(1)
    await expect(page.locator("[data-testid=timeline] li")).not_to_have_count(0)
    await assert_accessible(page)
