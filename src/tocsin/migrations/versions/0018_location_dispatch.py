"""location-based dispatch (issue 11)

Adds ``campaign.location_justification`` (the imminent danger stated to the mobile
operators, F18) and the table ``location_send`` (one row per operator of a campaign's
LB-SMS or cell-broadcast channel: its state and the counts the operator reports).
Only adds (docs/decisions/0006).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('campaign') as batch:
        batch.add_column(sa.Column('location_justification', sa.Text(), nullable=True))
    op.create_table(
        'location_send',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('operator', sa.String(length=16), nullable=False),
        sa.Column('reference', sa.String(length=120), nullable=False),
        sa.Column('endpoint', sa.String(length=300), nullable=True),
        sa.Column('operator_ref', sa.String(length=120), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('phones_targeted', sa.Integer(), nullable=False),
        sa.Column('cells_resolved', sa.Integer(), nullable=False),
        sa.Column('submitted', sa.Integer(), nullable=False),
        sa.Column('delivered', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('expired', sa.Integer(), nullable=False),
        sa.Column('last_seq', sa.Integer(), nullable=False),
        sa.Column('duplicates', sa.Integer(), nullable=False),
        sa.Column('pending', sa.JSON(), nullable=True),
        sa.Column('per_cell', sa.JSON(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=True),
        sa.Column('stop_requested_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'channel', 'operator'),
        sa.UniqueConstraint('reference'),
    )
    op.create_index('ix_location_send_campaign_id', 'location_send', ['campaign_id'])
    op.create_index('ix_location_send_operator_ref', 'location_send', ['operator_ref'])


def downgrade() -> None:
    op.drop_index('ix_location_send_operator_ref', table_name='location_send')
    op.drop_index('ix_location_send_campaign_id', table_name='location_send')
    op.drop_table('location_send')
    with op.batch_alter_table('campaign') as batch:
        batch.drop_column('location_justification')
