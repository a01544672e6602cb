"""ETag / If-Match for optimistic concurrency on every mutable resource."""

from app.errors import PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    current = etag(current_version)
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag you last read, so that nobody's change is overwritten.", current_etag=current
        )
    offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if current not in offered and "*" not in offered:
        raise PreconditionFailed(
            "The record was changed since you read it; read it again and reapply your change.", current_etag=current
        )
