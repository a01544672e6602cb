"""Exports of the dashboards' tables: XLSX (openpyxl) or CSV with a header row in the reader's language and
one of codes; the cells as sent; bad tables refused with the field named; who may export."""

import io

import pytest
from openpyxl import load_workbook

from app.services.exports import XLSX_MEDIA_TYPE
from helpers import assert_problem

URL = "/api/v1/exports"
TABLE = {"title": "ចំនួនអ្នកចុះឈ្មោះ 2026-11",
         "columns": [{"code": "province", "label": "ខេត្ត"}, {"code": "value", "label": "តម្លៃ"},
                     {"code": "suppressed", "label": "បានលាក់"}],
         "rows": [["17", 56, False], ["02", None, True]]}


async def test_a_table_as_excel_with_headers_in_khmer_and_codes_beside(client, world):
    response = await client.post(URL, json=TABLE, headers={**world.monitor.headers, "Accept": XLSX_MEDIA_TYPE})
    assert response.status_code == 200 and response.headers["content-type"] == XLSX_MEDIA_TYPE
    assert response.headers["content-disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert list(sheet.iter_rows(values_only=True)) == [("ខេត្ត", "តម្លៃ", "បានលាក់"), ("province", "value", "suppressed"),
                                                       ("17", 56, False), ("02", None, True)]
    assert sheet.title == "ចំនួនអ្នកចុះឈ្មោះ 2026-11" and sheet.freeze_panes == "A3"


async def test_a_table_as_csv(client, world):
    response = await client.post(URL, json=TABLE, headers={**world.supervisor_a.headers, "Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # spreadsheet programs read Khmer right with it
    assert response.content.decode("utf-8-sig").splitlines() == [
        "ខេត្ត,តម្លៃ,បានលាក់", "province,value,suppressed", "17,56,false", "02,,true"]


@pytest.mark.parametrize("change, pointer", [
    ({"columns": []}, "#/columns"),
    ({"rows": [["17", 56]]}, "#/rows"),
    ({"title": ""}, "#/title"),
    ({"rows": [["17", {"x": 1}, False]]}, "#/rows/0/1"),
    ({"extra": 1}, "#/extra"),
])
async def test_a_bad_table_is_a_422_that_names_the_field(client, world, change, pointer):
    body = assert_problem(await client.post(URL, json={**TABLE, **change}, headers=world.monitor.headers), 422,
                          "validation")
    assert any(e["pointer"].startswith(pointer) for e in body["errors"]), body


async def test_who_may_export(client, world):
    assert_problem(await client.post(URL, json=TABLE, headers={**world.monitor.headers, "Accept": "application/pdf"}),
                   406, "not-acceptable")
    for account in (world.clerk_a, world.partner):
        assert_problem(await client.post(URL, json=TABLE, headers=account.headers), 403, "forbidden")
    assert_problem(await client.post(URL, json=TABLE), 401, "unauthenticated")
