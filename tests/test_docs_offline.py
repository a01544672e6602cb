"""/docs works in an office without internet: Swagger UI's script, style sheet and icon come from the
instance itself, and the page names no other origin."""

import re

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


async def test_the_docs_page_loads_everything_from_the_instance_itself(client):
    response = await client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?:|['\"(]//", html), "the page names another origin"
    assert '"validatorUrl": null' in html  # no badge fetched from swagger.io
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert len(urls) == 4  # the script, the style sheet, the icon and the OpenAPI document
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(ASSET_TYPES[url[url.rindex("."):]]), (url, asset.headers)
        assert asset.content
    [redirect] = re.findall(r"oauth2RedirectUrl: window\.location\.origin \+ '([^']+)'", html)
    assert (await client.get(redirect)).status_code == 200


async def test_the_bundled_swagger_ui_reads_openapi_3_1(client):
    # FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on.
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")
    script = (await client.get("/static/swagger-ui/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in script and re.search(r'PACKAGE_VERSION:"([5-9]|\d\d)\.', script)


async def test_there_is_one_documentation_page(client):
    assert (await client.get("/redoc")).status_code == 404
