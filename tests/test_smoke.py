from helpers import CONTRACT_EXAMPLE


async def test_register_contract_example(client, world):
    response = await client.post("/api/v1/households", json=CONTRACT_EXAMPLE, headers=world.clerk_a.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size"] == 2 and body["female_headed"] is True
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/v1/households/{body['id']}"
