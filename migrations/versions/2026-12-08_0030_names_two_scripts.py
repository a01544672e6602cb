"""names in two scripts: a person's Latin-script pair, search keys of people and places in either script

Revision ID: 0030_names_two_scripts
Revises: 0020_dci
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.services.names import name_keys, part_key

revision: str = '0030_names_two_scripts'
down_revision: str | Sequence[str] | None = '0020_dci'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

_person = sa.table('person', sa.column('id', sa.Uuid()), sa.column('given_name', sa.String()),
                   sa.column('family_name', sa.String()), sa.column('given_key', sa.String()),
                   sa.column('family_key', sa.String()), sa.column('name_keys', sa.String()))
_location = sa.table('location', sa.column('code', sa.String()), sa.column('name', sa.String()),
                     sa.column('name_km', sa.String()), sa.column('name_keys', sa.String()))


def upgrade() -> None:
    op.add_column('person', sa.Column('given_name_latin', sa.String(length=100), nullable=True))
    op.add_column('person', sa.Column('family_name_latin', sa.String(length=100), nullable=True))
    op.add_column('person', sa.Column('name_keys', sa.String(length=800), nullable=True))
    op.add_column('location', sa.Column('name_keys', sa.String(length=800), nullable=True))
    _backfill()
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.alter_column('name_keys', existing_type=sa.String(length=800), nullable=False)
        # Search looks in name_keys now; search_name only orders the results.
        batch_op.drop_index('ix_person_search_name_trgm', postgresql_using='gin',
                            postgresql_ops={'search_name': 'gin_trgm_ops'})
        batch_op.create_index('ix_person_name_keys_trgm', ['name_keys'], unique=False, postgresql_using='gin',
                              postgresql_ops={'name_keys': 'gin_trgm_ops'})
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.alter_column('name_keys', existing_type=sa.String(length=800), nullable=False)
        batch_op.create_index('ix_location_name_keys_trgm', ['name_keys'], unique=False, postgresql_using='gin',
                              postgresql_ops={'name_keys': 'gin_trgm_ops'})


def _backfill() -> None:
    """Every existing person's and place's keys, computed as the application computes them; a person's
    blocking keys too, which now meet a Khmer name in its romanised form."""
    connection = op.get_bind()
    update = sa.update(_person).where(_person.c.id == sa.bindparam('person_id')).values(
        given_key=sa.bindparam('g'), family_key=sa.bindparam('f'), name_keys=sa.bindparam('k'))
    last = None
    while True:
        query = sa.select(_person.c.id, _person.c.given_name, _person.c.family_name).order_by(_person.c.id).limit(BATCH)
        if last is not None:
            query = query.where(_person.c.id > last)
        rows = connection.execute(query).all()
        if not rows:
            break
        connection.execute(update, [{'person_id': row.id, 'g': part_key(row.given_name), 'f': part_key(row.family_name),
                                     'k': name_keys(f'{row.family_name} {row.given_name}')} for row in rows])
        last = rows[-1].id
    places = connection.execute(sa.select(_location.c.code, _location.c.name, _location.c.name_km)).all()
    if places:
        connection.execute(sa.update(_location).where(_location.c.code == sa.bindparam('place')).values(
            name_keys=sa.bindparam('k')), [{'place': row.code, 'k': name_keys(row.name, row.name_km, phonetic=False)} for row in places])


def downgrade() -> None:
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.drop_index('ix_location_name_keys_trgm', postgresql_using='gin',
                            postgresql_ops={'name_keys': 'gin_trgm_ops'})
        batch_op.drop_column('name_keys')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index('ix_person_name_keys_trgm', postgresql_using='gin',
                            postgresql_ops={'name_keys': 'gin_trgm_ops'})
        batch_op.create_index('ix_person_search_name_trgm', ['search_name'], unique=False, postgresql_using='gin',
                              postgresql_ops={'search_name': 'gin_trgm_ops'})
        batch_op.drop_column('name_keys')
        batch_op.drop_column('family_name_latin')
        batch_op.drop_column('given_name_latin')
    # The blocking keys stay as the upgrade computed them: the older code reads them as keys all the same.
