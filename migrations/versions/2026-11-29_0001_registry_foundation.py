"""registry foundation

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-29 03:57:39.619749
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001_foundation'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The audit trail is append-only: the database itself refuses to change or remove a row.
PG_AUDIT_GUARD = [
    "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$",
    "CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()",
]
SQLITE_AUDIT_GUARD = [
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Trigram indexes make substring name search fast; pg_trgm is a trusted extension.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('activity_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=60), nullable=False),
    sa.Column('schema_version', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('office_code', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('parked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('park_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_event'))
    )
    with op.batch_alter_table('activity_event', schema=None) as batch_op:
        batch_op.create_index('ix_activity_event_sent_at_next_attempt_at', ['sent_at', 'next_attempt_at'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_username', sa.String(length=64), nullable=True),
    sa.Column('actor_role', sa.String(length=16), nullable=True),
    sa.Column('office_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index('ix_audit_event_office_at', ['office_id', 'at'], unique=False)

    op.create_table('bench_probe',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bench_probe'))
    )
    op.create_table('idempotency_key',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_key')),
    sa.UniqueConstraint('principal', 'key', name='uq_idempotency_key_principal_key')
    )
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_key_created_at'), ['created_at'], unique=False)

    op.create_table('location',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('name_km', sa.String(length=120), nullable=True),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('parent_code', sa.String(length=8), nullable=True),
    sa.Column('source', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['parent_code'], ['location.code'], name=op.f('fk_location_parent_code_location')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_location'))
    )
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_location_parent_code'), ['parent_code'], unique=False)

    op.create_table('login_throttle',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_login_throttle'))
    )
    op.create_table('office',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('location_code', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_code'], ['location.code'], name=op.f('fk_office_location_code_location')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_office')),
    sa.UniqueConstraint('code', name=op.f('uq_office_code'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('office_id', sa.Uuid(), nullable=True),
    sa.Column('scheme_code', sa.String(length=40), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_user_account_office_id_office')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('username', name=op.f('uq_user_account_username'))
    )
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_office_id'), ['office_id'], unique=False)

    op.create_table('household',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('office_id', sa.Uuid(), nullable=False),
    sa.Column('village_code', sa.String(length=8), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('area_type', sa.String(length=5), nullable=False),
    sa.Column('idpoor_level', sa.Integer(), nullable=True),
    sa.Column('idpoor_card_number', sa.String(length=40), nullable=True),
    sa.Column('idpoor_valid_until', sa.Date(), nullable=True),
    sa.Column('registered_by', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_household_office_id_office')),
    sa.ForeignKeyConstraint(['registered_by'], ['user_account.id'], name=op.f('fk_household_registered_by_user_account')),
    sa.ForeignKeyConstraint(['village_code'], ['location.code'], name=op.f('fk_household_village_code_location')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household'))
    )
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index('ix_household_office_created', ['office_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_village_code'), ['village_code'], unique=False)

    op.create_table('consent_record',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('purposes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('given_by', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_consent_record_household_id_household')),
    sa.ForeignKeyConstraint(['recorded_by'], ['user_account.id'], name=op.f('fk_consent_record_recorded_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_record'))
    )
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.create_index('ix_consent_record_household_recorded', ['household_id', 'recorded_at'], unique=False)

    op.create_table('person',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('office_id', sa.Uuid(), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('search_name', sa.String(length=210), nullable=False),
    sa.Column('family_key', sa.String(length=100), nullable=False),
    sa.Column('given_key', sa.String(length=100), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=False),
    sa.Column('birth_date_approximate', sa.Boolean(), nullable=False),
    sa.Column('national_id', sa.String(length=30), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('relationship', sa.String(length=16), nullable=False),
    sa.Column('disability_seeing', sa.String(length=8), nullable=False),
    sa.Column('disability_hearing', sa.String(length=8), nullable=False),
    sa.Column('disability_walking', sa.String(length=8), nullable=False),
    sa.Column('disability_remembering', sa.String(length=8), nullable=False),
    sa.Column('disability_self_care', sa.String(length=8), nullable=False),
    sa.Column('disability_communicating', sa.String(length=8), nullable=False),
    sa.Column('pregnant', sa.Boolean(), nullable=False),
    sa.Column('expected_delivery_date', sa.Date(), nullable=True),
    sa.Column('employment_status', sa.String(length=16), nullable=True),
    sa.Column('monthly_income', sa.BigInteger(), nullable=True),
    sa.Column('school_enrolled', sa.Boolean(), nullable=True),
    sa.Column('school_attendance_percent', sa.Integer(), nullable=True),
    sa.Column('nssf_member', sa.Boolean(), nullable=True),
    sa.Column('nssf_contribution_months', sa.Integer(), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('registered_by', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_person_household_id_household')),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_person_office_id_office')),
    sa.ForeignKeyConstraint(['registered_by'], ['user_account.id'], name=op.f('fk_person_registered_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('national_id', name=op.f('uq_person_national_id'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_person_family_key_birth_year', ['family_key', 'birth_year'], unique=False)
        batch_op.create_index('ix_person_given_key_birth_year', ['given_key', 'birth_year'], unique=False)
        batch_op.create_index('ix_person_office_search_name', ['office_id', 'search_name'], unique=False)
        batch_op.create_index('ix_person_search_name_trgm', ['search_name'], unique=False, postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})

    for statement in PG_AUDIT_GUARD if postgres else SQLITE_AUDIT_GUARD:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER audit_event_no_update_delete ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index('ix_person_search_name_trgm', postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})
        batch_op.drop_index('ix_person_office_search_name')
        batch_op.drop_index('ix_person_given_key_birth_year')
        batch_op.drop_index('ix_person_family_key_birth_year')
        batch_op.drop_index(batch_op.f('ix_person_household_id'))

    op.drop_table('person')
    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_record_household_recorded')

    op.drop_table('consent_record')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_village_code'))
        batch_op.drop_index('ix_household_office_created')

    op.drop_table('household')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_office_id'))

    op.drop_table('user_account')
    op.drop_table('office')
    op.drop_table('login_throttle')
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_location_parent_code'))

    op.drop_table('location')
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_key_created_at'))

    op.drop_table('idempotency_key')
    op.drop_table('bench_probe')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_office_at')
        batch_op.drop_index('ix_audit_event_entity')

    op.drop_table('audit_event')
    with op.batch_alter_table('activity_event', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_event_sent_at_next_attempt_at')

    op.drop_table('activity_event')
