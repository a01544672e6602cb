"""ETag / If-Match for optimistic concurrency on every mutable resource."""

import re

from app.errors import BadRequest, PreconditionFailed, PreconditionRequired

# RFC 9110 §8.8.3: an entity tag is an opaque string in double quotes, "W/" before it when weak.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    current = etag(current_version)
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag you last read, so that nobody's change is overwritten.", current_etag=current
        )
    offered = [tag.strip() for tag in if_match.split(",")]
    if offered != ["*"] and not all(_ENTITY_TAG.fullmatch(tag) for tag in offered):
        # Not "the record was changed": an unquoted version would otherwise look like a stale one.
        raise BadRequest(
            f'If-Match takes the ETag exactly as the read sent it, double quotes included (If-Match: {current}), '
            'or * for any version.', current_etag=current
        )
    if "*" not in offered and current not in {tag.removeprefix("W/") for tag in offered}:
        raise PreconditionFailed(
            "The record was changed since you read it; read it again and reapply your change.", current_etag=current
        )
