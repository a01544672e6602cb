"""A DHIS2 stand-in: POST /api/dataValueSets checked the way DHIS2's Web API documents it (dhis2-docs
src/developer/web-api/data.md), on a loopback port in a thread of the test process.

It knows a few data elements (by code, each with its category option combos and value type) and org
units (by code); it wants idScheme=code, an importStrategy, dryRun, credentials (basic auth or
`Authorization: ApiToken ...`), and answers an import summary: values imported, updated (an existing
key), ignored (a conflict), with one conflict per refused value, as DHIS2 2.38+ wraps it. A dry run
checks everything and stores nothing."""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

PERIOD = re.compile(r"[0-9]{4}(0[1-9]|1[0-2]|Q[1-4]|W([1-9]|[1-4][0-9]|5[0-3]))?")
STRATEGIES = {"CREATE", "UPDATE", "CREATE_AND_UPDATE", "DELETE", "NEW_AND_UPDATES"}
SEX = {"SEX_F", "SEX_M", "SEX_O"}


@dataclass
class Dhis2:
    username: str = "admin"
    password: str = "district"
    token: str = "d2pat_guichet_test"
    # code -> (category option combos, value type)
    data_elements: dict[str, tuple[set[str], str]] = field(default_factory=lambda: {
        "GCH_CLIENTS_SERVED": (SEX, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_PERSONS_REGISTERED": (SEX, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_SCREENINGS": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_APPLICATIONS_SUBMITTED": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_APPLICATIONS_APPROVED": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_APPLICATIONS_REJECTED": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_REFERRALS_COMPLETED": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_GRIEVANCES_RESOLVED": ({"default"}, "INTEGER_ZERO_OR_POSITIVE"),
        "GCH_MEDIAN_DAYS_TO_DECISION": ({"default"}, "NUMBER"),
    })
    org_units: set[str] = field(default_factory=lambda: {"02", "12", "17"})
    stored: dict[tuple[str, str, str, str], str] = field(default_factory=dict)  # (de, pe, ou, coc) -> value
    requests: list[dict[str, Any]] = field(default_factory=list)  # what came: query and body

    def authorised(self, header: str | None) -> bool:
        if not header:
            return False
        if header == f"ApiToken {self.token}":
            return True
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def import_values(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        for name in ("idScheme", "importStrategy", "dryRun"):
            if name not in query:
                return 409, _error(f"{name} is expected (Guichet addresses by code and must say what to do)")
        if query["idScheme"].upper() != "CODE":
            return 409, _error("idScheme must be CODE for values addressed by code")
        if query["importStrategy"] not in STRATEGIES:
            return 409, _error(f"unknown importStrategy {query['importStrategy']}")
        if query["dryRun"] not in ("true", "false"):
            return 409, _error("dryRun is true or false")
        if not isinstance(body, dict) or not isinstance(body.get("dataValues"), list):
            return 409, _error("a data value set is an object with dataValues")
        dry_run = query["dryRun"] == "true"
        counts = {"imported": 0, "updated": 0, "ignored": 0, "deleted": 0}
        conflicts = []
        for index, value in enumerate(body["dataValues"]):
            problem = self.check(value, body)
            if problem:
                counts["ignored"] += 1
                conflicts.append({"object": problem[0], "objects": {}, "value": problem[1], "errorCode": problem[2],
                                  "property": "dataValues", "indexes": [index]})
                continue
            key = (value["dataElement"], value.get("period", body.get("period")), value.get("orgUnit", body.get("orgUnit")),
                   value.get("categoryOptionCombo", "default"))
            counts["updated" if key in self.stored else "imported"] += 1
            if not dry_run:
                self.stored[key] = str(value["value"])
        status = "WARNING" if conflicts else "SUCCESS"
        return (409 if conflicts else 200), {
            "httpStatus": "Conflict" if conflicts else "OK", "httpStatusCode": 409 if conflicts else 200,
            "status": "WARNING" if conflicts else "OK",
            "message": "One more conflicts encountered, please check import summary." if conflicts else "Import was successful.",
            "response": {"responseType": "ImportSummary", "status": status,
                         "importOptions": {"dryRun": dry_run, "importStrategy": query["importStrategy"],
                                           "idSchemes": {"idScheme": query["idScheme"]}},
                         "description": "Import process completed successfully", "importCount": counts,
                         "conflicts": conflicts, "dataSetComplete": "false"}}

    def check(self, value: Any, body: dict) -> tuple[str, str, str] | None:
        """(object, message, error code) of a value DHIS2 would refuse, or None."""
        if not isinstance(value, dict):
            return "", "A data value must be an object", "E7600"
        element = value.get("dataElement")
        if element not in self.data_elements:
            return str(element), "Data element not found or not accessible", "E7610"
        period = value.get("period", body.get("period"))
        if not isinstance(period, str) or not PERIOD.fullmatch(period):
            return str(period), "Period not valid", "E7622"
        unit = value.get("orgUnit", body.get("orgUnit"))
        if unit not in self.org_units:
            return str(unit), "Organisation unit not found or not accessible", "E7612"
        combos, value_type = self.data_elements[element]
        combo = value.get("categoryOptionCombo", "default")
        if combo not in combos:
            return str(combo), f"Category option combo is not part of the category combo of {element}", "E7620"
        raw = value.get("value")
        if not isinstance(raw, str):
            return str(raw), "Data value must be a string", "E7619"
        pattern = r"0|[1-9][0-9]*" if value_type == "INTEGER_ZERO_OR_POSITIVE" else r"-?[0-9]+(\.[0-9]+)?"
        if not re.fullmatch(pattern, raw):
            return raw, f"Value must match data element's `{element}` type constraints: {value_type}", "E7619"
        return None


def _error(message: str) -> dict[str, Any]:
    return {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "ERROR", "message": message}


class RunningDhis2:
    """The stand-in on 127.0.0.1 at a free port, for the length of a `with`."""

    def __init__(self, dhis2: Dhis2 | None = None):
        self.dhis2 = dhis2 or Dhis2()
        state = self.dhis2

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet tests
                pass

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if url.path != "/api/dataValueSets":
                    return self.answer(404, {"httpStatus": "Not Found", "httpStatusCode": 404, "status": "ERROR"})
                if not state.authorised(self.headers.get("Authorization")):
                    return self.answer(401, {"httpStatus": "Unauthorized", "httpStatusCode": 401, "status": "ERROR",
                                             "message": "Unauthorized"})
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return self.answer(415, _error("Content-Type must be application/json"))
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.answer(400, _error("malformed JSON"))
                state.requests.append({"query": query, "body": body})
                status, answer = state.import_values(query, body)
                self.answer(status, answer)

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RunningDhis2:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
