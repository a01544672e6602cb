"""the console's search box finds households by a member's phone number: an index for it

Revision ID: 0050_console
Revises: 0040_monitoring_views
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0050_console"
down_revision: str | Sequence[str] | None = "0040_monitoring_views"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_person_office_phone", "person", ["office_id", "phone"])


def downgrade() -> None:
    op.drop_index("ix_person_office_phone", table_name="person")
