"""What the API gained for the clerk's console (issue 16), as any client sees it: the one search box finds a
household by a member's phone or the household's IDPoor card, hits name their village (not only its code),
a household's place comes in Khmer too, and the village picker finds villages by Khmer name within an area."""

from helpers import assert_problem, household_body, register


async def test_households_are_found_by_phone_and_idpoor_card_within_the_office_only(client, world):
    body = household_body(members=2)
    body["members"][1]["phone"] = "+855 12 777 001"
    mine = await register(client, world.clerk_a, body)
    other = household_body(members=1)
    other["members"][0]["phone"] = "+855 12 777 001"
    await register(client, world.clerk_b, other)

    by_phone = await client.get("/api/v1/households", params={"phone": "+855 12 777 001"}, headers=world.clerk_a.headers)
    assert by_phone.status_code == 200
    assert [h["id"] for h in by_phone.json()["items"]] == [mine["id"]]  # not Srei Snam's
    card = body["idpoor"]["card_number"]
    by_card = await client.get("/api/v1/households", params={"idpoor_card": card}, headers=world.clerk_a.headers)
    assert [h["id"] for h in by_card.json()["items"]] == [mine["id"]]
    by_card_b = await client.get("/api/v1/households", params={"idpoor_card": card}, headers=world.clerk_b.headers)
    assert by_card_b.json()["items"] == []
    nothing = await client.get("/api/v1/households", params={"phone": "+855 12 000 000"}, headers=world.clerk_a.headers)
    assert nothing.json()["items"] == [] and nothing.json()["total"] == 0

    too_long = await client.get("/api/v1/households", params={"idpoor_card": "x" * 41}, headers=world.clerk_a.headers)
    assert_problem(too_long, 422, "validation")
    assert (await client.get("/api/v1/households", params={"phone": "012"})).status_code == 401
    monitor = await client.get("/api/v1/households", params={"phone": "012"}, headers=world.monitor.headers)
    assert monitor.status_code == 403


async def test_search_hits_and_household_reads_name_the_place_in_both_scripts(client, world):
    household = await register(client, world.clerk_a, household_body(village_code="17010101"))
    hits = (await client.get("/api/v1/households", params={"national_id": household["members"][0]["national_id"]},
                             headers=world.clerk_a.headers)).json()["items"]
    assert (hits[0]["village_code"], hits[0]["village_name"], hits[0]["village_name_km"]) == ("17010101", "Prasat", "ប្រាសាទ")
    read = (await client.get(f"/api/v1/households/{household['id']}", headers=world.clerk_a.headers)).json()
    assert read["location"] == {"village": "Prasat", "commune": "Char Chhuk", "district": "Angkor Chum", "province": "Siem Reap",
                                "village_km": "ប្រាសាទ", "commune_km": "ចារឈូក", "district_km": read["location"]["district_km"],
                                "province_km": "សៀមរាប"}
    assert read["location"]["district_km"]


async def test_villages_are_found_by_khmer_or_latin_name_within_an_area(client, world):
    headers = world.clerk_a.headers
    khmer = (await client.get("/api/v1/locations", params={"level": "village", "name": "អានូក", "within": "17"},
                              headers=headers)).json()
    assert "17010103" in [v["code"] for v in khmer["items"]]
    assert all(v["code"].startswith("17") and v["level"] == "village" for v in khmer["items"])
    latin = (await client.get("/api/v1/locations", params={"level": "village", "name": "anuk", "within": "1701"},
                              headers=headers)).json()
    assert [v["code"] for v in latin["items"]] == ["17010103"]
    # Everything inside a district, but not the district itself.
    inside = (await client.get("/api/v1/locations", params={"within": "1701", "level": "commune"}, headers=headers)).json()
    assert inside["total"] > 0 and all(c["code"].startswith("1701") and c["code"] != "1701" for c in inside["items"])
    bad = await client.get("/api/v1/locations", params={"within": "17x"}, headers=headers)
    assert_problem(bad, 422, "validation")
    assert (await client.get("/api/v1/locations", params={"within": "17"})).status_code == 401
