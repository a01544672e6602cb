"""A DCI client: Guichet asking an external registry (a civil registry, the IDPoor database, a
scheme's beneficiary registry) over the standard's sync or async search and IBR's `enrolled`.

The OAuth2 token is fetched with client credentials and kept until 80% of its life (`expires_in` is a
string in the spec, a number in practice: both are read); a 401 refreshes it once. Every message is
signed with our key; an answer must be signed by one of the registry's pinned keys when they are
configured. Failures raise RegistryUnavailable (down, timed out, 5xx, unreadable) or
RegistryRejected (the registry refused the request): callers decide what that means, and never
mistake it for "not found"."""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.config import DciRegistry, Settings
from app.dci import signing
from app.dci.envelope import Rejected, new_id, request_header, timestamp

TOKEN_REFRESH_AT = 0.8


class RegistryUnavailable(Exception):
    pass


class RegistryRejected(Exception):
    def __init__(self, code: str | None, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Token:
    value: str
    refresh_at: float


@dataclass
class RegistryClient:
    code: str
    config: DciRegistry
    settings: Settings
    _token: _Token | None = None
    _http: httpx.AsyncClient | None = None
    _loop: Any = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            timeout = httpx.Timeout(self.config.timeout_seconds, connect=min(3.0, self.config.timeout_seconds))
            self._http, self._loop, self._lock = httpx.AsyncClient(timeout=timeout), loop, asyncio.Lock()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None

    async def token(self, *, renew: bool = False) -> str | None:
        if not self.config.token_url:
            return None
        async with self._lock:
            if self._token is not None and not renew and time.monotonic() < self._token.refresh_at:
                return self._token.value
            secret = self.config.client_secret.get_secret_value() if self.config.client_secret else ""
            try:
                response = await self.http().post(self.config.token_url, data={
                    "grant_type": "client_credentials", "client_id": self.config.client_id or "", "client_secret": secret})
            except httpx.HTTPError as exc:
                raise RegistryUnavailable(f"token endpoint unreachable ({type(exc).__name__})") from None
            if response.status_code != 200:
                raise RegistryUnavailable(f"token endpoint answered HTTP {response.status_code}")
            try:
                answer = response.json()
                lifetime = float(answer.get("expires_in") or 300)
                self._token = _Token(str(answer["access_token"]), time.monotonic() + lifetime * TOKEN_REFRESH_AT)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise RegistryUnavailable("token endpoint's answer is unreadable") from None
            return self._token.value

    async def send(self, path: str, action: str, message: dict[str, Any], *, total_count: int = 1,
                   sender_uri: str | None = None) -> dict[str, Any]:
        """POST a signed message; the answer's body (its signature checked)."""
        header = request_header(action, sender_id=self.settings.dci_sender_id, receiver_id=self.config.receiver_id,
                                total_count=total_count, sender_uri=sender_uri)
        body = signing.envelope(self.settings, header, message)
        url = self.config.url.rstrip("/") + path
        for attempt in (1, 2):
            token = await self.token(renew=attempt == 2)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                response = await self.http().post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise RegistryUnavailable(f"{self.code} unreachable ({type(exc).__name__})") from None
            if response.status_code == 401 and token and attempt == 1:
                continue
            break
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise RegistryUnavailable(f"{self.code} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise RegistryUnavailable(f"{self.code}'s answer is not JSON") from None
        if response.status_code >= 400:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            code = errors[0].get("code") if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
            raise RegistryRejected(code, f"{self.code} refused the request (HTTP {response.status_code}).")
        if not isinstance(answer, dict):
            raise RegistryUnavailable(f"{self.code}'s answer is not a DCI message")
        self.check_signature(answer)
        return answer

    def check_signature(self, body: dict[str, Any]) -> None:
        if "header" not in body or not self.config.jwks:
            return  # an acknowledgement carries no header to sign; a registry without pinned keys is trusted by TLS
        try:
            signing.verify(body, self.config.jwks, required=True)
        except Rejected as exc:
            raise RegistryUnavailable(f"{self.code}'s answer is not signed by its keys ({exc.code})") from None

    # ---- the two questions Guichet asks ----

    def search_message(self, transaction_id: str, id_value: str, *, entity: str = "Group", locale: str = "eng") -> dict[str, Any]:
        return {"transaction_id": transaction_id, "search_request": [{
            "reference_id": new_id(), "timestamp": timestamp(),
            "search_criteria": {"version": "1.0.0", "query_type": "idtype-value", "response_entity": entity,
                                "query": {"type": self.config.id_type, "value": id_value},
                                "pagination": {"page_size": 10, "page_number": 1}},
            "locale": locale}]}

    async def search(self, transaction_id: str, id_value: str, *, entity: str = "Group") -> list[dict[str, Any]]:
        """Sync search by identifier: the records found (empty when none)."""
        answer = await self.send("/sync/search", "search", self.search_message(transaction_id, id_value, entity=entity))
        return search_records(answer.get("message"), transaction_id)

    async def search_async(self, transaction_id: str, id_value: str, callback_url: str, *, entity: str = "Group") -> None:
        answer = await self.send("/search", "search", self.search_message(transaction_id, id_value, entity=entity),
                                 sender_uri=callback_url)
        ack = answer.get("message") if isinstance(answer.get("message"), dict) else {}
        if ack.get("ack_status") != "ACK":
            error = ack.get("error") if isinstance(ack.get("error"), dict) else {}
            raise RegistryRejected(error.get("code"), f"{self.code} did not accept the search ({ack.get('ack_status')}).")

    async def enrolled(self, transaction_id: str, id_value: str, programme: str | None) -> tuple[bool, list[dict[str, Any]]]:
        query: dict[str, Any] = {"person_identifier": {"eq": id_value}}
        if programme:
            query["programme_identifier.programme.programme_identifier"] = {"eq": programme}
        message = {"transaction_id": transaction_id,
                   "enrolled_criteria": {"query_type": "expression", "response_entity": "Member", "query": query}}
        answer = await self.send("/sync/enrolled", "search", message)
        # IBR's own answer is not enveloped (a spec defect): both shapes are read.
        body = answer.get("message") if isinstance(answer.get("message"), dict) else answer
        items = body.get("enrolled_response") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise RegistryUnavailable(f"{self.code}'s enrolled answer is unreadable")
        item = items[0]
        if item.get("status") == "rjct":
            raise RegistryRejected(None, str(item.get("status_reason_message") or "refused")[:300])
        return item.get("enrolled_status") == "yes", [p for p in item.get("programmes") or [] if isinstance(p, dict)]


def search_records(message: Any, transaction_id: str) -> list[dict[str, Any]]:
    """The records of a SearchResponse's first item; RegistryRejected when the registry refused it."""
    if not isinstance(message, dict) or message.get("transaction_id") != transaction_id:
        raise RegistryUnavailable("the answer is not about this transaction")
    items = message.get("search_response")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise RegistryUnavailable("the answer holds no search_response")
    item = items[0]
    if item.get("status") == "rjct":
        raise RegistryRejected(item.get("status_reason_code"), str(item.get("status_reason_message") or "refused")[:300])
    found = (item.get("data") or {}).get("reg_records") or []
    return [r for r in found if isinstance(r, dict)]


_clients: dict[str, RegistryClient] = {}


def registry_client(settings: Settings, code: str) -> RegistryClient:
    """One client per configured registry (its token cached across requests)."""
    config = settings.dci_registries[code]
    key = json.dumps([code, config.model_dump(mode="json", exclude={"client_secret"}), settings.dci_sender_id])
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = RegistryClient(code, config, settings)
    return client
