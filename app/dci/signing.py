"""The signing profile (docs/dci.md): the spec fixes no canonicalisation, so, as OpenCRVS does, the
body's `signature` is a compact JWS whose payload is the UTF-8 JSON of `{"header", "message"}`; the
verifier decodes that payload and compares it, as data, with the header and message it received. No
byte-exact re-serialisation is needed on either side. The JWS itself is made and checked by
app.security (the one module that calls python-jose)."""

import json
from typing import Any

import orjson

from app.config import Environment, Settings, key_file
from app.dci.envelope import ERR_SIGNATURE_INVALID, ERR_SIGNATURE_MISSING, Rejected
from app.errors import DomainError
from app.security import InvalidSignature, generate_signing_key, public_jwk, sign_jws, verify_jws


def signing_pem(settings: Settings) -> str:
    """Our DCI signing key: configured, or (development) made once into var/ and kept."""
    if settings.dci_signing_key is not None:
        return settings.dci_signing_key.get_secret_value()
    if settings.env is Environment.production:  # DCI is optional: only its endpoints stop, with a clear answer
        raise DomainError("The DCI APIs are not configured here: set GUICHET_DCI_SIGNING_KEY.", slug="service-unavailable")
    return key_file(settings.var_dir / f"dci_signing_key_{settings.dci_signing_algorithm.lower()}.pem",
                    lambda: generate_signing_key(settings.dci_signing_algorithm))


def _payload(header: dict[str, Any], message: Any) -> bytes:
    return orjson.dumps({"header": header, "message": message})


def sign(settings: Settings, header: dict[str, Any], message: Any) -> str:
    return sign_jws(_payload(header, message), signing_pem(settings), settings.dci_signing_algorithm)


def envelope(settings: Settings, header: dict[str, Any], message: Any | None) -> dict[str, Any]:
    """A signed message as it goes on the wire: every answer and every callback is signed."""
    body: dict[str, Any] = {"header": header}
    if message is not None:
        body["message"] = message
    body["signature"] = sign(settings, header, message)
    return body


def our_jwks(settings: Settings) -> dict[str, Any]:
    return {"keys": [public_jwk(signing_pem(settings), settings.dci_signing_algorithm)]}


def verify(body: dict[str, Any], jwks: dict[str, Any] | None, *, required: bool) -> bool:
    """Checks the body's signature against the sender's pinned keys. Returns whether it was signed;
    raises Rejected(err.signature.missing | err.signature.invalid)."""
    signature = body.get("signature")
    if signature in (None, ""):
        if required:
            raise Rejected(ERR_SIGNATURE_MISSING, "This partner must sign its messages (docs/dci.md).")
        return False
    try:
        signed = json.loads(verify_jws(signature, jwks))
    except (InvalidSignature, ValueError) as exc:
        raise Rejected(ERR_SIGNATURE_INVALID, f"The signature does not verify: {exc}.") from None
    if not isinstance(signed, dict) or signed.get("header") != body.get("header") or signed.get("message") != body.get("message"):
        raise Rejected(ERR_SIGNATURE_INVALID, "The signature is valid but signs another header or message.")
    return True
