"""Exports of the dashboards' tables (the ministry's dashboard, the office report): CSV or XLSX."""

from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel, ConfigDict, Field

from app.deps import Principal, require_roles
from app.errors import DomainError, InvalidInput
from app.routers import api_router
from app.services import exports
from app.vocabulary import Role

router = api_router(tags=["exports"])
ReaderOfFigures = Annotated[Principal, require_roles(Role.admin, Role.monitor, Role.supervisor)]
# bool before int: in a left-to-right union, int would take true as 1.
Cell = Annotated[str, Field(max_length=1000)] | bool | int | float | None


class ExportColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=60)
    label: str = Field(min_length=1, max_length=200, description="The header in the reader's language.")


class ExportTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    columns: list[ExportColumn] = Field(min_length=1, max_length=40)
    rows: list[Annotated[list[Annotated[Cell, Field(union_mode="left_to_right")]], Field(max_length=40)]] = Field(max_length=50_000)


@router.post("/exports", response_class=Response,
             responses={200: {"content": {"text/csv": {}, exports.XLSX_MEDIA_TYPE: {}}}, 406: {"description": "Neither"}})
async def export_table(table: ExportTable, _: ReaderOfFigures,
                       accept: Annotated[str, Header(max_length=300)] = exports.XLSX_MEDIA_TYPE) -> Response:
    """The table as a file, XLSX (default) or CSV (Accept: text/csv): a header row of labels, then one of codes."""
    columns = [(c.code, c.label) for c in table.columns]
    width = len(columns)
    if any(len(row) != width for row in table.rows):
        raise InvalidInput(f"every row has {width} cells, one per column.", field="#/rows")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in table.title.encode("ascii", "ignore").decode())[:60] or "guichet"
    if "text/csv" in accept:
        return Response(exports.as_csv(columns, table.rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if exports.XLSX_MEDIA_TYPE in accept or "*/*" in accept:
        return Response(exports.as_xlsx(table.title, columns, table.rows), media_type=exports.XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    raise DomainError("An export is XLSX or CSV (text/csv).", slug="not-acceptable")
