"""retention and yearly reminder (issue 10 point 5)

Adds the tables ``campaign_retention`` (where the retention job stands with each
finished campaign: lease, keyset cursor, rows pseudonymised, done) and
``subscriber_reminder`` (the yearly "is this still correct?" e-mail, one per subscriber
and year). Only adds (docs/decisions/0006); see docs/decisions/0023.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from tocsin.core.db import UTCDateTime

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaign_retention',
        sa.Column('campaign_id', sa.String(length=32), nullable=False),
        sa.Column('owner', sa.String(length=120), nullable=True),
        sa.Column('lease_until', UTCDateTime(), nullable=True),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('deliveries', sa.Integer(), nullable=False),
        sa.Column('done_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id'),
    )
    op.create_table(
        'subscriber_reminder',
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('year', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('claimed_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id', 'year'),
    )


def downgrade() -> None:
    op.drop_table('subscriber_reminder')
    op.drop_table('campaign_retention')
