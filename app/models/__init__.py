"""Every table, imported here so that Base.metadata is complete for Alembic and the drift test."""

from app.models.activity import ActivityEvent
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.bench import BenchProbe
from app.models.case import (
    Application,
    Case,
    CaseEvent,
    CaseNote,
    FollowUp,
    Grievance,
    ReferenceCounter,
    Referral,
)
from app.models.dci import DciClient, DciDelivery, DciLookup, DciMessage, DciSubscription, DciTransaction
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
from app.models.user import LoginThrottle, RefreshToken, User

__all__ = [
    "ActivityEvent",
    "Application",
    "AuditEvent",
    "Base",
    "BenchProbe",
    "Case",
    "CaseEvent",
    "CaseNote",
    "ConsentRecord",
    "DciClient",
    "DciDelivery",
    "DciLookup",
    "DciMessage",
    "DciSubscription",
    "DciTransaction",
    "FollowUp",
    "Grievance",
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
    "ReferenceCounter",
    "Referral",
    "RefreshToken",
    "RelayStatus",
    "Screening",
    "ScreeningDetermination",
    "User",
]
