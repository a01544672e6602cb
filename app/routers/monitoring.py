"""Central monitoring: event ingest (office relays) and indicators (monitors)."""

import csv
import io
import json
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import insert

from app.deps import MonitorUser, Principal, SessionDep, SettingsDep, require_roles
from app.errors import DomainError, InvalidInput
from app.models import MonitoringEvent
from app.models.base import utcnow
from app.routers import api_router
from app.schemas.common import IsoDate
from app.schemas.monitoring import EventBatch, IndicatorCatalog, IndicatorDefinition, IndicatorResult, IngestResult, OfficeSyncRead
from app.services.monitoring import dhis2, indicators, ingest
from app.vocabulary import Role

router = api_router(tags=["monitoring"])

RelayUser = Annotated[Principal, require_roles(Role.relay)]


class _IndicatorQueryBase(BaseModel):
    # Unknown parameters are refused (a misspelt filter would otherwise widen the answer silently).
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    indicator: str = Field(min_length=1, max_length=60, description="A name from the catalog.")
    from_: IsoDate = Field(alias="from", description="First day (its whole period is included).")
    to: IsoDate = Field(description="Last day (its whole period is included).")
    period: Literal["day", "week", "month", "quarter"] = "month"
    group_by: str | None = Field(None, max_length=300, description="Comma-separated breakdowns.")

    def breakdowns(self) -> list[str]:
        names = [g.strip() for g in self.group_by.split(",")] if self.group_by else []
        if any(not g for g in names):
            raise InvalidInput("group_by is a comma-separated list of breakdowns.", field="#/query/group_by")
        return names

    def filters(self) -> dict[str, str]:
        return {name: value for name in indicators.BREAKDOWNS if (value := getattr(self, name)) is not None}


# One optional filter per breakdown of the catalogue, so that a new breakdown is a filter with no change here.
IndicatorQuery = create_model(
    "IndicatorQuery", __base__=_IndicatorQueryBase,
    **{name: (str | None, Field(None, min_length=1, max_length=40, description=f"Only cells whose {name} is this."))
       for name in indicators.BREAKDOWNS})


@router.post("/monitoring/events", response_model=IngestResult)
async def ingest_events(session: SessionDep, relay: RelayUser, body: EventBatch) -> IngestResult:
    """An office relay's batch: each event stored once by id and counted into the indicators in the
    same transaction. A re-sent event is a duplicate; an invalid one is rejected with the reason."""
    return await ingest.ingest(session, relay, body.events)


@router.get("/monitoring/indicators/catalog", response_model=IndicatorCatalog)
async def indicator_catalog(_: MonitorUser, settings: SettingsDep) -> IndicatorCatalog:
    return IndicatorCatalog(
        k=settings.small_cell_k,
        suppression=indicators.SUPPRESSION_RULE,
        items=[IndicatorDefinition(name=i.name, title=i.title, definition=i.definition, unit=i.unit, kind=i.kind,
                                   breakdowns=list(i.breakdowns), periods=list(i.periods)) for i in indicators.catalog()],
    )


@router.get("/monitoring/indicators", response_model=IndicatorResult, response_model_by_alias=True,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with Accept: text/csv"},
                       406: {"description": "Neither JSON nor CSV is acceptable"}})
async def indicator_values(
    request: Request,
    session: SessionDep,
    _: MonitorUser,
    settings: SettingsDep,
    query: Annotated[IndicatorQuery, Query()],
) -> Response:
    """An indicator by period and breakdowns, from the rollups. Small cells are suppressed."""
    wants_csv = _negotiate(request.headers.get("accept", ""))
    names, filters, period = query.breakdowns(), query.filters(), query.period
    answer = await indicators.indicator_values(session, name=query.indicator, date_from=query.from_, date_to=query.to,
                                               period=period, group_by=names, filters=filters, k=settings.small_cell_k)
    headers = {"Suppressed-Cells": str(answer.suppressed)}
    if wants_csv:
        return Response(_csv(answer), media_type="text/csv; charset=utf-8", headers=headers)
    body = {"indicator": answer.indicator.name, "unit": answer.indicator.unit, "period": period, "from": answer.start,
            "to": answer.end, "group_by": names, "filters": filters, "k": answer.k, "suppressed": answer.suppressed,
            "rows": answer.rows()}
    # Plain json: a thousand cells through jsonable_encoder cost more than the query.
    return Response(json.dumps(body, default=date.isoformat, separators=(",", ":")), media_type="application/json",
                    headers=headers)


def _negotiate(accept: str) -> bool:
    """True for CSV, False for JSON; 406 when the client accepts neither."""
    types = {part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()}
    if "text/csv" in types:
        return True
    if not types or types & {"application/json", "*/*", "application/*", "application/problem+json"}:
        return False
    raise DomainError("This resource is JSON (application/json) or CSV (text/csv).", slug="not-acceptable")


def _csv(answer: indicators.Answer) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "period_start", *answer.group_by, "value", "suppressed"])
    for row in answer.rows():
        writer.writerow([row["period"], row["period_start"].isoformat(),
                         *("" if row[g] is None else str(row[g]).lower() if isinstance(row[g], bool) else row[g]
                           for g in answer.group_by),
                         "" if row["value"] is None else row["value"], "true" if row["suppressed"] else "false"])
    return out.getvalue()


@router.get("/monitoring/dhis2/dataValueSets",
            responses={200: {"content": {"application/json": {}, "application/adx+xml": {}},
                             "description": "A DHIS2 data value set; ADX with Accept: application/adx+xml"}})
async def dhis2_data_value_set(
    request: Request, session: SessionDep, _: MonitorUser, settings: SettingsDep,
    period: Annotated[str, Query(max_length=7, description="A DHIS2 month (202611) or quarter (2026Q4).")],
) -> Response:
    """The month's (or quarter's) indicators as DHIS2 aggregate data, from the mapping file
    (docs/monitoring.md, "DHIS2"). Suppressed cells are not sent."""
    accept = request.headers.get("accept", "")
    wants_adx = "application/adx+xml" in accept or "application/xml" in accept
    values = await dhis2.data_value_set(session, period=period, mapping=dhis2.load_mapping(settings.dhis2_mapping),
                                        k=settings.small_cell_k)
    headers = {"Suppressed-Cells": str(values.suppressed)}
    if wants_adx:
        return Response(values.as_adx(), media_type="application/adx+xml", headers=headers)
    return Response(json.dumps(values.as_json(), separators=(",", ":")), media_type="application/json", headers=headers)


@router.get("/monitoring/offices")
async def offices(session: SessionDep, _: MonitorUser) -> dict[str, list[OfficeSyncRead]]:
    """Each registered office: when central last heard from it and how far behind it is."""
    return {"items": [OfficeSyncRead(**row) for row in await ingest.office_sync(session)]}


# The floor of bench/ingest.py: the same batch body, parsed and bulk-inserted into the same table,
# with no validation, deduplication or rollups. Mounted only with GUICHET_BENCH_ENDPOINTS=true.
bench_router = api_router(tags=["benchmark"])


@bench_router.post("/_bench/monitoring-floor", include_in_schema=False)
async def ingest_floor(request: Request, session: SessionDep) -> dict[str, int]:
    events = (await request.json())["events"]  # parsed as every route parses its body
    now = utcnow()
    await session.execute(insert(MonitoringEvent), [
        {"id": uuid.UUID(e["id"]), "office_code": e["office_code"], "type": e["type"],
         "schema_version": e["schema_version"], "occurred_at": datetime.fromisoformat(e["occurred_at"]),
         "received_at": now, "payload": e["payload"]} for e in events])
    return {"inserted": len(events)}
