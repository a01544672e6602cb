"""DCI test support: the spec's JSON schemas (with the spec's known defects patched, each listed in
DEFECTS and docs/dci.md), partner keys and signed messages, and a partner client made through the
admin API.

The spec files (spdci/standards, see tests/dci_spec/README.md) are read from GUICHET_DCI_SPEC_DIR or
../shared/dci-spec beside the repository. Every DCI request and answer the tests see goes through
`conform()`; without the spec files that check cannot run and test_dci_conformance.py says so."""

import copy
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from app.dci.records import FIELDS
from app.security import generate_signing_key, public_jwk, sign_jws

REPOSITORY = Path(__file__).resolve().parent.parent
SPEC_FILES = {"sr": "social_api_v1.0.0.yaml", "ibr": "ibr_api_v1.0.0.yaml", "core": "registry_core_api_v1.0.0.yaml",
              "authz": "authz_core_api_v1.0.0.yaml", "jwks": "jwks_core_api_v1.0.0.yaml"}

# The spec's defects, patched before validating (what the spec says, why it cannot be right, the patch).
DEFECTS = [
    "oneOf alternatives overlap (an expression query {type, value: object} also matches idtype-value; an integer "
    "matches both `integer` and `number`; txnstatus attribute_value), so valid messages match 'more than one': every "
    "oneOf is read as anyOf (also reported in OpenSPP/spdci-compliance SPEC_ISSUES_REPORT.md)",
    "registry core UnSubscribeRequest requires `timestamp` and `sunscription_codes` but defines `timesstamp` and "
    "`subscription_codes`: required is read as transaction_id, timestamp, subscription_codes",
    "registry core SubscriptionInfo requires `subscription_code` and `subscribe_criteria`, which it does not define: "
    "required is read as code, timestamp",
    "IBR /registry/sync/enrolled answers a bare EnrolledResponse (not enveloped) and names no security scheme: "
    "Guichet answers the usual signed envelope; its `message` is validated against EnrolledResponse",
    "IBR enrolled's request header action is `search` (Guichet also takes `enrolled`)",
    "registry core NotifyEventRequest `reg_records` is one object (RegistryRecord), not a list: one record per event",
    "the authz OAuth2ClientTokenResponse types `expires_in` as a string: Guichet sends a string, reads both",
    "TxnStatusResponse.txn_status has a $ref to an `example` as one of its alternatives: with anyOf the others apply",
    "$ref pointers run through other $refs (e.g. .../message/oneOf/0/properties/search_request/... where oneOf/0 is a "
    "$ref to SearchRequest), which JSON Pointer cannot follow: each is rewritten to the place it means",
    "registry core RegistryEventType is one string: a subscription to several event types sends them comma-separated",
]


def spec_dir() -> Path | None:
    configured = os.environ.get("GUICHET_DCI_SPEC_DIR")
    for candidate in ([Path(configured)] if configured else []) + [REPOSITORY.parent / "shared" / "dci-spec"]:
        if all((candidate / name).is_file() for name in SPEC_FILES.values()):
            return candidate
    return None


def _patched(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): (v.replace("/oneOf/", "/anyOf/") if k == "$ref" else _patched(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_patched(v) for v in node]
    return node


def _canonical(doc: Any, pointer: str) -> str:
    """The pointer to what `pointer` means when its steps go through other $refs (JSON Pointer cannot)."""
    node, path = doc, []
    for part in pointer.strip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        while isinstance(node, dict) and key not in node and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            path = node["$ref"][2:].split("/")
            node = doc
            for step in path:
                node = node[step.replace("~1", "/").replace("~0", "~")] if isinstance(node, dict) else node[int(step)]
        node = node[key] if isinstance(node, dict) else node[int(key)]
        path.append(part)
    return "#/" + "/".join(path)


def _direct_refs(doc: Any, node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node["$ref"] = _canonical(doc, ref[1:])
        for value in node.values():
            _direct_refs(doc, value)
    elif isinstance(node, list):
        for value in node:
            _direct_refs(doc, value)


class Spec:
    def __init__(self, directory: Path):
        self.docs = {api: _patched(yaml.safe_load((directory / name).read_text())) for api, name in SPEC_FILES.items()}
        for doc in self.docs.values():
            _direct_refs(doc, doc)
        schemas = self.docs["core"]["components"]["schemas"]
        schemas["UnSubscribeRequest"]["required"] = ["transaction_id", "timestamp", "subscription_codes"]
        schemas["SubscriptionInfo"]["required"] = ["code", "timestamp"]
        self.registry = Registry().with_resources(
            (f"urn:dci:{api}", Resource.from_contents(doc, default_specification=DRAFT4)) for api, doc in self.docs.items())

    def _validator(self, api: str, pointer: str) -> Draft4Validator:
        return Draft4Validator({"$ref": f"urn:dci:{api}#{pointer}"}, registry=self.registry)

    @staticmethod
    def _escape(path: str) -> str:
        return path.replace("~", "~0").replace("/", "~1")

    def request_pointer(self, api: str, path: str, media: str = "application/json") -> str:
        return f"/paths/{self._escape(path)}/post/requestBody/content/{self._escape(media)}/schema"

    def response_pointer(self, api: str, path: str, status: str = "default", method: str = "post") -> str:
        response = self.docs[api]["paths"][path][method]["responses"][status]
        pointer = f"/paths/{self._escape(path)}/{method}/responses/{status}"
        if "$ref" in response:
            pointer = response["$ref"][1:]
            response = self.resolve(api, pointer)
        if "content" not in response:  # a schema given as a response (IBR enrolled)
            return pointer
        return f"{pointer}/content/{self._escape('application/json')}/schema"

    def resolve(self, api: str, pointer: str) -> Any:
        node = self.docs[api]
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, api: str, pointer: str, body: Any) -> list[str]:
        return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}"
                for e in self._validator(api, pointer).iter_errors(body)]


_spec: Spec | None = None
_checked: list[str] = []


def spec() -> Spec | None:
    global _spec
    if _spec is None and spec_dir() is not None:
        _spec = Spec(spec_dir())
    return _spec


def conform(api: str, path: str, direction: str, body: Any, *, status: str = "default", schema: str | None = None,
            method: str = "post") -> None:
    """Validate a request ("request") or an answer ("response") against the spec, when the spec is there.
    `schema` names a component instead (e.g. IBR's bare EnrolledResponse for the envelope's message)."""
    loaded = spec()
    if loaded is None:
        return
    if schema is not None:
        pointer = f"/components/schemas/{schema}"
    elif direction == "request":
        pointer = loaded.request_pointer(api, path)
    else:
        pointer = loaded.response_pointer(api, path, status, method)
    errors = loaded.errors(api, pointer, body)
    assert not errors, f"{api} {path} {direction} breaks the spec:\n" + "\n".join(errors[:10]) + f"\n{json.dumps(body)[:2000]}"
    _checked.append(f"{api} {path} {direction}")


def checked() -> list[str]:
    return list(_checked)


# ---- partners' keys and messages ------------------------------------------------------------------------


class PartnerKeys:
    def __init__(self, algorithm: str = "ES256"):
        self.algorithm = algorithm
        self.pem = generate_signing_key(algorithm)
        self.jwk = public_jwk(self.pem, algorithm)

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [{k: v for k, v in self.jwk.items()}]}

    def sign(self, header: dict[str, Any], message: Any) -> str:
        return sign_jws(json.dumps({"header": header, "message": message}).encode(), self.pem, self.algorithm)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def header(action: str, sender_id: str, *, total_count: int = 1, receiver_id: str | None = "guichet", **extra: Any) -> dict[str, Any]:
    head = {"version": "1.0.0", "message_id": str(uuid.uuid4()), "message_ts": now(), "action": action,
            "sender_id": sender_id, "total_count": total_count, "is_msg_encrypted": False}
    if receiver_id:
        head["receiver_id"] = receiver_id
    head.update(extra)
    return head


def envelope(keys: PartnerKeys | None, head: dict[str, Any], message: Any) -> dict[str, Any]:
    body = {"header": head, "message": message}
    if keys is not None:
        body["signature"] = keys.sign(head, message)
    return body


def search_item(query_type: str, query: Any, *, entity: str = "Group", reference_id: str | None = None,
                page_size: int | None = 10, page_number: int = 1, locale: str = "eng", sort: list | None = None) -> dict[str, Any]:
    criteria: dict[str, Any] = {"version": "1.0.0", "query_type": query_type, "response_entity": entity, "query": query}
    if page_size is not None:
        criteria["pagination"] = {"page_size": page_size, "page_number": page_number}
    if sort:
        criteria["sort"] = sort
    return {"reference_id": reference_id or str(uuid.uuid4()), "timestamp": now(), "search_criteria": criteria, "locale": locale}


def search_message(*items: dict[str, Any]) -> dict[str, Any]:
    return {"transaction_id": str(uuid.uuid4()), "search_request": list(items)}


def by_id(national_id: str, **options: Any) -> dict[str, Any]:
    return search_item("idtype-value", {"type": "NID", "value": national_id}, **options)


class Partner:
    """A partner client made through the admin API, with its keys and a token."""

    def __init__(self, client: httpx.AsyncClient, client_id: str, secret: str, keys: PartnerKeys | None, record: dict):
        self.http = client
        self.client_id = client_id
        self.secret = secret
        self.keys = keys
        self.record = record
        self.token: str | None = None

    async def authenticate(self) -> str:
        response = await self.http.post("/oauth2/client/token", data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.secret})
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self.token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def send(self, path: str, action: str, message: Any, *, total_count: int | None = None, sign: bool = True,
                   api: str = "sr", valid: bool = True, **header_extra: Any) -> httpx.Response:
        """Sends a signed message; `valid=False` for one that breaks the spec on purpose (not validated)."""
        count = total_count if total_count is not None else len(message.get("search_request") or message.get("subscribe_request") or [1])
        body = envelope(self.keys if sign else None, header(action, self.client_id, total_count=count, **header_extra), message)
        spec_path = "/registry" + path.split("/registry", 1)[1]
        if valid:
            conform(api, spec_path, "request", body)
        return await self.http.post(path, json=body, headers=self.headers)


async def make_partner(client: httpx.AsyncClient, admin_headers: dict[str, str], *, offices: list[str] | None = None,
                       fields: list[str] | tuple[str, ...] = FIELDS, query_types: tuple[str, ...] = ("idtype-value", "predicate", "expression"),
                       callback_url: str | None = None, signed: bool = True, algorithm: str = "ES256") -> Partner:
    keys = PartnerKeys(algorithm) if signed else None
    client_id = f"partner-{uuid.uuid4().hex[:8]}"
    body = {"client_id": client_id, "name": "Reference partner", "query_types": list(query_types), "fields": list(fields),
            "offices": offices or ["SR-ACH"], "callback_url": callback_url, "signature_required": signed,
            "jwks": keys.jwks if keys else None}
    response = await client.post("/api/v1/dci/clients", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    partner = Partner(client, client_id, response.json()["client_secret"], keys, response.json())
    await partner.authenticate()
    return partner


def consent(purposes: list[str]) -> dict[str, Any]:
    return {"purposes": purposes, "given_by": "The head", "method": "verbal"}


def shared_household(body: dict[str, Any]) -> dict[str, Any]:
    """A registration whose consent covers sharing with partner programmes."""
    body = copy.deepcopy(body)
    body["consent"] = consent(["registry", "eligibility_sharing", "registry_sharing"])
    return body
