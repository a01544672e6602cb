"""Every table, imported here so that Base.metadata is complete for Alembic and the drift test."""

from app.models.activity import ActivityEvent
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.bench import BenchProbe
from app.models.household import ConsentRecord, Household, Person
from app.models.idempotency import IdempotencyKey
from app.models.location import Location
from app.models.monitoring import (
    MonitoringEvent,
    MonitoringOfficeSync,
    MonitoringOpenItem,
    MonitoringRollup,
    MonitoringRollupHousehold,
    MonitoringRollupOffice,
    MonitoringRollupProvince,
    MonitoringRollupSex,
    MonitoringSubject,
    RelayStatus,
)
from app.models.office import Office
from app.models.screening import Screening, ScreeningDetermination
from app.models.user import LoginThrottle, User

__all__ = [
    "ActivityEvent",
    "AuditEvent",
    "Base",
    "BenchProbe",
    "ConsentRecord",
    "Household",
    "IdempotencyKey",
    "Location",
    "MonitoringEvent",
    "MonitoringOfficeSync",
    "MonitoringOpenItem",
    "MonitoringRollup",
    "MonitoringRollupHousehold",
    "MonitoringRollupOffice",
    "MonitoringRollupProvince",
    "MonitoringRollupSex",
    "MonitoringSubject",
    "LoginThrottle",
    "Office",
    "Person",
    "RelayStatus",
    "Screening",
    "ScreeningDetermination",
    "User",
]
