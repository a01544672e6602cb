"""each determination keeps its explanation: the rules' structure beside the flat reasons

Revision ID: 0010_determination_explanation
Revises: 0009_registry_checks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_determination_explanation"
down_revision: str | Sequence[str] | None = "0009_registry_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Nullable, without a default: determinations stored before were made without one, and say so (null).
    op.add_column("determination", sa.Column("explanation", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("determination", schema=None) as batch_op:
        batch_op.drop_column("explanation")
