"""eligibility screening

Revision ID: 0002_eligibility
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_eligibility"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "screening",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("screened_by", sa.Uuid(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("household_version", sa.Integer(), nullable=False),
        sa.Column("schemes", JSON, nullable=False),
        sa.Column("facts", JSON, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_screening_household_id_household")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_screening_office_id_office")),
        sa.ForeignKeyConstraint(["screened_by"], ["user_account.id"], name=op.f("fk_screening_screened_by_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening")),
    )
    with op.batch_alter_table("screening", schema=None) as batch_op:
        batch_op.create_index("ix_screening_household_screened_at", ["household_id", "screened_at"], unique=False)
        batch_op.create_index("ix_screening_office_screened_at", ["office_id", "screened_at"], unique=False)

    op.create_table(
        "determination",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("screening_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheme_code", sa.String(length=40), nullable=False),
        sa.Column("scheme_name", sa.String(length=200), nullable=False),
        sa.Column("scheme_kind", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("rules_version", sa.String(length=40), nullable=True),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("missing_facts", JSON, nullable=False),
        sa.Column("hints", JSON, nullable=False),
        sa.Column("benefit", JSON, nullable=True),
        sa.Column("provenance", JSON, nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_determination_person_id_person")),
        sa.ForeignKeyConstraint(["screening_id"], ["screening.id"], name=op.f("fk_determination_screening_id_screening")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_determination")),
    )
    with op.batch_alter_table("determination", schema=None) as batch_op:
        batch_op.create_index("ix_determination_latest", ["household_id", "person_id", "scheme_code", "screened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_determination_screening_id"), ["screening_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("determination", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_determination_screening_id"))
        batch_op.drop_index("ix_determination_latest")
    op.drop_table("determination")
    with op.batch_alter_table("screening", schema=None) as batch_op:
        batch_op.drop_index("ix_screening_office_screened_at")
        batch_op.drop_index("ix_screening_household_screened_at")
    op.drop_table("screening")
