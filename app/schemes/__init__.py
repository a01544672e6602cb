"""Schemes: the adapter plug-in contract, the registry, and the built-in rules and HTTP adapters."""

from app.schemes.base import (
    Benefit,
    CheckRequest,
    Determination,
    Reason,
    ReasonResult,
    SchemeAdapter,
    SchemeDefinitionError,
    SchemeHealth,
    SchemeLevel,
    SchemeMetadata,
    SchemeVersion,
    Subject,
    SubmissionRequest,
    SubmissionResult,
    SubmittingAdapter,
    can_submit,
)
from app.schemes.registry import ENTRY_POINT_GROUP, SchemeRegistry, load_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Benefit",
    "CheckRequest",
    "Determination",
    "Reason",
    "ReasonResult",
    "SchemeAdapter",
    "SchemeDefinitionError",
    "SchemeHealth",
    "SchemeLevel",
    "SchemeMetadata",
    "SchemeRegistry",
    "SchemeVersion",
    "Subject",
    "SubmissionRequest",
    "SubmissionResult",
    "SubmittingAdapter",
    "can_submit",
    "load_registry",
]
