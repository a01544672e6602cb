"""Languages (issue 15): Accept-Language negotiation, Content-Language and Vary on answers, problem details
and field errors in Khmer and French with their machine fields unchanged, the catalogues complete."""

import re
import sys
from pathlib import Path

import httpx
import pytest

from app import i18n
from app.config import Settings
from app.errors import PROBLEM_TYPES
from app.i18n import negotiate, translate
from app.main import create_app
from helpers import assert_problem, household_body, register, table_counts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import i18n as catalogues  # noqa: E402  (scripts/i18n.py)

HOUSEHOLDS = "/api/v1/households"
KHMER = re.compile(r"[\u1780-\u17ff]")


# ---- negotiation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    (None, "km"),
    ("", "km"),
    ("fr", "fr"),
    ("en-US,en;q=0.9", "en"),
    ("fr-CA", "fr"),
    ("KM-kh", "km"),
    ("khm", "km"),  # ISO 639-3, as DCI writes it
    ("de, fr;q=0.5, en;q=0.8", "en"),  # quality values, not order
    ("en;q=0.2, fr;q=0.9", "fr"),
    ("en, fr", "en"),  # equal quality: the client's order
    ("de, ja", "km"),  # nothing we speak: the default
    ("*", "km"),
    ("*;q=0.5, fr;q=0.1", "km"),
    ("en;q=0, fr;q=0", "km"),  # refused both: the default
    ("fr;q=0, *", "km"),
    ("en;q=abc, fr;q=0.1", "fr"),  # a broken quality counts as 0
    ("en;q=2, fr;q=0.1", "fr"),  # out of range: as broken
    ("en;q=0.5;level=1, fr;q=0.4", "en"),
])
def test_negotiation_honours_quality_values(header, expected):
    assert negotiate(header, "km") == expected


def test_the_default_is_the_instances():
    assert negotiate("de", "fr") == "fr"
    assert Settings(_env_file=None, default_language="km").default_language == "km"
    assert Settings.model_fields["default_language"].default == "km"


# An instance with Khmer as its default (the suite's is English: tests/conftest.py).
@pytest.fixture(scope="module")
async def khmer_instance(settings):
    app = create_app(settings.model_copy(update={"default_language": "km"}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client


async def test_every_answer_says_its_language_and_varies_on_it(khmer_instance):
    answer = await khmer_instance.get("/problems")
    assert answer.headers["content-language"] == "km"
    assert answer.headers["vary"] == "Accept-Language"
    answer = await khmer_instance.get("/problems", headers={"Accept-Language": "fr-FR, en;q=0.5"})
    assert answer.headers["content-language"] == "fr"
    answer = await khmer_instance.get("/nowhere", headers={"Accept-Language": "en"})
    assert answer.status_code == 404 and answer.headers["content-language"] == "en"
    assert answer.headers["vary"] == "Accept-Language"


async def test_the_front_ends_files_do_not_vary(khmer_instance):
    answer = await khmer_instance.get("/static/swagger-ui/swagger-ui.css")
    assert answer.status_code == 200
    assert "content-language" not in answer.headers and "accept-language" not in answer.headers.get("vary", "").lower()


async def test_problem_catalogue_in_each_language_types_unchanged(khmer_instance):
    bodies = {lang: (await khmer_instance.get("/problems", headers={"Accept-Language": lang})).json()
              for lang in ("km", "en", "fr")}
    types = [[p["type"] for p in body] for body in bodies.values()]
    assert types[0] == types[1] == types[2] == [f"/problems/{slug}" for slug in PROBLEM_TYPES]
    assert [p["status"] for p in bodies["km"]] == [p["status"] for p in bodies["en"]]
    english = {p["type"]: p for p in bodies["en"]}
    for p in bodies["km"]:
        assert KHMER.search(p["title"]) and KHMER.search(p["description"]), p
    for p in bodies["fr"]:
        assert p["title"] != english[p["type"]]["title"] or p["title"] in ("Conflict", "Consultation"), p
    by_type = {p["type"]: p for p in bodies["fr"]}
    assert by_type["/problems/not-found"]["title"] == "Introuvable"
    one = await khmer_instance.get("/problems/not-found")
    assert one.json()["title"] == "រកមិនឃើញ" and one.json()["type"] == "/problems/not-found"


# ---- problem details through the API -----------------------------------------------------------------------


async def test_problem_details_in_khmer_and_french(client, world):
    h = world.clerk_a.headers
    for lang, title, detail in [("km", "រកមិនឃើញ", "មិនមានគ្រួសារនេះទេ ។"), ("fr", "Introuvable", "Ménage introuvable."),
                                ("en", "Not found", "No such household.")]:
        answer = await client.get(f"{HOUSEHOLDS}/00000000-0000-0000-0000-000000000000", headers={**h, "Accept-Language": lang})
        body = assert_problem(answer, 404, "not-found")
        assert (body["title"], body["detail"]) == (title, detail)
        assert answer.headers["content-language"] == lang


async def test_a_detail_built_with_values_keeps_them_in_translation(client, world):
    answer = await client.get("/api/v1/schemes/KH-NOPE", headers={**world.clerk_a.headers, "Accept-Language": "fr"})
    assert assert_problem(answer, 404, "not-found")["detail"] == "Il n'y a pas de programme KH-NOPE."
    answer = await client.get("/nowhere/at/all", headers={"Accept-Language": "km"})
    assert assert_problem(answer, 404, "not-found")["detail"] == "គ្មានអ្វីនៅ /nowhere/at/all ទេ ។"


async def test_field_errors_in_khmer_machine_fields_unchanged(client, world):
    body = household_body()
    body["members"][0]["given_name"] = "x" * 500
    del body["village_code"]
    before = await table_counts(client._transport.app)
    answers = {lang: await client.post(HOUSEHOLDS, json=body, headers={**world.clerk_a.headers, "Accept-Language": lang})
               for lang in ("en", "km", "fr")}
    assert await table_counts(client._transport.app) == before
    problems = {lang: assert_problem(a, 422, "validation") for lang, a in answers.items()}
    machine = [[(e["pointer"], e["code"], e["in"]) for e in p["errors"]] for p in problems.values()]
    assert machine[0] == machine[1] == machine[2]
    assert ("#/village_code", "missing", "body") in machine[0]
    km = {e["code"]: e["detail"] for e in problems["km"]["errors"]}
    fr = {e["code"]: e["detail"] for e in problems["fr"]["errors"]}
    assert km["missing"] == "ចាំបាច់ត្រូវបំពេញវាលនេះ" and fr["missing"] == "Champ obligatoire"
    assert fr["string_too_long"] == "Le texte doit compter au plus 100 caractères", fr
    assert "100" in km["string_too_long"] and KHMER.search(km["string_too_long"])
    assert problems["km"]["detail"] == "សំណើមានវាលមិនត្រឹមត្រូវ ។" and problems["km"]["title"] == "សំណើមិនត្រឹមត្រូវ"


async def test_a_rule_of_ours_in_french_with_its_pointer(client, world):
    household = await register(client, world.clerk_a)
    answer = await client.post(f"{HOUSEHOLDS}/{household['id']}/members",
                               json={**household["members"][0], "relationship": "head"} | {k: None for k in ("id", "household_id")},
                               headers={**world.clerk_a.headers, "Accept-Language": "fr"})
    body = assert_problem(answer, answer.status_code)
    assert answer.status_code in (409, 422)
    if body.get("errors"):
        assert all(not e["detail"].startswith(("The ", "A ")) for e in body["errors"]), body


async def test_unauthenticated_in_khmer(client):
    answer = await client.get(HOUSEHOLDS, headers={"Accept-Language": "km"})
    body = assert_problem(answer, 401, "unauthenticated")
    assert KHMER.search(body["title"]) and KHMER.search(body["detail"])
    assert answer.headers["www-authenticate"].startswith("Bearer")


# ---- the catalogues ----------------------------------------------------------------------------------------


def test_every_message_has_khmer_and_french_with_the_same_placeholders():
    assert catalogues.problems() == []


def test_the_catalogues_hold_what_the_code_says():
    """The template is up to date: a message added to the code without `make i18n` fails here."""
    from babel.messages.pofile import read_po

    with catalogues.TEMPLATE.open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    wanted = set(catalogues.from_code()) | set(catalogues.from_tables())
    assert wanted - template == set(), "run `make i18n` and translate what is new"


def test_the_compiled_catalogues_match_their_sources():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    for language in catalogues.TRANSLATED:
        po = catalogues._po(language)
        with po.open("rb") as f:
            source = {m.id: m.string for m in read_po(f) if m.id}
        with po.with_suffix(".mo").open("rb") as f:
            compiled = {m.id: m.string for m in read_mo(f) if m.id}
        assert compiled == source, f"run `make i18n` ({language})"


def test_catalogues_say_they_need_a_native_review():
    for language in catalogues.TRANSLATED:
        assert "NOT yet reviewed by a native speaker" in catalogues._po(language).read_text(encoding="utf-8")


def test_translate_by_pattern_and_message():
    assert translate("There is no scheme KH-X; GET /api/v1/schemes lists them.", "fr") == \
        "Il n'y a pas de programme KH-X ; GET /api/v1/schemes les liste."
    said = i18n._("Scheme {code} is not in force on {on}.", code="KH-HEF", on="2020-01-01")
    assert said == "Scheme KH-HEF is not in force on 2020-01-01."  # the English text is the str
    assert translate(said, "fr") == "Le programme KH-HEF n'est pas en vigueur le 2020-01-01."
    assert translate("Something nobody translated.", "km") == "Something nobody translated."
    assert translate(None, "km") is None


# ---- printables -----------------------------------------------------------------------------------------------


def test_each_printable_page_in_khmer_and_french_with_the_same_values():
    from string import Template

    from app.printables import TEMPLATES, template_name

    def fields(text: str) -> set[str]:
        return {m.group("named") or m.group("braced") for m in Template.pattern.finditer(text)
                if m.group("named") or m.group("braced")}

    def words(text: str) -> set[str]:
        body = re.sub(r"<style>.*?</style>|<[^>]+>|\$\w+", " ", text, flags=re.S)
        return {line.strip() for line in body.splitlines() if re.search(r"[A-Za-z]{3}", line)}

    for english in ("receipt.html", "referral_slip.html", "grievance_acknowledgement.html"):
        source = (TEMPLATES / english).read_text(encoding="utf-8")
        for language in ("km", "fr"):
            name = template_name(english, language)
            assert name != english, f"{english} has no {language} page"
            page = (TEMPLATES / name).read_text(encoding="utf-8")
            assert fields(page) == fields(source), name
            assert f'<html lang="{language}">' in page
            same = words(page) & words(source) - {"Service"}  # the one word French shares with English
            assert not same, (name, same)
            if language == "km":
                assert KHMER.search(page)


def test_dates_in_each_language():
    from datetime import date

    assert i18n.long_date(date(2026, 12, 1), "km") == "ថ្ងៃទី១ ខែធ្នូ ឆ្នាំ២០២៦"
    assert i18n.long_date(date(2027, 4, 15), "km") == "ថ្ងៃទី១៥ ខែមេសា ឆ្នាំ២០២៧"
    assert i18n.long_date(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert i18n.long_date(date(2026, 8, 7), "fr") == "7 août 2026"
    assert i18n.long_date(date(2026, 12, 7), "en") == "07 December 2026"
    said = i18n._("A decision is due by {due} ({days} days).", due=date(2026, 12, 31), days=30)
    assert said == "A decision is due by 31 December 2026 (30 days)."


async def test_a_receipt_in_khmer_through_the_api(client, world):
    from test_applications import file
    from test_cases import open_case

    _, case = await open_case(client, world.clerk_a)
    application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
    url = f"/api/v1/applications/{application['id']}/receipt"
    km = {**world.clerk_a.headers, "Accept-Language": "km"}
    as_json = await client.get(url, headers=km)
    receipt = as_json.json()
    assert receipt["scheme_code"] == "KH-HEF" and receipt["status"] == "submitted"  # machine fields unchanged
    assert receipt["scheme_name"] == "មូលនិធិសមធម៌សុខាភិបាល"
    assert receipt["agency"] == "ក្រសួងសុខាភិបាល (អង្គភាពផ្ដល់សក្ខីកម្មលើការទូទាត់)"
    assert all(KHMER.search(step) for step in receipt["what_happens_next"]), receipt["what_happens_next"]
    assert receipt["reference"] in receipt["what_happens_next"][-1]
    page = await client.get(url, headers={**km, "Accept": "text/html"})
    assert page.headers["content-language"] == "km" and page.headers["vary"] == "Accept, Accept-Language"
    assert '<html lang="km">' in page.text and "បានដាក់ស្នើ" in page.text and "Receipt" not in page.text
    english = (await client.get(url, headers=world.clerk_a.headers)).json()
    assert english["scheme_name"] == "Health Equity Fund" and english["what_happens_next"][1].startswith("You will be told")
    assert english["agency"] == "Ministry of Health (Payment Certification Agency)"


async def test_referral_agencies_in_french_codes_unchanged(client, world):
    answer = await client.get("/api/v1/referral-agencies", headers={**world.clerk_a.headers, "Accept-Language": "fr"})
    by_code = {a["code"]: a for a in answer.json()}
    assert by_code["health_centre"]["name"] == "Centre de santé (ministère de la Santé)"
    assert by_code["health_centre"]["services"]["consultation"] == "Consultation"
    assert by_code["nea"]["services"]["job_counselling"] == "Conseil en emploi"
    km = (await client.get("/api/v1/referral-agencies", headers={**world.clerk_a.headers, "Accept-Language": "km"})).json()
    assert [a["code"] for a in km] == list(by_code) and all(KHMER.search(a["name"]) for a in km)


async def test_method_not_allowed_and_too_large_in_each_language(client, world):
    answer = await client.delete(HOUSEHOLDS, headers={**world.clerk_a.headers, "Accept-Language": "fr"})
    body = assert_problem(answer, 405, "method-not-allowed")
    assert body["detail"] == f"DELETE n'est pas permis ici ; utilisez {answer.headers['Allow']}."
    assert body["title"] == "Méthode non autorisée"
    big = await client.post(HOUSEHOLDS, content=b"x" * (1024 * 1024 + 1),
                            headers={**world.clerk_a.headers, "Accept-Language": "km", "Content-Type": "application/json"})
    body = assert_problem(big, 413, "payload-too-large")
    assert body["detail"] == "ខ្លឹមសារសំណើលើសដែនកំណត់ 1048576 បៃ ។" and big.headers["content-language"] == "km"


async def test_indicator_catalogue_in_khmer_names_unchanged(client, world):
    answers = {lang: (await client.get("/api/v1/monitoring/indicators/catalog",
                                       headers={**world.monitor.headers, "Accept-Language": lang})).json()
               for lang in ("en", "km", "fr")}
    assert [i["name"] for i in answers["km"]["items"]] == [i["name"] for i in answers["en"]["items"]]
    km = {i["name"]: i for i in answers["km"]["items"]}
    fr = {i["name"]: i for i in answers["fr"]["items"]}
    assert km["clients_served"]["title"] == "អតិថិជនដែលបានទទួលសេវា" and fr["clients_served"]["title"] == "Usagers servis"
    assert all(KHMER.search(i["title"]) and KHMER.search(i["definition"]) for i in km.values())
    assert km["clients_served"]["breakdowns"] == {i["name"]: i for i in answers["en"]["items"]}["clients_served"]["breakdowns"]


async def test_lang_overrides_accept_language_for_schemes_and_says_so(client, world):
    answer = await client.get("/api/v1/schemes/KH-HEF?lang=fr", headers={**world.clerk_a.headers, "Accept-Language": "km"})
    assert answer.json()["name"] == "Fonds d'équité en santé"
    assert answer.headers["content-language"] == "fr" and answer.headers["vary"] == "Accept-Language"


async def test_plausibility_findings_in_the_language_codes_unchanged(client, world):
    from app import clock

    body = household_body()
    head = body["members"][0]
    head["birth_date"] = f"{clock.today().year - 14}-01-01"  # a head of 13 or 14: unlikely, not impossible
    head.pop("national_id", None)
    head.pop("employment_status", None)
    head.pop("monthly_income", None)
    body["members"] = [head]
    answer = await client.post(HOUSEHOLDS, json=body, headers={**world.clerk_a.headers, "Accept-Language": "fr"})
    problem = assert_problem(answer, 409, "unlikely-facts")
    assert [w["code"] for w in problem["warnings"]] == ["young-head"]
    assert problem["warnings"][0]["pointer"].startswith("#/members/0/")
    assert problem["warnings"][0]["detail"].startswith("le chef du ménage a ") and problem["warnings"][0]["detail"].endswith(" ans")

    body = household_body()
    body["members"][0] |= {"sex": "male", "pregnant": True}
    answer = await client.post(HOUSEHOLDS, json=body, headers={**world.clerk_a.headers, "Accept-Language": "km"})
    problem = assert_problem(answer, 422, "validation")
    assert {"pointer": "#/members/0/pregnant", "detail": "pregnant កត់ត្រាសម្រាប់តែស្ត្រីប៉ុណ្ណោះ"}.items() <= \
        next(e for e in problem["errors"] if e["pointer"].endswith("pregnant")).items()
