"""national scale indexes

Revision ID: 0005_scale
Revises: 0004_cases
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_scale"
down_revision: str | Sequence[str] | None = "0004_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Duplicate matching at national scale: the block (name key, birth year) and the commune's
    # households are read from these indexes alone; they replace the narrower ones of 0001.
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index("ix_household_village_code")
        batch_op.create_index("ix_household_village_office", ["village_code", "office_id", "id"], unique=False)
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_family_key_birth_year")
        batch_op.drop_index("ix_person_given_key_birth_year")
        batch_op.create_index("ix_person_family_key_block", ["family_key", "birth_year", "household_id", "id"], unique=False)
        batch_op.create_index("ix_person_given_key_block", ["given_key", "birth_year", "household_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_given_key_block")
        batch_op.drop_index("ix_person_family_key_block")
        batch_op.create_index("ix_person_given_key_birth_year", ["given_key", "birth_year"], unique=False)
        batch_op.create_index("ix_person_family_key_birth_year", ["family_key", "birth_year"], unique=False)
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index("ix_household_village_office")
        batch_op.create_index("ix_household_village_code", ["village_code"], unique=False)
