"""Central monitoring: the events offices relay, the rollups the dashboards read, and the little state
that counts which cannot be added up (unique persons, open referrals and grievances); plus, on the
office side, what the relay last did. See docs/monitoring.md."""

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class MonitoringEvent(Base):
    """An activity event as central received it, stored once by its id (the office's outbox id).
    Kept so that rollups can be rebuilt when an indicator's definition changes; dashboards never
    read it."""

    __tablename__ = "monitoring_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    office_code: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(60))
    schema_version: Mapped[int] = mapped_column()
    occurred_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict] = mapped_column()


# Rollups: additive counters, one row per metric, grain (day, week, month, quarter), period and value
# of each dimension the table keeps; '' where an event does not carry the dimension. In the small
# cuboids every column but `value` is the key, so an increment is one INSERT ... ON CONFLICT. One table
# per cuboid, so that the small ones that most dashboards read stay small and dense
# (app/services/monitoring/rollups.py: CUBOIDS).


class MonitoringRollup(Base):
    """Cuboid F: every dimension (kept by day, and by week to quarter for unique counts). Unlike the
    small cuboids, a log of increments: each batch appends its sums and nothing is updated, so that the
    widest table costs a plain insert per row rather than an upsert against a fifteen-column key. A key
    may appear in several rows; every reader sums them."""

    __tablename__ = "monitoring_rollup"

    metric: Mapped[str] = mapped_column(String(40))
    grain: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[date] = mapped_column()
    office_code: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(2))
    district: Mapped[str] = mapped_column(String(4))
    commune: Mapped[str] = mapped_column(String(6))
    area_type: Mapped[str] = mapped_column(String(5))
    scheme: Mapped[str] = mapped_column(String(40))
    sex: Mapped[str] = mapped_column(String(6))
    age_band: Mapped[str] = mapped_column(String(5))
    disability: Mapped[str] = mapped_column(String(5))
    idpoor_level: Mapped[str] = mapped_column(String(1))
    female_headed: Mapped[str] = mapped_column(String(5))
    detail: Mapped[str] = mapped_column(String(40))
    value: Mapped[int] = mapped_column(BigInteger)

    # A period's range, with the places and the office that F's queries filter on most, so that rows of
    # other places are passed over in the index (the other dimensions are read from the rows).
    __table_args__ = (Index("ix_monitoring_rollup_period_place", "metric", "grain", "period_start", "province", "office_code",
                            "district", "commune"),)
    # The ORM wants an identity; the table has none (see above) and is only read and written as a table.
    __mapper_args__ = {"primary_key": [metric, grain, period_start, office_code, province, district, commune, area_type,
                                       scheme, sex, age_band, disability, idpoor_level, female_headed, detail]}


class RollupCounter:
    """The columns every small cuboid (S, P, H, O) shares: the head of its key (metric, grain, period,
    province, scheme, detail) and the counter; each cuboid's class adds its own dimensions. F holds the
    same columns without a key (a log of increments, above)."""

    metric: Mapped[str] = mapped_column(String(40), primary_key=True, sort_order=-6)
    grain: Mapped[str] = mapped_column(String(7), primary_key=True, sort_order=-5)
    period_start: Mapped[date] = mapped_column(primary_key=True, sort_order=-4)
    province: Mapped[str] = mapped_column(String(2), primary_key=True, sort_order=-3)
    scheme: Mapped[str] = mapped_column(String(40), primary_key=True, sort_order=-2)
    detail: Mapped[str] = mapped_column(String(40), primary_key=True, sort_order=-1)
    value: Mapped[int] = mapped_column(BigInteger, sort_order=1)


class MonitoringRollupSex(RollupCounter, Base):
    """Cuboid S: province by sex (by month and quarter): the headline dashboards' breakdown, kept apart
    so that it reads a few hundred rows a year, not the age-band and disability cells under them."""

    __tablename__ = "monitoring_rollup_sex"

    sex: Mapped[str] = mapped_column(String(6), primary_key=True)


class MonitoringRollupProvince(RollupCounter, Base):
    """Cuboid P: province by sex, age band and disability (by month and quarter)."""

    __tablename__ = "monitoring_rollup_province"

    sex: Mapped[str] = mapped_column(String(6), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(5), primary_key=True)
    disability: Mapped[str] = mapped_column(String(5), primary_key=True)


class MonitoringRollupHousehold(RollupCounter, Base):
    """Cuboid H: province by area, IDPoor level and female-headed (by month and quarter)."""

    __tablename__ = "monitoring_rollup_household"

    area_type: Mapped[str] = mapped_column(String(5), primary_key=True)
    idpoor_level: Mapped[str] = mapped_column(String(1), primary_key=True)
    female_headed: Mapped[str] = mapped_column(String(5), primary_key=True)


class MonitoringRollupOffice(RollupCounter, Base):
    """Cuboid O: office and district by sex (by month and quarter)."""

    __tablename__ = "monitoring_rollup_office"

    office_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    district: Mapped[str] = mapped_column(String(4), primary_key=True)
    sex: Mapped[str] = mapped_column(String(6), primary_key=True)


class MonitoringSubject(Base):
    """The days on which a person, household or beneficiary was seen, so that "unique per week, month
    or quarter" is counted once, at the first event of that period, whatever order events arrive in."""

    __tablename__ = "monitoring_subject"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    days: Mapped[list] = mapped_column()  # sorted proleptic ordinals of the local days seen


class MonitoringOpenItem(Base):
    """A referral or grievance: when it opened, when it was due, when (if) it closed. Overdue as of a
    date is counted here, never by scanning events."""

    __tablename__ = "monitoring_open_item"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    item: Mapped[str] = mapped_column(String(32), primary_key=True)
    office_code: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(2))
    district: Mapped[str] = mapped_column(String(4))
    commune: Mapped[str] = mapped_column(String(6))
    area_type: Mapped[str] = mapped_column(String(5))
    scheme: Mapped[str] = mapped_column(String(40))
    sex: Mapped[str] = mapped_column(String(6))
    age_band: Mapped[str] = mapped_column(String(5))
    disability: Mapped[str] = mapped_column(String(5))
    idpoor_level: Mapped[str] = mapped_column(String(1))
    female_headed: Mapped[str] = mapped_column(String(5))
    detail: Mapped[str] = mapped_column(String(40))  # referral agency or grievance category
    opened_on: Mapped[date | None] = mapped_column()
    due_on: Mapped[date | None] = mapped_column()
    closed_on: Mapped[date | None] = mapped_column()

    __table_args__ = (Index("ix_monitoring_open_item_kind_due_on", "kind", "due_on"),)


class MonitoringOfficeSync(Base):
    """What central last heard from each office."""

    __tablename__ = "monitoring_office_sync"

    office_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    first_sync_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sync_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_event_at: Mapped[datetime | None] = mapped_column()
    events_received: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates_received: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected_received: Mapped[int] = mapped_column(BigInteger, default=0)
    last_lag_seconds: Mapped[float | None] = mapped_column(Float)


class RelayStatus(Base):
    """Office side: what the relay last did for an office's events (it may run in another process)."""

    __tablename__ = "relay_status"

    office_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    events_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    events_parked: Mapped[int] = mapped_column(BigInteger, default=0)
