"""central monitoring

Revision ID: 0003_monitoring
Revises: 0002_eligibility
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_monitoring"
down_revision: str | Sequence[str] | None = "0002_eligibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _dimensions() -> list[sa.Column]:
    return [
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("district", sa.String(length=4), nullable=False),
        sa.Column("commune", sa.String(length=6), nullable=False),
        sa.Column("area_type", sa.String(length=5), nullable=False),
        sa.Column("scheme", sa.String(length=40), nullable=False),
        sa.Column("sex", sa.String(length=6), nullable=False),
        sa.Column("age_band", sa.String(length=5), nullable=False),
        sa.Column("disability", sa.String(length=5), nullable=False),
        sa.Column("idpoor_level", sa.String(length=1), nullable=False),
        sa.Column("female_headed", sa.String(length=5), nullable=False),
        sa.Column("detail", sa.String(length=40), nullable=False),
    ]


def _rollup(name: str, *dimensions: tuple[str, int]) -> None:
    """A rollup table: (metric, grain, period_start, its dimensions...) -> value."""
    op.create_table(
        name,
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("grain", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        *(sa.Column(column, sa.String(length=length), nullable=False) for column, length in dimensions),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "grain", "period_start", *(c for c, _ in dimensions), name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.create_table(
        "monitoring_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_event")),
    )
    # Cuboid F: a log of increments (no key; readers sum), indexed for the period ranges and places queries read.
    op.create_table(
        "monitoring_rollup",
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("grain", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        *_dimensions(),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("monitoring_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_rollup_period_place",
                              ["metric", "grain", "period_start", "province", "office_code", "district", "commune"], unique=False)
    _rollup("monitoring_rollup_sex", ("province", 2), ("scheme", 40), ("detail", 40), ("sex", 6))
    _rollup("monitoring_rollup_province", ("province", 2), ("scheme", 40), ("detail", 40), ("sex", 6), ("age_band", 5),
            ("disability", 5))
    _rollup("monitoring_rollup_household", ("province", 2), ("scheme", 40), ("detail", 40), ("area_type", 5),
            ("idpoor_level", 1), ("female_headed", 5))
    _rollup("monitoring_rollup_office", ("office_code", 20), ("province", 2), ("district", 4), ("scheme", 40),
            ("detail", 40), ("sex", 6))
    op.create_table(
        "monitoring_subject",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("days", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", name=op.f("pk_monitoring_subject")),
    )
    op.create_table(
        "monitoring_open_item",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        *_dimensions(),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "item", name=op.f("pk_monitoring_open_item")),
    )
    with op.batch_alter_table("monitoring_open_item", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_open_item_kind_due_on", ["kind", "due_on"], unique=False)
    op.create_table(
        "monitoring_office_sync",
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("first_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events_received", sa.BigInteger(), nullable=False),
        sa.Column("duplicates_received", sa.BigInteger(), nullable=False),
        sa.Column("rejected_received", sa.BigInteger(), nullable=False),
        sa.Column("last_lag_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("office_code", name=op.f("pk_monitoring_office_sync")),
    )
    op.create_table(
        "relay_status",
        sa.Column("office_code", sa.String(length=20), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("events_sent", sa.BigInteger(), nullable=False),
        sa.Column("events_parked", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("office_code", name=op.f("pk_relay_status")),
    )


def downgrade() -> None:
    op.drop_table("relay_status")
    op.drop_table("monitoring_office_sync")
    with op.batch_alter_table("monitoring_open_item", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_open_item_kind_due_on")
    op.drop_table("monitoring_open_item")
    op.drop_table("monitoring_subject")
    for name in ("monitoring_rollup_office", "monitoring_rollup_household", "monitoring_rollup_province", "monitoring_rollup_sex"):
        op.drop_table(name)
    with op.batch_alter_table("monitoring_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_rollup_period_place")
    op.drop_table("monitoring_rollup")
    op.drop_table("monitoring_event")
