"""registry checks: national-ID lookups at other offices counted per staff member; IDPoor cards looked up

Revision ID: 0009_registry_checks
Revises: 0007_sessions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_registry_checks"
down_revision: str | Sequence[str] | None = "0007_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOOKUPS = sa.text("action = 'national_id_lookup'")


def upgrade() -> None:
    # Every registration with a national ID counts its clerk's lookups of the last hour: an index of
    # those audit rows alone (a few per clerk), not of the whole trail.
    op.create_index("ix_audit_event_national_id_lookup", "audit_event", ["actor_id", "at"], unique=False,
                    postgresql_where=_LOOKUPS, sqlite_where=_LOOKUPS)
    op.create_index("ix_household_idpoor_card_number", "household", ["idpoor_card_number"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_household_idpoor_card_number", table_name="household")
    op.drop_index("ix_audit_event_national_id_lookup", table_name="audit_event")
