"""each member carries the household's village, for duplicate matching's blocks

Revision ID: 0006_person_village
Revises: 0005_scale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_person_village"
down_revision: str | Sequence[str] | None = "0005_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # At a million persons a common family name born in a three-year window is thousands of people
    # in a province; filtering them by their households' commune read thousands of index entries for
    # a few dozen candidates. With the village on the member, a block is one range of the index (sex and
    # birth year checked in the index too).
    op.add_column("person", sa.Column("village_code", sa.String(length=8), nullable=True))
    op.execute("UPDATE person SET village_code = (SELECT household.village_code FROM household "
               "WHERE household.id = person.household_id)")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.alter_column("village_code", existing_type=sa.String(length=8), nullable=False)
        batch_op.drop_index("ix_person_family_key_block")
        batch_op.drop_index("ix_person_given_key_block")
        batch_op.create_index("ix_person_family_key_block", ["family_key", "village_code", "sex", "birth_year"], unique=False)
        batch_op.create_index("ix_person_given_key_block", ["given_key", "village_code", "sex", "birth_year"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_given_key_block")
        batch_op.drop_index("ix_person_family_key_block")
        batch_op.create_index("ix_person_given_key_block", ["given_key", "birth_year", "household_id", "id"], unique=False)
        batch_op.create_index("ix_person_family_key_block", ["family_key", "birth_year", "household_id", "id"], unique=False)
        batch_op.drop_column("village_code")
