"""DCI registry APIs: partner clients, message ids, transactions, callbacks, subscriptions, lookups

Revision ID: 0020_dci
Revises: 0010_determination_explanation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0020_dci'
down_revision: str | Sequence[str] | None = '0010_determination_explanation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dci_client',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=200), nullable=False),
    sa.Column('query_types', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('offices', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('callback_url', sa.String(length=500), nullable=True),
    sa.Column('jwks', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('signature_required', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dci_client')),
    sa.UniqueConstraint('client_id', name=op.f('uq_dci_client_client_id'))
    )
    op.create_table('dci_delivery',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('header', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('message', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['dci_client.id'], name=op.f('fk_dci_delivery_client_id_dci_client')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dci_delivery'))
    )
    with op.batch_alter_table('dci_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_dci_delivery_pending', ['delivered_at', 'failed_at', 'next_attempt_at'], unique=False)

    op.create_table('dci_message',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['dci_client.id'], name=op.f('fk_dci_message_client_id_dci_client')),
    sa.PrimaryKeyConstraint('client_id', 'message_id', name=op.f('pk_dci_message'))
    )
    with op.batch_alter_table('dci_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dci_message_received_at'), ['received_at'], unique=False)

    op.create_table('dci_subscription',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('reference_id', sa.String(length=99), nullable=False),
    sa.Column('event_types', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('filter_type', sa.String(length=20), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('record_type', sa.String(length=10), nullable=False),
    sa.Column('locale', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events_after', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['dci_client.id'], name=op.f('fk_dci_subscription_client_id_dci_client')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dci_subscription')),
    sa.UniqueConstraint('code', name=op.f('uq_dci_subscription_code'))
    )
    with op.batch_alter_table('dci_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dci_subscription_client_id'), ['client_id'], unique=False)

    op.create_table('dci_transaction',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('transaction_id', sa.String(length=99), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('reference_ids', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=4), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['dci_client.id'], name=op.f('fk_dci_transaction_client_id_dci_client')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dci_transaction')),
    sa.UniqueConstraint('correlation_id', name=op.f('uq_dci_transaction_correlation_id'))
    )
    with op.batch_alter_table('dci_transaction', schema=None) as batch_op:
        batch_op.create_index('ix_dci_transaction_client_transaction', ['client_id', 'transaction_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dci_transaction_created_at'), ['created_at'], unique=False)

    op.create_table('dci_lookup',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('office_id', sa.Uuid(), nullable=True),
    sa.Column('requested_by', sa.Uuid(), nullable=True),
    sa.Column('registry_code', sa.String(length=40), nullable=False),
    sa.Column('national_id', sa.String(length=30), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('candidate', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('message', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_dci_lookup_office_id_office')),
    sa.ForeignKeyConstraint(['requested_by'], ['user_account.id'], name=op.f('fk_dci_lookup_requested_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dci_lookup')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_dci_lookup_transaction_id'))
    )


def downgrade() -> None:
    op.drop_table('dci_lookup')
    with op.batch_alter_table('dci_transaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dci_transaction_created_at'))
        batch_op.drop_index('ix_dci_transaction_client_transaction')

    op.drop_table('dci_transaction')
    with op.batch_alter_table('dci_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dci_subscription_client_id'))

    op.drop_table('dci_subscription')
    with op.batch_alter_table('dci_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dci_message_received_at'))

    op.drop_table('dci_message')
    with op.batch_alter_table('dci_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_dci_delivery_pending')

    op.drop_table('dci_delivery')
    op.drop_table('dci_client')
