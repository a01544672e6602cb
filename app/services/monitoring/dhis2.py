"""The indicators as DHIS2 aggregate data: a data value set (JSON, or ADX XML) for one period, built from
the mapping file the ministry edits (indicator -> data element, breakdown value -> category option combo,
location -> org unit), and its push to a DHIS2's /api/dataValueSets (docs/monitoring.md, "DHIS2").

Cells are the API's own (indicators.indicator_values, small cells suppressed): a suppressed cell is not
sent at all, so DHIS2 shows no value there rather than a false zero."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.services.monitoring import indicators
from app.services.monitoring.rollups import period_end

DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "data" / "dhis2_mapping.yaml"
ADX_NAMESPACE = "urn:ihe:qrph:adx:2015"
_MONTH = re.compile(r"([0-9]{4})(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"([0-9]{4})Q([1-4])")


class DataElementMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator: str
    data_element: str = Field(min_length=1, max_length=50)
    breakdown: str | None = None
    category: str | None = Field(None, description="The DHIS2 category's code, for ADX.")
    category_option_combos: dict[str, str] = Field(default_factory=dict)
    category_options: dict[str, str] = Field(default_factory=dict, description="For ADX; default: the combos' codes.")

    @model_validator(mode="after")
    def _known(self) -> "DataElementMapping":
        indicator = indicators.CATALOG.get(self.indicator)
        if indicator is None:
            raise ValueError(f"unknown indicator {self.indicator}")
        if self.breakdown is not None:
            if self.breakdown not in indicator.breakdowns:
                raise ValueError(f"{self.indicator} cannot be broken down by {self.breakdown}")
            if not self.category_option_combos:
                raise ValueError(f"{self.indicator}: a breakdown needs its category_option_combos")
        return self


class Dhis2Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_set: str | None = None
    org_unit_level: str = Field("province", pattern="^(province|district|office)$")
    org_units: dict[str, str] = Field(default_factory=dict)
    data_elements: list[DataElementMapping] = Field(min_length=1)


def load_mapping(path: str | Path | None = None) -> Dhis2Mapping:
    """The mapping file, checked against the catalogue; ValueError says what is wrong in it."""
    source = Path(path) if path else DEFAULT_MAPPING
    try:
        return Dhis2Mapping.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"DHIS2 mapping {source}: {exc}") from exc


def parse_period(period: str) -> tuple[str, date, date]:
    """A DHIS2 period (YYYYMM or YYYYQn) as (grain, first day, last day)."""
    if match := _MONTH.fullmatch(period):
        start = date(int(match[1]), int(match[2]), 1)
        return "month", start, period_end(start, "month")
    if match := _QUARTER.fullmatch(period):
        start = date(int(match[1]), 3 * int(match[2]) - 2, 1)
        return "quarter", start, period_end(start, "quarter")
    raise InvalidInput("period is a DHIS2 month (YYYYMM, e.g. 202611) or quarter (YYYYQn, e.g. 2026Q4).",
                       field="#/query/period")


@dataclass(frozen=True)
class DataValue:
    data_element: str
    org_unit: str
    value: int | float
    category_option_combo: str | None = None  # None: DHIS2's default combo
    category: str | None = None
    category_option: str | None = None


@dataclass
class DataValueSet:
    data_set: str | None
    period: str
    grain: str
    start: date
    values: list[DataValue]
    suppressed: int  # cells not sent because they are suppressed

    def as_json(self) -> dict[str, Any]:
        """DHIS2's JSON data value set (every value carries its period and org unit)."""
        body: dict[str, Any] = {"period": self.period}
        if self.data_set:
            body["dataSet"] = self.data_set
        body["dataValues"] = [
            {"dataElement": v.data_element, "period": self.period, "orgUnit": v.org_unit,
             **({"categoryOptionCombo": v.category_option_combo} if v.category_option_combo else {}),
             "value": _number(v.value)} for v in self.values]
        return body

    def as_adx(self) -> bytes:
        """ADX (IHE QRPH): one group per org unit, periods as ISO 8601 start/duration, categories as
        attributes named by the category's code."""
        root = ElementTree.Element("adx", {"xmlns": ADX_NAMESPACE,
                                          "exported": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        duration = "P1M" if self.grain == "month" else "P3M"
        groups: dict[str, ElementTree.Element] = {}
        for v in self.values:
            group = groups.get(v.org_unit)
            if group is None:
                attributes = {"orgUnit": v.org_unit, "period": f"{self.start.isoformat()}/{duration}"}
                if self.data_set:
                    attributes["dataSet"] = self.data_set
                group = groups[v.org_unit] = ElementTree.SubElement(root, "group", attributes)
            attributes = {"dataElement": v.data_element}
            if v.category and v.category_option:
                attributes[v.category] = v.category_option
            attributes["value"] = _number(v.value)
            ElementTree.SubElement(group, "dataValue", attributes)
        return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


async def data_value_set(session: AsyncSession, *, period: str, mapping: Dhis2Mapping, k: int) -> DataValueSet:
    grain, start, end = parse_period(period)
    level = mapping.org_unit_level
    values: list[DataValue] = []
    suppressed = 0
    for element in mapping.data_elements:
        group_by = [level, *([element.breakdown] if element.breakdown else [])]
        answer = await indicators.indicator_values(session, name=element.indicator, date_from=start, date_to=end,
                                                   period=grain, group_by=group_by, filters={}, k=k)
        for row in answer.rows():
            place = row[level]
            if place is None:  # counted under no place of this level: DHIS2 has no org unit for it
                continue
            combo = option = None
            if element.breakdown:
                value_code = row[element.breakdown]
                key = str(value_code).lower() if isinstance(value_code, bool) else str(value_code)
                combo = element.category_option_combos.get(key)
                if combo is None:  # a value the ministry does not collect (or an unknown one)
                    continue
                option = element.category_options.get(key, combo)
            if row["suppressed"]:
                suppressed += 1
                continue
            if row["value"] is None:
                continue
            values.append(DataValue(element.data_element, mapping.org_units.get(str(place), str(place)), row["value"],
                                    combo, element.category, option))
    return DataValueSet(mapping.data_set, period, grain, start, values, suppressed)


@dataclass
class ImportSummary:
    status: str
    imported: int
    updated: int
    ignored: int
    deleted: int
    conflicts: list[str]

    def describe(self, dry_run: bool) -> str:
        lines = [f"DHIS2 import{' (dry run)' if dry_run else ''}: {self.status}; imported {self.imported}, "
                 f"updated {self.updated}, ignored {self.ignored}, deleted {self.deleted}"]
        lines += [f"  conflict: {c}" for c in self.conflicts]
        return "\n".join(lines)


def read_summary(body: dict[str, Any]) -> ImportSummary:
    """DHIS2's import summary, as 2.36+ wraps it ({"response": {...}}) or older versions send it bare."""
    summary = body.get("response", body) if isinstance(body.get("response"), dict) else body
    counts = summary.get("importCount", {})
    conflicts = [f"{c.get('object', '')}: {c.get('value', '')}" for c in summary.get("conflicts", []) or []]
    return ImportSummary(summary.get("status", body.get("status", "UNKNOWN")), counts.get("imported", 0),
                         counts.get("updated", 0), counts.get("ignored", 0), counts.get("deleted", 0), conflicts)


async def push(values: DataValueSet, *, url: str, token: str | None, username: str | None, password: str | None,
               dry_run: bool, transport: httpx.AsyncBaseTransport | None = None) -> ImportSummary:
    """POST the set to DHIS2 by code, creating or updating each value: a second push of the same
    period updates (or leaves) what the first created, so it is safe to repeat."""
    if token:
        headers, auth = {"Authorization": f"ApiToken {token}"}, None
    elif username and password:
        headers, auth = {}, httpx.BasicAuth(username, password)
    else:
        raise ValueError("DHIS2 credentials: set GUICHET_DHIS2_TOKEN, or GUICHET_DHIS2_USERNAME and GUICHET_DHIS2_PASSWORD")
    params = {"idScheme": "code", "dataElementIdScheme": "code", "orgUnitIdScheme": "code",
              "categoryOptionComboIdScheme": "code", "importStrategy": "CREATE_AND_UPDATE",
              "dryRun": "true" if dry_run else "false", "async": "false"}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, auth=auth, timeout=60,
                                 transport=transport) as client:
        response = await client.post("/api/dataValueSets", params=params, json=values.as_json())
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 and not body.get("response"):
        raise RuntimeError(f"DHIS2 answered {response.status_code}: {response.text[:300]}")
    return read_summary(body)
