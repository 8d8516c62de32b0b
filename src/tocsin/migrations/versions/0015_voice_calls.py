"""voice calls (issue 12)

Adds ``contact_point.voice`` (a mobile that also takes voice calls; landlines are
contact points of kind ``landline``), and the tables ``voice_route`` (the row that
holds call starts per minute and the trunk across workers), ``voice_call`` (one row
per call attempt) and ``voice_call_event`` (signed provider requests, once each).
Only adds (docs/decisions/0006).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('contact_point') as batch:
        batch.add_column(sa.Column('voice', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    op.create_table(
        'voice_route',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('last_start_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'voice_call',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('delivery_id', BigId, nullable=False),
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('route', sa.String(length=40), nullable=False),
        sa.Column('attempt', sa.SmallInteger(), nullable=False),
        sa.Column('provider_call_sid', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('answered_by', sa.String(length=32), nullable=True),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('answered_at', UTCDateTime(), nullable=True),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=False),
        sa.Column('digits', sa.String(length=32), nullable=False),
        sa.Column('acknowledged', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('hangup_requested_at', UTCDateTime(), nullable=True),
        sa.Column('error', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_voice_call_delivery_id', 'voice_call', ['delivery_id'])
    op.create_index('ix_voice_call_campaign_id', 'voice_call', ['campaign_id'])
    op.create_index('ix_voice_call_provider_call_sid', 'voice_call', ['provider_call_sid'])
    op.create_index('ix_voice_call_route_started', 'voice_call', ['route', 'started_at'])
    op.create_index('ix_voice_call_active', 'voice_call', ['route'],
                    postgresql_where=sa.text('ended_at IS NULL'),
                    sqlite_where=sa.text('ended_at IS NULL'))
    op.create_table(
        'voice_call_event',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('call_id', BigId, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=True),
        sa.Column('signature', sa.String(length=100), nullable=False),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('signature'),
    )
    op.create_index('ix_voice_call_event_call_id', 'voice_call_event', ['call_id'])


def downgrade() -> None:
    op.drop_table('voice_call_event')
    op.drop_table('voice_call')
    op.drop_table('voice_route')
    with op.batch_alter_table('contact_point') as batch:
        batch.drop_column('voice')
