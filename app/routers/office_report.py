"""The office report: a supervisor's own office, this month against the last (docs/monitoring.md)."""

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Header, Query
from fastapi.responses import Response

from app import clock, console
from app.deps import Principal, SessionDep, require_roles
from app.errors import Forbidden, InvalidInput
from app.routers import api_router
from app.services.monitoring import office_report as report
from app.vocabulary import Role

# The API under /api/v1 and the supervisors' page that reads it, at an office (or standalone) instance.
router = api_router(tags=["monitoring"], prefix="")
# Supervisors only: the report is of the caller's own office (an admin has none to report on).
OfficeSupervisor = Annotated[Principal, require_roles(Role.supervisor)]
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@router.get("/api/v1/office-report")
async def office_report(
    session: SessionDep, principal: OfficeSupervisor,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM; default: this month.")] = None,
    breakdown: Annotated[str | None, Query(max_length=20, description=f"One of {', '.join(report.BREAKDOWNS)}.")] = None,
) -> dict[str, Any]:
    """The indicators' catalogue over the caller's office's own activity, computed here from the events
    it relays to central: this month and the last, side by side."""
    if principal.office_code is None:
        raise Forbidden("The office report is of the caller's own office; this account has none.")
    if month is None:
        first = clock.today().replace(day=1)
    elif match := _MONTH.fullmatch(month):
        first = date(int(match[1]), int(match[2]), 1)
    else:
        raise InvalidInput("month is written YYYY-MM, e.g. 2026-11.", field="#/query/month")
    this, last, items = await report.office_report(session, office_code=principal.office_code, month=first,
                                                   breakdown=breakdown)
    return {
        "office_code": principal.office_code, "month": report.month_label(this), "previous_month": report.month_label(last),
        "breakdown": breakdown,
        "items": [{"indicator": item.indicator.name, "title": item.indicator.title, "unit": item.indicator.unit,
                   "kind": item.indicator.kind,
                   "rows": [{**({breakdown: line.key} if breakdown else {}), "this_month": line.this_month,
                             "last_month": line.last_month} for line in item.lines]}
                  for item in items],
    }



@router.get("/office-report", include_in_schema=False)
async def office_report_page(if_none_match: Annotated[str | None, Header(max_length=200)] = None) -> Response:
    return console.page_response("office-report", if_none_match)
