"""central monitoring

Revision ID: 0003_monitoring
Revises: 0002_eligibility
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_monitoring"
down_revision: str | Sequence[str] | None = "0002_eligibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
